import { expect } from 'vitest';
import type { GPUContext } from '../../src/gpu/context';
import { namedParameters } from '../../src/layers/module';
import type { Network } from '../../src/models/network';
import type { LossConfig } from '../../src/training/loss-config';
import type { OptimizerConfig } from '../../src/training/optimizer-config';
import type { ParameterGroup } from '../../src/training/parameter-groups';
import { Trainer, type TrainerOptions, type TrainingBatch } from '../../src/training/trainer';
import { readFixtureF32, readFixtureJson } from './fixture-loader';
import { relL2 } from './random';

/**
 * Whole-step training fixtures written by tools/torch/make_*training_fixtures.py: the batch, the initial
 * state_dict, the loss of every step, the output and gradients of step 1, and the state_dict after some steps.
 * Tensors are inline (`data`) or, in the larger files, at a byte `offset` of the .bin beside the JSON.
 */
export interface TensorData {
  shape: number[];
  data: ArrayLike<number>;
}

export interface TrainingFixture<Config = unknown> {
  torch: string;
  config: Config;
  loss: string;
  optimizer: {
    kind: 'sgd' | 'adam' | 'adamw';
    lr: number;
    betas?: [number, number] | null;
    eps?: number | null;
    weight_decay?: number | null;
    momentum?: number | null;
    nesterov?: boolean | null;
    dampening?: number | null;
  };
  input: TensorData;
  target: TensorData;
  initial: Record<string, TensorData>;
  losses: number[];
  grads_step1: Record<string, TensorData>;
  output_step1: TensorData;
  after: Record<string, Record<string, TensorData>>;
  /** torch.optim param groups by parameter name, when the optimizer had several (the rest form the last group). */
  param_groups?: { params: string[]; lr?: number; weight_decay?: number }[];
  /** The LossConfig, where `loss` alone does not say it (a weighted sum). */
  loss_config?: LossConfig;
  /** The one-channel mask of a masked loss (Noise2Void's blind spots). */
  mask?: TensorData;
}

/** How a fixture's steps are run where its batch alone does not say it (self-supervised methods). */
export interface ParityRun {
  /** Trainer options instead of the fixture's loss (a selfSupervised method, say). */
  options?: Partial<TrainerOptions>;
  /** The batch of step s (1-based), when it changes between steps. */
  batch?: (step: number) => TrainingBatch;
}

type Raw = TensorData | { shape: number[]; offset: number };

/** Reads `<path>.json` and, when its tensors point into one, `<path>.bin`. */
export async function readTrainingFixture<Config>(path: string, binary = false): Promise<TrainingFixture<Config>> {
  const json = await readFixtureJson<Record<string, unknown>>(`${path}.json`);
  const bin = binary ? await readFixtureF32(`${path}.bin`) : undefined;
  const resolve = (v: unknown): unknown => {
    if (typeof v !== 'object' || v === null) return v;
    if (Array.isArray(v)) return v;
    const t = v as Raw;
    if (Array.isArray(t.shape) && 'offset' in t) {
      const count = t.shape.reduce((a, b) => a * b, 1);
      return { shape: t.shape, data: bin!.subarray(t.offset / 4, t.offset / 4 + count) };
    }
    if (Array.isArray(t.shape) && 'data' in t) return t;
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolve(x)]));
  };
  return resolve(json) as TrainingFixture<Config>;
}

export function optimizerOf(o: TrainingFixture['optimizer']): OptimizerConfig {
  if (o.kind === 'sgd') {
    return {
      kind: 'sgd',
      lr: o.lr,
      momentum: o.momentum ?? 0,
      dampening: o.dampening ?? 0,
      weightDecay: o.weight_decay ?? 0,
      nesterov: o.nesterov ?? false,
    };
  }
  return {
    kind: o.kind,
    lr: o.lr,
    betas: o.betas ?? [0.9, 0.999],
    eps: o.eps ?? 1e-8,
    weightDecay: o.weight_decay ?? (o.kind === 'adamw' ? 1e-2 : 0),
  };
}

function parameterGroupOf(g: NonNullable<TrainingFixture['param_groups']>[number]): ParameterGroup {
  return {
    params: (name) => g.params.includes(name),
    ...(g.lr !== undefined ? { lr: g.lr } : {}),
    ...(g.weight_decay !== undefined ? { weightDecay: g.weight_decay } : {}),
  };
}

