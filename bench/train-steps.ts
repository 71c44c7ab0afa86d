/**
 * Whole training steps (bench/train.ts, part 1 and 3): a Trainer per network and batch, its step timed as the
 * caller sees it (input upload, every dispatch of forward, loss, backward and Adam, the loss read back), its
 * FLOPs and the GPU memory it holds. Networks that cannot be trained yet come back as 'not-trainable' with the
 * trainer's message, so the rows fill in as their backward passes land.
 */
import { InvalidInputError } from '../src/errors';
import type { GPUContext } from '../src/gpu/context';
import { Graph, graphCost } from '../src/gpu/graph';
import { Plan } from '../src/gpu/plan';
import { ForwardBuilder } from '../src/layers/forward-builder';
import { foldBatchNorms } from '../src/layers/module';
import { DnCNN } from '../src/models/dncnn';
import type { Network } from '../src/models/network';
import { ResNet34UNet, resnet34UNetConfig } from '../src/models/resnet34-unet';
import { UNet } from '../src/models/unet';
import { initializeParameters } from '../src/training/init';
import { Trainer } from '../src/training/trainer';
import { type TrainBenchSettings } from './train-args';
import { classifyTrainerMemory, recordAllocations, type TrainerMemory } from './train-memory';
import { type Summary, summarize } from './stats';

export interface StepCase {
  key: string;
  description: string;
  make(): Network;
  batch(settings: TrainBenchSettings): number;
}

export const STEP_CASES: StepCase[] = [
  {
    key: 'dncnn',
    description: 'DnCNN-17 (64 features, BR)',
    make: () => new DnCNN({ inChannels: 1, outChannels: 1, nc: 64, nb: 17, actMode: 'BR' }),
    batch: (s) => s.dncnnBatch,
  },
  {
    key: 'unet',
    description: 'U-Net (milesial) gray, 32 base, transposed conv',
    make: () => new UNet({ inChannels: 1, outChannels: 1, bilinear: false, baseChannels: 32, sigmoid: false }),
    batch: (s) => s.unetBatch,
  },
  {
    key: 'resnet34-unet',
    description: 'ResNet34-SCSE U-Net (smp) gray',
    make: () => new ResNet34UNet(resnet34UNetConfig(1, 1)),
    batch: (s) => s.unetBatch,
  },
];

/** Adam at KAIR's DnCNN rate; MSE, KAIR's default G_lossfn_type 'l2'. */
const OPTIMIZER = { kind: 'adam', lr: 1e-4 } as const;
const LOSS = { kind: 'mse' } as const;
const SEED = 1;

export interface StepResult {
  case: string;
  description: string;
  architecture?: string;
  /** PyTorch's [N, C, H, W] of the input batch. */
  batchShape: [number, number, number, number];
  status: 'ok' | 'not-trainable' | 'failed';
  reason?: string;
  /** Counted FLOPs of the forward-only (inference) graph at this batch. */
  forwardFlops?: number;
  /** FLOPs of one step (forward, loss, backward, optimizer). */
  stepFlops?: number;
  /** 'counted': the step plan's nodes' costs; 'estimate': 3 × the forward graph's. */
  flopsSource?: 'counted' | 'estimate';
  dispatches?: number;
  createMs?: number;
  /** Wall time of each warm-up step (not in the statistics). */
  warmupMs?: number[];
  /** Wall time of `trainer.step` (upload, all dispatches, the loss read back). */
  stepMs?: Summary;
  gflopPerSecond?: number;
  memory?: TrainerMemory;
  /** Loss of the first and last step, to show the steps did train. */
  loss?: { first: number; last: number };
}

/**
 * The trainer's step plan, when Trainer offers it publicly as a getter `plan` (asked for in issue 17); until then
 * undefined, and the FLOPs are estimated. A getter lives on the prototype, the private field on the instance, so
 * this never reads the private field.
 */
