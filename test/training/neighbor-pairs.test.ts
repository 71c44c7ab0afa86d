import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { createRng } from '../../src/io/noise';
import { drawNeighborChoices, NEIGHBOR_PAIRS, neighborSubimages } from '../../src/training/data/neighbor-pairs';
import { readFixtureJson } from '../helpers/fixture-loader';

/** test/fixtures/training/neighbor-pairs.json (tools/torch/make_neighbor_pairs_fixture.py). */
interface NeighborCase {
  name: string;
  shape: [number, number, number, number];
  input: number[];
  choices: number[];
  first: number[];
  second: number[];
}

const fixture = readFixtureJson<{ torch: string; pairs: number[][]; cases: NeighborCase[] }>('test/fixtures/training/neighbor-pairs.json');

describe('Neighbor2Neighbor pair table', () => {
  it("is train.py's idx_pair, and every pair is two 4-neighbours of a 2×2 cell", async () => {
    expect(NEIGHBOR_PAIRS.map((p) => [...p])).toEqual((await fixture).pairs);
    for (const [p, q] of NEIGHBOR_PAIRS) {
      // Cell index k = 2·row + column (0 TL, 1 TR, 2 BL, 3 BR).
      const manhattan = Math.abs((p >> 1) - (q >> 1)) + Math.abs((p & 1) - (q & 1));
      expect(manhattan).toBe(1);
    }
    expect(new Set(NEIGHBOR_PAIRS.map(([p, q]) => `${p}${q}`)).size).toBe(8);
  });
});

describe('drawNeighborChoices', () => {
  it('is deterministic for a seed and draws n·h2·w2 values in 0–7', () => {
    const a = drawNeighborChoices(createRng(5), 2, 3, 4);
    const b = drawNeighborChoices(createRng(5), 2, 3, 4);
    const c = drawNeighborChoices(createRng(6), 2, 3, 4);
    expect(a.length).toBe(24);
    expect([...a]).toEqual([...b]);
    expect([...a]).not.toEqual([...c]);
    expect(a.every((v) => v < 8)).toBe(true);
  });

  it('is uniform over the 8 pairs (χ², 7 degrees of freedom)', () => {
    const choices = drawNeighborChoices(createRng(123), 16, 50, 100); // 80 000 cells
    const counts = new Array<number>(8).fill(0);
    for (const v of choices) counts[v]++;
    const expected = choices.length / 8;
    const chi2 = counts.reduce((s, k) => s + (k - expected) ** 2 / expected, 0);
    // Mean 7, sd √14 ≈ 3.7; P(χ²₇ > 30) ≈ 1e-4.
    expect(chi2).toBeLessThan(30);
  });

  it('refuses sizes that are not positive integers', () => {
    expect(() => drawNeighborChoices(createRng(1), 0, 2, 2)).toThrow(InvalidInputError);
    expect(() => drawNeighborChoices(createRng(1), 1, 2.5, 2)).toThrow(/h2/);
  });
});

describe('neighborSubimages', () => {
  it('equals the PyTorch space_to_depth / boolean-mask sub-images exactly (odd and even sizes)', async () => {
    const { cases } = await fixture;
    const used = new Set<number>();
    for (const c of cases) {
      c.choices.forEach((v) => used.add(v));
      const { first, second } = neighborSubimages(Float32Array.from(c.input), c.shape, Uint8Array.from(c.choices));
      expect([...first], c.name).toEqual(c.first);
      expect([...second], c.name).toEqual(c.second);
    }
    // Every pair was exercised, and an odd height and width were among the cases.
    expect(used.size).toBe(8);
    expect(cases.some((c) => c.shape[2] % 2 === 1 && c.shape[3] % 2 === 1)).toBe(true);
  });

  it('takes the chosen pixels of every cell, the same ones on every channel, dropping an odd last row and column', () => {
    // 1 × 2 × 5 × 5: value = 100·channel + 10·row + column.
    const [n, c, h, w] = [1, 2, 5, 5];
    const data = Float32Array.from({ length: n * c * h * w }, (_, i) => {
      const ch = Math.floor(i / (h * w));
      const y = Math.floor(i / w) % h;
      return 100 * ch + 10 * y + (i % w);
    });
    // Cells (0,0) (0,1) (1,0) (1,1): pairs (0,1), (3,2), (1,3), (2,0).
    const { first, second } = neighborSubimages(data, [n, c, h, w], Uint8Array.from([0, 7, 2, 5]));
    // Cell (i, j) spans rows 2i, 2i+1 and columns 2j, 2j+1.
    expect([...first]).toEqual([0, 13, 21, 32, 100, 113, 121, 132]);
    expect([...second]).toEqual([1, 12, 31, 22, 101, 112, 131, 122]);
  });

  it('refuses a wrong shape, too few or too many choices, a choice above 7 and a side under 2', () => {
    const data = new Float32Array(16);
    expect(() => neighborSubimages(data, [1, 1, 4, 4], new Uint8Array(3))).toThrow(InvalidInputError);
    expect(() => neighborSubimages(data, [1, 1, 4, 4], new Uint8Array(5))).toThrow(/5 choices/);
    expect(() => neighborSubimages(data, [1, 1, 4, 4], Uint8Array.from([0, 1, 2, 8]))).toThrow(/choice 8/);
    expect(() => neighborSubimages(data, [1, 1, 4, 5], new Uint8Array(4))).toThrow(/values are not/);
    expect(() => neighborSubimages(new Float32Array(4), [1, 1, 1, 4], new Uint8Array(0))).toThrow(/at least 2×2/);
  });
});
