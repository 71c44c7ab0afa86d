import { describe, expect, it } from 'vitest';
import { writeBuffer } from '../../src/gpu/context';
import { BufferUsage } from '../../src/gpu/flags';
import { Graph } from '../../src/gpu/graph';
import { ParameterArena } from '../../src/gpu/parameter-arena';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, type Shape4 } from '../../src/gpu/tensor';
import { layerNormBackward } from '../../src/kernels/layernorm-backward';
import { getTestContext, readWhole } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';
import { layerNormRef, toF32 } from '../helpers/reference-norm';

type Nchw = readonly [number, number, number, number];

/**
 * Float64 backward of channels-last nn.LayerNorm(C) (docs/training.md §1.5), NCHW data: per pixel x̂ = (x − μ)·r,
 * ĝ = g·γ, dx = r·(ĝ − mean_C ĝ − x̂·mean_C(ĝ·x̂)); dγ = Σ_pixels g·x̂, dβ = Σ_pixels g.
 */
function layerNormBackwardRef(
  gy: ArrayLike<number>,
  x: ArrayLike<number>,
  shape: Nchw,
  gamma: ArrayLike<number>,
  eps: number,
): { dx: Float64Array; dWeight: Float64Array; dBias: Float64Array } {
  const [n, c, h, w] = shape;
  const plane = h * w;
  const dx = new Float64Array(x.length);
  const dWeight = new Float64Array(c);
  const dBias = new Float64Array(c);
  const at = (b: number, ch: number, p: number) => (b * c + ch) * plane + p;
  for (let b = 0; b < n; b++) {
    for (let p = 0; p < plane; p++) {
      let mean = 0;
      for (let ch = 0; ch < c; ch++) mean += x[at(b, ch, p)];
      mean /= c;
      let v = 0;
      for (let ch = 0; ch < c; ch++) v += (x[at(b, ch, p)] - mean) ** 2;
      const r = 1 / Math.sqrt(v / c + eps);
      let mg = 0;
      let mgx = 0;
      for (let ch = 0; ch < c; ch++) {
        const i = at(b, ch, p);
        const xh = (x[i] - mean) * r;
        mg += gy[i] * gamma[ch];
        mgx += gy[i] * gamma[ch] * xh;
        dWeight[ch] += gy[i] * xh;
        dBias[ch] += gy[i];
      }
      mg /= c;
      mgx /= c;
      for (let ch = 0; ch < c; ch++) {
        const i = at(b, ch, p);
        dx[i] = r * (gy[i] * gamma[ch] - mg - (x[i] - mean) * r * mgx);
      }
    }
  }
  return { dx, dWeight, dBias };
}

function centralDifferences(v: Float64Array, loss: () => number): Float64Array {
  const out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const keep = v[i];
    const h = 1e-6 * Math.max(1, Math.abs(keep));
    v[i] = keep + h;
    const up = loss();
    v[i] = keep - h;
    const down = loss();
    v[i] = keep;
    out[i] = (up - down) / (2 * h);
  }
  return out;
}

describe('float64 LayerNorm backward reference', () => {
  it('matches central differences of the forward', () => {
    const shape: Nchw = [2, 5, 3, 2];
    const count = 60;
    const x = randomArray(count, 1, 2);
    const gamma = randomArray(5, 2, 1.5);
    const beta = randomArray(5, 3, 0.5);
    const gy = randomArray(count, 4);
    const loss = () => {
      const y = layerNormRef(x, shape, gamma, beta, 1e-5);
      let s = 0;
      for (let i = 0; i < count; i++) s += gy[i] * y[i];
      return s;
    };
    const ref = layerNormBackwardRef(gy, x, shape, gamma, 1e-5);
    expect(relL2(ref.dx, centralDifferences(x, loss))).toBeLessThan(1e-6);
    expect(relL2(ref.dWeight, centralDifferences(gamma, loss))).toBeLessThan(1e-6);
    expect(relL2(ref.dBias, centralDifferences(beta, loss))).toBeLessThan(1e-6);
  });
});

const ceil4 = (v: number) => Math.ceil(v / 4) * 4;

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return ua.length === ub.length && ua.every((v, i) => v === ub[i]);
}

const CASES: Array<[string, Shape4, number]> = [
  ['2x5x7x3', [2, 5, 7, 3], 0],
  ['1x9x6x13', [1, 9, 6, 13], 0],
  ['4x16x16x8', [4, 16, 16, 8], 0],
  ['1x6x5x64 (SCUNet width)', [1, 6, 5, 64], 0],
  ['2x3x4x96 around 1000', [2, 3, 4, 96], 1000],
  ['1x5x6x5 around -1000', [1, 5, 6, 5], -1000],
  // 4608 pixels: 144 chunks, so every thread of the reduce adds several partials.
  ['2x48x48x5 many chunks', [2, 48, 48, 5], 0],
];