export function publicStepPlan(trainer: Trainer): Plan | undefined {
  // Looked up on the prototype with the trainer as `this`: a getter runs, an instance field is not seen.
  const plan: unknown = Reflect.get(Trainer.prototype, 'plan', trainer);
  return plan instanceof Plan ? plan : undefined;
}

/**
 * Counted FLOPs of the network's inference graph for a batch [n, h, w, c]: BatchNorms folded into their convolutions
 * as after loading weights (the trainer unfolds them again), weights uploaded, then released.
 */
export function forwardGraphFlops(ctx: GPUContext, model: Network, shape: [number, number, number, number]): number {
  foldBatchNorms(model);
  const graph = new Graph();
  const x = graph.input(shape, 'input');
  try {
    graph.output(model.forward(new ForwardBuilder(ctx, graph), x));
    return graphCost(graph).flops;
  } finally {
    model.release();
  }
}

/** A smooth deterministic batch in [0, 1] and a target near it (the values do not change the timing). */
function batchData(elements: number): { input: Float32Array; target: Float32Array } {
  const input = new Float32Array(elements);
  const target = new Float32Array(elements);
  for (let i = 0; i < elements; i++) {
    const v = ((i * 7919) % 256) / 255;
    target[i] = v;
    input[i] = v + (((i * 104729) % 97) / 97 - 0.5) * 0.2;
  }
  return { input, target };
}

export async function runStepCase(ctx: GPUContext, c: StepCase, settings: TrainBenchSettings): Promise<StepResult> {
  const n = c.batch(settings);
  const model = c.make();
  const { size } = settings;
  const batchShape: [number, number, number, number] = [n, model.inChannels, size, size];
  const base: StepResult = { case: c.key, description: c.description, architecture: model.architecture, batchShape, status: 'ok' };
  let trainer: Trainer | undefined;
  try {
    initializeParameters(model, SEED);
    const forwardFlops = forwardGraphFlops(ctx, model, [n, size, size, model.inChannels]);
    // Slots the pool still holds would be reused unseen: start from an empty pool so every buffer is recorded.
    ctx.buffers.trim();
    const t0 = performance.now();
    const made = await recordAllocations(ctx, () => Trainer.create(ctx, model, { batchShape, loss: LOSS, optimizer: OPTIMIZER })).catch(
      (e: unknown) => {
        if (e instanceof InvalidInputError && /cannot be trained yet/.test(e.message)) return { notTrainable: e.message };
        throw e;
      },
    );
    if ('notTrainable' in made) return { ...base, status: 'not-trainable', reason: made.notTrainable, forwardFlops };
    const createMs = performance.now() - t0;
    trainer = made.result;
    const memory = classifyTrainerMemory(made.buffers, model.architecture);
    const plan = publicStepPlan(trainer);
    const counted = plan ? plan.cost.flops : undefined;
    const stepFlops = counted ?? 3 * forwardFlops;
    const data = batchData(n * model.inChannels * size * size);
    const warmupMs: number[] = [];
    let first: number | undefined;
    for (let i = 0; i < settings.warmup; i++) {
      const t = performance.now();
      const r = await trainer.step(data);
      warmupMs.push(performance.now() - t);
      first ??= r.loss;
    }
    const times: number[] = [];
    let last = Number.NaN;
    for (let i = 0; i < settings.runs; i++) {
      const t = performance.now();
      const r = await trainer.step(data);
      times.push(performance.now() - t);
      first ??= r.loss;
      last = r.loss;
    }
    const stepMs = summarize(times);
    return {
      ...base,
      forwardFlops,
      stepFlops,
      flopsSource: counted !== undefined ? 'counted' : 'estimate',
      ...(plan ? { dispatches: plan.dispatchCount } : {}),
      createMs,
      warmupMs,
      stepMs,
      gflopPerSecond: stepFlops / stepMs.median / 1e6,
      memory,
      loss: { first: first!, last },
    };
  } catch (e) {
    if (ctx.isLost) throw e;
    return { ...base, status: 'failed', reason: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  } finally {
    trainer?.dispose();
    model.release();
    ctx.buffers.trim();
  }
}
