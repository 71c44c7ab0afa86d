import { describe, expect, it } from 'vitest';
import { BufferUsage } from '../../src/gpu/flags';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, type Shape4 } from '../../src/gpu/tensor';
import type { Activation } from '../../src/kernels/activation';
import { batchNorm, foldBatchNormToAffine, packAffineChannels } from '../../src/kernels/batchnorm';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';
import { batchNormRef, toF32 } from '../helpers/reference-norm';

describe('batchNorm (eval, standalone) against a float64 reference', () => {
  const cases: Array<[Shape4, number, Activation]> = [
    [[1, 1, 1, 1], 1e-4, { kind: 'none' }],
    [[1, 7, 5, 3], 1e-5, { kind: 'relu' }],
    [[2, 5, 9, 5], 1e-4, { kind: 'none' }],
    [[1, 4, 3, 6], 1e-5, { kind: 'sigmoid' }],
    [[2, 3, 3, 13], 1e-4, { kind: 'leakyRelu', alpha: 0.2 }],
    [[1, 6, 7, 64], 1e-5, { kind: 'relu' }],
    [[1, 3, 5, 8], 1e-4, { kind: 'sigmoid' }],
  ];
  cases.forEach(([shape, eps, act], i) => {
    it(`${shape.join('x')} eps ${eps} ${act.kind}`, async () => {
      const ctx = await getTestContext();
      const [n, h, w, c] = shape;
      const x = toF32(randomArray(n * c * h * w, 600 + i, 2));
      const gamma = randomArray(c, 610 + i, 1.5);
      const beta = randomArray(c, 620 + i, 0.5);
      const mean = randomArray(c, 630 + i, 0.8);
      // Small variances so eps matters: σ² in [0, 2e-4].
      const variance = randomArray(c, 640 + i, 1e-4).map((v) => v + 1e-4);
      const ref = batchNormRef(x, [n, c, h, w], gamma, beta, mean, variance, eps, act);
      const affine = ctx.createBufferWithData(
        packAffineChannels(foldBatchNormToAffine(gamma, beta, mean, variance, eps)),
        BufferUsage.STORAGE,
        'bn affine',
      );
      const g = new Graph();
      const input = g.input(shape);
      const y = batchNorm(g, input, { affine, activation: act, label: 'bn' });
      g.output(y);
      const plan = await Plan.compile(ctx, g);
      plan.poison();
      const { outputs } = await plan.run([nchwToNhwcPadded(x, shape)]);
      plan.dispose();
      affine.destroy();
      const cp = Math.ceil(c / 4) * 4;
      outputs[0].forEach((v, k) => {
        if (k % cp >= c && v !== 0) throw new Error(`padded channel ${k % cp} holds ${v}`);
      });
      expect(relL2(nhwcPaddedToNchw(outputs[0], shape), ref)).toBeLessThanOrEqual(1e-5);
    });
  });

  it('folds in float64, and the eps value matters', () => {
    const a = foldBatchNormToAffine([2], [1], [0.5], [1e-4], 1e-4);
    expect(a.scale[0]).toBeCloseTo(2 / Math.sqrt(2e-4), 12);
    expect(a.shift[0]).toBeCloseTo(1 - 0.5 * (2 / Math.sqrt(2e-4)), 10);
    const b = foldBatchNormToAffine([2], [1], [0.5], [1e-4], 1e-5);
    expect(Math.abs(b.scale[0] - a.scale[0]) / a.scale[0]).toBeGreaterThan(0.3);
    const noAffine = foldBatchNormToAffine(undefined, undefined, [1], [3], 1);
    expect(noAffine.scale[0]).toBe(0.5);
    expect(noAffine.shift[0]).toBe(-0.5);
  });

  it('rejects bad parameters', async () => {
    expect(() => foldBatchNormToAffine([1, 1], [0, 0], [0, 0], [1], 1e-5)).toThrow(/running_var has 1 values, running_mean has 2/);
    expect(() => foldBatchNormToAffine([1], [0, 0], [0], [1], 1e-5)).toThrow(/bias has 2 values, expected 1/);
    expect(() => foldBatchNormToAffine([1], [0], [0], [-1], 1e-5)).toThrow(/channel 0: running_var \+ eps/);
    const ctx = await getTestContext();
    const g = new Graph();
    const input = g.input([1, 2, 2, 5]);
    const small = ctx.createBufferWithData(new Float32Array(8), BufferUsage.STORAGE, 'small');
    expect(() => batchNorm(g, input, { affine: small, label: 'bn1' })).toThrow(
      /bn1: affine buffer holds 32 bytes, expected 64 for 5 channels/,
    );
    small.destroy();
  });
});
