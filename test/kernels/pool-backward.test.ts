import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { Graph, type TensorValue } from '../../src/gpu/graph';
import { type Shape4 } from '../../src/gpu/tensor';
import { maxPool2d, type Pool2dOptions } from '../../src/kernels/pool';
import { avgPool2dBackward, globalAvgPool2dBackward, maxPool2dBackward, maxPool2dWithIndices } from '../../src/kernels/pool-backward';
import { readFixtureJson } from '../helpers/fixture-loader';
import { getTestContext } from '../helpers/gpu';
import { runGraph as run } from '../helpers/run-graph';
import { randomArray, relL2, seededRandom } from '../helpers/random';
import { avgPool2dRef, globalAvgPoolRef, maxPool2dRef, type NCHW, toNHWC } from '../helpers/reference-spatial';

/**
 * Pooling backward (training.md §1.6) against float64 CPU adjoints written here from PyTorch's definitions; each
 * adjoint is itself checked (a dot-product test for the linear ops, central differences for max pooling away from
 * ties), and PyTorch 1.13 fixtures pin ties, NaN and -inf (tools/torch/spatial_backward_fixtures.py).
 */

const pair = (v: number | readonly [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);
const size = (s: NCHW) => s[0] * s[1] * s[2] * s[3];
const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

interface Geometry {
  k: [number, number];
  s: [number, number];
  p: [number, number];
  ceil: boolean;
}

function geometry(o: Pool2dOptions): Geometry {
  const k = pair(o.kernel);
  return { k, s: pair(o.stride ?? k), p: pair(o.padding ?? 0), ceil: o.ceilMode ?? false };
}

function outSize(i: number, k: number, s: number, p: number, ceil: boolean): number {
  let o = (ceil ? Math.ceil((i + 2 * p - k) / s) : Math.floor((i + 2 * p - k) / s)) + 1;
  if (ceil && (o - 1) * s >= i + p) o--;
  return o;
}

/** Visits every output window of a pooling (NCHW, row-major) with the real input taps it covers, in row-major order. */
function forEachWindow(
  shape: NCHW,
  g: Geometry,
  visit: (outIndex: number, taps: number[], window: { y0: number; x0: number }, plane: number) => void,
): NCHW {
  const [n, c, h, w] = shape;
  const ho = outSize(h, g.k[0], g.s[0], g.p[0], g.ceil);
  const wo = outSize(w, g.k[1], g.s[1], g.p[1], g.ceil);
  let o = 0;
  for (let pl = 0; pl < n * c; pl++)
    for (let oy = 0; oy < ho; oy++)
      for (let ox = 0; ox < wo; ox++) {
        const y0 = oy * g.s[0] - g.p[0];
        const x0 = ox * g.s[1] - g.p[1];
        const taps: number[] = [];
        for (let ky = 0; ky < g.k[0]; ky++)
          for (let kx = 0; kx < g.k[1]; kx++) {
            const iy = y0 + ky;
            const ix = x0 + kx;
            if (iy >= 0 && iy < h && ix >= 0 && ix < w) taps.push(iy * w + ix);
          }
        visit(o++, taps, { y0, x0 }, pl);
      }
  return [n, c, ho, wo];
}

/** MaxPool2d(return_indices=True) as PyTorch's kernels: first tap, then `v > max || isnan(v)`; plane indices. */
function maxPoolIndicesRef(x: ArrayLike<number>, shape: NCHW, g: Geometry) {
  const plane = shape[2] * shape[3];
  const y: number[] = [];
  const idx: number[] = [];
  const outShape = forEachWindow(shape, g, (_o, taps, _w, pl) => {
    let best = -Infinity;
    let arg = taps[0];
    for (const t of taps) {
      const v = x[pl * plane + t];
      if (v > best || Number.isNaN(v)) {
        best = v;
        arg = t;
      }
    }
    y.push(best);
    idx.push(arg);
  });
  return { y, idx, shape: outShape };
}

/** Adjoint of max pooling at fixed argmax: each gy element added to its window's argmax. */
function maxPoolBackwardRef(gy: ArrayLike<number>, idx: ArrayLike<number>, inShape: NCHW, outShape: NCHW): Float64Array {
  const dx = new Float64Array(size(inShape));
  const inPlane = inShape[2] * inShape[3];
  const outPlane = outShape[2] * outShape[3];
  for (let o = 0; o < gy.length; o++) dx[Math.floor(o / outPlane) * inPlane + idx[o]] += gy[o];
  return dx;
}

/** Adjoint of avg pooling: gy / divisor to every real tap of the window (the divisor as PyTorch's avg_pool2d). */
function avgPoolBackwardRef(gy: ArrayLike<number>, inShape: NCHW, g: Geometry, includePad: boolean): Float64Array {
  const [, , h, w] = inShape;
  const plane = h * w;
  const dx = new Float64Array(size(inShape));
  forEachWindow(inShape, g, (o, taps, { y0, x0 }, pl) => {
    const padded = (Math.min(y0 + g.k[0], h + g.p[0]) - y0) * (Math.min(x0 + g.k[1], w + g.p[1]) - x0);
    const divisor = includePad ? padded : taps.length;
    for (const t of taps) dx[pl * plane + t] += gy[o] / divisor;
  });
  return dx;
}

function globalAvgPoolBackwardRef(gy: ArrayLike<number>, inShape: NCHW): Float64Array {
  const plane = inShape[2] * inShape[3];
  return Float64Array.from({ length: size(inShape) }, (_, i) => gy[Math.floor(i / plane)] / plane);
}

interface Case {
  shape: NCHW;
  opts: Pool2dOptions;
}

const MAX_CASES: Case[] = [
  { shape: [2, 3, 7, 5], opts: { kernel: 2, stride: 2 } },
  { shape: [2, 5, 9, 7], opts: { kernel: 3, stride: 2, padding: 1 } },
  { shape: [1, 6, 10, 9], opts: { kernel: 3, stride: 2, padding: 1, ceilMode: true } },
  { shape: [1, 3, 13, 11], opts: { kernel: 3, stride: 1, padding: 1 } },
  { shape: [1, 7, 7, 5], opts: { kernel: 2, stride: 1 } },
  { shape: [2, 2, 9, 7], opts: { kernel: [3, 2], stride: [1, 2], padding: [1, 0] } },
  { shape: [1, 5, 7, 13], opts: { kernel: 2, stride: 2, ceilMode: true } },
  { shape: [1, 3, 1, 1], opts: { kernel: 3, stride: 2, padding: 1 } },
  { shape: [1, 4, 10, 9], opts: { kernel: 4, stride: 3, padding: 2, ceilMode: true } },
];

const AVG_CASES: Case[] = [
  { shape: [2, 3, 7, 5], opts: { kernel: 2, stride: 2 } },
  { shape: [2, 5, 9, 7], opts: { kernel: 3, stride: 2, padding: 1 } },
  { shape: [1, 6, 9, 7], opts: { kernel: 3, stride: 2, padding: 1, countIncludePad: false } },
  { shape: [1, 3, 13, 11], opts: { kernel: 3, stride: 1, padding: 1 } },
  { shape: [1, 5, 10, 9], opts: { kernel: 3, stride: 2, padding: 1, ceilMode: true } },
  { shape: [1, 5, 10, 9], opts: { kernel: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false } },
  { shape: [1, 2, 7, 13], opts: { kernel: 2, stride: 2, ceilMode: true } },
  { shape: [2, 7, 9, 7], opts: { kernel: [2, 3], stride: [2, 1], padding: [1, 1] } },
  { shape: [1, 3, 1, 1], opts: { kernel: 3, stride: 2, padding: 1 } },
  { shape: [1, 4, 10, 9], opts: { kernel: 4, stride: 3, padding: 2, ceilMode: true, countIncludePad: false } },
];

const describeOpts = (o: Pool2dOptions) =>
  `k${pair(o.kernel).join('x')} s${pair(o.stride ?? o.kernel).join('x')} p${pair(o.padding ?? 0).join('x')}` +
  `${o.ceilMode ? ' ceil' : ''}${o.countIncludePad === false ? ' exclude-pad' : ''}`;

describe('the float64 adjoints the tests use', () => {
  it('max pool indices pick the same maxima as the forward reference (reference-spatial.ts)', () => {
    for (const { shape, opts } of MAX_CASES) {
      const x = randomArray(size(shape), 3 + shape[2]);
      const g = geometry(opts);
      const mine = maxPoolIndicesRef(x, shape, g);
      const theirs = maxPool2dRef(x, shape, g.k, g.s, g.p, opts);
      expect(mine.shape).toEqual(theirs.shape);
      expect(mine.y).toEqual(Array.from(theirs.y));
    }
  });

  it('max pool backward matches central differences of ⟨maxpool(x), g⟩ away from ties', () => {
    for (const { shape, opts } of MAX_CASES.slice(0, 6)) {
      const x = randomArray(size(shape), 17 + shape[1]);
      const g = geometry(opts);
      const { idx, shape: outShape } = maxPoolIndicesRef(x, shape, g);
      const gy = randomArray(size(outShape), 23);
      const analytic = maxPoolBackwardRef(gy, idx, shape, outShape);
      const loss = (v: Float64Array) => dot(maxPool2dRef(v, shape, g.k, g.s, g.p, opts).y, gy);
      const numeric = Array.from(x, (v, i) => {
        const step = 1e-6 * Math.max(1, Math.abs(v));
        const up = Float64Array.from(x);
        const down = Float64Array.from(x);
        up[i] += step;
        down[i] -= step;
        return (loss(up) - loss(down)) / (2 * step);
      });
      expect(relL2(analytic, numeric), describeOpts(opts)).toBeLessThanOrEqual(1e-6);
    }
  });

  it('avg pool backward is the adjoint of the forward reference: ⟨F x, g⟩ = ⟨x, Fᵀ g⟩', () => {
    for (const { shape, opts } of AVG_CASES) {
      const x = randomArray(size(shape), 31);
      const g = geometry(opts);
      const fwd = avgPool2dRef(x, shape, g.k, g.s, g.p, opts);
      const gy = randomArray(size(fwd.shape), 37);
      const lhs = dot(fwd.y, gy);
      const rhs = dot(x, avgPoolBackwardRef(gy, shape, g, opts.countIncludePad ?? true));
      expect(Math.abs(lhs - rhs), describeOpts(opts)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(lhs)));
    }
  });

  it('global average pool backward is the adjoint of the forward reference', () => {
    const shape: NCHW = [2, 5, 7, 9];
    const x = randomArray(size(shape), 41);
    const gy = randomArray(10, 43);
    const lhs = dot(globalAvgPoolRef(x, shape).y, gy);
    const rhs = dot(x, globalAvgPoolBackwardRef(gy, shape));
    expect(Math.abs(lhs - rhs)).toBeLessThanOrEqual(1e-12 * Math.abs(lhs));
  });
});

