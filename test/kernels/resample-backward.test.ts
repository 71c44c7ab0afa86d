import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { Graph, type TensorValue } from '../../src/gpu/graph';
import { resample, type ResampleOptions } from '../../src/kernels/resample';
import { resampleBackward, upsampleBilinearBackward, upsampleNearestBackward } from '../../src/kernels/resample-backward';
import { readFixtureJson } from '../helpers/fixture-loader';
import { getTestContext } from '../helpers/gpu';
import { runGraph as run } from '../helpers/run-graph';
import { randomArray, relL2 } from '../helpers/random';
import { loadSpatialFixture, type NCHW, toNHWC } from '../helpers/reference-spatial';

/**
 * Resampling backward (training.md §1.7) against a float64 adjoint written here from PyTorch 1.13's index rules
 * (ratio 1/s when a scale factor is given, nearest_idx's out = in and out = 2·in cases, f32 index arithmetic).
 * The reference forward is checked against the PyTorch forward fixtures, its adjoint by a dot-product test and
 * against PyTorch's gradients (tools/torch/spatial_backward_fixtures.py).
 */

const size = (s: NCHW) => s[0] * s[1] * s[2] * s[3];
const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));
const fr = Math.fround;
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/** Per output index along one axis: two sources and their weights (PyTorch's compute_source_index_and_lambda). */
interface Tap {
  i0: number;
  i1: number;
  l0: number;
  l1: number;
}

function axisTaps(o: ResampleOptions, inSize: number, outSize: number, scale: number | undefined): Tap[] {
  const taps: Tap[] = [];
  const align = o.alignCorners ?? false;
  for (let d = 0; d < outSize; d++) {
    if (outSize === inSize) {
      taps.push({ i0: d, i1: d, l0: 1, l1: 0 });
    } else if (o.mode === 'nearest') {
      // nearest_idx: out = 2·in shifts whatever the factor; else ⌊dst · r⌋ in float.
      const src =
        outSize === 2 * inSize ? d >> 1 : Math.min(Math.floor(fr(d * fr(scale !== undefined ? 1 / scale : inSize / outSize))), inSize - 1);
      taps.push({ i0: src, i1: src, l0: 1, l1: 0 });
    } else {
      const r = fr(align ? (outSize > 1 ? (inSize - 1) / (outSize - 1) : 0) : scale !== undefined ? 1 / scale : inSize / outSize);
      const src = align ? fr(r * d) : Math.max(fr(fr(r * (d + 0.5)) - 0.5), 0);
      const i0 = Math.min(Math.floor(src), inSize - 1);
      const l1 = Math.min(Math.max(fr(src - i0), 0), 1);
      taps.push({ i0, i1: i0 < inSize - 1 ? i0 + 1 : i0, l0: 1 - l1, l1 });
    }
  }
  return taps;
}

function outShapeOf(shape: NCHW, o: ResampleOptions): NCHW {
  const [n, c, h, w] = shape;
  if (o.size) return [n, c, o.size[0], o.size[1]];
  const s = typeof o.scaleFactor === 'number' ? [o.scaleFactor, o.scaleFactor] : o.scaleFactor!;
  return [n, c, Math.floor(h * s[0]), Math.floor(w * s[1])];
}

/** Visits every (output, input, weight) term of the resampling, NCHW. */
function forEachTerm(shape: NCHW, o: ResampleOptions, visit: (out: number, inp: number, weight: number) => void): NCHW {
  const outShape = outShapeOf(shape, o);
  const [, , h, w] = shape;
  const [, , ho, wo] = outShape;
  const s = o.scaleFactor === undefined ? undefined : typeof o.scaleFactor === 'number' ? [o.scaleFactor, o.scaleFactor] : o.scaleFactor;
  const ty = axisTaps(o, h, ho, s?.[0]);
  const tx = axisTaps(o, w, wo, s?.[1]);
  for (let pl = 0; pl < shape[0] * shape[1]; pl++)
    for (let oy = 0; oy < ho; oy++)
      for (let ox = 0; ox < wo; ox++) {
        const out = (pl * ho + oy) * wo + ox;
        const a = ty[oy];
        const b = tx[ox];
        for (const [iy, wy] of [
          [a.i0, a.l0],
          [a.i1, a.l1],
        ])
          for (const [ix, wx] of [
            [b.i0, b.l0],
            [b.i1, b.l1],
          ])
            if (wy * wx !== 0) visit(out, (pl * h + iy) * w + ix, wy * wx);
      }
  return outShape;
}

