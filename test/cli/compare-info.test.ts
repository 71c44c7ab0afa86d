/**
 * `compare` (PSNR against a float64 formula written here, SSIM against src/io's ssim, which test/io checks
 * against scikit-image) and `info` (the adapter, features and limits).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RasterImage } from '../../src/io/image';
import { ssim } from '../../src/io/ssim';
import { cli, expectCleanFailure, expectSuccess, noisyPair, requireBuiltCli, tempDir, writePng } from './helpers';

let dir: string;
let removeDir: () => void;

beforeAll(() => {
  requireBuiltCli();
  ({ path: dir, remove: removeDir } = tempDir());
});

afterAll(() => removeDir?.());

/** PSNR in float64 from its definition: 10 log10(range² / MSE). */
function psnrReference(a: RasterImage, b: RasterImage, range: number): number {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += (a.data[i] - b.data[i]) ** 2;
  return 10 * Math.log10((range * range) / (s / a.data.length));
}

function cleanImage(w: number, h: number, channels: 1 | 3, bitDepth: 8 | 16, seed: number): RasterImage {
  const { clean } = noisyPair(w, h, channels, bitDepth, seed);
  const max = bitDepth === 16 ? 65535 : 255;
  const data = bitDepth === 16 ? new Uint16Array(clean.length) : new Uint8Array(clean.length);
  for (let i = 0; i < clean.length; i++) data[i] = Math.round(clean[i] * max);
  return { width: w, height: h, channels, bitDepth, data };
}

describe('webgpu-restore compare', () => {
  it('PSNR and SSIM of an 8-bit RGB pair, with and without --data-range', async () => {
    const noisy = noisyPair(32, 24, 3, 8, 61).image;
    const clean = cleanImage(32, 24, 3, 8, 61);
    const a = writePng(join(dir, 'noisy.png'), noisy);
    const b = writePng(join(dir, 'clean.png'), clean);

    const text = await cli('compare', a, b);
    expectSuccess(text);
    expect(text.stdout).toMatch(/^a: .*noisy\.png: 32×24 RGB 8-bit$/m);
    expect(text.stdout).toMatch(new RegExp(`^PSNR: ${psnrReference(noisy, clean, 255).toFixed(4)} dB$`, 'm'));

    const r = JSON.parse((await cli('compare', a, b, '--json')).stdout);
    expect(r.dataRange).toBe(255);
    expect(r.psnr).toBeCloseTo(psnrReference(noisy, clean, 255), 10);
    expect(r.ssim).toBeCloseTo(ssim(noisy, clean), 12);
    expect(r.ssim).toBeGreaterThan(0);
    expect(r.ssim).toBeLessThan(1);

    const wide = JSON.parse((await cli('compare', a, b, '--json', '--data-range', '510')).stdout);
    expect(wide.psnr).toBeCloseTo(psnrReference(noisy, clean, 510), 10);
    expect(wide.ssim).toBeCloseTo(ssim(noisy, clean, { dataRange: 510 }), 12);
  });

  it('16-bit against 8-bit compares on the [0, 1] scale; identical images give inf', async () => {
    const img8 = cleanImage(16, 16, 1, 8, 62);
    const img16: RasterImage = { ...img8, bitDepth: 16, data: Uint16Array.from(img8.data, (v) => v * 257) };
    const a = writePng(join(dir, 'eight.png'), img8);
    const b = writePng(join(dir, 'sixteen.png'), img16);
    const mixed = await cli('compare', a, b);
    expectSuccess(mixed);
    expect(mixed.stdout).toMatch(/8-bit and 16-bit compared on the \[0, 1\] scale/);
    expect(mixed.stdout).toMatch(/^PSNR: inf \(identical\)$/m); // v/255 = 257v/65535 exactly
    expect(mixed.stdout).toMatch(/^SSIM: 1\.000000$/m);
  });

  it('images of different sizes fail cleanly; images smaller than the SSIM window still get PSNR', async () => {
    const a = writePng(join(dir, 'small-a.png'), noisyPair(8, 6, 1, 8, 63).image);
    const b = writePng(join(dir, 'small-b.png'), noisyPair(8, 6, 1, 8, 64).image);
    const c = writePng(join(dir, 'other-size.png'), noisyPair(9, 6, 1, 8, 64).image);
    expectCleanFailure(await cli('compare', a, c), /INVALID_INPUT.*sizes differ/, 1);
    const small = await cli('compare', a, b);
    expectSuccess(small);
    expect(small.stdout).toMatch(/^PSNR: \d+\.\d{4} dB$/m);
    expect(small.stdout).toMatch(/^SSIM: not computed \(.*window/m);
  });
});

describe('webgpu-restore info', () => {
  it('prints the adapter, its features and limits', async () => {
    const r = await cli('info');
    expectSuccess(r);
    expect(r.stdout).toMatch(/^adapter: \S/m);
    expect(r.stdout).toMatch(/^ {2}software: (yes|no)/m);
    expect(r.stdout).toMatch(/^features \(\d+\):/m);
    expect(r.stdout).toMatch(/^ {2}maxStorageBufferBindingSize +[\d,]+$/m);
    const json = JSON.parse((await cli('info', '--json')).stdout);
    expect(typeof json.name).toBe('string');
    expect(json.limits.maxBufferSize).toBeGreaterThan(0);
    expect(Array.isArray(json.features)).toBe(true);
    expectCleanFailure(await cli('info', 'extra'), /info takes no arguments/, 2);
  });
});
