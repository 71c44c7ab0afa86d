import { describe, expect, it } from 'vitest';
import { Graph } from '../../src/gpu/graph';
import { crop2d, type Pad2d, pad2d, pad2dOutputShape, type PadMode, replicatePadToMultiple } from '../../src/kernels/pad';
import { randomArray } from '../helpers/random';
import { loadSpatialFixture, type NCHW, padRef, runSpatial } from '../helpers/reference-spatial';

const CASES: [PadMode, NCHW, Pad2d][] = [
  ['replicate', [1, 1, 1, 1], { top: 2, bottom: 3, left: 1, right: 4 }],
  ['replicate', [1, 5, 7, 13], { top: 1, bottom: 2, left: 3, right: 0 }],
  ['replicate', [2, 3, 9, 5], { top: 0, bottom: 7, left: 0, right: 3 }],
  ['zeros', [1, 6, 9, 5], { top: 1, bottom: 2, left: 0, right: 3 }],
  ['zeros', [2, 13, 7, 13], { top: -1, bottom: 2, left: -2, right: -1 }],
  ['zeros', [1, 3, 1, 1], { top: 0, bottom: 1, left: 1, right: 0 }],
  ['reflect', [1, 3, 7, 13], { top: 6, bottom: 6, left: 12, right: 12 }],
  ['reflect', [1, 5, 9, 5], { top: 1, bottom: 2, left: 3, right: 4 }],
  ['reflect', [2, 6, 33, 47], { top: 3, bottom: 0, left: 5, right: 1 }],
];

const checkExact = (y: Float32Array, ref: Float64Array) => expect(Array.from(y)).toEqual(Array.from(Float32Array.from(ref)));

describe('pad2d against a float64 reference (exact)', () => {
  for (const [mode, shape, pads] of CASES) {
    it(`${mode} ${JSON.stringify(pads)} on ${shape.join('x')}`, async () => {
      const x = randomArray(
        shape.reduce((a, b) => a * b),
        17 + shape[1] + shape[3],
      );
      const ref = padRef(x, shape, pads, mode);
      const out = await runSpatial(x, shape, (g, t) => pad2d(g, t, pads, mode, 'pad'));
      expect(out.shape).toEqual(ref.shape);
      checkExact(out.y, ref.y);
    });
  }

  it('replicatePadToMultiple pads right/bottom to a multiple of 64 (SCUNet)', async () => {
    const shape: NCHW = [1, 3, 33, 47];
    const x = randomArray(3 * 33 * 47, 5);
    const ref = padRef(x, shape, { top: 0, bottom: 31, left: 0, right: 17 }, 'replicate');
    const out = await runSpatial(x, shape, (g, t) => replicatePadToMultiple(g, t, 64, 'pad64'));
    expect(out.shape).toEqual([1, 3, 64, 64]);
    checkExact(out.y, ref.y);
  });

  it('replicatePadToMultiple on an exact multiple is a copy', async () => {
    const shape: NCHW = [1, 5, 8, 16];
    const x = randomArray(5 * 8 * 16, 6);
    const out = await runSpatial(x, shape, (g, t) => replicatePadToMultiple(g, t, 8, 'pad8'));
    expect(out.shape).toEqual(shape);
    checkExact(out.y, x);
  });

  it('crop2d takes a window', async () => {
    const shape: NCHW = [2, 5, 33, 47];
    const x = randomArray(2 * 5 * 33 * 47, 8);
    const ref = padRef(x, shape, { top: -3, bottom: -10, left: -10, right: -7 }, 'zeros');
    const out = await runSpatial(x, shape, (g, t) => crop2d(g, t, { y0: 3, x0: 10, h: 20, w: 30 }, 'crop'));
    expect(out.shape).toEqual([2, 5, 20, 30]);
    checkExact(out.y, ref.y);
  });

  it('pad then crop restores the input (SCUNet round trip)', async () => {
    const shape: NCHW = [1, 6, 9, 5];
    const x = randomArray(6 * 9 * 5, 9);
    const out = await runSpatial(x, shape, (g, t) =>
      crop2d(g, replicatePadToMultiple(g, t, 8, 'pad'), { y0: 0, x0: 0, h: 9, w: 5 }, 'crop'),
    );
    expect(out.shape).toEqual(shape);
    checkExact(out.y, x);
  });
});

describe('pad2d against PyTorch fixtures', () => {
  for (const name of ['pad_reflect_5x7', 'pad_replicate_5x7', 'pad_zeros_crop_5x7']) {
    it(name, async () => {
      const f = await loadSpatialFixture(name);
      const out = await runSpatial(f.input, f.inputShape, (g, t) => pad2d(g, t, f.args.pads, f.args.mode, name));
      expect(out.shape).toEqual(f.outputShape);
      expect(Array.from(out.y)).toEqual(f.output);
    });
  }
});

describe('pad2d geometry', () => {
  it('computes shapes', () => {
    expect(pad2dOutputShape([1, 5, 7, 3], { top: 1, bottom: -2, left: 3, right: 0 }, 'zeros')).toEqual([1, 4, 10, 3]);
  });

  it('rejects invalid padding with InvalidInputError', () => {
    const g = new Graph();
    const x = g.input([1, 5, 7, 3]);
    expect(() => pad2d(g, x, { top: 5, bottom: 0, left: 0, right: 0 }, 'reflect', 'rp')).toThrow(
      /rp: reflect padding .* must be smaller than the input size 5x7/,
    );
    expect(() => pad2d(g, x, { top: -1, bottom: 0, left: 0, right: 0 }, 'replicate', 'p')).toThrow(
      /negative padding .* only supported in 'zeros'/,
    );
    expect(() => pad2d(g, x, { top: -3, bottom: -2, left: 0, right: 0 }, 'zeros', 'p')).toThrow(/leaves no output of a 5x7 input/);
    expect(() => pad2d(g, x, { top: 0.5, bottom: 0, left: 0, right: 0 }, 'zeros', 'p')).toThrow(/must be integers/);
    expect(() => pad2d(g, x, { top: 0, bottom: 0, left: 0, right: 0 }, 'circular' as PadMode, 'p')).toThrow(
      /unknown padding mode 'circular'/,
    );
    expect(() => crop2d(g, x, { y0: 1, x0: 0, h: 5, w: 7 }, 'c')).toThrow(/c: crop window .* does not lie inside the input \[1, 5, 7, 3\]/);
    expect(() => replicatePadToMultiple(g, x, 0, 'r')).toThrow(/multiple 0 must be a positive integer/);
  });
});
