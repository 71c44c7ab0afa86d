import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { BufferUsage } from '../../src/gpu/flags';
import { Graph } from '../../src/gpu/graph';
import { ParameterArena } from '../../src/gpu/parameter-arena';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, paddedChannels, type Shape4 } from '../../src/gpu/tensor';
import { splitKChunking } from '../../src/kernels/conv-backward-split-k';
import { type Conv2dInputGradPath, conv2dInputGrad, conv2dInputGradPath, conv2dWeightGrad } from '../../src/kernels/conv2d-backward';
import { type Conv2dGeometry, conv2dOutputSize, packConv2dWeight } from '../../src/kernels/conv2d-geometry';
import { conv2dTransposedWeightPack, packConv2dWeightOnGpu, packWeightOnGpu } from '../../src/kernels/weight-pack-gpu';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';
import { conv2dRef } from '../helpers/reference';

/*
 * Conv2d backward (training.md §1.1) against float64 references written here from the definition, which one
 * central-difference test checks in turn against the forward reference.
 */

interface Case {
  n: number;
  cin: number;
  cout: number;
  h: number;
  w: number;
  k: [number, number];
  stride: number;
  pad: [number, number];
  dilation: number;
  groups: number;
}

function geometryOf(c: Case): Conv2dGeometry {
  return {
    inChannels: c.cin,
    outChannels: c.cout,
    kernelSize: c.k,
    stride: c.stride,
    padding: c.pad,
    dilation: c.dilation,
    groups: c.groups,
  };
}

function outSize(c: Case): [number, number] {
  return [conv2dOutputSize(c.h, c.k[0], c.stride, c.pad[0], c.dilation), conv2dOutputSize(c.w, c.k[1], c.stride, c.pad[1], c.dilation)];
}

/** Values rounded to f32 (what the GPU holds), kept in float64 for the references. */
function f32Values(count: number, seed: number, scale = 1): Float64Array {
  return Float64Array.from(Float32Array.from(randomArray(count, seed, scale)));
}

/**
 * Float64 gradients of y = conv2d(x, W) + b for upstream gy, NCHW, straight from the definition as a scatter:
 * y[b, co, oy, ox] += W[co, ci', ky, kx]·x[b, ci, oy·s − p + ky·d, ox·s − p + kx·d] sends gy·W to dx, gy·x to dW.
 */
function conv2dBackwardRef(c: Case, x: Float64Array, wt: Float64Array, gy: Float64Array) {
  const [ho, wo] = outSize(c);
  const cing = c.cin / c.groups;
  const coutg = c.cout / c.groups;
  const [kh, kw] = c.k;
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(wt.length);
  const db = new Float64Array(c.cout);
  for (let b = 0; b < c.n; b++)
    for (let co = 0; co < c.cout; co++)
      for (let oy = 0; oy < ho; oy++)
        for (let ox = 0; ox < wo; ox++) {
          const g = gy[((b * c.cout + co) * ho + oy) * wo + ox];
          db[co] += g;
          const grp = Math.floor(co / coutg);
          for (let cl = 0; cl < cing; cl++)
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * c.stride - c.pad[0] + ky * c.dilation;
              if (iy < 0 || iy >= c.h) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * c.stride - c.pad[1] + kx * c.dilation;
                if (ix < 0 || ix >= c.w) continue;
                const xi = ((b * c.cin + grp * cing + cl) * c.h + iy) * c.w + ix;
                const wi = ((co * cing + cl) * kh + ky) * kw + kx;
                dx[xi] += g * wt[wi];
                dw[wi] += g * x[xi];
              }
            }
        }
  return { dx, dw, db };
}

