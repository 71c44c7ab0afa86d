import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { BufferUsage } from '../../src/gpu/flags';
import { Graph } from '../../src/gpu/graph';
import { ParameterArena } from '../../src/gpu/parameter-arena';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, paddedChannels, type Shape4 } from '../../src/gpu/tensor';
import { convTranspose2dInputGrad, convTranspose2dWeightGrad } from '../../src/kernels/conv-transpose2d-backward';
import {
  type ConvTranspose2dGeometry,
  convTranspose2dOutputSize,
  packConvTranspose2dWeight,
} from '../../src/kernels/conv-transpose2d-geometry';
import { packConvTranspose2dWeightOnGpu } from '../../src/kernels/weight-pack-gpu';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';
import { convTranspose2dRef } from '../helpers/reference-conv-transpose';

/*
 * ConvTranspose2d backward (training.md §1.2) against float64 references written here from the definition, which
 * one central-difference test checks in turn against the forward reference.
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
  outputPadding: [number, number];
}

function geometryOf(c: Case): ConvTranspose2dGeometry {
  return { inChannels: c.cin, outChannels: c.cout, kernelSize: c.k, stride: c.stride, padding: c.pad, outputPadding: c.outputPadding };
}

function outSize(c: Case): [number, number] {
  return [
    convTranspose2dOutputSize(c.h, c.k[0], c.stride, c.pad[0], c.outputPadding[0]),
    convTranspose2dOutputSize(c.w, c.k[1], c.stride, c.pad[1], c.outputPadding[1]),
  ];
}

function f32Values(count: number, seed: number, scale = 1): Float64Array {
  return Float64Array.from(Float32Array.from(randomArray(count, seed, scale)));
}

/**
 * Float64 gradients of y = conv_transpose2d(x, W) + b for upstream gy, NCHW, from the definition as a scatter:
 * y[b, co, iy·s − p + ky, ix·s − p + kx] += x[b, ci, iy, ix]·W[ci, co, ky, kx] sends gy·W to dx, gy·x to dW.
 */
function convTranspose2dBackwardRef(c: Case, x: Float64Array, wt: Float64Array, gy: Float64Array) {
  const [ho, wo] = outSize(c);
  const [kh, kw] = c.k;
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(wt.length);
  const db = new Float64Array(c.cout);
  for (let b = 0; b < c.n; b++)
    for (let co = 0; co < c.cout; co++) for (let i = 0; i < ho * wo; i++) db[co] += gy[(b * c.cout + co) * ho * wo + i];
  for (let b = 0; b < c.n; b++)
    for (let ci = 0; ci < c.cin; ci++)
      for (let iy = 0; iy < c.h; iy++)
        for (let ix = 0; ix < c.w; ix++) {
          const xi = ((b * c.cin + ci) * c.h + iy) * c.w + ix;
          for (let co = 0; co < c.cout; co++)
            for (let ky = 0; ky < kh; ky++) {
              const oy = iy * c.stride - c.pad[0] + ky;
              if (oy < 0 || oy >= ho) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ox = ix * c.stride - c.pad[1] + kx;
                if (ox < 0 || ox >= wo) continue;
                const g = gy[((b * c.cout + co) * ho + oy) * wo + ox];
                const wi = ((ci * c.cout + co) * kh + ky) * kw + kx;
                dx[xi] += g * wt[wi];
                dw[wi] += g * x[xi];
              }
            }
        }
  return { dx, dw, db };
}

