/**
 * Whole training steps (bench/train.ts, part 1 and 3): a Trainer per network and batch, its step timed as the
 * caller sees it (input upload, every dispatch of forward, loss, backward and Adam, the loss read back), its
 * FLOPs (the step plan's counted node costs) and the GPU memory it holds. Each network has a quick batch and
 * patch (a few seconds a step on lavapipe) and a full one (the and the networks' papers' training sizes,
 * for a real GPU); the heaviest run only in the full run. Networks that cannot be trained yet come back as
 * 'not-trainable' with the trainer's message.
 */
import { InvalidInputError } from '../src/errors';
import type { GPUContext } from '../src/gpu/context';
import { Graph, graphCost } from '../src/gpu/graph';
import { ForwardBuilder } from '../src/layers/forward-builder';
import { bufferParameters, foldBatchNorms, namedParameters } from '../src/layers/module';
import { DnCNN } from '../src/models/dncnn';
import { MSRResNet } from '../src/models/msrresnet';
import { N2VUNet, n2vUNetConfig } from '../src/models/n2v-unet';
import type { Network } from '../src/models/network';
import { ResNet34UNet, resnet34UNetConfig } from '../src/models/resnet34-unet';
import { ESRGAN_X4, RRDBNet } from '../src/models/rrdbnet';
import { SCUNET_GRAY, SCUNet } from '../src/models/scunet';
import { SINSR, SINSR_ARCH7, SINSR_CBAM } from '../src/models/sinsr';
import { SRResNet } from '../src/models/srresnet';
import { UNet } from '../src/models/unet';
import { initializeParameters } from '../src/training/init';
import type { SelfSupervision } from '../src/training/self-supervision';
import { Trainer, type TrainingBatch } from '../src/training/trainer';
import { type TrainBenchSettings } from './train-args';
import { type AllocatedBuffer, classifyTrainerMemory, recordAllocations, type TrainerMemory } from './train-memory';
import { type Summary, summarize } from './stats';

/** A network's batch: N images of patch × patch input pixels (the low-resolution side for super-resolution). */
export interface StepSize {
  batch: number;
  patch: number;
}

export interface StepCase {
  key: string;
  description: string;
  make(): Network;
  /** The batch of this run; undefined: left out of a --quick run (too slow on a software adapter). */
  size(settings: TrainBenchSettings): StepSize | undefined;
  /** A self-supervised step (issue 18) instead of a supervised MSE step. */
  selfSupervised?: SelfSupervision;
}

/**
 * The full batch, or the quick one; `quick` undefined leaves a network out of --quick. Measured on lavapipe (2
 * cores): RRDBNet at 1 × 16² and SCUNet at 1 × 64² take about 25 s a step, so they run in the full run only.
 */
function sized(full: StepSize, quick: StepSize | undefined): StepCase['size'] {
  return (s) => (s.quick ? quick : full);
}

