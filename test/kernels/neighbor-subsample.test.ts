import { describe, expect, it } from 'vitest';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, type Shape4 } from '../../src/gpu/tensor';
import { NEIGHBOR_PAIR_TABLE, neighborSubimages } from '../../src/kernels/neighbor-subsample';
import { scalarWeightedAdd } from '../../src/kernels/scalar-weighted-add';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';

/** Row-major (dy, dx) of each corner of a 2×2 cell: 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right. */
const CORNER: readonly (readonly [number, number])[] = [
  [0, 0],
  [0, 1],
  [1, 0],
  [1, 1],
];

/** NCHW sub-image `which` (0: g1, 1: g2) of x [n, c, h, w] by brute force. */
function subimage(x: Float32Array, [n, c, h, w]: readonly number[], choices: Uint8Array, which: 0 | 1): Float32Array {
  const h2 = Math.floor(h / 2);
  const w2 = Math.floor(w / 2);
  const out = new Float32Array(n * c * h2 * w2);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h2; y++)
        for (let xx = 0; xx < w2; xx++) {
          const [dy, dx] = CORNER[NEIGHBOR_PAIR_TABLE[choices[(b * h2 + y) * w2 + xx]][which]];
          out[((b * c + ch) * h2 + y) * w2 + xx] = x[((b * c + ch) * h + 2 * y + dy) * w + 2 * xx + dx];
        }
  return out;
}

describe('Neighbor2Neighbor sub-sampler on the GPU', () => {
  it('pairs are distinct 4-neighbours (never diagonal), each unordered pair in both orders', () => {
    const keys = new Set(NEIGHBOR_PAIR_TABLE.map(([a, b]) => `${a}${b}`));
    expect(keys.size).toBe(8);
    for (const [a, b] of NEIGHBOR_PAIR_TABLE) {
      const [ya, xa] = CORNER[a];
      const [yb, xb] = CORNER[b];
      expect(Math.abs(ya - yb) + Math.abs(xa - xb)).toBe(1);
      expect(keys.has(`${b}${a}`)).toBe(true);
    }
  });

  const shapes: [n: number, c: number, h: number, w: number][] = [
    [2, 3, 9, 7],
    [1, 1, 16, 16],
    [3, 6, 10, 5],
  ];
  for (const [n, c, h, w] of shapes) {
    it(`g1 and g2 of ${n}x${c}x${h}x${w} equal the brute-force gathers exactly`, async () => {
      const ctx = await getTestContext();
      const shape: Shape4 = [n, h, w, c];
      const h2 = Math.floor(h / 2);
      const w2 = Math.floor(w / 2);
      const x = Float32Array.from(randomArray(n * c * h * w, 5 + c));
      // Every choice occurs; the order is scrambled by a fixed stride.
      const choices = Uint8Array.from({ length: n * h2 * w2 }, (_, i) => (i * 5 + Math.floor(i / 3)) % 8);
      const g = new Graph();
      const tx = g.input(shape, 'x');
      const tc = g.input([n, h2, w2, 1], 'choices');
      const { first, second } = neighborSubimages(g, tx, tc, 'nb2nb');
      g.output(first);
      g.output(second);
      const plan = await Plan.compile(ctx, g);
      plan.poison();
      const { outputs } = await plan.run([nchwToNhwcPadded(x, shape), nchwToNhwcPadded(Float32Array.from(choices), [n, h2, w2, 1])]);
      plan.dispose();
      const outShape: Shape4 = [n, h2, w2, c];
      expect(nhwcPaddedToNchw(outputs[0], outShape)).toEqual(subimage(x, [n, c, h, w], choices, 0));
      expect(nhwcPaddedToNchw(outputs[1], outShape)).toEqual(subimage(x, [n, c, h, w], choices, 1));
      const cp = Math.ceil(c / 4) * 4;
      for (const out of outputs) out.forEach((v, i) => expect(i % cp >= c ? v : 0).toBe(0));
    });
  }

  it('names choices that do not fit', () => {
    const g = new Graph();
    const x = g.input([1, 8, 8, 1], 'x');
    expect(() => neighborSubimages(g, x, g.input([1, 4, 3, 1], 'c'), 'nb2nb')).toThrow(/nb2nb: choices \[1, 4, 3, 1\] do not fit/);
    expect(() => neighborSubimages(g, g.input([1, 1, 8, 1], 'thin'), g.input([1, 1, 4, 1], 'c'), 'nb2nb')).toThrow(/too small/);
  });
});

describe('scalarWeightedAdd', () => {
  it('a + s·b with s read from a tensor, against float64', async () => {
    const ctx = await getTestContext();
    const shape: Shape4 = [2, 5, 7, 3];
    const count = 2 * 5 * 7 * 3;
    const a = randomArray(count, 1);
    const b = randomArray(count, 2);
    const g = new Graph();
    const y = scalarWeightedAdd(g, g.input(shape, 'a'), g.input(shape, 'b'), g.input([1, 1, 1, 1], 's'), 'a + s b');
    g.output(y);
    const plan = await Plan.compile(ctx, g);
    for (const s of [0, 0.37, 2]) {
      plan.poison();
      const { outputs } = await plan.run([nchwToNhwcPadded(a, shape), nchwToNhwcPadded(b, shape), Float32Array.of(s, 0, 0, 0)]);
      expect(
        relL2(
          nhwcPaddedToNchw(outputs[0], shape),
          a.map((v, i) => v + s * b[i]),
        ),
      ).toBeLessThanOrEqual(1e-6);
    }
    plan.dispose();
    expect(() => scalarWeightedAdd(g, g.input(shape), g.input(shape), g.input([1, 1, 2, 1]), 'w')).toThrow(/weight must be \[1, 1, 1, 1\]/);
  });
});
