import { describe, expect, it } from 'vitest';
import { TrainingDivergedError } from '../../src/errors';
import { DnCNN } from '../../src/models/dncnn';
import { RRDBNet } from '../../src/models/rrdbnet';
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
    const model = new RRDBNet({ inChannels: 1, outChannels: 1, numFeat: 8, numGrowCh: 4, numBlock: 1, scale: 4 });
    initializeParameters(model, 1);
    await expect(
      Trainer.create(ctx, model, { batchShape: [1, 1, 8, 8], loss: { kind: 'mse' }, optimizer: { kind: 'adam' } }),
    ).rejects.toThrow(/RRDBNet cannot be trained yet: RRDBNet, .*ResidualDenseBlock.* have no backward pass/);
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