/** Values in {0, 1, 2} (most windows tie) or continuous. */
function poolInput(shape: NCHW, seed: number, ties: boolean): Float64Array {
  if (!ties) return f32(randomArray(size(shape), seed));
  const r = seededRandom(seed);
  return Float64Array.from({ length: size(shape) }, () => Math.floor(r() * 3));
}

describe('maxPool2dWithIndices and maxPool2dBackward against float64', () => {
  for (const { shape, opts } of MAX_CASES) {
    for (const ties of [false, true]) {
      it(`${describeOpts(opts)} on ${shape.join('x')}${ties ? ' with ties' : ''}`, async () => {
        const g = geometry(opts);
        const x = poolInput(shape, 61 + shape[1] * shape[2], ties);
        const ref = maxPoolIndicesRef(x, shape, g);
        const gy = f32(randomArray(size(ref.shape), 67 + shape[3]));
        const [{ outputs }] = await run(
          [
            { shape, data: x },
            { shape: ref.shape, data: gy },
          ],
          (gr, [tx, tgy]) => {
            const { y, indices } = maxPool2dWithIndices(gr, tx, opts, 'maxpool');
            return [
              y,
              indices,
              maxPool2dBackward(gr, tgy, indices, toNHWC(shape), opts, 'maxpool backward'),
              maxPool2d(gr, tx, opts, 'fwd'),
            ];
          },
        );
        const [y, indices, dx, plainY] = outputs;
        expect(Array.from(y)).toEqual(ref.y);
        expect(Array.from(plainY)).toEqual(ref.y); // same values as the inference kernel
        expect(Array.from(indices)).toEqual(ref.idx);
        expect(relL2(dx, maxPoolBackwardRef(gy, ref.idx, shape, ref.shape))).toBeLessThanOrEqual(1e-6);
      });
    }
  }

  it('is bitwise deterministic, and works with tensors split across bindings', async () => {
    const shape: NCHW = [2, 5, 9, 7];
    const opts: Pool2dOptions = { kernel: 3, stride: 2, padding: 1 };
    const x = poolInput(shape, 5, true);
    const gy = f32(randomArray(2 * 5 * 5 * 4, 6));
    const inputs = [
      { shape, data: x },
      { shape: [2, 5, 5, 4] as NCHW, data: gy },
    ];
    const build = (gr: Graph, [tx, tgy]: TensorValue[]) => {
      const { indices } = maxPool2dWithIndices(gr, tx, opts, 'maxpool');
      return [maxPool2dBackward(gr, tgy, indices, toNHWC(shape), opts, 'maxpool backward')];
    };
    const [a, b] = await run(inputs, build, 2);
    expect(new Uint32Array(a.raw[0].buffer)).toEqual(new Uint32Array(b.raw[0].buffer));
    const ctx = await getTestContext();
    ctx.forceBindingChunks = 3;
    try {
      const [chunked] = await run(inputs, build);
      expect(new Uint32Array(chunked.raw[0].buffer)).toEqual(new Uint32Array(a.raw[0].buffer));
    } finally {
      ctx.forceBindingChunks = undefined;
    }
  });
});

