import { describe, expect, it } from 'vitest';
import type { GPUContext } from '../../src/gpu/context';
import { BatchNorm2d } from '../../src/layers/batchnorm';
import { namedModules, namedParameters } from '../../src/layers/module';
import { DnCNN } from '../../src/models/dncnn';
import type { TrainedTensor } from '../../src/training/network-state';
import { Trainer } from '../../src/training/trainer';
import { getTestContext } from '../helpers/gpu';
import { relL2 } from '../helpers/random';
import { optimizerOf, readTrainingFixture, type TrainingFixture } from '../helpers/training-parity';

/*
 * BatchNorm2d modes in training against PyTorch 1.13 (tools/torch/make_batchnorm_mode_fixtures.py), on the reduced
 * KAIR DnCNN 'BR' of dncnn-parity.test.ts (nc 8, nb 5, eps 1e-4), 20 steps on one batch:
 * - every BatchNorm in eval mode while the rest trains (TrainerOptions.batchNorm 'frozen'), Adam;
 * - BatchNorm2d(momentum=None), the cumulative moving average, SGD;
 * - train mode with γ and β fixed (TrainerOptions.frozen), checked against the first step of dncnn-br-mse-sgd.
 */

interface DnCNNFixtureConfig {
  in_nc: number;
  out_nc: number;
  nc: number;
  nb: number;
  act_mode: 'R' | 'BR';
  batch_norm?: 'train' | 'frozen';
  bn_momentum?: number | null;
}

const FIXTURES = 'test/fixtures/training';

function dncnnOf(fx: TrainingFixture<DnCNNFixtureConfig>): DnCNN {
  const { in_nc, out_nc, nc, nb, act_mode } = fx.config;
  const model = new DnCNN({ inChannels: in_nc, outChannels: out_nc, nc, nb, actMode: act_mode });
  for (const [name, p] of namedParameters(model)) p.data = Float64Array.from(fx.initial[name].data);
  return model;
}

/** What a parity check drives: one step on the fixture's batch, and what the GPU holds after it. */
interface StepRunner {
  step(): Promise<{ loss: number; output: Float32Array }>;
  gradients(): Promise<Map<string, Float32Array>>;
  stateDict(): Promise<Map<string, TrainedTensor>>;
}

const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((t, v) => t + v * v, 0));

/**
 * As checkTrainingParity (test/helpers/training-parity.ts), for a runner that is not a plain Trainer: losses
 * (first rel 1e-5, later 1e-4), output and gradients of step 1 (1e-5 / 1e-4 rel-L2) and the state_dict at each
 * snapshot (rel-L2 1e-4, num_batches_tracked exactly). A convolution bias before a train-mode BatchNorm has a zero
 * gradient in exact arithmetic: such inert tensors (and the running mean after them) are compared absolutely.
 */
async function checkRun(fx: TrainingFixture<DnCNNFixtureConfig>, run: StepRunner): Promise<void> {
  const largest = Math.max(...Object.values(fx.grads_step1).map((g) => norm(g.data)));
  const inert = new Set(Object.keys(fx.grads_step1).filter((k) => norm(fx.grads_step1[k].data) < 1e-5 * largest));
  for (const k of [...inert]) {
    const i = /^model\.(\d+)\.bias$/.exec(k)?.[1];
    if (i !== undefined) inert.add(`model.${Number(i) + 1}.running_mean`);
  }
  for (let s = 1; s <= fx.losses.length; s++) {
    const { loss, output } = await run.step();
    expect(Math.abs(loss - fx.losses[s - 1]) / Math.abs(fx.losses[s - 1]), `loss of step ${s}`).toBeLessThanOrEqual(s === 1 ? 1e-5 : 1e-4);
    if (s === 1) {
      expect(relL2(output, fx.output_step1.data), 'output of step 1').toBeLessThanOrEqual(1e-5);
      const grads = await run.gradients();
      expect([...grads.keys()].sort()).toEqual(Object.keys(fx.grads_step1).sort());
      for (const [name, ref] of Object.entries(fx.grads_step1)) {
        const g = grads.get(name)!;
        if (inert.has(name)) expect(norm(g), `gradient of ${name} (zero in exact arithmetic)`).toBeLessThanOrEqual(1e-5 * largest);
        else expect(relL2(g, ref.data), `gradient of ${name}`).toBeLessThanOrEqual(1e-4);
      }
    }
    const expected = fx.after[String(s)];
    if (!expected) continue;
    const state = await run.stateDict();
    expect([...state.keys()].sort()).toEqual(Object.keys(expected).sort());
    for (const [name, t] of state) {
      const ref = expected[name];
      if (t.dtype === 'int64') expect([...t.data], `${name} after ${s}`).toEqual(Array.from(ref.data));
      else if (inert.has(name) && fx.optimizer.kind !== 'sgd') {
        const drift = Math.max(...Array.from(t.data, (v, i) => Math.abs(v - ref.data[i])));
        expect(drift, `${name} after ${s} step(s)`).toBeLessThanOrEqual(2 * fx.optimizer.lr * s);
      } else expect(relL2(t.data, ref.data), `${name} after ${s} step(s)`).toBeLessThanOrEqual(1e-4);
    }
  }
}