/** A named case and the input-gradient kernel it must take. */
const CASES: [string, Case, Conv2dInputGradPath][] = [
  [
    'k3 s1 p1, 5→3, 9x6, batch 2',
    { n: 2, cin: 5, cout: 3, h: 9, w: 6, k: [3, 3], stride: 1, pad: [1, 1], dilation: 1, groups: 1 },
    'conv2d',
  ],
  [
    'k3x2 s1 p(2,0) d2, 13→5, 7x8',
    { n: 1, cin: 13, cout: 5, h: 7, w: 8, k: [3, 2], stride: 1, pad: [2, 0], dilation: 2, groups: 1 },
    'conv2d',
  ],
  [
    'k3 s1 p1 groups 2, 8→16, 6x5',
    { n: 2, cin: 8, cout: 16, h: 6, w: 5, k: [3, 3], stride: 1, pad: [1, 1], dilation: 1, groups: 2 },
    'conv2d',
  ],
  [
    'depthwise k3 s1 p0, 5 channels, 7x9',
    { n: 2, cin: 5, cout: 5, h: 7, w: 9, k: [3, 3], stride: 1, pad: [0, 0], dilation: 1, groups: 5 },
    'conv2d',
  ],
  [
    'k3 s2 p1, 5→3, 8x7 (output_padding 1,0)',
    { n: 2, cin: 5, cout: 3, h: 8, w: 7, k: [3, 3], stride: 2, pad: [1, 1], dilation: 1, groups: 1 },
    'convTranspose2d',
  ],
  [
    'k4 s2 p(1,2), 3→13, 9x10',
    { n: 1, cin: 3, cout: 13, h: 9, w: 10, k: [4, 4], stride: 2, pad: [1, 2], dilation: 1, groups: 1 },
    'convTranspose2d',
  ],
  [
    'k2 s2 p0, 4→6, 7x9 (sub-pixel)',
    { n: 2, cin: 4, cout: 6, h: 7, w: 9, k: [2, 2], stride: 2, pad: [0, 0], dilation: 1, groups: 1 },
    'convTranspose2d',
  ],
  [
    'k1 s1 p1 (padding past the reach), 3→5, 5x4',
    { n: 1, cin: 3, cout: 5, h: 5, w: 4, k: [1, 1], stride: 1, pad: [1, 1], dilation: 1, groups: 1 },
    'convTranspose2d',
  ],
  ['k3 s2 p2 d2, 5→3, 9x8', { n: 2, cin: 5, cout: 3, h: 9, w: 8, k: [3, 3], stride: 2, pad: [2, 2], dilation: 2, groups: 1 }, 'gather'],
  [
    'k3x2 s2 p(1,0) groups 2, 8→8, 7x6',
    { n: 1, cin: 8, cout: 8, h: 7, w: 6, k: [3, 2], stride: 2, pad: [1, 0], dilation: 1, groups: 2 },
    'gather',
  ],
  [
    'depthwise k3 s2 p1, 13 channels, 7x9',
    { n: 2, cin: 13, cout: 13, h: 7, w: 9, k: [3, 3], stride: 2, pad: [1, 1], dilation: 1, groups: 13 },
    'gather',
  ],
];

interface Run {
  dx: Float32Array;
  dw: Float32Array;
  db: Float32Array;
  ref: ReturnType<typeof conv2dBackwardRef>;
}