describe('avgPool2dBackward against float64', () => {
  for (const { shape, opts } of AVG_CASES) {
    it(`${describeOpts(opts)} on ${shape.join('x')}`, async () => {
      const g = geometry(opts);
      const outShape = forEachWindow(shape, g, () => undefined);
      const gy = f32(randomArray(size(outShape), 71 + shape[2]));
      const [{ outputs }] = await run([{ shape: outShape, data: gy }], (gr, [tgy]) => [
        avgPool2dBackward(gr, tgy, toNHWC(shape), opts, 'avgpool backward'),
      ]);
      expect(relL2(outputs[0], avgPoolBackwardRef(gy, shape, g, opts.countIncludePad ?? true))).toBeLessThanOrEqual(1e-6);
    });
  }
});

describe('globalAvgPool2dBackward against float64', () => {
  for (const shape of [
    [2, 3, 7, 5],
    [1, 6, 13, 11],
    [1, 1, 1, 1],
  ] as NCHW[]) {
    it(shape.join('x'), async () => {
      const gy = f32(randomArray(shape[0] * shape[1], 79));
      const [{ outputs }] = await run([{ shape: [shape[0], shape[1], 1, 1], data: gy }], (gr, [tgy]) => [
        globalAvgPool2dBackward(gr, tgy, toNHWC(shape), 'gap backward'),
      ]);
      expect(relL2(outputs[0], globalAvgPoolBackwardRef(gy, shape))).toBeLessThanOrEqual(1e-6);
    });
  }
});

