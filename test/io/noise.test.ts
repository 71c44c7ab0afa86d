import { describe, expect, it } from 'vitest';

import { InvalidInputError } from '../../src/errors';
import { addGaussianNoise, createRng } from '../../src/io/noise';

function take(seed: number, n: number, what: 'next' | 'normal' | 'nextUint32' = 'next'): number[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, () => rng[what]());
}

describe('createRng', () => {
  it('is deterministic: same seed, same sequence', () => {
    expect(take(42, 1000)).toEqual(take(42, 1000));
    expect(take(7, 1000, 'normal')).toEqual(take(7, 1000, 'normal'));
  });

  it('gives different sequences for different seeds (also nearby and large ones)', () => {
    const seeds = [0, 1, 2, 42, -1, 2 ** 32, 2 ** 32 + 1, 2 ** 40 + 5, Number.MAX_SAFE_INTEGER];
    const firsts = seeds.map((s) => JSON.stringify(take(s, 4)));
    expect(new Set(firsts).size).toBe(seeds.length);
    const firstOfEach = Array.from({ length: 1000 }, (_, s) => take(s, 1)[0]);
    expect(new Set(firstOfEach).size).toBe(1000);
  });

  it('produces the documented xoshiro128** stream (golden values, checked with a Python implementation)', () => {
    expect(take(0, 5, 'nextUint32')).toEqual([3733119852, 4156223338, 2961993901, 3978119837, 4291452858]);
    expect(take(42, 5, 'nextUint32')).toEqual([955885115, 1328154995, 946741108, 3308724645, 1914051306]);
    expect(take(-1, 5, 'nextUint32')).toEqual([3422843574, 242442348, 2300246898, 1583318248, 2369545422]);
    expect(take(2 ** 40 + 5, 5, 'nextUint32')).toEqual([4082129432, 3052899472, 1928946100, 547779784, 3197135944]);
  });

  it('next() is uniform in [0, 1)', () => {
    const xs = take(123, 100_000);
    let sum = 0;
    const bins = new Array<number>(10).fill(0);
    let outOfRange = 0;
    for (const x of xs) {
      if (!(x >= 0 && x < 1)) outOfRange++;
      sum += x;
      bins[Math.floor(x * 10)]++;
    }
    expect(sum / xs.length).toBeGreaterThan(0.49);
    expect(sum / xs.length).toBeLessThan(0.51);
    expect(outOfRange).toBe(0);
    for (const b of bins) expect(Math.abs(b - 10_000)).toBeLessThan(600);
    expect(xs.some((x) => x * 2 ** 32 !== Math.floor(x * 2 ** 32))).toBe(true); // more than 32 bits used
  });

  it('normal() has mean ~0 and std ~1 over 1e5 samples', () => {
    const n = 100_000;
    const zs = take(2024, n, 'normal');
    let s1 = 0;
    let s2 = 0;
    let within1 = 0;
    expect(zs.every(Number.isFinite)).toBe(true);
    for (const z of zs) {
      s1 += z;
      s2 += z * z;
      if (Math.abs(z) < 1) within1++;
    }
    const mean = s1 / n;
    const std = Math.sqrt(s2 / n - mean * mean);
    expect(Math.abs(mean)).toBeLessThan(0.02);
    expect(Math.abs(std - 1)).toBeLessThan(0.02);
    expect(within1 / n).toBeGreaterThan(0.67); // 0.6827 for a standard normal
    expect(within1 / n).toBeLessThan(0.695);
  });

  it('rejects seeds that are not safe integers', () => {
    expect(() => createRng(1.5)).toThrow(InvalidInputError);
    expect(() => createRng(NaN)).toThrow(/seed must be a safe integer/);
    expect(() => createRng(2 ** 60)).toThrow(InvalidInputError);
  });
});

describe('addGaussianNoise', () => {
  it('returns a new array x + sigma * normal(), reproducible by seed', () => {
    const x = new Float32Array(1000).fill(0.5);
    const sigma = 25 / 255;
    const y = addGaussianNoise(x, sigma, 1);
    expect(y).not.toBe(x);
    expect(y).toBeInstanceOf(Float32Array);
    expect(x.every((v) => v === 0.5)).toBe(true); // input untouched
    expect(addGaussianNoise(x, sigma, 1)).toEqual(y);
    expect(addGaussianNoise(x, sigma, 2)).not.toEqual(y);
    const rng = createRng(1);
    const manual = Float32Array.from(x, (v) => v + sigma * rng.normal());
    expect(y).toEqual(manual);
  });

  it('does not clip (values leave [0, 1]) and has the requested sigma', () => {
    const n = 100_000;
    const x = new Float32Array(n); // all zeros
    const sigma = 25 / 255;
    const y = addGaussianNoise(x, sigma, 99);
    expect(y.some((v) => v < 0)).toBe(true);
    let s2 = 0;
    for (const v of y) s2 += v * v;
    expect(Math.sqrt(s2 / n) / sigma).toBeGreaterThan(0.98);
    expect(Math.sqrt(s2 / n) / sigma).toBeLessThan(1.02);
    const big = addGaussianNoise(new Float32Array(1000).fill(1), 0.5, 3);
    expect(big.some((v) => v > 1)).toBe(true);
  });

  it('sigma 0 copies the data', () => {
    const x = Float32Array.of(0.1, 0.2, 0.3);
    expect(addGaussianNoise(x, 0, 5)).toEqual(x);
  });

  it('rejects bad arguments', () => {
    expect(() => addGaussianNoise([1] as unknown as Float32Array, 0.1, 1)).toThrow(/Float32Array/);
    expect(() => addGaussianNoise(new Float32Array(1), -0.1, 1)).toThrow(/sigma must be a finite number >= 0/);
    expect(() => addGaussianNoise(new Float32Array(1), Infinity, 1)).toThrow(InvalidInputError);
    expect(() => addGaussianNoise(new Float32Array(1), 0.1, 0.5)).toThrow(/seed/);
  });
});
