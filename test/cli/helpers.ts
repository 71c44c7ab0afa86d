/** Running the built CLI (dist/cli.js) in a child process, and small images for it. */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { RasterImage } from '../../src/io/image';
import { decodePng, encodePng } from '../../src/io/png';
import { REPO } from '../helpers/fixtures';
import { seededRandom } from '../helpers/random';

export const ROOT = fileURLToPath(REPO);
export const CLI = join(ROOT, 'dist', 'cli.js');
export const FIXTURE = (name: string) => join(ROOT, 'test', 'fixtures', name);
/** The real KAIR DnCNN σ=25 release (legacy torch.save format). */
export const KAIR_DNCNN_25 = join(ROOT, '..', 'shared', 'data', 'weights', 'dncnn_25.pth');

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function cli(...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: ROOT, timeout: 120_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Fails early, with a clear message, when the CLI has not been built. */
export function requireBuiltCli(): void {
  if (!existsSync(CLI)) {
    throw new Error(`${CLI} is missing: build first (npm run build, or npm test which builds before testing)`);
  }
}

/** A fresh temporary folder, and its removal. */
export function tempDir(): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), 'webgpu-restore-cli-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Dawn prints a couple of limit warnings on stderr; everything else there is ours. */
export function ownStderr(r: Result): string {
  return r.stderr
    .split('\n')
    .filter((l) => !/^Warning: .*artificially reduced/.test(l))
    .join('\n')
    .trim();
}

export function expectSuccess(r: Result): void {
  expect(r.code, `exit code (stderr: ${ownStderr(r)})`).toBe(0);
}

export function expectCleanFailure(r: Result, pattern: RegExp, code?: number): void {
  const err = ownStderr(r);
  expect(r.code, `exit code (stderr: ${err})`).not.toBe(0);
  if (code !== undefined) expect(r.code).toBe(code);
  expect(r.code).not.toBeNull(); // exited, not killed by the timeout or a signal
  expect(err).toMatch(pattern);
  expect(err, 'no stack trace').not.toMatch(/^\s+at .+[(:]\d+/m);
}

function gaussian(r: () => number): number {
  const u = Math.max(r(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}

/** A smooth clean image in [0.2, 0.8] and a copy with Gaussian noise σ = 25/255, quantised to `bitDepth`. */
export function noisyPair(w: number, h: number, channels: 1 | 3, bitDepth: 8 | 16, seed: number) {
  const max = bitDepth === 16 ? 65535 : 255;
  const r = seededRandom(seed);
  const clean = new Float64Array(w * h * channels);
  const data = bitDepth === 16 ? new Uint16Array(clean.length) : new Uint8Array(clean.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < channels; c++) {
        const i = (y * w + x) * channels + c;
        clean[i] = 0.5 + 0.3 * Math.sin((x + 2 * c) / 5) * Math.cos(y / 7);
        data[i] = Math.round(Math.min(1, Math.max(0, clean[i] + (25 / 255) * gaussian(r))) * max);
      }
    }
  }
  const image: RasterImage = { width: w, height: h, channels, bitDepth, data };
  return { clean, image };
}

export function mseAgainst(image: RasterImage, clean: Float64Array): number {
  const max = image.bitDepth === 16 ? 65535 : 255;
  let s = 0;
  for (let i = 0; i < clean.length; i++) s += (image.data[i] / max - clean[i]) ** 2;
  return s / clean.length;
}

export function writePng(path: string, image: RasterImage): string {
  writeFileSync(path, encodePng(image));
  return path;
}

export function readPng(path: string): RasterImage {
  expect(existsSync(path), `${path} was written`).toBe(true);
  return decodePng(new Uint8Array(readFileSync(path)), path);
}

/** The bit depth stored in the PNG header (IHDR byte 24), independent of our decoder. */
export function headerBitDepth(path: string): number {
  return readFileSync(path)[24];
}

/** A 24×20 crop of the noisy Set12 sample (8-bit gray): real image content, small enough for lavapipe. */
export function sampleCrop(x0 = 100, y0 = 80, w = 24, h = 20): RasterImage {
  const src = decodePng(new Uint8Array(readFileSync(join(ROOT, 'samples', 'set12-01-noisy25.png'))), 'sample');
  expect(src.channels).toBe(1);
  const data = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[y * w + x] = src.data[(y0 + y) * src.width + x0 + x];
  return { width: w, height: h, channels: 1, bitDepth: 8, data };
}