interface MaxPoolFixture {
  args: Pool2dOptions;
  inputShape: NCHW;
  /** null for NaN, '±Infinity' for ±inf. */
  input: (number | string | null)[];
  output: (number | string | null)[];
  indices: number[];
  gradOutputShape: NCHW;
  gradOutput: number[];
  gradInput: number[];
}

describe('max pooling against PyTorch 1.13 fixtures (ties, NaN, -inf)', () => {
  const names = [
    'maxpool_ties_3x3_s2_p1_9x7',
    'maxpool_ties_2x2_s2_7x5',
    'maxpool_ties_2x2_s1_6x5',
    'maxpool_ties_3x3_s2_p1_ceil_10x9',
    'maxpool_nan_3x3_s2_p1_7x6',
    'maxpool_neginf_2x2_ceil_3x4',
  ];
  const decode = (a: (number | string | null)[]) => a.map((v) => (v === null ? Number.NaN : Number(v)));
  for (const name of names) {
    it(name, async () => {
      const f = await readFixtureJson<MaxPoolFixture>(`test/fixtures/spatial-backward/${name}.json`);
      const [{ outputs }] = await run(
        [
          { shape: f.inputShape, data: decode(f.input) },
          { shape: f.gradOutputShape, data: f.gradOutput },
        ],
        (gr, [tx, tgy]) => {
          const { y, indices } = maxPool2dWithIndices(gr, tx, f.args, name);
          return [y, indices, maxPool2dBackward(gr, tgy, indices, toNHWC(f.inputShape), f.args, `${name} backward`)];
        },
      );
      const [y, indices, dx] = outputs;
      expect(Array.from(y)).toEqual(decode(f.output)); // NaN positions included
      expect(Array.from(indices)).toEqual(f.indices);
      expect(relL2(dx, f.gradInput)).toBeLessThanOrEqual(1e-6);
      // The fixture's float64 replay: our reference adjoint routes PyTorch's gradient the same way.
      expect(relL2(maxPoolBackwardRef(f.gradOutput, f.indices, f.inputShape, f.gradOutputShape), f.gradInput)).toBe(0);
    });
  }
});