/** Builds dx, dW and db of one case in one graph (weights and gradients in an arena), runs it poisoned, reads all. */
async function runCase(c: Case, seed: number, options: { pixelsPerChunk?: number; runs?: number } = {}): Promise<Run[]> {
  const ctx = await getTestContext();
  const g = geometryOf(c);
  const [ho, wo] = outSize(c);
  const xShape: Shape4 = [c.n, c.h, c.w, c.cin];
  const gyShape: Shape4 = [c.n, ho, wo, c.cout];
  const x = f32Values(c.n * c.cin * c.h * c.w, seed);
  const wt = f32Values((c.cout * c.cin * c.k[0] * c.k[1]) / c.groups, seed + 1, 0.5);
  const gy = f32Values(c.n * c.cout * ho * wo, seed + 2);
  const ref = conv2dBackwardRef(c, x, wt, gy);
  const weightKey = {};
  const biasKey = {};
  const arena = new ParameterArena(
    ctx,
    [
      { key: weightKey, numel: wt.length, label: 'weight' },
      { key: biasKey, numel: c.cout, label: 'bias' },
    ],
    'conv params',
  );
  try {
    arena.write(weightKey, 'value', wt);
    const graph = new Graph();
    const tx = graph.input(xShape, 'x');
    const tgy = graph.input(gyShape, 'gy');
    const dx = conv2dInputGrad(graph, ctx, tgy, arena.range(weightKey, 'value'), g, xShape, 'dx');
    graph.output(dx);
    conv2dWeightGrad(graph, tx, tgy, g, arena.range(weightKey, 'grad'), 'dW', {
      dBias: arena.range(biasKey, 'grad'),
      pixelsPerChunk: options.pixelsPerChunk,
    });
    const plan = await Plan.compile(ctx, graph);
    const runs: Run[] = [];
    for (let r = 0; r < (options.runs ?? 1); r++) {
      plan.poison();
      arena.write(weightKey, 'grad', new Float64Array(wt.length).fill(NaN));
      arena.write(biasKey, 'grad', new Float64Array(c.cout).fill(NaN));
      const { outputs } = await plan.run([nchwToNhwcPadded(x, xShape), nchwToNhwcPadded(gy, gyShape)]);
      const grads = await arena.read('grad');
      const out = outputs[0];
      const cp = paddedChannels(c.cin);
      for (let i = 0; i < out.length; i++) {
        if (i % cp >= c.cin && out[i] !== 0) throw new Error(`dx padded channel ${i % cp} holds ${out[i]}`);
      }
      runs.push({ dx: nhwcPaddedToNchw(out, xShape), dw: grads.get(weightKey)!, db: grads.get(biasKey)!, ref });
    }
    plan.dispose();
    return runs;
  } finally {
    arena.dispose();
  }
}

function expectClose(run: Run): void {
  expect(relL2(run.dx, run.ref.dx)).toBeLessThanOrEqual(1e-5);
  expect(relL2(run.dw, run.ref.dw)).toBeLessThanOrEqual(1e-4);
  expect(relL2(run.db, run.ref.db)).toBeLessThanOrEqual(1e-4);
}

describe('the float64 reference', () => {
  it('matches central differences of L = Σ gy·conv2d(x, W, b)', () => {
    const c: Case = { n: 2, cin: 4, cout: 4, h: 7, w: 6, k: [2, 3], stride: 2, pad: [1, 0], dilation: 2, groups: 2 };
    const [ho, wo] = outSize(c);
    const x = randomArray(c.n * c.cin * c.h * c.w, 1);
    const wt = randomArray((c.cout * c.cin * c.k[0] * c.k[1]) / c.groups, 2);
    const b = randomArray(c.cout, 3);
    const gy = randomArray(c.n * c.cout * ho * wo, 4);
    const loss = (xv: Float64Array, wv: Float64Array, bv: Float64Array) => {
      const { y } = conv2dRef(
        xv,
        [c.n, c.cin, c.h, c.w],
        wv,
        bv,
        c.cout,
        c.k,
        c.stride,
        c.pad,
        c.dilation,
        { kind: 'none' },
        { groups: c.groups },
      );
      return y.reduce((s, v, i) => s + v * gy[i], 0);
    };
    const numeric = (v: Float64Array, f: () => number) =>
      Float64Array.from(v, (_, i) => {
        const keep = v[i];
        const h = 1e-6 * Math.max(1, Math.abs(keep));
        v[i] = keep + h;
        const up = f();
        v[i] = keep - h;
        const down = f();
        v[i] = keep;
        return (up - down) / (2 * h);
      });
    const ref = conv2dBackwardRef(c, x, wt, gy);
    const f = () => loss(x, wt, b);
    expect(relL2(ref.dx, numeric(x, f))).toBeLessThanOrEqual(1e-6);
    expect(relL2(ref.dw, numeric(wt, f))).toBeLessThanOrEqual(1e-6);
    expect(relL2(ref.db, numeric(b, f))).toBeLessThanOrEqual(1e-6);
  });
});

