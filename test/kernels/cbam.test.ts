import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { BufferUsage } from '../../src/gpu/flags';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw } from '../../src/gpu/tensor';
import { applyCbam, cbamChannelGate, globalAvgMaxPool, packCbamMlp } from '../../src/kernels/cbam';
import { CBAM } from '../../src/layers/cbam';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';
import { ForwardBuilder } from '../../src/layers/forward-builder';

/**
 * CBAM's kernels and the whole CBAM layer against a float64 reference written from its definition
 * (tools/torch/nets/sinsr.py CBAM): g_c = σ(mlp(avg) + mlp(max)), y = x·g_c, g_s = σ(conv7(cat(mean_c y, max_c y))),
 * out = y·g_s.
 */
const f32 = (a: ArrayLike<number>) => Float64Array.from(a, (v) => Math.fround(v));
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

function channelGateRef(
  x: Float64Array,
  [n, c, h, w]: number[],
  hidden: number,
  p: { w1: Float64Array; b1: Float64Array; w2: Float64Array; b2: Float64Array },
) {
  const plane = h * w;
  const gate = new Float64Array(n * c);
  const mlp = (v: Float64Array) => {
    const hid = Array.from({ length: hidden }, (_, j) => Math.max(0, p.b1[j] + v.reduce((s, vi, ch) => s + p.w1[j * c + ch] * vi, 0)));
    return Array.from({ length: c }, (_, ch) => p.b2[ch] + hid.reduce((s, hj, j) => s + p.w2[ch * hidden + j] * hj, 0));
  };
  for (let b = 0; b < n; b++) {
    const avg = new Float64Array(c);
    const max = new Float64Array(c).fill(-Infinity);
    for (let ch = 0; ch < c; ch++)
      for (let q = 0; q < plane; q++) {
        const v = x[(b * c + ch) * plane + q];
        avg[ch] += v / plane;
        max[ch] = Math.max(max[ch], v);
      }
    const a = mlp(avg);
    const m = mlp(max);
    for (let ch = 0; ch < c; ch++) gate[b * c + ch] = sigmoid(a[ch] + m[ch]);
  }
  return gate;
}

function cbamRef(
  x: Float64Array,
  shape: number[],
  hidden: number,
  p: { w1: Float64Array; b1: Float64Array; w2: Float64Array; b2: Float64Array; ws: Float64Array },
) {
  const [n, c, h, w] = shape;
  const plane = h * w;
  const gate = channelGateRef(x, shape, hidden, p);
  const y = x.map((v, i) => v * gate[Math.floor(i / (c * plane)) * c + (Math.floor(i / plane) % c)]);
  const out = new Float64Array(y.length);
  const sgate = new Float64Array(n * plane);
  for (let b = 0; b < n; b++) {
    const mm = [new Float64Array(plane), new Float64Array(plane).fill(-Infinity)];
    for (let ch = 0; ch < c; ch++)
      for (let q = 0; q < plane; q++) {
        const v = y[(b * c + ch) * plane + q];
        mm[0][q] += v / c;
        mm[1][q] = Math.max(mm[1][q], v);
      }
    for (let oy = 0; oy < h; oy++)
      for (let ox = 0; ox < w; ox++) {
        let s = 0;
        for (let k = 0; k < 2; k++)
          for (let ky = 0; ky < 7; ky++)
            for (let kx = 0; kx < 7; kx++) {
              const iy = oy + ky - 3;
              const ix = ox + kx - 3;
              if (iy >= 0 && iy < h && ix >= 0 && ix < w) s += p.ws[(k * 7 + ky) * 7 + kx] * mm[k][iy * w + ix];
            }
        const g = sigmoid(s);
        sgate[b * plane + oy * w + ox] = g;
        for (let ch = 0; ch < c; ch++) out[(b * c + ch) * plane + oy * w + ox] = y[(b * c + ch) * plane + oy * w + ox] * g;
      }
  }
  return { out, gate, sgate };
}

function randomParams(c: number, hidden: number, seed: number) {
  return {
    w1: f32(randomArray(hidden * c, seed, 1 / Math.sqrt(c))),
    b1: f32(randomArray(hidden, seed + 1, 0.2)),
    w2: f32(randomArray(c * hidden, seed + 2, 1 / Math.sqrt(hidden))),
    b2: f32(randomArray(c, seed + 3, 0.2)),
    ws: f32(randomArray(2 * 49, seed + 4, 0.3)),
  };
}

const CASES: { shape: [number, number, number, number]; hidden: number }[] = [
  { shape: [1, 8, 5, 7], hidden: 2 },
  { shape: [2, 6, 4, 3], hidden: 3 },
  { shape: [1, 64, 9, 13], hidden: 8 },
  { shape: [1, 13, 1, 1], hidden: 1 },
  { shape: [1, 16, 40, 33], hidden: 4 },
];