const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((t, v) => t + v * v, 0));

/**
 * Trains `model` (its parameters set from the fixture's initial state) on the fixture's batch for as many steps
 * as the fixture has losses, and checks against PyTorch: every loss (first rel 1e-5, later 1e-4), the output and
 * every gradient of step 1 (rel-L2 1e-5 / 1e-4), and the whole state_dict at each snapshot (rel-L2 1e-4,
 * num_batches_tracked exactly).
 *
 * A convolution bias just before a train-mode BatchNorm has a zero gradient in exact arithmetic (BN subtracts the
 * batch mean): both sides hold f32 rounding noise there, so such "inert" tensors (gradient below 1e-5 of the
 * largest) are compared absolutely, and under Adam (whose step is ≈ lr·sign(g) whatever |g|) only within lr per
 * step; so is the running mean of the BatchNorm after them (`inertFollowers` names it), which carries the bias.
 */
export async function checkTrainingParity(
  ctx: GPUContext,
  model: Network,
  fx: TrainingFixture,
  inertFollowers: (name: string) => string | undefined = () => undefined,
  run: ParityRun = {},
): Promise<void> {
  for (const [name, p] of namedParameters(model)) p.data = Float64Array.from(fx.initial[name].data);
  const [n, c, h, w] = fx.input.shape;
  const trainer = await Trainer.create(ctx, model, {
    batchShape: [n, c, h, w],
    ...(run.options?.selfSupervised ? {} : { loss: fx.loss_config ?? ({ kind: fx.loss } as LossConfig) }),
    optimizer: optimizerOf(fx.optimizer),
    returnOutput: true,
    ...(fx.param_groups ? { parameterGroups: fx.param_groups.map(parameterGroupOf) } : {}),
    ...run.options,
  });
  try {
    const fixed: TrainingBatch = { input: fx.input.data, target: fx.target.data, ...(fx.mask ? { mask: fx.mask.data } : {}) };
    const batchOf = run.batch ?? (() => fixed);
    const largest = Math.max(...Object.values(fx.grads_step1).map((g) => norm(g.data)));
    const inert = new Set(Object.keys(fx.grads_step1).filter((k) => norm(fx.grads_step1[k].data) < 1e-5 * largest));
    for (const k of [...inert]) {
      const follower = inertFollowers(k);
      if (follower) inert.add(follower);
    }
    const adam = fx.optimizer.kind !== 'sgd';
    const checkState = async (after: string) => {
      const state = await trainer.stateDict();
      const expected = fx.after[after];
      expect([...state.keys()].sort()).toEqual(Object.keys(expected).sort());
      for (const [name, t] of state) {
        const ref = expected[name];
        expect(t.shape, name).toEqual(ref.shape);
        if (t.dtype === 'int64') expect([...t.data], `${name} after ${after}`).toEqual(Array.from(ref.data));
        else if (inert.has(name) && adam) {
          const drift = Math.max(...Array.from(t.data, (v, i) => Math.abs(v - ref.data[i])));
          expect(drift, `${name} after ${after} step(s)`).toBeLessThanOrEqual(2 * fx.optimizer.lr * Number(after));
        } else expect(relL2(t.data, ref.data), `${name} after ${after} step(s)`).toBeLessThanOrEqual(1e-4);
      }
    };
    for (let s = 1; s <= fx.losses.length; s++) {
      const r = await trainer.step(batchOf(s));
      const lossError = Math.abs(r.loss - fx.losses[s - 1]) / Math.abs(fx.losses[s - 1]);
      expect(lossError, `loss of step ${s}`).toBeLessThanOrEqual(s === 1 ? 1e-5 : 1e-4);
      if (s === 1) {
        expect(relL2(r.output!, fx.output_step1.data), 'output of step 1').toBeLessThanOrEqual(1e-5);
        const grads = await trainer.gradients();
        for (const [name, ref] of Object.entries(fx.grads_step1)) {
          const g = grads.get(name)!;
          if (inert.has(name)) expect(norm(g), `gradient of ${name} (zero in exact arithmetic)`).toBeLessThanOrEqual(1e-5 * largest);
          else expect(relL2(g, ref.data), `gradient of ${name}`).toBeLessThanOrEqual(1e-4);
        }
      }
      if (String(s) in fx.after) await checkState(String(s));
    }
  } finally {
    trainer.dispose();
  }
}