const CASES: [string, Case][] = [
  [
    'k2 s2 p0, 3→5, 5x7, batch 2 (SCUNet up)',
    { n: 2, cin: 3, cout: 5, h: 5, w: 7, k: [2, 2], stride: 2, pad: [0, 0], outputPadding: [0, 0] },
  ],
  ['k3 s2 p1 op1, 5→3, 4x5', { n: 1, cin: 5, cout: 3, h: 4, w: 5, k: [3, 3], stride: 2, pad: [1, 1], outputPadding: [1, 1] }],
  ['k4 s2 p(1,2), 13→6, 3x4, batch 2', { n: 2, cin: 13, cout: 6, h: 3, w: 4, k: [4, 4], stride: 2, pad: [1, 2], outputPadding: [0, 0] }],
  ['k3x2 s1 p(1,0), 4→8, 5x6', { n: 1, cin: 4, cout: 8, h: 5, w: 6, k: [3, 2], stride: 1, pad: [1, 0], outputPadding: [0, 0] }],
  ['k1 s1 p0, 6→13, 3x5', { n: 1, cin: 6, cout: 13, h: 3, w: 5, k: [1, 1], stride: 1, pad: [0, 0], outputPadding: [0, 0] }],
  ['k5x3 s3 p(2,1) op(2,0), 7→4, 4x5', { n: 1, cin: 7, cout: 4, h: 4, w: 5, k: [5, 3], stride: 3, pad: [2, 1], outputPadding: [2, 0] }],
  ['k2 s2 op1, 1→1, 5x3 (one channel)', { n: 2, cin: 1, cout: 1, h: 5, w: 3, k: [2, 2], stride: 2, pad: [0, 0], outputPadding: [1, 1] }],
];

interface Run {
  dx: Float32Array;
  dw: Float32Array;
  db: Float32Array;
  ref: ReturnType<typeof convTranspose2dBackwardRef>;
}

