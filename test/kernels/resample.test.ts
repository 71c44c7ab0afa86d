import { describe, expect, it } from 'vitest';
import { Graph } from '../../src/gpu/graph';
import { resample, resampleOutputShape, type ResampleOptions, upsampleBilinear, upsampleNearest } from '../../src/kernels/resample';
import { randomArray, relL2 } from '../helpers/random';
import { bilinearRef, loadSpatialFixture, maxRelError, type NCHW, nearestRef, runSpatial } from '../helpers/reference-spatial';

interface Case {
  shape: NCHW;
  target: { scaleFactor: number | [number, number] } | { size: [number, number] };
}

function outSize(shape: NCHW, t: Case['target']): [number, number] {
  if ('size' in t) return t.size;
  const [sh, sw] = typeof t.scaleFactor === 'number' ? [t.scaleFactor, t.scaleFactor] : t.scaleFactor;
  return [Math.floor(shape[2] * sh), Math.floor(shape[3] * sw)];
}

const targetName = (t: Case['target']) => ('size' in t ? `to ${t.size.join('x')}` : `x${String(t.scaleFactor)}`);

const NEAREST: Case[] = [
  { shape: [1, 1, 1, 1], target: { scaleFactor: 2 } },
  { shape: [1, 3, 7, 13], target: { scaleFactor: 2 } },
  { shape: [2, 5, 9, 5], target: { scaleFactor: 2 } },
  { shape: [1, 6, 9, 5], target: { scaleFactor: [3, 2] } },
  { shape: [1, 13, 7, 13], target: { size: [33, 47] } },
  { shape: [1, 3, 33, 47], target: { size: [7, 13] } },
  { shape: [1, 5, 9, 5], target: { size: [9, 5] } },
  { shape: [1, 3, 1, 1], target: { size: [3, 2] } },
];

const BILINEAR: Case[] = [
  { shape: [1, 1, 1, 1], target: { scaleFactor: 2 } },
  { shape: [1, 3, 7, 13], target: { scaleFactor: 2 } },
  { shape: [2, 5, 9, 5], target: { size: [33, 47] } },
  { shape: [1, 6, 33, 47], target: { size: [7, 13] } },
  { shape: [1, 13, 9, 5], target: { scaleFactor: 4 } },
  { shape: [1, 3, 9, 5], target: { size: [1, 1] } },
  { shape: [1, 5, 7, 13], target: { size: [7, 1] } },
];

describe('nearest resampling (legacy floor index) against a float64 reference', () => {
  for (const c of NEAREST) {
    it(`${c.shape.join('x')} ${targetName(c.target)}`, async () => {
      const x = randomArray(
        c.shape.reduce((a, b) => a * b),
        31 + c.shape[1] + c.shape[3],
      );
      const [ho, wo] = outSize(c.shape, c.target);
      const ref = nearestRef(x, c.shape, ho, wo);
      const out = await runSpatial(x, c.shape, (g, t) => upsampleNearest(g, t, c.target, 'nearest'));
      expect(out.shape).toEqual(ref.shape);
      expect(relL2(out.y, ref.y)).toBeLessThanOrEqual(1e-6);
    });
  }
});

for (const alignCorners of [true, false]) {
  describe(`bilinear resampling, align_corners=${alignCorners}, against a float64 reference`, () => {
    for (const c of BILINEAR) {
      it(`${c.shape.join('x')} ${targetName(c.target)}`, async () => {
        const x = randomArray(
          c.shape.reduce((a, b) => a * b),
          57 + c.shape[1] + c.shape[2],
        );
        const [ho, wo] = outSize(c.shape, c.target);
        const ref = bilinearRef(x, c.shape, ho, wo, alignCorners);
        const out = await runSpatial(x, c.shape, (g, t) => upsampleBilinear(g, t, c.target, alignCorners, 'bilinear'));
        expect(out.shape).toEqual(ref.shape);
        expect(relL2(out.y, ref.y)).toBeLessThanOrEqual(1e-5);
      });
    }
  });
}

describe('resampling against PyTorch fixtures', () => {
  const names = [
    'nearest_5x7_to_13x9',
    'nearest_11x10_to_4x7',
    'nearest_x3_3x5',
    ...['ac', 'noac'].flatMap((t) => [
      `bilinear_${t}_5x7_to_13x9`,
      `bilinear_${t}_9x8_to_4x5`,
      `bilinear_${t}_x2_4x3`,
      `bilinear_${t}_3x4_to_1x1`,
    ]),
  ];
  for (const name of names) {
    it(name, async () => {
      const f = await loadSpatialFixture(name);
      const out = await runSpatial(f.input, f.inputShape, (g, t) => resample(g, t, f.args as ResampleOptions, name));
      expect(out.shape).toEqual(f.outputShape);
      if (f.args.mode === 'nearest') expect(Array.from(out.y)).toEqual(f.output);
      expect(maxRelError(out.y, f.output)).toBeLessThanOrEqual(1e-6);
    });
  }
});

describe('resampling geometry', () => {
  it('computes output shapes from size or scale factor', () => {
    expect(resampleOutputShape([1, 7, 13, 3], { mode: 'nearest', scaleFactor: 2 })).toEqual([1, 14, 26, 3]);
    expect(resampleOutputShape([1, 7, 13, 3], { mode: 'bilinear', scaleFactor: [1.5, 0.5] })).toEqual([1, 10, 6, 3]);
    expect(resampleOutputShape([2, 7, 13, 3], { mode: 'bilinear', size: [4, 9], alignCorners: true })).toEqual([2, 4, 9, 3]);
  });

  it('rejects invalid options with InvalidInputError', () => {
    const g = new Graph();
    const x = g.input([1, 4, 4, 3]);
    expect(() => resample(g, x, { mode: 'nearest' }, 'up')).toThrow(/up: give exactly one of size and scaleFactor/);
    expect(() => resample(g, x, { mode: 'nearest', size: [2, 2], scaleFactor: 2 }, 'up')).toThrow(/exactly one/);
    expect(() => resample(g, x, { mode: 'bilinear', size: [0, 2] }, 'up')).toThrow(/output size \[0,2\] must be two positive integers/);
    expect(() => resample(g, x, { mode: 'bilinear', scaleFactor: -1 }, 'up')).toThrow(/scale factor -1 must be positive/);
    expect(() => resample(g, x, { mode: 'nearest', scaleFactor: 0.1 }, 'up')).toThrow(/leaves no output/);
    expect(() => resample(g, x, { mode: 'nearest', scaleFactor: 2, alignCorners: true }, 'up')).toThrow(/alignCorners only applies/);
    expect(() => resample(g, x, { mode: 'bicubic' as 'nearest', scaleFactor: 2 }, 'up')).toThrow(/unknown resample mode 'bicubic'/);
  });
});
