import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../../src/io/formats';
import { UsageError } from '../../src/cli/errors';
import { holdOut, readNoisyImages, resumedSettings, validationShareFrom } from '../../src/cli/train-method';
import { progressLine } from '../../src/cli/train-outputs';
import type { RasterImage } from '../../src/io/image';
import { encodeTiff } from '../../src/io/tiff-write';
import { seededRandom } from '../helpers/random';
import {
  cli,
  expectCleanFailure,
  expectSuccess,
  FIXTURE,
  headerBitDepth,
  noisyPair,
  readPng,
  requireBuiltCli,
  tempDir,
  writePng,
} from './helpers';

/*
 * `webgpu-restore train --method n2v|n2v2|nb2nb --images …` end to end on small noisy images (8-bit PNGs and a
 * 16-bit TIFF of other sizes), from small real checkpoints (CAREamics' N2V2 U-Net at width 8, the CLI fixture's
 * DnCNN): the sidecar carries the method and the normalisation, `denoise -w` applies that normalisation by itself
 * (16-bit stays 16-bit), --minutes ends a run, --resume goes on, and bad input stops with an error naming it.
 */
const N2V2_TINY = FIXTURE('n2v-unet/n2v2_tiny_gray.pth');
const DNCNN_SMALL = FIXTURE('training/cli/init.pth');

interface Sidecar {
  step: number;
  method?: string;
  normalize?: { low: number; high: number };
  selfSupervised?: { method: string; struct?: { axis: string; span: number } };
  validation: string[];
}

const sidecarOf = (out: string) => JSON.parse(readFileSync(`${out}.json`, 'utf8')) as Sidecar;

/** BitsPerSample (tag 258) of a little-endian TIFF's first page, read from the IFD bytes (one sample per pixel). */
function tiffBitsPerSample(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  expect(String.fromCharCode(bytes[0], bytes[1])).toBe('II');
  const ifd = view.getUint32(4, true);
  for (let i = 0; i < view.getUint16(ifd, true); i++) {
    const entry = ifd + 2 + 12 * i;
    if (view.getUint16(entry, true) === 258) return view.getUint16(entry + 8, true);
  }
  throw new Error('no BitsPerSample tag');
}

