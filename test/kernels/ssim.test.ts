import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import type { FloatImage, Float32RasterImage, RasterImage } from '../../src/io/image';
import { psnr } from '../../src/io/metrics';
import { ssim } from '../../src/io/ssim';
import { psnrGpu, ssimGpu } from '../../src/runtime/ssim-gpu';
import { getTestContext } from '../helpers/gpu';
import { seededRandom } from '../helpers/random';

// Expected values come from the float64 CPU implementations (src/io/ssim.ts, src/io/metrics.ts), which are
// checked against scikit-image in test/io.
const SSIM_TOL = 1e-5;
const PSNR_TOL = 1e-4;

type Pair<T> = [T, T];

/** An 8- or 16-bit raster and a noisy copy (noise amplitude `noise`·max, clipped), or an unrelated image. */
function rasterPair(
  width: number,
  height: number,
  channels: 1 | 3,
  bitDepth: 8 | 16,
  noise: number | 'independent',
  seed: number,
): Pair<RasterImage> {
  const rand = seededRandom(seed);
  const max = bitDepth === 8 ? 255 : 65535;
  const n = width * height * channels;
  const make = () => (bitDepth === 8 ? new Uint8Array(n) : new Uint16Array(n));
  const a = make();
  const b = make();
  for (let i = 0; i < n; i++) {
    a[i] = Math.round(rand() * max);
    b[i] =
      noise === 'independent' ? Math.round(rand() * max) : Math.min(max, Math.max(0, Math.round(a[i] + (rand() - 0.5) * 2 * noise * max)));
  }
  return [
    { width, height, channels, bitDepth, data: a },
    { width, height, channels, bitDepth, data: b },
  ];
}

/** A float32 raster in [0, 1] with smooth structure, and a noisy copy. */
function float32RasterPair(width: number, height: number, channels: 1 | 3, seed: number): Pair<Float32RasterImage> {
  const rand = seededRandom(seed);
  const n = width * height * channels;
  const a = new Float32Array(n);
  const b = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const x = Math.floor(i / channels) % width;
    const y = Math.floor(i / channels / width);
    a[i] = 0.5 + 0.3 * Math.sin(x / 3 + (i % channels)) * Math.cos(y / 5) + 0.1 * rand();
    b[i] = a[i] + 0.05 * (rand() - 0.5);
  }
  return [
    { width, height, channels, bitDepth: 32, data: a },
    { width, height, channels, bitDepth: 32, data: b },
  ];
}

/** Planar float images with any channel count, around `offset` (a large offset stresses f32 cancellation). */
function floatPair(width: number, height: number, channels: number, offset: number, spread: number, seed: number): Pair<FloatImage> {
  const rand = seededRandom(seed);
  const n = width * height * channels;
  const a = new Float32Array(n);
  const b = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a[i] = offset + spread * rand();
    b[i] = a[i] + spread * 0.3 * (rand() - 0.5);
  }
  return [
    { width, height, channels, data: a },
    { width, height, channels, data: b },
  ];
}

interface Case {
  name: string;
  pair: Pair<RasterImage | Float32RasterImage | FloatImage>;
  dataRange?: number;
  maxBandBytes?: number;
}

const CASES: Case[] = [
  { name: 'gray 8-bit 37x53', pair: rasterPair(37, 53, 1, 8, 0.1, 1) },
  { name: 'gray 8-bit 11x11 (one window)', pair: rasterPair(11, 11, 1, 8, 0.2, 2) },
  { name: 'RGB 8-bit 130x97', pair: rasterPair(130, 97, 3, 8, 0.05, 3) },
  { name: 'RGB 8-bit 53x37 unrelated images', pair: rasterPair(53, 37, 3, 8, 'independent', 4) },
  { name: 'gray 16-bit 40x31', pair: rasterPair(40, 31, 1, 16, 0.02, 5) },
  { name: 'RGB float32 raster 37x53', pair: float32RasterPair(37, 53, 3, 6) },
  { name: 'gray float32 raster 130x97', pair: float32RasterPair(130, 97, 1, 7) },
  { name: 'planar float 5 channels 23x19', pair: floatPair(23, 19, 5, 0, 1, 8) },
  { name: 'planar float offset 100, spread 0.05', pair: floatPair(29, 17, 1, 100, 0.05, 9), dataRange: 1 },
  // ~30 rows per band: several bands, overlapping by 10 rows for SSIM.
  { name: 'RGB 8-bit 130x97 in bands', pair: rasterPair(130, 97, 3, 8, 0.05, 3), maxBandBytes: 130 * 16 * 30 },
  { name: 'gray 8-bit 37x53 in 19-row bands', pair: rasterPair(37, 53, 1, 8, 0.1, 1), maxBandBytes: 37 * 16 * 19 },
];

describe('ssimGpu / psnrGpu against the float64 CPU versions', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const ctx = await getTestContext();
      const [a, b] = c.pair;
      const opts = { dataRange: c.dataRange, maxBandBytes: c.maxBandBytes };
      const refSsim = ssim(a, b, { dataRange: c.dataRange });
      const refPsnr = psnr(a, b, { dataRange: c.dataRange });
      const gotSsim = await ssimGpu(ctx, a, b, opts);
      const gotPsnr = await psnrGpu(ctx, a, b, opts);
      expect(Math.abs(gotSsim - refSsim), `ssim ${gotSsim} vs ${refSsim}`).toBeLessThanOrEqual(SSIM_TOL);
      expect(Math.abs(gotPsnr - refPsnr), `psnr ${gotPsnr} vs ${refPsnr}`).toBeLessThanOrEqual(PSNR_TOL);
    });
  }

  it('identical images: SSIM 1, PSNR Infinity', async () => {
    const ctx = await getTestContext();
    const [a] = rasterPair(19, 23, 3, 8, 0.1, 10);
    expect(Math.abs((await ssimGpu(ctx, a, a)) - 1)).toBeLessThanOrEqual(SSIM_TOL);
    expect(await psnrGpu(ctx, a, a)).toBe(Infinity);
  });

  it('rejects what the CPU versions reject', async () => {
    const ctx = await getTestContext();
    const [a] = rasterPair(20, 20, 1, 8, 0.1, 11);
    const [small, small2] = rasterPair(10, 30, 1, 8, 0.1, 12);
    const [other] = rasterPair(21, 20, 1, 8, 0.1, 13);
    const [f] = float32RasterPair(20, 20, 1, 14);
    await expect(ssimGpu(ctx, a, other)).rejects.toThrow(InvalidInputError);
    await expect(psnrGpu(ctx, a, other)).rejects.toThrow(InvalidInputError);
    await expect(ssimGpu(ctx, a, f)).rejects.toThrow(InvalidInputError);
    await expect(ssimGpu(ctx, small, small2)).rejects.toThrow(InvalidInputError);
    await expect(ssimGpu(ctx, a, a, { dataRange: 0 })).rejects.toThrow(InvalidInputError);
    await expect(psnrGpu(ctx, a, a, { dataRange: -1 })).rejects.toThrow(InvalidInputError);
  });
});