describe('CBAM channel gate (avg and max pool through a shared MLP) against a float64 reference', () => {
  CASES.forEach(({ shape, hidden }, i) => {
    it(`${shape.join('x')}, hidden ${hidden}`, async () => {
      const ctx = await getTestContext();
      const [n, c, h, w] = shape;
      const x = f32(randomArray(n * c * h * w, 300 + i));
      const p = randomParams(c, hidden, 310 + i);
      const buf = ctx.createBufferWithData(packCbamMlp(p, c, hidden), BufferUsage.STORAGE, 'mlp');
      const g = new Graph();
      const xt = g.input([n, h, w, c]);
      const gate = cbamChannelGate(g, globalAvgMaxPool(g, xt, 'pool'), { weights: buf, hidden, label: 'cbam' });
      g.output(gate);
      const plan = await Plan.compile(ctx, g);
      plan.poison();
      const { outputs } = await plan.run([nchwToNhwcPadded(x, [n, h, w, c])]);
      plan.dispose();
      buf.destroy();
      const cp = Math.ceil(c / 4) * 4;
      outputs[0].forEach((v, k) => expect(k % cp >= c ? v : 0).toBe(0));
      expect(relL2(nhwcPaddedToNchw(outputs[0], gate.shape), channelGateRef(x, shape, hidden, p))).toBeLessThanOrEqual(1e-6);
    });
  });
});

describe('CBAM layer (channel gate, channel mean/max, 7×7 conv, gating) against a float64 reference', () => {
  CASES.forEach(({ shape, hidden }, i) => {
    it(`${shape.join('x')}, hidden ${hidden}`, async () => {
      const ctx = await getTestContext();
      const [n, c, h, w] = shape;
      const x = f32(randomArray(n * c * h * w, 400 + i));
      const p = randomParams(c, hidden, 410 + i);
      const layer = new CBAM(c, c / hidden);
      expect(layer.hidden).toBe(hidden);
      const [l1, , l2] = layer.channelMlp.layers as unknown as { weight: { data?: Float64Array }; bias: { data?: Float64Array } }[];
      l1.weight.data = p.w1;
      l1.bias.data = p.b1;
      l2.weight.data = p.w2;
      l2.bias.data = p.b2;
      layer.spatialConv.weight.data = p.ws;
      const g = new Graph();
      const xt = g.input([n, h, w, c]);
      const y = layer.forward(new ForwardBuilder(ctx, g), xt, { label: 'cbam' });
      g.output(y);
      const plan = await Plan.compile(ctx, g);
      plan.poison();
      const { outputs } = await plan.run([nchwToNhwcPadded(x, [n, h, w, c])]);
      plan.dispose();
      layer.release();
      expect(relL2(nhwcPaddedToNchw(outputs[0], y.shape), cbamRef(x, shape, hidden, p).out)).toBeLessThanOrEqual(1e-5);
    });
  });

  it('adds a residual and writes into channel slices of a wider tensor', async () => {
    const ctx = await getTestContext();
    const [n, c, h, w] = [1, 6, 5, 4];
    const hidden = 3;
    const x = f32(randomArray(c * h * w, 500));
    const res = f32(randomArray(c * h * w, 501));
    const p = randomParams(c, hidden, 502);
    const buf = ctx.createBufferWithData(packCbamMlp(p, c, hidden), BufferUsage.STORAGE, 'mlp');
    const { out, sgate } = cbamRef(x, [n, c, h, w], hidden, p);
    const g = new Graph();
    const xt = g.input([n, h, w, c]);
    const rt = g.input([n, h, w, c]);
    const st = g.input([n, h, w, 1]);
    const cg = cbamChannelGate(g, globalAvgMaxPool(g, xt, 'pool'), { weights: buf, hidden, label: 'cbam' });
    // [out (6) | gap (2) | out + res (6) | gap (2)]: the gaps must come out 0.
    const wide = g.tensor([n, h, w, 16], 'wide');
    applyCbam(g, xt, cg, st, 'first', { out: { tensor: wide, offset: 0 } });
    applyCbam(g, xt, cg, st, 'second', { residual: rt, out: { tensor: wide, offset: 8 } });
    g.output(wide);
    const plan = await Plan.compile(ctx, g);
    plan.poison();
    const { outputs } = await plan.run([
      nchwToNhwcPadded(x, [n, h, w, c]),
      nchwToNhwcPadded(res, [n, h, w, c]),
      nchwToNhwcPadded(f32(sgate), [n, h, w, 1]),
    ]);
    plan.dispose();
    buf.destroy();
    const got = nhwcPaddedToNchw(outputs[0], [n, h, w, 16]);
    const plane = h * w;
    const ref = new Float64Array(16 * plane);
    for (let ch = 0; ch < c; ch++)
      for (let q = 0; q < plane; q++) {
        ref[ch * plane + q] = out[ch * plane + q];
        ref[(8 + ch) * plane + q] = out[ch * plane + q] + res[ch * plane + q];
      }
    for (const gap of [6, 7, 14, 15]) expect(got.slice(gap * plane, (gap + 1) * plane).every((v) => v === 0)).toBe(true);
    expect(relL2(got, ref)).toBeLessThanOrEqual(1e-5);
  });

  it('rejects mismatched gates and offsets', () => {
    const g = new Graph();
    const x = g.input([1, 4, 4, 8]);
    const cg = g.input([1, 1, 1, 8]);
    const sg = g.input([1, 4, 4, 1]);
    const bad = g.input([1, 1, 1, 6]);
    expect(() => applyCbam(g, x, bad, sg, 'a')).toThrow(InvalidInputError);
    expect(() => applyCbam(g, x, cg, cg, 'a')).toThrow(/spatial gate/);
    const wide = g.tensor([1, 4, 4, 12], 'w');
    expect(() => applyCbam(g, x, cg, sg, 'a', { out: { tensor: wide, offset: 8 } })).toThrow(/inside 12 channels/);
    expect(() => packCbamMlp({ w1: [1], b1: [1], w2: [1], b2: [1] }, 8, 1)).toThrow(/w1 has 1 values/);
  });
});
