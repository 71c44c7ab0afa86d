import { describe, expect, it } from 'vitest';

import { InvalidInputError } from '../../src/errors';
import { maxAbsDiff, mse, psnr, relativeL2 } from '../../src/io/metrics';

describe('psnr', () => {
  it('matches 10*log10(peak^2/mse) on simple numbers', () => {
    // mse = (0.1^2 * 4) / 4 = 0.01 -> 20 dB
    expect(psnr([0, 0, 0, 0], [0.1, 0.1, 0.1, 0.1])).toBeCloseTo(20, 12);
    // errors 10 and 10 -> mse 100; peak 255 -> 10*log10(65025/100)
    expect(psnr([0, 255], [10, 245], 255)).toBeCloseTo(10 * Math.log10((255 * 255) / 100), 12);
    // errors 1, 2, 3 -> mse 14/3
    const expected = 10 * Math.log10((255 * 255) / (14 / 3));
    expect(psnr(Uint8Array.of(10, 20, 30), Uint8Array.of(11, 22, 33), 255)).toBeCloseTo(expected, 12);
  });

  it('accumulates in float64 on float32 inputs', () => {
    const n = 1 << 20;
    const a = new Float32Array(n);
    const b = new Float32Array(n).fill(Math.fround(1e-3));
    const d = Math.fround(1e-3);
    expect(psnr(a, b)).toBeCloseTo(10 * Math.log10(1 / (d * d)), 9);
  });

  it('is Infinity for identical arrays', () => {
    expect(psnr(Float32Array.of(0.1, 0.2), Float32Array.of(0.1, 0.2))).toBe(Infinity);
  });

  it('rejects mismatched lengths, empty arrays and bad peaks', () => {
    expect(() => psnr([1, 2, 3], [1, 2])).toThrow(InvalidInputError);
    expect(() => psnr([1, 2, 3], [1, 2])).toThrow('psnr: length mismatch, a has 3 elements but b has 2');
    expect(() => psnr([], [])).toThrow(/empty/);
    expect(() => psnr([1], [2], 0)).toThrow(/peak/);
    expect(() => psnr([1], [2], NaN)).toThrow(/peak/);
  });

  it('mse is the mean of squared differences', () => {
    expect(mse([1, 2, 3, 4], [1, 2, 3, 6])).toBe(1);
  });
});

describe('relativeL2', () => {
  it('is ||y - ref|| / ||ref||', () => {
    // diff (0, 0, 1), ||ref|| = sqrt(1 + 4 + 4) = 3
    expect(relativeL2([1, 2, 3], [1, 2, 2])).toBeCloseTo(1 / 3, 15);
    expect(relativeL2(Float32Array.of(1.5, -2), Float32Array.of(1.5, -2))).toBe(0);
  });

  it('returns ||y|| when ref is all zeros', () => {
    expect(relativeL2([3, 4], [0, 0])).toBe(5);
    expect(relativeL2([0, 0], [0, 0])).toBe(0);
  });

  it('does not underflow or overflow for tiny and huge values', () => {
    expect(relativeL2([2e-200, 0], [1e-200, 0])).toBeCloseTo(1, 12);
    expect(relativeL2([3e200, 4e200], [0, 0])).toBeCloseTo(5e200, -190);
    expect(relativeL2([2e300, 2e300], [1e300, 1e300])).toBeCloseTo(1, 12);
  });

  it('rejects mismatched lengths', () => {
    expect(() => relativeL2([1], [1, 2])).toThrow(/length mismatch, y has 1 elements but ref has 2/);
  });

  it('propagates NaN', () => {
    expect(relativeL2([NaN, 1], [1, 1])).toBeNaN();
  });
});

describe('maxAbsDiff', () => {
  it('finds the largest difference', () => {
    expect(maxAbsDiff([1, 5, -3], [1, 4, 0])).toBe(3);
    expect(maxAbsDiff([1, NaN], [1, 1])).toBeNaN();
  });
});
