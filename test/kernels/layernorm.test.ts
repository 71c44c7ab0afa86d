import { describe, expect, it } from 'vitest';
import { BufferUsage } from '../../src/gpu/flags';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, type Shape4 } from '../../src/gpu/tensor';
import { layerNorm, packLayerNormParams } from '../../src/kernels/layernorm';
import { readFixtureJson } from '../helpers/fixture-loader';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';
import { layerNormRef, toF32 } from '../helpers/reference-norm';

/** Runs the kernel on NCHW `x`; returns NCHW output after checking padded channels are exactly 0. */
async function runLayerNorm(
  x: ArrayLike<number>,
  shape: Shape4,
  weight: ArrayLike<number> | undefined,
  bias: ArrayLike<number> | undefined,
  eps?: number,
): Promise<Float32Array> {
  const ctx = await getTestContext();
  const c = shape[3];
  const g = new Graph();
  const input = g.input(shape);
  const params = ctx.createBufferWithData(packLayerNormParams(weight, bias, c), BufferUsage.STORAGE, 'ln params');
  const y = layerNorm(g, input, { params, eps, label: 'ln' });
  g.output(y);
  const plan = await Plan.compile(ctx, g);
  plan.poison();
  const { outputs } = await plan.run([nchwToNhwcPadded(x, shape)]);
  plan.dispose();
  params.destroy();
  expect(y.shape).toEqual(shape);
  const cp = Math.ceil(c / 4) * 4;
  outputs[0].forEach((v, i) => {
    if (i % cp >= c && v !== 0) throw new Error(`padded channel ${i % cp} holds ${v}`);
  });
  return nhwcPaddedToNchw(outputs[0], shape);
}

/** The naive single-pass formula in f32, to show the large-mean case really needs the careful one. */
function naiveLayerNormF32(x: ArrayLike<number>, shape: readonly [number, number, number, number], eps: number): Float32Array {
  const [n, c, h, w] = shape;
  const plane = h * w;
  const f = Math.fround;
  const y = new Float32Array(n * c * plane);
  for (let b = 0; b < n; b++) {
    for (let p = 0; p < plane; p++) {
      let s = 0;
      let s2 = 0;
      for (let ch = 0; ch < c; ch++) {
        const v = f(x[(b * c + ch) * plane + p]);
        s = f(s + v);
        s2 = f(s2 + f(v * v));
      }
      const mean = f(s / c);
      const variance = Math.max(0, f(f(s2 / c) - f(mean * mean)));
      const r = f(1 / Math.sqrt(variance + eps));
      for (let ch = 0; ch < c; ch++) {
        const i = (b * c + ch) * plane + p;
        y[i] = f(f(x[i] - mean) * r);
      }
    }
  }
  return y;
}

describe('layerNorm (channels-last) against a float64 reference', () => {
  const cases: Array<[string, Shape4, number]> = [
    ['1x1 C1', [1, 1, 1, 1], 0],
    ['C1 7x5', [1, 7, 5, 1], 0],
    ['C3 5x9', [1, 5, 9, 3], 0],
    ['C5 batch 2', [2, 3, 7, 5], 0],
    ['C6', [1, 4, 3, 6], 0],
    ['C13', [1, 3, 3, 13], 0],
    ['C64 9x7', [1, 9, 7, 64], 0],
    ['C96 batch 2', [2, 5, 3, 96], 0],
    ['C128', [1, 4, 5, 128], 0],
    ['C3 mean 1000', [1, 5, 6, 3], 1000],
    ['C5 mean 1000', [2, 4, 3, 5], 1000],
    ['C64 mean 1000', [1, 6, 5, 64], 1000],
    ['C96 mean 1000', [1, 5, 5, 96], 1000],
    ['C128 mean -1000', [1, 3, 7, 128], -1000],
  ];
  cases.forEach(([name, shape, offset], i) => {
    it(name, async () => {
      const [n, h, w, c] = shape;
      const x = toF32(randomArray(n * c * h * w, 300 + i).map((v) => offset + v));
      const weight = toF32(randomArray(c, 400 + i, 1.5));
      const bias = toF32(randomArray(c, 500 + i, 0.5));
      const ref = layerNormRef(x, [n, c, h, w], weight, bias, 1e-5);
      const out = await runLayerNorm(x, shape, weight, bias);
      expect(relL2(out, ref)).toBeLessThanOrEqual(1e-5);
      if (offset !== 0 && c >= 5) {
        // The naive E[x²] − E[x]² formula is far off on these inputs (so the test above means something).
        const plain = layerNormRef(x, [n, c, h, w], undefined, undefined, 1e-5);
        expect(relL2(naiveLayerNormF32(x, [n, c, h, w], 1e-5), plain)).toBeGreaterThan(1e-3);
      }
    });
  });

  it('custom eps and no affine (weight 1, bias 0); a constant pixel gives 0', async () => {
    const shape: Shape4 = [1, 3, 4, 7];
    const x = toF32(randomArray(3 * 4 * 7, 77, 0.01));
    for (let i = 0; i < 7; i++) x[i * 12] = 5; // pixel (0,0) is constant across channels
    const ref = layerNormRef(x, [1, 7, 3, 4], undefined, undefined, 1e-3);
    const out = await runLayerNorm(x, shape, undefined, undefined, 1e-3);
    expect(relL2(out, ref)).toBeLessThanOrEqual(1e-5);
    for (let i = 0; i < 7; i++) expect(out[i * 12]).toBe(0);
  });

  for (const name of ['layernorm_c5', 'layernorm_c96_offset1000']) {
    it(`matches PyTorch nn.LayerNorm fixture ${name}`, async () => {
      const f = await readFixtureJson(`test/fixtures/norm/${name}.json`);
      const [n, c, h, w] = f.inputShape as number[];
      const out = await runLayerNorm(f.input, [n, h, w, c], f.params.weight, f.params.bias, f.eps);
      expect(relL2(out, f.output)).toBeLessThanOrEqual(1e-5);
    });
  }

  it('rejects bad parameters', async () => {
    const ctx = await getTestContext();
    expect(() => packLayerNormParams([1, 2], [0, 0, 0], 3)).toThrow(/weight has 2 values, expected 3/);
    expect(() => packLayerNormParams(undefined, [0, 0], 3)).toThrow(/bias has 2 values, expected 3/);
    const g = new Graph();
    const input = g.input([1, 2, 2, 8]);
    const small = ctx.createBufferWithData(packLayerNormParams(undefined, undefined, 4), BufferUsage.STORAGE, 'small');
    expect(() => layerNorm(g, input, { params: small, label: 'ln' })).toThrow(
      /ln: LayerNorm params buffer holds 32 bytes, expected 64 for 8 channels/,
    );
    expect(() => layerNorm(g, input, { params: small, eps: -1, label: 'ln' })).toThrow(/eps/);
    small.destroy();
  });
});
