import { describe, expect, it } from 'vitest';
import { TrainingDivergedError } from '../../src/errors';
import { DnCNN } from '../../src/models/dncnn';
import type { TensorValue } from '../../src/gpu/graph';
import { Conv2d } from '../../src/layers/conv2d';
import type { ForwardBuilder } from '../../src/layers/forward-builder';
import { Module } from '../../src/layers/module';
import type { Network } from '../../src/models/network';
import { initializeParameters } from '../../src/training/init';
import { Trainer } from '../../src/training/trainer';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';

/*
 * The trainer's own behaviour (PyTorch parity is dncnn-parity.test.ts): it learns, runs are bitwise
 * reproducible, and bad input stops with an error that names the problem.
 */
const SHAPE = [2, 1, 12, 10] as const;
const N = 2 * 12 * 10;

function smallDnCNN(actMode: 'R' | 'BR', seed = 1): DnCNN {
  const model = new DnCNN({ inChannels: 1, outChannels: 1, nc: 8, nb: 4, actMode });
  initializeParameters(model, seed);
  return model;
}

function batch(): { input: Float64Array; target: Float64Array } {
  const target = randomArray(N, 5, 0.5).map((v) => v + 0.5);
  const noise = randomArray(N, 6, 0.1);
  return { input: target.map((v, i) => v + noise[i]), target };
}

/** A layer with no backward pass (it does not say it supports training). */
class Mystery extends Module {
  forward(_b: ForwardBuilder, x: TensorValue): TensorValue {
    return x;
  }
}

/** A network that trains but for its Mystery layer. */
class HalfTrainable extends Module implements Network {
  readonly architecture: string = 'HalfTrainable';
  readonly inChannels = 1;
  readonly outChannels = 1;
  readonly scale = 1;
  readonly conv = new Conv2d(1, 1, 3, { padding: 1 });
  readonly mystery = new Mystery();

  override get supportsTraining(): boolean {
    return true;
  }

  override children(): [string, Module][] {
    return [
      ['conv', this.conv],
      ['mystery', this.mystery],
    ];
  }

  forward(b: ForwardBuilder, x: TensorValue): TensorValue {
    return this.mystery.forward(b, this.conv.forward(b, x));
  }
}

/** A network with a layer its forward never uses (smp's last decoder block has such an attention). */
class WithSpare extends HalfTrainable {
  override readonly architecture = 'WithSpare';
  readonly spare = new Conv2d(1, 1, 3, { padding: 1 });

  override children(): [string, Module][] {
    return [
      ['conv', this.conv],
      ['spare', this.spare],
    ];
  }

  override forward(b: ForwardBuilder, x: TensorValue): TensorValue {
    return this.conv.forward(b, x);
  }
}