export const STEP_CASES: StepCase[] = [
  {
    key: 'dncnn',
    description: 'DnCNN-17 (64 features, BR) gray',
    make: () => new DnCNN({ inChannels: 1, outChannels: 1, nc: 64, nb: 17, actMode: 'BR' }),
    size: (s) => ({ batch: s.dncnnBatch, patch: s.size }),
  },
  {
    key: 'unet',
    description: 'U-Net (milesial) gray, 32 base, transposed conv',
    make: () => new UNet({ inChannels: 1, outChannels: 1, bilinear: false, baseChannels: 32, sigmoid: false }),
    size: (s) => ({ batch: s.unetBatch, patch: s.size }),
  },
  {
    key: 'resnet34-unet',
    description: 'ResNet34-SCSE U-Net (smp) gray',
    make: () => new ResNet34UNet(resnet34UNetConfig(1, 1)),
    size: (s) => ({ batch: s.unetBatch, patch: s.size }),
  },
  {
    // BasicSR's train_MSRResNet_x4: batch 16, GT 128 (LR 32).
    key: 'msrresnet',
    description: 'MSRResNet ×4 (64 features, 16 blocks) RGB',
    make: () => new MSRResNet({ inChannels: 3, outChannels: 3, features: 64, blocks: 16, scale: 4 }),
    size: sized({ batch: 16, patch: 32 }, { batch: 1, patch: 16 }),
  },
  {
    // SRGAN's SRResNet: batch 16, HR 96 (LR 24).
    key: 'srresnet',
    description: 'SRResNet ×4 (64 features, 16 blocks, BN, PReLU) RGB',
    make: () => new SRResNet({ inChannels: 3, outChannels: 3, features: 64, blocks: 16, scale: 4, prelu: 'shared', clampOutput: true }),
    size: sized({ batch: 16, patch: 24 }, { batch: 1, patch: 16 }),
  },
  {
    // BasicSR's train_ESRGAN_x4 (its PSNR-oriented RRDBNet stage): batch 16, GT 128 (LR 32).
    key: 'rrdbnet',
    description: 'RRDBNet ×4 (ESRGAN: 64 features, 23 RRDBs) RGB',
    make: () => new RRDBNet(ESRGAN_X4),
    size: sized({ batch: 16, patch: 32 }, undefined),
  },
  {
    // KAIR's train_scunet: patch 128 (its batch of 24 needs more than many GPUs have; 4 here).
    key: 'scunet',
    description: 'SCUNet gray (dim 64, 4 blocks a stage)',
    make: () => new SCUNet(SCUNET_GRAY),
    size: sized({ batch: 4, patch: 128 }, undefined),
  },
  {
    key: 'sinsr',
    description: 'SINSR generator ×4 (arch 7, no attention) RGB',
    make: () => new SINSR(SINSR_ARCH7),
    size: sized({ batch: 8, patch: 32 }, { batch: 1, patch: 16 }),
  },
  // Self-supervised steps (issue 18): N2V2 on its U-Net (CAREamics' width and patch), and the built-in DnCNN's
  // fine-tuning by N2V2 and by Neighbor2Neighbor (whose batch is the noisy 2P × 2P patch: f(y) without a gradient,
  // then f(g1 y) on P × P).
  {
    key: 'n2v2-unet',
    description: 'N2V2 step, N2V2 U-Net (CAREamics: depth 2, 32 channels, BN) gray',
    make: () => new N2VUNet(n2vUNetConfig(1, 1, { n2v2: true })),
    size: sized({ batch: 16, patch: 64 }, { batch: 4, patch: 64 }),
    selfSupervised: { method: 'n2v2' },
  },
  {
    key: 'dncnn-n2v2',
    description: 'N2V2 step, DnCNN-17 (64 features) gray',
    make: () => new DnCNN({ inChannels: 1, outChannels: 1, nc: 64, nb: 17, actMode: 'R' }),
    size: (s) => ({ batch: s.dncnnBatch, patch: s.size }),
    selfSupervised: { method: 'n2v2' },
  },
  {
    key: 'dncnn-nb2nb',
    description: 'Neighbor2Neighbor step, DnCNN-17 (64 features) gray',
    make: () => new DnCNN({ inChannels: 1, outChannels: 1, nc: 64, nb: 17, actMode: 'R' }),
    size: (s) => ({ batch: s.dncnnBatch, patch: s.size }),
    selfSupervised: { method: 'neighbor2neighbor' },
  },
  {
    key: 'sinsr-cbam',
    description: 'SINSR generator ×4 with CBAM RGB',
    make: () => new SINSR(SINSR_CBAM),
    size: sized({ batch: 8, patch: 32 }, undefined),
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
  /** 'skipped': left out of a --quick run (reason says so). */
  status: 'ok' | 'not-trainable' | 'failed' | 'skipped';
  reason?: string;
  /** Learnt parameters (elements). */
  parameters?: number;
  /** Counted FLOPs of the forward-only (inference) graph at this batch. */
  forwardFlops?: number;
  /** FLOPs of one step (forward, loss, backward, optimizer): the step plan's counted node costs (src/gpu/cost.ts). */
  stepFlops?: number;
  dispatches?: number;
  createMs?: number;
  /** Wall time of each warm-up step (not in the statistics). */
  warmupMs?: number[];
  /** Wall time of `trainer.step` (upload, all dispatches, the loss read back). */
  stepMs?: Summary;
  gflopPerSecond?: number;
  /** What the plan says its activation slots take (Plan.activationBytes), beside the measured `memory.activations`. */
  planActivationBytes?: number;
  memory?: TrainerMemory;
  /** Loss of the first and last step, to show the steps did train. */
  loss?: { first: number; last: number };
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

/** Elements of the parameters that learn (BatchNorm running statistics and counters left out). */
function learntElements(model: Network): number {
  const fixed = bufferParameters(model);
  return namedParameters(model)
    .filter(([, p]) => !fixed.has(p))
    .reduce((sum, [, p]) => sum + p.shape.reduce((a, b) => a * b, 1), 0);
}

/** A smooth deterministic pattern in [0, 1], and one near it (the values do not change the timing). */
function pattern(elements: number, noisy: boolean): Float32Array {
  const a = new Float32Array(elements);
  for (let i = 0; i < elements; i++) {
    const v = ((i * 7919) % 256) / 255;
    a[i] = noisy ? v + (((i * 104729) % 97) / 97 - 0.5) * 0.2 : v;
  }
  return a;
}

/**
 * A batch of the case's kind: input and target; for N2V2 the noisy input as its own target and blind spots on a
 * regular 1-in-64 grid (the replacement values do not change the timing); for Neighbor2Neighbor every cell's pair
 * choice and γ.
 */
function stepBatch(c: StepCase, n: number, channels: number, size: number, outSize: number, outChannels: number): TrainingBatch {
  const input = pattern(n * channels * size * size, true);
  switch (c.selfSupervised?.method) {
    case undefined:
      return { input, target: pattern(n * outChannels * outSize * outSize, false) };
    case 'neighbor2neighbor':
      return { input, choices: Uint8Array.from({ length: (n * size * size) / 4 }, (_, i) => i % 8), gamma: 1 };
    default:
      return { input, target: input, mask: Float32Array.from({ length: n * size * size }, (_, i) => (i % 64 === 0 ? 1 : 0)) };
  }
}

/** The case's batch shape for these settings, or undefined when the case sits out this run. */
export function caseBatchShape(c: StepCase, model: Network, settings: TrainBenchSettings): [number, number, number, number] | undefined {
  const size = c.size(settings);
  return size && [size.batch, model.inChannels, size.patch, size.patch];
}

export async function runStepCase(ctx: GPUContext, c: StepCase, settings: TrainBenchSettings): Promise<StepResult> {
  const model = c.make();
  const shape = caseBatchShape(c, model, settings);
  const base = { case: c.key, description: c.description, architecture: model.architecture };
  if (!shape) {
    // Only networks with a batch of their own sit out --quick; the row shows the batch of the full run.
    const full = caseBatchShape(c, model, { ...settings, quick: false })!;
    return {
      ...base,
      batchShape: full,
      status: 'skipped',
      reason: 'too slow for a software adapter: left out of --quick (this is the full batch)',
    };
  }
  const [n, channels, size] = shape;
  let trainer: Trainer | undefined;
  const result: StepResult = { ...base, batchShape: shape, status: 'ok' };
  try {
    initializeParameters(model, SEED);
    result.parameters = learntElements(model);
    result.forwardFlops = forwardGraphFlops(ctx, model, [n, size, size, channels]);
    // Slots the pool still holds would be reused unseen: start from an empty pool so every buffer is recorded.
    ctx.buffers.trim();
    const t0 = performance.now();
    const made = await recordAllocations(ctx, () =>
      Trainer.create(ctx, model, {
        batchShape: shape,
        optimizer: OPTIMIZER,
        ...(c.selfSupervised ? { selfSupervised: c.selfSupervised } : { loss: LOSS }),
      }),
    ).catch((e: unknown) => {
      if (e instanceof InvalidInputError && /cannot be trained yet/.test(e.message)) return { notTrainable: e.message };
      throw e;
    });
    if ('notTrainable' in made) return { ...result, status: 'not-trainable', reason: made.notTrainable };
    result.createMs = performance.now() - t0;
    const t = made.result;
    trainer = t;
    const plan = t.plan;
    result.stepFlops = plan.cost.flops;
    result.dispatches = plan.dispatchCount;
    result.planActivationBytes = plan.activationBytes;
    const outSize = size * model.scale;
    const data = stepBatch(c, n, channels, size, outSize, model.outChannels);
    const buffers: AllocatedBuffer[] = [...made.buffers];
    let first: number | undefined;
    let last = Number.NaN;
    let recorded = false;
    // The first step makes the state's backups (and any staging it needs): record it too, timed or not.
    const timedStep = async () => {
      const start = performance.now();
      const r = recorded ? { result: await t.step(data), buffers: [] } : await recordAllocations(ctx, () => t.step(data));
      const ms = performance.now() - start;
      buffers.push(...r.buffers);
      recorded = true;
      first ??= r.result.loss;
      last = r.result.loss;
      return ms;
    };
    const warmupMs: number[] = [];
    for (let i = 0; i < settings.warmup; i++) warmupMs.push(await timedStep());
    const times: number[] = [];
    for (let i = 0; i < settings.runs; i++) times.push(await timedStep());
    const stepMs = summarize(times);
    return {
      ...result,
      warmupMs,
      stepMs,
      gflopPerSecond: result.stepFlops / stepMs.median / 1e6,
      memory: classifyTrainerMemory(buffers, model.architecture),
      loss: { first: first!, last },
    };
  } catch (e) {
    if (ctx.isLost) throw e;
    return { ...result, status: 'failed', reason: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  } finally {
    trainer?.dispose();
    model.release();
    ctx.buffers.trim();
  }
}