describe('GPU weight packing', () => {
  const geometries: [string, Conv2dGeometry][] = [
    ['3x3 3→5', { inChannels: 3, outChannels: 5, kernelSize: [3, 3], stride: 1, padding: [1, 1], dilation: 1 }],
    ['2x3 groups 2, 8→16', { inChannels: 8, outChannels: 16, kernelSize: [2, 3], stride: 1, padding: [0, 0], dilation: 1, groups: 2 }],
    ['1x1 13→6', { inChannels: 13, outChannels: 6, kernelSize: [1, 1], stride: 1, padding: [0, 0], dilation: 1 }],
    ['depthwise 3x3, 5', { inChannels: 5, outChannels: 5, kernelSize: [3, 3], stride: 1, padding: [1, 1], dilation: 1, groups: 5 }],
    ['depthwise 1x4, 13', { inChannels: 13, outChannels: 13, kernelSize: [1, 4], stride: 2, padding: [0, 1], dilation: 1, groups: 13 }],
  ];

  /** Flat weight W[co, ci', ky, kx] → W̃[ci, co', kH−1−ky, kW−1−kx] (the stride-1 input gradient's conv weight). */
  function flipTranspose(wt: Float32Array, g: Conv2dGeometry): Float32Array {
    const groups = g.groups ?? 1;
    const cing = g.inChannels / groups;
    const coutg = g.outChannels / groups;
    const [kh, kw] = g.kernelSize;
    const out = new Float32Array(wt.length);
    for (let co = 0; co < g.outChannels; co++)
      for (let cl = 0; cl < cing; cl++)
        for (let ky = 0; ky < kh; ky++)
          for (let kx = 0; kx < kw; kx++) {
            const grp = Math.floor(co / coutg);
            const ci = grp * cing + cl;
            const col = co - grp * coutg;
            out[((ci * coutg + col) * kh + (kh - 1 - ky)) * kw + (kw - 1 - kx)] = wt[((co * cing + cl) * kh + ky) * kw + kx];
          }
    return out;
  }

  it('writes bitwise what the CPU packers write (plain, and flipped and in/out-swapped)', async () => {
    const ctx = await getTestContext();
    const graph = new Graph();
    const dummy = graph.input([1, 1, 1, 4], 'unused');
    const expected: Float32Array[] = [];
    const buffers: GPUBuffer[] = [];
    geometries.forEach(([, g], i) => {
      const groups = g.groups ?? 1;
      const wt = Float32Array.from(randomArray((g.outChannels * g.inChannels * g.kernelSize[0] * g.kernelSize[1]) / groups, 50 + i));
      const buffer = ctx.createBufferWithData(wt, BufferUsage.STORAGE, 'weight');
      buffers.push(buffer);
      graph.output(packConv2dWeightOnGpu(graph, buffer, g, `pack ${i}`));
      expected.push(packConv2dWeight(wt, g));
      const swapped: Conv2dGeometry = { ...g, inChannels: g.outChannels, outChannels: g.inChannels };
      graph.output(packWeightOnGpu(graph, buffer, conv2dTransposedWeightPack(g, true), `flipped ${i}`));
      expected.push(packConv2dWeight(flipTranspose(wt, g), swapped));
    });
    graph.output(dummy);
    const plan = await Plan.compile(ctx, graph);
    plan.poison();
    const { outputs } = await plan.run([new Float32Array(4)]);
    plan.dispose();
    for (const b of buffers) b.destroy();
    expected.forEach((e, i) => {
      expect(outputs[i].length).toBe(e.length);
      expect(new Uint32Array(outputs[i].buffer)).toEqual(new Uint32Array(e.buffer));
    });
  });

  it('reads a weight from an arena range at an offset', async () => {
    const ctx = await getTestContext();
    const g = geometries[1][1];
    const first = {};
    const second = {};
    const arena = new ParameterArena(
      ctx,
      [
        { key: first, numel: 7, label: 'first' },
        { key: second, numel: 16 * 4 * 6, label: 'second' },
      ],
      'arena',
    );
    const wt = Float32Array.from(randomArray(16 * 4 * 6, 9));
    arena.write(second, 'value', wt);
    const graph = new Graph();
    graph.input([1, 1, 1, 4], 'unused');
    graph.output(packConv2dWeightOnGpu(graph, arena.range(second, 'value'), g, 'pack'));
    const plan = await Plan.compile(ctx, graph);
    plan.poison();
    const { outputs } = await plan.run([new Float32Array(4)]);
    plan.dispose();
    arena.dispose();
    expect(new Uint32Array(outputs[0].buffer)).toEqual(new Uint32Array(packConv2dWeight(wt, g).buffer));
  });
});