describe('Trainer', () => {
  for (const actMode of ['R', 'BR'] as const) {
    it(`lowers the loss of a fixed batch (DnCNN ${actMode}, Adam)`, async () => {
      const ctx = await getTestContext();
      const trainer = await Trainer.create(ctx, smallDnCNN(actMode), {
        batchShape: SHAPE,
        loss: { kind: 'mse' },
        optimizer: { kind: 'adam', lr: 1e-3 },
      });
      try {
        const b = batch();
        const first = await trainer.step(b);
        let last = first;
        for (let s = 0; s < 15; s++) last = await trainer.step(b);
        expect(first.step).toBe(1);
        expect(last.step).toBe(16);
        expect(last.loss).toBeLessThan(first.loss * 0.9);
      } finally {
        trainer.dispose();
      }
    });
  }

  it('gives bitwise-identical weights for the same start, batch and steps', async () => {
    const ctx = await getTestContext();
    const run = async () => {
      const trainer = await Trainer.create(ctx, smallDnCNN('BR', 3), {
        batchShape: SHAPE,
        loss: { kind: 'l1' },
        optimizer: { kind: 'adamw' },
        clipGradNorm: 0.5,
      });
      try {
        for (let s = 0; s < 3; s++) await trainer.step(batch());
        return await trainer.stateDict();
      } finally {
        trainer.dispose();
      }
    };
    const a = await run();
    const b = await run();
    for (const [k, t] of a) expect([...b.get(k)!.data], k).toEqual([...t.data]);
  });

  it('trains with the weighted-mask MSE, which with an empty mask is the MSE, and needs a mask with every batch', async () => {
    const ctx = await getTestContext();
    const run = async (loss: 'mse' | 'masked-mse') => {
      const trainer = await Trainer.create(ctx, smallDnCNN('R', 4), {
        batchShape: SHAPE,
        loss: loss === 'mse' ? { kind: 'mse' } : { kind: 'masked-mse', lambda: 3 },
        optimizer: { kind: 'sgd', lr: 0.05 },
      });
      try {
        if (loss === 'masked-mse') await expect(trainer.step(batch())).rejects.toThrow(/needs batch.mask/);
        const losses = [];
        for (let s = 0; s < 3; s++) losses.push((await trainer.step({ ...batch(), mask: new Float32Array(N) })).loss);
        return { losses, state: await trainer.stateDict() };
      } finally {
        trainer.dispose();
      }
    };
    const mse = await run('mse');
    const masked = await run('masked-mse');
    for (let s = 0; s < 3; s++) expect(Math.abs(masked.losses[s] - mse.losses[s]) / mse.losses[s]).toBeLessThanOrEqual(1e-5);
    for (const [k, t] of mse.state)
      expect(relL2(masked.state.get(k)!.data as Float32Array, t.data as Float32Array), k).toBeLessThanOrEqual(1e-5);
  });

  it('stops with TrainingDivergedError naming the step when the loss is not finite, keeping the last good state', async () => {
    const ctx = await getTestContext();
    const trainer = await Trainer.create(ctx, smallDnCNN('BR'), { batchShape: SHAPE, loss: { kind: 'mse' }, optimizer: { kind: 'adam' } });
    try {
      await trainer.step(batch());
      const good = await trainer.stateDict();
      const bad = batch();
      bad.input[7] = Number.NaN;
      const e = await trainer.step(bad).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(TrainingDivergedError);
      expect((e as Error).message).toMatch(/step 2/);
      expect(trainer.steps).toBe(1);
      // Weights, Adam's moments' effect and the BatchNorm statistics are those of step 1, bit for bit.
      for (const [k, t] of await trainer.stateDict()) expect([...t.data], k).toEqual([...good.get(k)!.data]);
      const next = await trainer.step(batch());
      expect(next.step).toBe(2);
      expect(Number.isFinite(next.loss)).toBe(true);
    } finally {
      trainer.dispose();
    }
  });

  it('says a batch the device cannot hold is too large, suggesting a smaller batch or patch', async () => {
    const ctx = await getTestContext();
    const side = 1 << 15;
    await expect(
      Trainer.create(ctx, smallDnCNN('R'), { batchShape: [4, 1, side, side], loss: { kind: 'mse' }, optimizer: { kind: 'adam' } }),
    ).rejects.toThrow(new RegExp(`training batch of 4 × ${side}×${side} is too large for this device: use a smaller batch or patch`));
  });

  it('refuses networks whose layers have no backward pass, naming the layer', async () => {
    const ctx = await getTestContext();
    const model = new HalfTrainable();
    initializeParameters(model, 1);
    await expect(
      Trainer.create(ctx, model, { batchShape: [1, 1, 8, 8], loss: { kind: 'mse' }, optimizer: { kind: 'adam' } }),
    ).rejects.toThrow(/HalfTrainable cannot be trained yet: Mystery has no backward pass/);
  });

  it('leaves a parameter that gets no gradient alone, as PyTorch skips a .grad of None (no weight decay, no state)', async () => {
    const ctx = await getTestContext();
    const model = new WithSpare();
    initializeParameters(model, 3);
    const spare = Float32Array.from(model.spare.weight.data!);
    const trainer = await Trainer.create(ctx, model, {
      batchShape: [2, 1, 12, 10],
      loss: { kind: 'mse' },
      optimizer: { kind: 'adamw', lr: 0.1, weightDecay: 0.5 },
    });
    try {
      await trainer.step(batch());
      const state = await trainer.stateDict();
      expect(state.get('spare.weight')!.data).toEqual(spare);
      expect(relL2(state.get('conv.weight')!.data as Float32Array, model.conv.weight.data!)).toBeGreaterThan(1e-3);
      const grads = await trainer.gradients();
      expect([...grads.keys()].sort()).toEqual(['conv.bias', 'conv.weight']);
      expect([...(await trainer.optimizerState()).tensors.keys()].some((k) => k.includes('spare'))).toBe(false);
    } finally {
      trainer.dispose();
    }
  });

  it('refuses a batch with the wrong channel count and bad options', async () => {
    const ctx = await getTestContext();
    await expect(
      Trainer.create(ctx, smallDnCNN('R'), { batchShape: [1, 3, 8, 8], loss: { kind: 'mse' }, optimizer: { kind: 'adam' } }),
    ).rejects.toThrow(/takes 1 channel\(s\), the batch has 3/);
    await expect(
      Trainer.create(ctx, smallDnCNN('R'), {
        batchShape: [1, 1, 8, 8],
        loss: { kind: 'mse' },
        optimizer: { kind: 'adam' },
        clipGradNorm: -1,
      }),
    ).rejects.toThrow(/clipGradNorm/);
    await expect(
      Trainer.create(ctx, smallDnCNN('R'), { batchShape: [1, 1, 8, 8], loss: { kind: 'huber' as 'mse' }, optimizer: { kind: 'adam' } }),
    ).rejects.toThrow(/unknown loss 'huber'/);
  });
});
