import { describe, expect, it } from 'vitest';
import { Graph } from '../../src/gpu/graph';
import {
  depthToSpace,
  type PixelShuffleMode,
  pixelShuffle,
  pixelShuffleOutputShape,
  pixelUnshuffle,
  spaceToDepth,
} from '../../src/kernels/pixel-shuffle';
import { randomArray } from '../helpers/random';
import {
  depthToSpaceRef,
  loadSpatialFixture,
  type NCHW,
  pixelShuffleRef,
  pixelUnshuffleRef,
  runSpatial,
  spaceToDepthRef,
} from '../helpers/reference-spatial';

const OPS = { pixel_shuffle: pixelShuffle, pixel_unshuffle: pixelUnshuffle, depth_to_space: depthToSpace, space_to_depth: spaceToDepth };
const REFS = {
  pixel_shuffle: pixelShuffleRef,
  pixel_unshuffle: pixelUnshuffleRef,
  depth_to_space: depthToSpaceRef,
  space_to_depth: spaceToDepthRef,
};

// Deep-side shapes (channels divisible by r²) and shallow-side shapes (spatial divisible by r).
const DEEP: [NCHW, number][] = [
  [[1, 4, 1, 1], 2],
  [[1, 12, 7, 13], 2],
  [[2, 20, 9, 5], 2],
  [[1, 9, 3, 5], 3],
  [[1, 27, 5, 3], 3],
  [[1, 16, 4, 3], 4],
  [[1, 24, 3, 3], 2],
  [[1, 52, 3, 2], 2],
];
const SHALLOW: [NCHW, number][] = [
  [[1, 1, 2, 2], 2],
  [[1, 3, 14, 26], 2],
  [[2, 5, 18, 10], 2],
  [[1, 6, 9, 6], 3],
  [[1, 13, 4, 8], 4],
];

describe('pixel rearrangement against a float64 reference (exact)', () => {
  for (const mode of ['pixel_shuffle', 'depth_to_space', 'pixel_unshuffle', 'space_to_depth'] as PixelShuffleMode[]) {
    const cases = mode === 'pixel_shuffle' || mode === 'depth_to_space' ? DEEP : SHALLOW;
    for (const [shape, r] of cases) {
      it(`${mode} r=${r} on ${shape.join('x')}`, async () => {
        const x = randomArray(
          shape.reduce((a, b) => a * b),
          3 + shape[1] * 7 + shape[2],
        );
        const ref = REFS[mode](x, shape, r);
        const out = await runSpatial(x, shape, (g, t) => OPS[mode](g, t, r, mode));
        expect(out.shape).toEqual(ref.shape);
        expect(Array.from(out.y)).toEqual(Array.from(Float32Array.from(ref.y)));
      });
    }
  }

  it('pixel_unshuffle inverts pixel_shuffle and space_to_depth inverts depth_to_space', async () => {
    const shape: NCHW = [1, 18, 5, 7];
    const x = randomArray(18 * 35, 99);
    for (const [a, b] of [
      [pixelShuffle, pixelUnshuffle],
      [depthToSpace, spaceToDepth],
    ]) {
      const out = await runSpatial(x, shape, (g, t) => b(g, a(g, t, 3, 'a'), 3, 'b'));
      expect(out.shape).toEqual(shape);
      expect(Array.from(out.y)).toEqual(Array.from(Float32Array.from(x)));
    }
  });

  it('CRD and DCR orders differ', () => {
    const x = Float64Array.from({ length: 8 }, (_, i) => i);
    expect(Array.from(pixelShuffleRef(x, [1, 8, 1, 1], 2).y)).not.toEqual(Array.from(depthToSpaceRef(x, [1, 8, 1, 1], 2).y));
  });
});

describe('pixel rearrangement against PyTorch fixtures', () => {
  for (const name of ['pixel_shuffle_r2', 'pixel_shuffle_r3', 'pixel_unshuffle_r2']) {
    it(name, async () => {
      const f = await loadSpatialFixture(name);
      const op = f.op === 'pixelShuffle' ? pixelShuffle : pixelUnshuffle;
      const out = await runSpatial(f.input, f.inputShape, (g, t) => op(g, t, f.args.r, name));
      expect(out.shape).toEqual(f.outputShape);
      expect(Array.from(out.y)).toEqual(f.output);
    });
  }
});

describe('pixel rearrangement geometry', () => {
  it('computes shapes', () => {
    expect(pixelShuffleOutputShape([1, 3, 5, 12], 'pixel_shuffle', 2)).toEqual([1, 6, 10, 3]);
    expect(pixelShuffleOutputShape([1, 6, 10, 3], 'space_to_depth', 2)).toEqual([1, 3, 5, 12]);
  });

  it('rejects bad block sizes with InvalidInputError', () => {
    const g = new Graph();
    const x = g.input([1, 5, 6, 6]);
    expect(() => pixelShuffle(g, x, 2, 'ps')).toThrow(/ps: 6 input channels of \[1, 5, 6, 6\] are not divisible by r² = 4/);
    expect(() => pixelUnshuffle(g, x, 2, 'pu')).toThrow(/pu: input size 5x6 of \[1, 5, 6, 6\] is not divisible by r = 2/);
    expect(() => depthToSpace(g, x, 0, 'd2s')).toThrow(/d2s: block size 0 must be a positive integer/);
  });
});