function resampleRef(x: ArrayLike<number>, shape: NCHW, o: ResampleOptions) {
  const outShape = outShapeOf(shape, o);
  const y = new Float64Array(size(outShape));
  forEachTerm(shape, o, (out, inp, wt) => (y[out] += wt * x[inp]));
  return { y, shape: outShape };
}

function resampleBackwardRef(gy: ArrayLike<number>, shape: NCHW, o: ResampleOptions): Float64Array {
  const dx = new Float64Array(size(shape));
  forEachTerm(shape, o, (out, inp, wt) => (dx[inp] += wt * gy[out]));
  return dx;
}

interface Case {
  shape: NCHW;
  opts: ResampleOptions;
}

const NEAREST: Case[] = [
  { shape: [2, 3, 7, 5], opts: { mode: 'nearest', scaleFactor: 2 } },
  { shape: [1, 5, 9, 7], opts: { mode: 'nearest', scaleFactor: 3 } },
  // 10·2.1 = 21 rows (ratio 1/2.1), 9·2.1 → 18 = 2·9 columns (nearest_idx's shift).
  { shape: [1, 6, 10, 9], opts: { mode: 'nearest', scaleFactor: 2.1 } },
  { shape: [1, 3, 13, 11], opts: { mode: 'nearest', scaleFactor: 1.5 } },
  { shape: [2, 5, 7, 5], opts: { mode: 'nearest', scaleFactor: [1.1, 3] } },
  { shape: [1, 3, 13, 11], opts: { mode: 'nearest', scaleFactor: 0.7 } },
  { shape: [1, 6, 9, 7], opts: { mode: 'nearest', size: [13, 9] } },
  { shape: [1, 7, 10, 9], opts: { mode: 'nearest', size: [4, 7] } },
];

const BILINEAR: Case[] = [false, true].flatMap((alignCorners) =>
  (
    [
      [[2, 3, 7, 5], { scaleFactor: 2 }],
      [[1, 5, 9, 7], { scaleFactor: 4 }],
      [[1, 6, 10, 9], { scaleFactor: 1.5 }],
      [[1, 3, 13, 11], { scaleFactor: 0.6 }],
      [[2, 5, 7, 5], { scaleFactor: [1.1, 2.5] }],
      [[1, 6, 9, 7], { size: [13, 9] }],
      [[1, 3, 10, 9], { size: [4, 5] }],
      [[1, 2, 7, 5], { size: [1, 1] }],
    ] as [NCHW, Partial<ResampleOptions>][]
  ).map(([shape, target]) => ({ shape, opts: { ...target, mode: 'bilinear', alignCorners } })),
);

const describeOpts = (o: ResampleOptions) =>
  `${o.mode}${o.alignCorners === undefined ? '' : o.alignCorners ? ' align_corners' : ' half-pixel'} ` +
  (o.size ? `size ${o.size.join('x')}` : `×${JSON.stringify(o.scaleFactor)}`);