describe('layerNormBackward against the float64 reference', () => {
  CASES.forEach(([name, shape, offset], caseIndex) => {
    it(name, async () => {
      const ctx = await getTestContext();
      const [n, h, w, c] = shape;
      const nchw: Nchw = [n, c, h, w];
      const count = n * c * h * w;
      const seed = 500 + 10 * caseIndex;
      const x = toF32(randomArray(count, seed, 2).map((v) => v + offset));
      const gyData = toF32(randomArray(count, seed + 1));
      const gamma = toF32(randomArray(c, seed + 2, 1.5));
      const ref = layerNormBackwardRef(gyData, x, nchw, gamma, 1e-5);

      const keys = { weight: {}, bias: {} };
      const arena = new ParameterArena(
        ctx,
        [
          { key: keys.weight, numel: c, label: 'weight' },
          { key: keys.bias, numel: c, label: 'bias' },
        ],
        'ln params',
      );
      arena.write(keys.weight, 'value', gamma);
      const g = new Graph();
      const xIn = g.input(shape, 'x');
      const gy = g.input(shape, 'gy');
      const dx = layerNormBackward(g, gy, xIn, {
        weight: arena.range(keys.weight, 'value'),
        dWeight: arena.range(keys.weight, 'grad'),
        dBias: arena.range(keys.bias, 'grad'),
        eps: 1e-5,
        label: 'ln backward',
      });
      expect(dx.shape).toEqual(shape);
      g.output(dx);
      const plan = await Plan.compile(ctx, g);
      const run = async () => {
        plan.poison();
        writeBuffer(ctx.device, arena.buffer('grad'), 0, new Float32Array(arena.elements).fill(Number.NaN));
        const { outputs } = await plan.run([nchwToNhwcPadded(x, shape), nchwToNhwcPadded(gyData, shape)]);
        return { dx: outputs[0], grads: await readWhole(ctx, arena.buffer('grad')) };
      };
      const first = await run();
      const cp = ceil4(c);
      first.dx.forEach((v, i) => {
        if (i % cp >= c && v !== 0) throw new Error(`dx padded channel ${i % cp} holds ${v}`);
      });
      expect(relL2(nhwcPaddedToNchw(first.dx, shape), ref.dx), 'dx').toBeLessThanOrEqual(1e-5);
      for (const [key, expected, what] of [
        [keys.weight, ref.dWeight, 'dWeight'],
        [keys.bias, ref.dBias, 'dBias'],
      ] as const) {
        const { offset: at } = arena.entry(key);
        expect(relL2(first.grads.slice(at, at + c), expected), what).toBeLessThanOrEqual(1e-4);
        for (let i = c; i < cp; i++) expect(first.grads[at + i], `${what} padded lane ${i}`).toBe(0);
        // Entries start on 256-byte (64-float) boundaries: the gap after this one, if any, is left alone.
        if (cp % 64 !== 0) expect(first.grads[at + cp], `${what}: past its range`).toBeNaN();
      }
      const again = await run();
      expect(sameBits(again.dx, first.dx)).toBe(true);
      expect(sameBits(again.grads, first.grads)).toBe(true);
      plan.dispose();
      arena.dispose();
    });
  });

  it('takes plain STORAGE buffers as parameter bindings', async () => {
    const ctx = await getTestContext();
    const shape: Shape4 = [1, 4, 3, 6];
    const nchw: Nchw = [1, 6, 4, 3];
    const x = toF32(randomArray(72, 91, 2));
    const gyData = toF32(randomArray(72, 92));
    const gamma = toF32(randomArray(6, 93, 1.5));
    const ref = layerNormBackwardRef(gyData, x, nchw, gamma, 1e-3);
    const usage = BufferUsage.STORAGE | BufferUsage.COPY_SRC;
    const weight = ctx.createBufferWithData(Float32Array.from([...gamma, 0, 0]), usage, 'w');
    const dWeight = ctx.createBufferWithData(new Float32Array(8).fill(Number.NaN), usage, 'dw');
    const dBias = ctx.createBufferWithData(new Float32Array(8).fill(Number.NaN), usage, 'db');
    const g = new Graph();
    const xIn = g.input(shape);
    const gy = g.input(shape);
    g.output(layerNormBackward(g, gy, xIn, { weight, dWeight, dBias, eps: 1e-3, label: 'ln' }));
    const plan = await Plan.compile(ctx, g);
    plan.poison();
    const { outputs } = await plan.run([nchwToNhwcPadded(x, shape), nchwToNhwcPadded(gyData, shape)]);
    expect(relL2(nhwcPaddedToNchw(outputs[0], shape), ref.dx)).toBeLessThanOrEqual(1e-5);
    const dw = await readWhole(ctx, dWeight);
    const db = await readWhole(ctx, dBias);
    expect(relL2(dw.slice(0, 6), ref.dWeight)).toBeLessThanOrEqual(1e-4);
    expect(relL2(db.slice(0, 6), ref.dBias)).toBeLessThanOrEqual(1e-4);
    expect([dw[6], dw[7], db[6], db[7]]).toEqual([0, 0, 0, 0]);
    plan.dispose();
    for (const b of [weight, dWeight, dBias]) b.destroy();
  });

  it('names bad shapes, bindings and eps', async () => {
    const ctx = await getTestContext();
    const full = ctx.createBufferWithData(new Float32Array(8), BufferUsage.STORAGE, 'full');
    const small = ctx.createBufferWithData(new Float32Array(4), BufferUsage.STORAGE, 'small');
    const g = new Graph();
    const x = g.input([1, 3, 3, 6]);
    const p = { weight: full, dWeight: full, dBias: full, eps: 1e-5, label: 'ln' };
    expect(() => layerNormBackward(g, g.input([1, 3, 3, 5]), x, p)).toThrow(
      /ln: the gradient gy is \[1, 3, 3, 5\], expected \[1, 3, 3, 6\]/,
    );
    const gy = g.input([1, 3, 3, 6]);
    expect(() => layerNormBackward(g, gy, x, { ...p, weight: small })).toThrow(/ln: weight spans 16 bytes, expected 32 for 6 channels/);
    expect(() => layerNormBackward(g, gy, x, { ...p, dBias: small })).toThrow(/ln: dBias spans 16 bytes/);
    expect(() => layerNormBackward(g, gy, x, { ...p, eps: -1 })).toThrow(/ln: LayerNorm eps/);
    full.destroy();
    small.destroy();
  });
});
