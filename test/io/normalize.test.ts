import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { InvalidInputError } from '../../src/errors';
import type { FloatImage } from '../../src/io/image';
import { relativeL2 } from '../../src/io/metrics';
import { percentile, percentileDenormalize, percentileNormalize, percentiles } from '../../src/io/normalize';
import { fromBase64 } from './helpers';

const fx = JSON.parse(readFileSync(new URL('../fixtures/io/percentile.json', import.meta.url), 'utf8')) as {
  ps: number[];
  arrays: { values: string; expected: number[] }[];
  csbdeep: { width: number; height: number; channels: number; data: string; normalized: string; low: number[]; high: number[] };
};

describe('percentile = np.percentile (linear)', () => {
  fx.arrays.forEach((a, k) => {
    it(`array ${k} (${fromBase64(a.values, 32).length} values) at p = ${fx.ps.join(', ')}`, () => {
      const values = fromBase64(a.values, 32);
      const got = percentiles(values, fx.ps);
      got.forEach((v, i) => expect(v).toBe(a.expected[i]));
      expect(percentile(values, fx.ps[3])).toBe(a.expected[3]);
    });
  });

  it('rejects empty input, NaN and p outside [0, 100]', () => {
    expect(() => percentile([], 50)).toThrow(InvalidInputError);
    expect(() => percentile([1, NaN], 50)).toThrow('percentile: value 1 is NaN');
    expect(() => percentile([1], 101)).toThrow(/p must be in \[0, 100\]/);
    expect(() => percentile([1], -1)).toThrow(/p must be in/);
  });
});

describe('percentileNormalize (CSBDeep normalize_mi_ma, float32) and its inverse', () => {
  const { width, height, channels } = fx.csbdeep;
  const image: FloatImage = { width, height, channels, data: fromBase64(fx.csbdeep.data, 32) as Float32Array };

  it('per-channel 1 / 99.8 percentiles and normalised values match CSBDeep', () => {
    const { image: out, range } = percentileNormalize(image);
    range.low.forEach((v, c) => expect(v).toBe(fx.csbdeep.low[c]));
    range.high.forEach((v, c) => expect(v).toBe(fx.csbdeep.high[c]));
    expect(range.eps).toBe(1e-20);
    // CSBDeep computes in float32, we in float64 then round: a few float32 ulps at most.
    expect(relativeL2(out.data, fromBase64(fx.csbdeep.normalized, 32))).toBeLessThan(1e-7);
  });

  it('the inverse restores the input range (float32 rounding only)', () => {
    const { image: out, range } = percentileNormalize(image);
    const back = percentileDenormalize(out, range);
    expect(relativeL2(back.data, image.data)).toBeLessThan(1e-7);
    // An upscaled output (other size, same channels) is mapped back too.
    const up: FloatImage = { width: 2, height: 1, channels, data: new Float32Array(2 * channels).fill(1) };
    const mapped = percentileDenormalize(up, range);
    expect(mapped.data[0]).toBeCloseTo(range.high[0], 6);
    expect(() => percentileDenormalize({ ...up, channels: 1, data: new Float32Array(2) }, range)).toThrow(
      'percentileDenormalize: the range has 3 channel(s) but the image has 1',
    );
  });

  it('statistics from a band of rows only (an SEM bar left out), joint over channels, clipping', () => {
    const data = new Float32Array(2 * 10).fill(0.5);
    data.fill(1000, 16); // the last 3 pixels ("bar" in the last row) are huge
    data[0] = 0;
    const img: FloatImage = { width: 2, height: 10, channels: 1, data };
    const withBar = percentileNormalize(img, { pLow: 0, pHigh: 100 });
    expect(withBar.range.high[0]).toBe(1000);
    const without = percentileNormalize(img, { pLow: 0, pHigh: 100, rows: [0, 8] });
    expect(without.range).toEqual({ low: [0], high: [0.5], eps: 1e-20 });
    expect(without.image.data[1]).toBe(1);
    expect(percentileNormalize(img, { pLow: 0, pHigh: 100, rows: [0, 8], clip: true }).image.data[19]).toBe(1);
    const joint = percentileNormalize(image, { perChannel: false });
    expect(new Set(joint.range.low).size).toBe(1);
    expect(() => percentileNormalize(img, { rows: [5, 5] })).toThrow(/rows must be a non-empty range/);
    expect(() => percentileNormalize(img, { pLow: 50, pHigh: 10 })).toThrow(/pLow < pHigh/);
  });
});