describe('the float64 reference the tests use', () => {
  it('matches the PyTorch forward fixtures', async () => {
    const names = ['nearest_5x7_to_13x9', 'nearest_11x10_to_4x7', 'nearest_x3_3x5'];
    for (const tag of ['ac', 'noac']) names.push(`bilinear_${tag}_5x7_to_13x9`, `bilinear_${tag}_9x8_to_4x5`, `bilinear_${tag}_x2_4x3`);
    names.push('bilinear_ac_3x4_to_1x1', 'bilinear_noac_3x4_to_1x1');
    for (const name of names) {
      const f = await loadSpatialFixture(name);
      const ref = resampleRef(f.input, f.inputShape, f.args as ResampleOptions);
      expect(ref.shape, name).toEqual(f.outputShape);
      expect(relL2(ref.y, f.output), name).toBeLessThanOrEqual(1e-6);
    }
  });

  it('its backward is the adjoint of its forward: ⟨F x, g⟩ = ⟨x, Fᵀ g⟩', () => {
    for (const { shape, opts } of [...NEAREST, ...BILINEAR]) {
      const x = randomArray(size(shape), 11);
      const fwd = resampleRef(x, shape, opts);
      const gy = randomArray(fwd.y.length, 13);
      const lhs = dot(fwd.y, gy);
      const rhs = dot(x, resampleBackwardRef(gy, shape, opts));
      expect(Math.abs(lhs - rhs), describeOpts(opts)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(lhs)));
    }
  });

  it('tells the scale-factor ratio from the size ratio (in 5, ×1.5: 1/1.5 against 5/7)', () => {
    const gy = randomArray(7, 3);
    const byScale = resampleBackwardRef(gy, [1, 1, 1, 5], { mode: 'bilinear', scaleFactor: [1, 1.5] });
    const bySize = resampleBackwardRef(gy, [1, 1, 1, 5], { mode: 'bilinear', size: [1, 7] });
    expect(relL2(byScale, bySize)).toBeGreaterThan(0.01);
  });
});

async function checkCase({ shape, opts }: Case): Promise<void> {
  const outShape = outShapeOf(shape, opts);
  const gy = f32(randomArray(size(outShape), 29 + shape[2] * shape[3]));
  const [{ outputs }] = await run([{ shape: outShape, data: gy }], (g, [t]) => [
    resampleBackward(g, t, toNHWC(shape), opts, 'resample backward'),
  ]);
  expect(relL2(outputs[0], resampleBackwardRef(gy, shape, opts))).toBeLessThanOrEqual(1e-6);
}

describe('nearest resampleBackward against float64', () => {
  for (const c of NEAREST) it(`${describeOpts(c.opts)} on ${c.shape.join('x')}`, () => checkCase(c));
});

describe('bilinear resampleBackward against float64', () => {
  for (const c of BILINEAR) it(`${describeOpts(c.opts)} on ${c.shape.join('x')}`, () => checkCase(c));
});

interface GradFixture {
  args: ResampleOptions;
  inputShape: NCHW;
  gradOutputShape: NCHW;
  gradOutput: number[];
  gradInput: number[];
}

describe('resampleBackward against PyTorch 1.13 gradients', () => {
  const names = [
    'nearest_x2_5x7',
    'nearest_x2.1_5x7',
    'nearest_x1.5_5x7',
    'nearest_size_7x10_5x7',
    'nearest_x0.7_10x9',
    'nearest_x1.1x3_5x3',
  ];
  for (const tag of ['noac', 'ac']) {
    for (const c of ['x2_5x7', 'x1.5_5x7', 'size_7x10_5x7', 'x0.6_9x7', 'size_4x3_9x7', 'x1.1x2.5_5x3']) names.push(`bilinear_${tag}_${c}`);
  }
  names.push('bilinear_noac_x4_3x2');
  for (const name of names) {
    it(name, async () => {
      const f = await readFixtureJson<GradFixture>(`test/fixtures/spatial-backward/${name}.json`);
      expect(outShapeOf(f.inputShape, f.args)).toEqual(f.gradOutputShape);
      expect(relL2(resampleBackwardRef(f.gradOutput, f.inputShape, f.args), f.gradInput)).toBeLessThanOrEqual(1e-6);
      const [{ outputs }] = await run([{ shape: f.gradOutputShape, data: f.gradOutput }], (g, [t]) => [
        resampleBackward(g, t, toNHWC(f.inputShape), f.args, name),
      ]);
      expect(relL2(outputs[0], f.gradInput)).toBeLessThanOrEqual(1e-6);
    });
  }
});