async function trainerRunner(
  ctx: GPUContext,
  model: DnCNN,
  fx: TrainingFixture,
  options: { batchNorm?: 'train' | 'frozen'; frozen?: (name: string) => boolean },
) {
  const [n, c, h, w] = fx.input.shape;
  const trainer = await Trainer.create(ctx, model, {
    batchShape: [n, c, h, w],
    loss: { kind: 'mse' },
    optimizer: optimizerOf(fx.optimizer),
    returnOutput: true,
    ...options,
  });
  const batch = { input: fx.input.data, target: fx.target.data };
  const runner: StepRunner = {
    step: async () => {
      const r = await trainer.step(batch);
      return { loss: r.loss, output: r.output! };
    },
    gradients: () => trainer.gradients(),
    stateDict: () => trainer.stateDict(),
  };
  return { runner, dispose: () => trainer.dispose() };
}

describe('BatchNorm2d modes in training equal PyTorch 1.13', () => {
  it("'frozen' (every BatchNorm in eval mode while the rest trains), Adam", async () => {
    const fx = await readTrainingFixture<DnCNNFixtureConfig>(`${FIXTURES}/dncnn-br-frozenbn-adam`);
    expect(fx.config.batch_norm).toBe('frozen');
    const ctx = await getTestContext();
    const { runner, dispose } = await trainerRunner(ctx, dncnnOf(fx), fx, { batchNorm: 'frozen' });
    try {
      await checkRun(fx, runner);
    } finally {
      dispose();
    }
  }, 120_000);

  it('momentum=None (cumulative moving average), SGD', async () => {
    const fx = await readTrainingFixture<DnCNNFixtureConfig>(`${FIXTURES}/dncnn-br-bn-momentum-none-sgd`);
    expect(fx.config.bn_momentum).toBeNull();
    const ctx = await getTestContext();
    const model = dncnnOf(fx);
    const bns = namedModules(model).filter(([, m]) => m instanceof BatchNorm2d);
    expect(bns).toHaveLength(fx.config.nb - 2);
    // As PyTorch's `bn.momentum = None` on a built model.
    for (const [, bn] of bns) (bn as BatchNorm2d).momentum = null;
    const { runner, dispose } = await trainerRunner(ctx, model, fx, {});
    try {
      await checkRun(fx, runner);
    } finally {
      dispose();
    }
  }, 120_000);

  it("'train' with γ and β fixed: batch statistics, running statistics updated, the gradient flows on to x", async () => {
    // Fixing γ and β changes neither the forward nor any other gradient of the first step, and SGD updates every
    // parameter from its own gradient: the first step of dncnn-br-mse-sgd applies, with γ and β kept.
    const fx = await readTrainingFixture<DnCNNFixtureConfig>(`${FIXTURES}/dncnn-br-mse-sgd`);
    const ctx = await getTestContext();
    const model = dncnnOf(fx);
    const affine = new Set(
      namedModules(model)
        .filter(([, m]) => m instanceof BatchNorm2d)
        .flatMap(([name]) => [`${name}.weight`, `${name}.bias`]),
    );
    expect(affine.size).toBe(2 * (fx.config.nb - 2));
    const { runner, dispose } = await trainerRunner(ctx, model, fx, { frozen: (name) => affine.has(name) });
    try {
      const { loss, output } = await runner.step();
      expect(Math.abs(loss - fx.losses[0]) / fx.losses[0], 'loss').toBeLessThanOrEqual(1e-5);
      expect(relL2(output, fx.output_step1.data), 'output').toBeLessThanOrEqual(1e-5);
      const grads = await runner.gradients();
      const learning = Object.keys(fx.grads_step1).filter((k) => !affine.has(k));
      expect([...grads.keys()].sort()).toEqual(learning.sort());
      const largest = Math.max(...learning.map((k) => norm(fx.grads_step1[k].data)));
      for (const name of learning) {
        const ref = fx.grads_step1[name].data;
        // A conv bias before a BatchNorm: zero in exact arithmetic, f32 noise on both sides.
        if (norm(ref) < 1e-5 * largest) expect(norm(grads.get(name)!), name).toBeLessThanOrEqual(1e-5 * largest);
        else expect(relL2(grads.get(name)!, ref), `gradient of ${name}`).toBeLessThanOrEqual(1e-4);
      }
      const state = await runner.stateDict();
      for (const [name, t] of state) {
        const ref = affine.has(name) ? fx.initial[name] : fx.after['1'][name];
        if (t.dtype === 'int64') expect([...t.data], name).toEqual(Array.from(ref.data));
        else expect(relL2(t.data, ref.data), `${name} after 1 step`).toBeLessThanOrEqual(affine.has(name) ? 0 : 1e-4);
      }
    } finally {
      dispose();
    }
  }, 120_000);

  it('BatchNorm2d takes a finite momentum or null, as PyTorch a float or None', () => {
    expect(new BatchNorm2d(4, 1e-4, null).momentum).toBeNull();
    expect(() => new BatchNorm2d(4, 1e-4, Number.NaN)).toThrow(/BatchNorm2d momentum must be a finite number or null/);
    expect(() => new BatchNorm2d(4, 1e-4, undefined as unknown as number).momentum).not.toThrow();
  });
});