describe('webgpu-restore train: self-supervised methods', () => {
  let tmp: ReturnType<typeof tempDir>;
  let images: string;
  beforeAll(() => {
    requireBuiltCli();
    tmp = tempDir();
    images = join(tmp.path, 'noisy');
    mkdirSync(images);
    writePng(join(images, 'a.png'), noisyPair(48, 40, 1, 8, 1).image);
    writePng(join(images, 'b.png'), noisyPair(40, 44, 1, 8, 2).image);
    writeFileSync(join(images, 'c.tif'), encodeTiff(noisyPair(52, 36, 1, 16, 3).image));
  });
  afterAll(() => tmp.remove());

  it('n2v2 with --normalize and structN2V: the sidecar says how; denoise -w applies the normalisation by itself', async () => {
    const out = join(tmp.path, 'n2v2.pth');
    const common = ['--images', images, '--patch', '32', '--batch', '4', '--val', '34%', '--normalize', '1,99.8'];
    const r = await cli('train', '--method', 'n2v2', '-w', N2V2_TINY, ...common, '--struct', 'horizontal:3', '--steps', '4', '-o', out);
    expectSuccess(r);
    expect(r.stdout).toMatch(/trained 4 steps .*best validation loss/);
    const sidecar = sidecarOf(out);
    expect(sidecar).toMatchObject({ step: 4, method: 'n2v2', normalize: { low: 1, high: 99.8 } });
    expect(sidecar.selfSupervised).toEqual({ method: 'n2v2', struct: { axis: 'horizontal', span: 3 } });
    expect(sidecar.validation).toHaveLength(1);

    const input = writePng(join(tmp.path, 'held16.png'), noisyPair(36, 28, 1, 16, 9).image);
    const auto = join(tmp.path, 'auto.png');
    const d = await cli('denoise', input, '-w', out, '-o', auto);
    expectSuccess(d);
    expect(d.stdout).toMatch(/normalising to percentiles 1–99\.8, as .*n2v2\.pth\.json says/);
    expect(headerBitDepth(auto)).toBe(16);
    const explicit = join(tmp.path, 'explicit.png');
    expectSuccess(await cli('denoise', input, '-w', out, '--normalize', '1,99.8', '-o', explicit, '-q'));
    expect(readPng(auto).data).toEqual(readPng(explicit).data);
    const other = join(tmp.path, 'other.png');
    expectSuccess(await cli('denoise', input, '-w', out, '--normalize', '0,100', '-o', other, '-q'));
    expect(readPng(other).data).not.toEqual(readPng(auto).data);

    // A 16-bit TIFF comes back a 16-bit TIFF, with values of the 16-bit range (not 8-bit ones scaled by 257).
    const tiffIn = join(tmp.path, 'held16.tif');
    writeFileSync(tiffIn, encodeTiff(noisyPair(36, 28, 1, 16, 10).image));
    const tiffOut = join(tmp.path, 'held16.denoised.tif');
    expectSuccess(await cli('denoise', tiffIn, '-w', out, '-o', tiffOut, '-q'));
    const tiffBytes = new Uint8Array(readFileSync(tiffOut));
    expect(tiffBitsPerSample(tiffBytes)).toBe(16);
    const restored = decodeImage(tiffBytes);
    expect(restored.bitDepth).toBe(16);
    expect([...restored.data].some((v) => v % 257 !== 0)).toBe(true);

    // --resume with neither --method nor --normalize goes on as the sidecar says, and keeps saying it.
    expectSuccess(await cli('train', '--resume', '--images', images, '--patch', '32', '--batch', '4', '--steps', '6', '-o', out, '-q'));
    expect(sidecarOf(out)).toMatchObject({ step: 6, method: 'n2v2', normalize: { low: 1, high: 99.8 } });
    expect(sidecarOf(out).selfSupervised).toEqual({ method: 'n2v2', struct: { axis: 'horizontal', span: 3 } });
    expectSuccess(await cli('train', '--method', 'n2v2', '--resume', ...common, '--steps', '8', '-o', out, '-q'));
    expect(sidecarOf(out).step).toBe(8);
    // A flag that contradicts the earlier run is refused before any training.
    const resume = ['train', '--resume', '--images', images, '--patch', '32', '--batch', '4', '--steps', '10', '-o', out];
    expectCleanFailure(
      await cli(...resume, '--normalize', '2,99'),
      /n2v2\.pth\.json says the images were normalised with --normalize 1,99\.8, not 2,99/,
      2,
    );
    expectCleanFailure(await cli(...resume, '--method', 'n2v'), /n2v2\.pth\.json says the run trained by --method n2v2, not n2v/, 2);
    expectCleanFailure(
      await cli(...resume, '--struct', 'vertical:3'),
      /says the run trained with --struct horizontal:3, not vertical:3/,
      2,
    );
    expect(sidecarOf(out).step).toBe(8);
  }, 240_000);

  it('nb2nb and n2v (from builtin:dncnn_25) bounded by --minutes alone', async () => {
    // n2v from the built-in DnCNN σ25, as the README's first example.
    for (const [method, weights] of [
      ['nb2nb', DNCNN_SMALL],
      ['n2v', 'builtin:dncnn_25'],
    ]) {
      const out = join(tmp.path, `${method}.pth`);
      const r = await cli(
        'train',
        '--method',
        method,
        '-w',
        weights,
        '--images',
        images,
        '--patch',
        '32',
        '--batch',
        '2',
        '--minutes',
        '0.01',
        '-o',
        out,
      );
      expectSuccess(r);
      expect(r.stdout).toMatch(/trained \d+ steps .*best validation loss .*, stopped at the 0\.01 min limit; wrote/);
      // Bounded by time alone: the progress line has no step total; it shows the validation loss and the time left.
      expect(r.stderr).toMatch(/^step \d+ \[=+\] 100% epoch \d+ loss \S+ lr 4\.0e-4 val loss \S+ left 0m00s$/m);
      const sidecar = sidecarOf(out);
      expect(sidecar.step).toBeGreaterThanOrEqual(1);
      expect(sidecar.method).toBe(method);
      // The default --val 10 % of three images still holds one out.
      expect(sidecar.validation).toHaveLength(1);
    }
  }, 240_000);

  it('n2n learns from two acquisitions of each field, matched by name', async () => {
    const first = join(tmp.path, 'scan1');
    const second = join(tmp.path, 'scan2');
    mkdirSync(first);
    mkdirSync(second);
    // The same field (noisyPair's clean image) under two noise draws.
    for (const [i, name] of ['f1', 'f2'].entries()) {
      writePng(join(first, `${name}.png`), noisyPair(24, 20, 1, 8, 20 + i).image);
      writePng(join(second, `${name}.png`), noisyPair(24, 20, 1, 8, 30 + i).image);
    }
    const out = join(tmp.path, 'n2n.pth');
    const args = ['--method', 'n2n', '-w', DNCNN_SMALL, '--patch', '16', '--batch', '2', '--steps', '2', '-o', out];
    expectSuccess(await cli('train', ...args, '--pairs', `${first},${second}`, '-q'));
    expect(sidecarOf(out)).toMatchObject({ step: 2, method: 'n2n' });
    writePng(join(first, 'f3.png'), noisyPair(24, 20, 1, 8, 22).image);
    expectCleanFailure(await cli('train', ...args, '--pairs', `${first},${second}`, '--force'), /no second acquisition image in .* for f3/);
  }, 240_000);

  it('names bad input', async () => {
    const out = join(tmp.path, 'bad.pth');
    const run = (...args: string[]) => cli('train', '-w', DNCNN_SMALL, '--steps', '1', '-o', out, ...args);
    expectCleanFailure(await run('--method', 'n2n', '--images', images), /n2n needs two noisy acquisitions of each field: --pairs/);
    expectCleanFailure(await run('--method', 'n2v'), /--method n2v trains on noisy images alone: give --images/);
    expectCleanFailure(await run('--method', 'n2v', '--images', images, '--noise', 'gaussian:25'), /leave out --noise/);
    expectCleanFailure(
      await run('--method', 'n2v', '--images', images, '--patch', '64'),
      /(a\.png|b\.png|c\.tif) is \d+×\d+, smaller than the 64×64 patch/,
    );
    expectCleanFailure(
      await run('--method', 'nb2nb', '--images', images, '--patch', '33'),
      /--method nb2nb needs even patch sides.*--patch 33/,
      2,
    );
    expectCleanFailure(await run('--method', 'n2x', '--images', images), /--method must be one of supervised, n2n, n2v, n2v2, nb2nb/);
    expectCleanFailure(await run('--method', 'n2v', '--images', images, '--struct', 'diagonal:3'), /--struct needs horizontal:SPAN/);
    expectCleanFailure(await run('--method', 'n2v', '--images', join(tmp.path, 'nothing-*.png')), /--images .*no PNG or TIFF file matches/);
    expectCleanFailure(await run('--clean', images, '--noise', 'gaussian:25', '--normalize', '1,99'), /--normalize is for --method n2n/);
  }, 240_000);
});