async function runCase(c: Case, seed: number, options: { pixelsPerChunk?: number; runs?: number } = {}): Promise<Run[]> {
  const ctx = await getTestContext();
  const g = geometryOf(c);
  const [ho, wo] = outSize(c);
  const xShape: Shape4 = [c.n, c.h, c.w, c.cin];
  const gyShape: Shape4 = [c.n, ho, wo, c.cout];
  const x = f32Values(c.n * c.cin * c.h * c.w, seed);
  const wt = f32Values(c.cin * c.cout * c.k[0] * c.k[1], seed + 1, 0.5);
  const gy = f32Values(c.n * c.cout * ho * wo, seed + 2);
  const ref = convTranspose2dBackwardRef(c, x, wt, gy);
  const weightKey = {};
  const biasKey = {};
  const arena = new ParameterArena(
    ctx,
    [
      { key: weightKey, numel: wt.length, label: 'weight' },
      { key: biasKey, numel: c.cout, label: 'bias' },
    ],
    'convT params',
  );
  try {
    arena.write(weightKey, 'value', wt);
    const graph = new Graph();
    const tx = graph.input(xShape, 'x');
    const tgy = graph.input(gyShape, 'gy');
    const dx = convTranspose2dInputGrad(graph, ctx, tgy, arena.range(weightKey, 'value'), g, xShape, 'dx');
    graph.output(dx);
    convTranspose2dWeightGrad(graph, tx, tgy, g, arena.range(weightKey, 'grad'), 'dW', {
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
  it('matches central differences of L = Σ gy·conv_transpose2d(x, W, b)', () => {
    const c: Case = { n: 2, cin: 3, cout: 2, h: 4, w: 3, k: [3, 2], stride: 2, pad: [1, 0], outputPadding: [1, 1] };
    const [ho, wo] = outSize(c);
    const x = randomArray(c.n * c.cin * c.h * c.w, 1);
    const wt = randomArray(c.cin * c.cout * c.k[0] * c.k[1], 2);
    const b = randomArray(c.cout, 3);
    const gy = randomArray(c.n * c.cout * ho * wo, 4);
    const f = () => {
      const { y } = convTranspose2dRef(x, [c.n, c.cin, c.h, c.w], wt, b, c.cout, c.k, c.stride, c.pad, c.outputPadding, { kind: 'none' });
      return y.reduce((s, v, i) => s + v * gy[i], 0);
    };
    const numeric = (v: Float64Array) =>
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
    const ref = convTranspose2dBackwardRef(c, x, wt, gy);
    expect(relL2(ref.dx, numeric(x))).toBeLessThanOrEqual(1e-6);
    expect(relL2(ref.dw, numeric(wt))).toBeLessThanOrEqual(1e-6);
    expect(relL2(ref.db, numeric(b))).toBeLessThanOrEqual(1e-6);
  });
});

describe('GPU weight packing', () => {
  it('writes bitwise what packConvTranspose2dWeight writes', async () => {
    const ctx = await getTestContext();
    const graph = new Graph();
    const dummy = graph.input([1, 1, 1, 4], 'unused');
    const expected: Float32Array[] = [];
    const buffers: GPUBuffer[] = [];
    CASES.forEach(([, c], i) => {
      const g = geometryOf(c);
      const wt = Float32Array.from(randomArray(c.cin * c.cout * c.k[0] * c.k[1], 70 + i));
      const buffer = ctx.createBufferWithData(wt, BufferUsage.STORAGE, 'weight');
      buffers.push(buffer);
      graph.output(packConvTranspose2dWeightOnGpu(graph, buffer, g, `pack ${i}`));
      expected.push(packConvTranspose2dWeight(wt, g));
    });
    graph.output(dummy);
    const plan = await Plan.compile(ctx, graph);
    plan.poison();
    const { outputs } = await plan.run([new Float32Array(4)]);
    plan.dispose();
    for (const b of buffers) b.destroy();
    expected.forEach((e, i) => expect(new Uint32Array(outputs[i].buffer)).toEqual(new Uint32Array(e.buffer)));
  });
});

describe('conv_transpose2d backward against the float64 reference', () => {
  CASES.forEach(([name, c], i) => {
    it(`${name}: dx, dW, db`, async () => {
      const [run] = await runCase(c, 200 + 10 * i);
      expectClose(run);
    });
  });

  it('splits the weight gradient into several chunks (rows cut mid-way), deterministically', async () => {
    const c: Case = { n: 2, cin: 8, cout: 6, h: 9, w: 11, k: [2, 2], stride: 2, pad: [0, 0], outputPadding: [0, 0] };
    const [first, second] = await runCase(c, 9, { runs: 2 });
    expectClose(first);
    expect(new Uint32Array(second.dw.buffer)).toEqual(new Uint32Array(first.dw.buffer));
    expect(new Uint32Array(second.db.buffer)).toEqual(new Uint32Array(first.db.buffer));
    const [forced] = await runCase(c, 9, { pixelsPerChunk: 5 });
    expectClose(forced);
  });

  it('names the mismatched input', async () => {
    const ctx = await getTestContext();
    const g: ConvTranspose2dGeometry = {
      inChannels: 3,
      outChannels: 5,
      kernelSize: [2, 2],
      stride: 2,
      padding: [0, 0],
      outputPadding: [0, 0],
    };
    const graph = new Graph();
    const x = graph.input([1, 4, 5, 3], 'x');
    const gy = graph.input([1, 8, 9, 5], 'gy');
    const weight = ctx.createBuffer({ size: 3 * 5 * 4 * 4, usage: BufferUsage.STORAGE }, 'w');
    const small = ctx.createBuffer({ size: 64, usage: BufferUsage.STORAGE }, 'small');
    try {
      expect(() => convTranspose2dInputGrad(graph, ctx, gy, weight, g, [1, 4, 5, 3], 'dx')).toThrow(InvalidInputError);
      expect(() => convTranspose2dInputGrad(graph, ctx, gy, weight, g, [1, 4, 5, 3], 'dx')).toThrow(/gy \[1, 8, 9, 5\] does not match/);
      expect(() => convTranspose2dInputGrad(graph, ctx, gy, weight, g, [1, 4, 5, 2], 'dx')).toThrow(/input .* has 2 channels/);
      expect(() => convTranspose2dWeightGrad(graph, x, gy, g, weight, 'dW')).toThrow(/dW: gy/);
      const gyOk = graph.input([1, 8, 10, 5], 'gy ok');
      expect(() => convTranspose2dInputGrad(graph, ctx, gyOk, small, g, [1, 4, 5, 3], 'dx')).toThrow(/weight spans 64 bytes/);
      expect(() => convTranspose2dWeightGrad(graph, x, gyOk, g, small, 'dW')).toThrow(/dW: dWeight spans 64 bytes/);
      expect(() => convTranspose2dWeightGrad(graph, x, gyOk, g, weight, 'dW', { dBias: { buffer: small, offset: 0, size: 16 } })).toThrow(
        /dBias spans 16 bytes/,
      );
      expect(graph.nodes.length).toBe(0);
    } finally {
      weight.destroy();
      small.destroy();
    }
  });
});
