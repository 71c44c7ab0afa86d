import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { InvalidInputError } from '../../src/errors';
import type { FloatImage, RasterImage } from '../../src/io/image';
import { type MetricImage, psnr } from '../../src/io/metrics';
import { gaussianWeights, ssim } from '../../src/io/ssim';
import { fromBase64 } from './helpers';

interface MetricCase {
  name: string;
  kind: 'u8' | 'u16' | 'f32';
  width: number;
  height: number;
  channels: 1 | 3;
  dataRange: number;
  a: string;
  b: string;
  psnrSkimage: number;
  psnrKair: number;
  ssimSkimage: number;
  ssimKair: number;
}

const { cases } = JSON.parse(readFileSync(new URL('../fixtures/metrics/cases.json', import.meta.url), 'utf8')) as {
  cases: MetricCase[];
};

/** Builds the fixture pair as the library's image types: rasters for integers, planar FloatImage for float32. */
function images(c: MetricCase): [MetricImage, MetricImage] {
  const build = (b64: string): MetricImage => {
    if (c.kind === 'f32') {
      const hwc = fromBase64(b64, 32) as Float32Array;
      const plane = c.width * c.height;
      const chw = new Float32Array(hwc.length);
      for (let i = 0; i < plane; i++) for (let k = 0; k < c.channels; k++) chw[k * plane + i] = hwc[i * c.channels + k];
      return { width: c.width, height: c.height, channels: c.channels, data: chw } satisfies FloatImage;
    }
    const bitDepth = c.kind === 'u16' ? 16 : 8;
    return { width: c.width, height: c.height, channels: c.channels, bitDepth, data: fromBase64(b64, bitDepth) } as RasterImage;
  };
  return [build(c.a), build(c.b)];
}

describe('ssim and psnr against the float64 NumPy references (tools/metrics_reference.py)', () => {
  it('has the cases', () => expect(cases.length).toBeGreaterThanOrEqual(8));
  for (const c of cases) {
    it(`${c.name}: SSIM = skimage (gaussian, σ 1.5, population covariance) = KAIR, PSNR = both`, () => {
      const [a, b] = images(c);
      const s = ssim(a, b, { dataRange: c.dataRange });
      expect(Math.abs(s - c.ssimSkimage)).toBeLessThan(1e-10);
      expect(Math.abs(s - c.ssimKair)).toBeLessThan(1e-10);
      const p = psnr(a, b, { dataRange: c.dataRange });
      expect(Math.abs(p - c.psnrSkimage)).toBeLessThan(1e-10);
      expect(Math.abs(p - c.psnrKair)).toBeLessThan(1e-10);
      if (c.kind !== 'f32' && (c.dataRange === 255 || c.dataRange === 65535)) {
        // The default data range of integer images is their bit depth's maximum.
        expect(ssim(a, b)).toBe(s);
        expect(psnr(a, b)).toBe(p);
      }
    });
  }

  it('identical images: ssim 1, psnr Infinity; symmetric in its arguments', () => {
    const [a, b] = images(cases[0]);
    expect(ssim(a, a)).toBeCloseTo(1, 14);
    expect(psnr(a, a)).toBe(Infinity);
    expect(ssim(a, b)).toBeCloseTo(ssim(b, a), 14);
  });

  it('Gaussian window: 11 taps for σ 1.5, normalised, symmetric', () => {
    const w = gaussianWeights(1.5);
    expect(w.length).toBe(11);
    expect(w.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 15);
    expect(w[0]).toBe(w[10]);
    expect(gaussianWeights(1).length).toBe(9); // floor(3.5 + 0.5) = 4
  });

  it('ignores alpha planes', () => {
    const [a, b] = images(cases[0]) as [RasterImage, RasterImage];
    const withAlpha = { ...a, alpha: new Uint8Array(a.width * a.height) };
    expect(ssim(withAlpha, b)).toBe(ssim(a, b));
  });
});

describe('metric errors', () => {
  const g8 = (w: number, h: number): RasterImage => ({ width: w, height: h, channels: 1, bitDepth: 8, data: new Uint8Array(w * h) });
  it('size, channel and kind mismatches', () => {
    expect(() => ssim(g8(12, 12), g8(12, 13))).toThrow('ssim: image sizes differ, a is 12x12x1 and b is 12x13x1');
    const f: FloatImage = { width: 12, height: 12, channels: 1, data: new Float32Array(144) };
    expect(() => ssim(g8(12, 12), f)).toThrow(/a is a 8-bit raster and b is a planar float image; convert one/);
    const g16: RasterImage = { width: 12, height: 12, channels: 1, bitDepth: 16, data: new Uint16Array(144) };
    expect(() => psnr(g8(12, 12), g16)).toThrow(InvalidInputError);
    expect(() => psnr(g8(2, 2), [1, 2, 3, 4] as unknown as RasterImage)).toThrow(/two images or two arrays/);
  });
  it('images smaller than the window and bad options', () => {
    expect(() => ssim(g8(10, 30), g8(10, 30))).toThrow('ssim: the images (10x30) must be at least as large as the 11x11 Gaussian window');
    expect(() => ssim(g8(11, 11), g8(11, 11), { dataRange: 0 })).toThrow(/dataRange must be a positive/);
    expect(() => ssim(g8(11, 11), g8(11, 11), { sigma: -1 })).toThrow(/sigma/);
    expect(() => psnr(g8(2, 2), g8(2, 2), { dataRange: -1 })).toThrow(/data range/);
  });
});