describe('pooling backward errors', () => {
  it('names a gradient or indices of the wrong shape, and bad geometry', () => {
    const g = new Graph();
    const input: Shape4 = [1, 9, 7, 3];
    const gy = g.input([1, 5, 4, 3], 'gy');
    const wrong = g.input([1, 4, 4, 3], 'wrong');
    const opts: Pool2dOptions = { kernel: 3, stride: 2, padding: 1 };
    expect(() => maxPool2dBackward(g, wrong, gy, input, opts, 'mpb')).toThrow(InvalidInputError);
    expect(() => maxPool2dBackward(g, wrong, gy, input, opts, 'mpb')).toThrow(
      /mpb: gradient \[1, 4, 4, 3\] does not match the max pool output \[1, 5, 4, 3\] of input \[1, 9, 7, 3\]/,
    );
    expect(() => maxPool2dBackward(g, gy, wrong, input, opts, 'mpb')).toThrow(/mpb: indices \[1, 4, 4, 3\] do not match/);
    expect(() => avgPool2dBackward(g, wrong, input, opts, 'apb')).toThrow(/apb: gradient/);
    expect(() => avgPool2dBackward(g, gy, input, { kernel: 3, padding: 2 }, 'apb')).toThrow(/padding 2x2 must be at most half/);
    expect(() => globalAvgPool2dBackward(g, gy, input, 'gapb')).toThrow(/gapb: gradient/);
    expect(() => maxPool2dWithIndices(g, g.input([1, 1, 1, 4]), { kernel: 2 }, 'mpi')).toThrow(InvalidInputError);
    expect(() => maxPool2dWithIndices(g, g.input([1, 4097, 4097, 4]), { kernel: 2 }, 'mpi')).toThrow(/mpi: .*f32 indices/);
  });
});
