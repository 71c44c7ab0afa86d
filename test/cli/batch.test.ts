/**
 * `denoise` / `upscale` over batches: folders, patterns and files, --out-dir, outputs keeping format, bit
 * depth, pages and alpha; bad files reported and skipped; inputs never replaced; the task checked against the
 * model's scale; a [-1, 1] network (SINSR) against its PyTorch fixture. Small images and tiny checkpoints so
 * that each run takes seconds on lavapipe.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RasterImage } from '../../src/io/image';
import { decodeTiff } from '../../src/io/tiff';
import { encodeTiff } from '../../src/io/tiff-write';
import { networkFromCheckpoint } from '../../src/models/load';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { writeSafetensors } from '../../src/weights/safetensors';
import { readFixtureF32, readFixtureJson } from '../helpers/fixture-loader';
import { getTestContext } from '../helpers/gpu';
import { relL2 } from '../helpers/random';
import { type ManifestEntry, seededStateDict } from '../helpers/seeded-weights';
import {
  cli,
  expectCleanFailure,
  expectSuccess,
  FIXTURE,
  noisyPair,
  ownStderr,
  readPng,
  requireBuiltCli,
  tempDir,
  writePng,
} from './helpers';

const GRAY_DNCNN = FIXTURE('dncnn/tiny_r_gray.pth');
const X2 = FIXTURE('msrresnet/tiny_x2.pth');
const JPEG_BYTES = Uint8Array.of(0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00);

let dir: string;
let removeDir: () => void;

beforeAll(() => {
  requireBuiltCli();
  ({ path: dir, remove: removeDir } = tempDir());
});

afterAll(() => removeDir?.());

function folder(...parts: string[]): string {
  const path = join(dir, ...parts);
  mkdirSync(path, { recursive: true });
  return path;
}

/** What the library gives for `image` with the checkpoint at `weights` (same code path as the CLI's run). */
async function libraryRun(weights: string, image: RasterImage): Promise<RasterImage> {
  const ctx = await getTestContext();
  const model = new RestorationModel(ctx, networkFromCheckpoint(readFileSync(weights)), 'reference');
  try {
    return await model.run(image);
  } finally {
    model.dispose();
  }
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('webgpu-restore denoise: batches', () => {
  it('a folder, a pattern and a file into --out-dir, keeping format, bit depth and pages', async () => {
    const inDir = folder('batch', 'in');
    folder('batch', 'in', 'sub'); // folders inside are not descended into
    const other = folder('batch', 'other');
    const a = noisyPair(24, 20, 1, 8, 11).image;
    writePng(join(inDir, 'a.png'), a);
    const page1 = noisyPair(20, 16, 1, 16, 12).image;
    const page2 = noisyPair(12, 10, 1, 16, 13).image;
    const resolution = { x: 250, y: 250, unit: 3 };
    writeFileSync(
      join(inDir, 'b.tif'),
      encodeTiff([
        { image: page1, metadata: { resolution } },
        { image: page2, metadata: { resolution } },
      ]),
    );
    writeFileSync(join(inDir, 'notes.txt'), 'not an image');
    writePng(join(inDir, 'c.denoised.png'), a); // an earlier output: skipped
    const d = noisyPair(16, 12, 1, 8, 14).image;
    writePng(join(other, 'd.png'), d);
    writePng(join(other, 'e.PNG'), d);
    const g = writePng(join(dir, 'batch', 'g.png'), noisyPair(10, 8, 1, 8, 15).image);
    const out = join(dir, 'batch', 'out');

    const r = await cli('denoise', inDir, join(other, '*.png'), g, '--out-dir', out, '-w', GRAY_DNCNN);
    expectSuccess(r);
    expect(r.stdout).toMatch(/skipped 1 earlier output/);
    expect(r.stdout).toMatch(/^\[4\/4\] wrote /m);
    expect(readdirSync(out).sort()).toEqual(['a.denoised.png', 'b.denoised.tif', 'd.denoised.png', 'g.denoised.png']);

    const aOut = readPng(join(out, 'a.denoised.png'));
    expect(aOut.bitDepth).toBe(8);
    expect(maxDiff(aOut.data, (await libraryRun(GRAY_DNCNN, a)).data)).toBeLessThanOrEqual(1);

    const pages = decodeTiff(new Uint8Array(readFileSync(join(out, 'b.denoised.tif'))));
    expect(pages).toHaveLength(2);
    for (const [i, src] of [page1, page2].entries()) {
      const p = pages[i];
      expect([p.image.width, p.image.height, p.image.channels, p.image.bitDepth]).toEqual([src.width, src.height, 1, 16]);
      expect(p.metadata.resolution).toEqual(resolution);
      expect(maxDiff(p.image.data, (await libraryRun(GRAY_DNCNN, src)).data)).toBeLessThanOrEqual(1);
    }
  });

  it('goes on past bad inputs, reports each, and exits 1', async () => {
    const d = folder('bad');
    const good = writePng(join(d, 'good.png'), noisyPair(12, 10, 1, 8, 21).image);
    const bad = join(d, 'bad.png');
    writeFileSync(bad, JPEG_BYTES);
    const missing = join(d, 'missing.png');
    const noMatch = join(d, 'nothing-*.png');
    const r = await cli('denoise', bad, missing, good, noMatch, '-w', GRAY_DNCNN);
    expectCleanFailure(r, /bad\.png/, 1);
    const err = ownStderr(r);
    expect(err).toMatch(/^error \[IMAGE_FORMAT\]: .*bad\.png.*JPEG/m);
    expect(err).toMatch(/^error \[IMAGE_FORMAT\]: .*missing\.png/m);
    expect(err).toMatch(/^error: .*nothing-\*\.png: no PNG or TIFF file matches/m);
    expect(err).toMatch(/1 of 4 input\(s\) done; failed: /);
    expect(existsSync(join(d, 'good.denoised.png'))).toBe(true); // next to its input by default
    expect(existsSync(join(d, 'bad.denoised.png'))).toBe(false);
  });

  it('never replaces an input (unless --force) and never writes one output twice', async () => {
    const d = folder('inputs');
    const x = writePng(join(d, 'x.png'), noisyPair(12, 10, 1, 8, 31).image);
    const before = readFileSync(x);
    const same = await cli('denoise', x, '-o', x, '-w', GRAY_DNCNN);
    expectCleanFailure(same, /x\.png is an input file/, 1);
    expect(readFileSync(x).equals(before)).toBe(true);

    // Two inputs named alike into one folder: the second is refused, the first kept.
    const one = writePng(join(folder('inputs', 'one'), 'same.png'), noisyPair(12, 10, 1, 8, 32).image);
    const two = writePng(join(folder('inputs', 'two'), 'same.png'), noisyPair(12, 10, 1, 8, 33).image);
    const out = join(d, 'out');
    const clash = await cli('denoise', one, two, '--out-dir', out, '-w', GRAY_DNCNN, '-q');
    expectCleanFailure(clash, /same\.denoised\.png was already written for .*one/, 1);
    expect(readdirSync(out)).toEqual(['same.denoised.png']);

    // Asked explicitly: the input is replaced.
    const y = join(d, 'y.png');
    copyFileSync(x, y);
    expectSuccess(await cli('denoise', y, '-o', y, '--force', '-w', GRAY_DNCNN, '-q'));
    expect(readFileSync(y).equals(before)).toBe(false);
  });

  it('checks the model fits the task', async () => {
    const input = writePng(join(dir, 'task.png'), noisyPair(12, 10, 3, 8, 41).image);
    const up = await cli('upscale', input, '-w', GRAY_DNCNN);
    expectCleanFailure(up, /INVALID_INPUT.*keeps the image size.*webgpu-restore denoise/, 1);
    const down = await cli('denoise', input, '-w', X2);
    expectCleanFailure(down, /INVALID_INPUT.*×2 super-resolution model.*webgpu-restore upscale/, 1);
    expectCleanFailure(await cli('upscale', input), /upscale needs --weights/, 2);
    expect(readdirSync(dir).filter((n) => n.startsWith('task.'))).toEqual(['task.png']);
  });
});

describe('webgpu-restore upscale', () => {
  it('×2 with MSRResNet: RGB + alpha, alpha resized by nearest neighbour, --tile passed along', async () => {
    const { image } = noisyPair(13, 9, 3, 8, 51);
    const alpha = Uint8Array.from({ length: 13 * 9 }, (_, i) => (i * 29) % 256);
    const input = writePng(join(dir, 'rgba.png'), { ...image, alpha });
    const r = await cli('upscale', input, '-w', X2, '--tile', '64');
    expectSuccess(r);
    expect(r.stdout).toMatch(/^model: tiny_x2\.pth \(MSRResNet, 3→3 channels, ×2\), tile 64$/m);
    const out = readPng(join(dir, 'rgba.x2.png'));
    expect([out.width, out.height, out.channels, out.bitDepth]).toEqual([26, 18, 3, 8]);
    expect(maxDiff(out.data, (await libraryRun(X2, image)).data)).toBeLessThanOrEqual(1);
    const expectedAlpha = Uint8Array.from({ length: 26 * 18 }, (_, i) => alpha[Math.floor(i / 26 / 2) * 13 + Math.floor((i % 26) / 2)]);
    expect(out.alpha).toEqual(expectedAlpha);
  });

  it('a [-1, 1] network (SINSR) gets its input mapped and its output mapped back (vs PyTorch)', async () => {
    // No trained SINSR weights exist: the fixture's seeded weights, written as safetensors.
    const meta = await readFixtureJson<{ seed: number; manifest: ManifestEntry[]; inputShape: number[]; outputShape: number[] }>(
      'test/fixtures/sinsr/tiny.json',
    );
    const weights = join(dir, 'sinsr_tiny.safetensors');
    writeFileSync(weights, writeSafetensors(seededStateDict(meta.seed, meta.manifest)));
    const x = await readFixtureF32('test/fixtures/sinsr/tiny.input.f32'); // NCHW, [-1, 1]
    const y = await readFixtureF32('test/fixtures/sinsr/tiny.output.f32');
    const [, c, h, w] = meta.inputShape;
    const [, , oh, ow] = meta.outputShape;
    // The PyTorch input as a 16-bit RGB image: [-1, 1] → [0, 1] → 16-bit.
    const data = new Uint16Array(w * h * c);
    for (let ch = 0; ch < c; ch++) {
      for (let i = 0; i < w * h; i++) data[i * c + ch] = Math.round(((x[ch * w * h + i] + 1) / 2) * 65535);
    }
    const input = writePng(join(dir, 'sinsr_in.png'), { width: w, height: h, channels: 3, bitDepth: 16, data });
    const output = join(dir, 'sinsr_out.png');
    expectSuccess(await cli('upscale', input, '-o', output, '-w', weights, '-q'));
    const out = readPng(output);
    expect([out.width, out.height, out.channels, out.bitDepth]).toEqual([ow, oh, 3, 16]);
    // Back to [-1, 1], NCHW.
    const got = new Float64Array(y.length);
    for (let ch = 0; ch < c; ch++) {
      for (let i = 0; i < ow * oh; i++) got[ch * ow * oh + i] = (out.data[i * c + ch] / 65535) * 2 - 1;
    }
    // 16-bit quantisation of input and output only (≈1e-5 each); a missing range map would be off by > 10 %.
    expect(relL2(got, y)).toBeLessThan(5e-4); // measured 8.8e-5; without the map: 9.1
  });
});

describe('tiles from the command line', () => {
  it('--tile splits the run, reports tile progress, and gives the untiled result', async () => {
    const { image: noisy } = noisyPair(40, 30, 1, 16, 77);
    const input = writePng(join(folder('tiles'), 'scan.png'), noisy);
    const whole = await cli('denoise', input, '-o', join(dir, 'tiles', 'whole.png'), '-w', GRAY_DNCNN);
    expectSuccess(whole);
    const tiled = await cli('denoise', input, '-o', join(dir, 'tiles', 'tiled.png'), '-w', GRAY_DNCNN, '--tile', '16');
    expectSuccess(tiled);
    expect(tiled.stderr).toMatch(/tiles 6\/6/);
    const a = readPng(join(dir, 'tiles', 'whole.png'));
    const b = readPng(join(dir, 'tiles', 'tiled.png'));
    // Exact tiling: identical up to float rounding, so at most one 16-bit level apart.
    let worst = 0;
    for (let i = 0; i < a.data.length; i++) worst = Math.max(worst, Math.abs(a.data[i] - b.data[i]));
    expect(worst).toBeLessThanOrEqual(1);
  });
});

describe('SEM info bar from the command line', () => {
  it('--info-bar auto keeps the Zeiss data bar out of the run and writes it back byte for byte', async () => {
    const { readImageFilePages } = await import('../../src/node-files');
    const source = new URL('../shared/data/sem/zeiss-with-databar/130nm_05.tif', new URL('../../', import.meta.url)).pathname;
    const out = join(folder('infobar'), 'scan.denoised.tif');
    const r = await cli('denoise', source, '-o', out, '-w', GRAY_DNCNN, '--info-bar', 'auto');
    expectSuccess(r);
    const a = (await readImageFilePages(source)).pages[0].image;
    const b = (await readImageFilePages(out)).pages[0].image;
    expect([b.width, b.height, b.bitDepth]).toEqual([a.width, a.height, a.bitDepth]);
    const barStart = 690 * a.width; // the Zeiss bar found by detectInfoBar on these files (test/io/info-bar.test.ts)
    expect(Buffer.from(b.data.subarray(barStart)).equals(Buffer.from(a.data.subarray(barStart)))).toBe(true);
    let changed = 0;
    for (let i = 0; i < barStart; i++) if (a.data[i] !== b.data[i]) changed++;
    expect(changed).toBeGreaterThan(barStart / 2); // the micrograph above it was processed
    expect((await cli('upscale', source, '-o', join(dir, 'infobar', 'x.tif'), '-w', X2, '--info-bar', 'auto')).code).not.toBe(0);
  });
});