describe('conv2d backward against the float64 reference', () => {
  CASES.forEach(([name, c, path], i) => {
    it(`${name}: dx by ${path}, dW, db`, async () => {
      expect(conv2dInputGradPath(geometryOf(c))).toBe(path);
      const [run] = await runCase(c, 100 + 10 * i);
      expectClose(run);
    });
  });

  it('splits the weight gradient into several chunks (rows cut mid-way), deterministically', async () => {
    const c: Case = { n: 2, cin: 6, cout: 8, h: 11, w: 13, k: [3, 3], stride: 1, pad: [1, 1], dilation: 1, groups: 1 };
    const pixels = 2 * 11 * 13;
    // Default chunking of this size already gives several chunks; a forced 7-pixel chunk cuts rows mid-way.
    expect(splitKChunking(pixels, 9 * 2 * 1, 8 * 9 * 2).chunks).toBeGreaterThan(1);
    // Even with channel blocks enough to fill a GPU, no invocation walks a whole large batch.
    expect(splitKChunking(64 * 40 * 40, 1 << 20, 1 << 18).chunkPixels).toBeLessThanOrEqual(4096);
    const [first, second] = await runCase(c, 7, { runs: 2 });
    expectClose(first);
    expect(new Uint32Array(second.dw.buffer)).toEqual(new Uint32Array(first.dw.buffer));
    expect(new Uint32Array(second.db.buffer)).toEqual(new Uint32Array(first.db.buffer));
    const [forced] = await runCase(c, 7, { pixelsPerChunk: 7 });
    expectClose(forced);
  });

  it('names the mismatched input', async () => {
    const ctx = await getTestContext();
    const g: Conv2dGeometry = { inChannels: 3, outChannels: 5, kernelSize: [3, 3], stride: 1, padding: [1, 1], dilation: 1 };
    const graph = new Graph();
    const x = graph.input([1, 6, 7, 3], 'x');
    const gy = graph.input([1, 6, 6, 5], 'gy');
    const weight = ctx.createBuffer({ size: 5 * 3 * 9 * 4, usage: BufferUsage.STORAGE }, 'w');
    const small = ctx.createBuffer({ size: 64, usage: BufferUsage.STORAGE }, 'small');
    try {
      expect(() => conv2dInputGrad(graph, ctx, gy, weight, g, [1, 6, 7, 3], 'dx')).toThrow(InvalidInputError);
      expect(() => conv2dInputGrad(graph, ctx, gy, weight, g, [1, 6, 7, 3], 'dx')).toThrow(/gy \[1, 6, 6, 5\] does not match/);
      expect(() => conv2dInputGrad(graph, ctx, gy, weight, g, [1, 6, 6, 4], 'dx')).toThrow(/input .* has 4 channels/);
      expect(() => conv2dWeightGrad(graph, x, gy, g, weight, 'dW')).toThrow(/dW: gy/);
      const gyOk = graph.input([1, 6, 7, 5], 'gy ok');
      expect(() => conv2dInputGrad(graph, ctx, gyOk, small, g, [1, 6, 7, 3], 'dx')).toThrow(/dx weight.*: weight spans 64 bytes/);
      expect(() => conv2dWeightGrad(graph, x, gyOk, g, small, 'dW')).toThrow(/dW: dWeight spans 64 bytes/);
      expect(() => conv2dWeightGrad(graph, x, gyOk, g, weight, 'dW', { dBias: { buffer: small, offset: 0, size: 16 } })).toThrow(
        /dBias spans 16 bytes/,
      );
      expect(graph.nodes.length).toBe(0);
    } finally {
      weight.destroy();
      small.destroy();
    }
  });
});