/*
 * The pieces under the command, without a GPU: the info bar cut off before any patch can reach it, the
 * hold-out of whole images, --resume's settings and the progress line of a run bounded by time.
 */
describe('train --method: data, split, resume settings and progress', () => {
  /**
   * A 16-bit micrograph of 64×48 noisy rows (levels 60–140 of 255) above an FEI-style 16-row bar: black, with
   * white "text" strokes in a few rows.
   */
  function withBar(seed: number): { image: RasterImage; content: Uint16Array } {
    const width = 64;
    const rows = 48;
    const bar = 16;
    const r = seededRandom(seed);
    const data = new Uint16Array(width * (rows + bar));
    for (let i = 0; i < width * rows; i++) data[i] = Math.round(60 + 80 * r()) * 257;
    for (let y = rows + 3; y < rows + 9; y++) for (let x = 4; x < 60; x++) if (x % 4 < 2) data[y * width + x] = 65535;
    return { image: { width, height: rows + bar, channels: 1, bitDepth: 16, data }, content: data.slice(0, width * rows) };
  }

  it('--info-bar auto and --info-bar ROWS: the bar rows are gone before patches are cut', async () => {
    const tmp = tempDir();
    try {
      const { image, content } = withBar(4);
      writeFileSync(join(tmp.path, 'sem.tif'), encodeTiff(image));
      writePng(join(tmp.path, 'plain.png'), noisyPair(40, 30, 1, 8, 5).image);
      const examples = await readNoisyImages(tmp.path, { infoBar: 'auto', gray: true });
      expect(examples.map((e) => e.name)).toEqual(['plain.png', 'sem.tif']);
      const sem = examples[1];
      // One image, both input and target (the noisy image alone), of the content rows only.
      expect(sem.input).toBe(sem.target);
      expect([sem.target.width, sem.target.height]).toEqual([64, 48]);
      expect(sem.target.data).toEqual(Float32Array.from(content, (v) => v / 65535));
      // The micrograph without a bar keeps every row.
      expect([examples[0].target.width, examples[0].target.height]).toEqual([40, 30]);
      const explicit = await readNoisyImages(join(tmp.path, '*.tif'), { infoBar: 16 });
      expect(explicit[0].target.data).toEqual(sem.target.data);
      // Without --info-bar the bar's black and white rows would be training data.
      const whole = await readNoisyImages(join(tmp.path, 'sem.tif'), {});
      expect(whole[0].target.height).toBe(64);
      // --normalize maps each image's own percentiles (computed without the bar) to 0 and 1.
      const [norm] = await readNoisyImages(join(tmp.path, 'sem.tif'), { infoBar: 'auto' }, { low: 0, high: 100 });
      expect(Math.min(...norm.target.data)).toBeCloseTo(0, 6);
      expect(Math.max(...norm.target.data)).toBeCloseTo(1, 6);
    } finally {
      tmp.remove();
    }
  });

  it('--val holds out whole images, at least one of two or more; a single image validates on itself', () => {
    const tenth = validationShareFrom('10%');
    expect(tenth).toEqual({ train: 0.9, validation: 0.1, test: 0 });
    expect(validationShareFrom('0.25')).toEqual({ train: 0.75, validation: 0.25, test: 0 });
    const three = holdOut(3, tenth, 0);
    expect(three.validation).toHaveLength(1);
    expect([...three.train, ...three.validation].sort()).toEqual([0, 1, 2]);
    const forty = holdOut(40, tenth, 1);
    expect(forty.validation).toHaveLength(4);
    expect(new Set([...forty.train, ...forty.validation]).size).toBe(40);
    expect(holdOut(1, tenth, 0)).toEqual({ train: [0], validation: [0], test: [] });
    // Never every image: one is left to train on.
    expect(holdOut(2, validationShareFrom('90%'), 0).train).toHaveLength(1);
    expect(() => validationShareFrom('100%')).toThrow(UsageError);
    expect(() => validationShareFrom('x')).toThrow(UsageError);
  });

  it('--resume takes the method, structN2V and normalisation of the sidecar, and refuses flags that differ', () => {
    const stored = {
      method: 'n2v',
      selfSupervised: { method: 'n2v', struct: { axis: 'vertical', span: 5 } },
      normalize: { low: 1, high: 99 },
    };
    const want = { method: 'n2v', self: { method: 'n2v', struct: { axis: 'vertical', span: 5 } }, normalize: { low: 1, high: 99 } };
    expect(resumedSettings({}, stored, 'o.pth.json')).toEqual(want);
    expect(resumedSettings({ method: 'n2v', struct: 'vertical:5', normalize: '1,99' }, stored, 'o.pth.json')).toEqual(want);
    expect(() => resumedSettings({ method: 'n2v2' }, stored, 'o.pth.json')).toThrow(/trained by --method n2v, not n2v2/);
    expect(() => resumedSettings({ struct: 'horizontal:5' }, stored, 'o.pth.json')).toThrow(/--struct vertical:5, not horizontal:5/);
    expect(() => resumedSettings({ normalize: '0,100' }, stored, 'o.pth.json')).toThrow(/--normalize 1,99, not 0,100/);
    // A sidecar from before --method: supervised, no normalisation.
    expect(resumedSettings({}, {}, 'o.pth.json')).toEqual({ method: 'supervised' });
    expect(() => resumedSettings({ normalize: '1,99' }, {}, 'o.pth.json')).toThrow(/--normalize none, not 1,99/);
    expect(resumedSettings({}, { method: 'nb2nb', selfSupervised: { method: 'neighbor2neighbor' } }, 's')).toEqual({
      method: 'nb2nb',
      self: { method: 'neighbor2neighbor' },
    });
  });

  it('the progress line of a run bounded by time alone follows the clock', () => {
    const p = { step: 120, totalSteps: 1 << 30, epoch: 3, loss: 1.5e-3, lr: 4e-4, etaSeconds: 450, validation: { loss: 2.25e-3 } };
    expect(progressLine(p, 600)).toBe('step 120 [====>               ] 25% epoch 3 loss 1.500e-3 lr 4.0e-4 val loss 2.250e-3 left 7m30s');
    expect(progressLine({ ...p, etaSeconds: 0 }, 600)).toMatch(/^step 120 \[=+\] 100% .* left 0m00s$/);
    // Bounded by steps: the step total, as before.
    expect(progressLine({ ...p, totalSteps: 480, etaSeconds: 90 })).toMatch(
      /^step 120\/480 \[====>\s+\] 25% .* val loss 2\.250e-3 eta 1m30s$/,
    );
  });
});