describe('resampleBackward with the forward kernel', () => {
  // Where the forward's size-based ratio equals PyTorch's (integer factors, sizes), the GPU pair is an adjoint pair.
  const cases: Case[] = [
    { shape: [2, 3, 7, 5], opts: { mode: 'nearest', scaleFactor: 2 } },
    { shape: [1, 5, 9, 7], opts: { mode: 'nearest', size: [13, 10] } },
    { shape: [1, 6, 10, 9], opts: { mode: 'bilinear', scaleFactor: 2, alignCorners: true } },
    { shape: [1, 3, 7, 5], opts: { mode: 'bilinear', scaleFactor: 4, alignCorners: false } },
    { shape: [2, 5, 13, 11], opts: { mode: 'bilinear', size: [6, 17], alignCorners: false } },
  ];
  for (const { shape, opts } of cases) {
    it(`⟨resample(x), g⟩ = ⟨x, resampleBackward(g)⟩ for ${describeOpts(opts)}`, async () => {
      const outShape = outShapeOf(shape, opts);
      const x = f32(randomArray(size(shape), 7));
      const gy = f32(randomArray(size(outShape), 8));
      const [{ outputs }] = await run(
        [
          { shape, data: x },
          { shape: outShape, data: gy },
        ],
        (g, [tx, tg]) => [resample(g, tx, opts, 'fwd'), resampleBackward(g, tg, toNHWC(shape), opts, 'bwd')],
      );
      const lhs = dot(outputs[0], gy);
      const rhs = dot(x, outputs[1]);
      expect(Math.abs(lhs - rhs)).toBeLessThanOrEqual(1e-5 * Math.sqrt(dot(outputs[0], outputs[0]) * dot(gy, gy)));
    });
  }

  it('upsampleNearestBackward / upsampleBilinearBackward take the forward helpers’ arguments', async () => {
    const shape: NCHW = [1, 3, 5, 7];
    const gy = f32(randomArray(3 * 10 * 14, 9));
    const [{ outputs }] = await run([{ shape: [1, 3, 10, 14], data: gy }], (g, [t]) => [
      upsampleNearestBackward(g, t, toNHWC(shape), { scaleFactor: 2 }, 'n'),
      upsampleBilinearBackward(g, t, toNHWC(shape), { size: [10, 14] }, true, 'b'),
    ]);
    expect(relL2(outputs[0], resampleBackwardRef(gy, shape, { mode: 'nearest', scaleFactor: 2 }))).toBeLessThanOrEqual(1e-6);
    expect(relL2(outputs[1], resampleBackwardRef(gy, shape, { mode: 'bilinear', size: [10, 14], alignCorners: true }))).toBeLessThanOrEqual(
      1e-6,
    );
  });

  it('is bitwise deterministic, and works with tensors split across bindings', async () => {
    const shape: NCHW = [2, 5, 9, 7];
    const opts: ResampleOptions = { mode: 'bilinear', scaleFactor: 1.5, alignCorners: false };
    const outShape = outShapeOf(shape, opts);
    const inputs = [{ shape: outShape, data: f32(randomArray(size(outShape), 10)) }];
    const build = (g: Graph, [t]: TensorValue[]) => [resampleBackward(g, t, toNHWC(shape), opts, 'bwd')];
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

describe('resampleBackward errors', () => {
  it('names a gradient of the wrong shape and bad options', () => {
    const g = new Graph();
    const gy = g.input([1, 10, 14, 3], 'gy');
    expect(() => resampleBackward(g, gy, [1, 5, 7, 3], { mode: 'nearest', scaleFactor: 3 }, 'rb')).toThrow(InvalidInputError);
    expect(() => resampleBackward(g, gy, [1, 5, 7, 3], { mode: 'nearest', scaleFactor: 3 }, 'rb')).toThrow(
      /rb: gradient \[1, 10, 14, 3\] does not match the nearest resample output \[1, 15, 21, 3\] of input \[1, 5, 7, 3\]/,
    );
    expect(() => resampleBackward(g, gy, [1, 5, 7, 4], { mode: 'bilinear', scaleFactor: 2 }, 'rb')).toThrow(/rb: gradient/);
    expect(() => resampleBackward(g, gy, [1, 5, 7, 3], { mode: 'nearest', scaleFactor: 2, size: [10, 14] }, 'rb')).toThrow(
      /give exactly one of size and scaleFactor/,
    );
    expect(() => resampleBackward(g, gy, [1, 5, 7, 3], { mode: 'nearest', scaleFactor: 2, alignCorners: true }, 'rb')).toThrow(
      /alignCorners only applies to bilinear/,
    );
  });
});
