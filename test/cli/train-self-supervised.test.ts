import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTiff } from '../../src/io/tiff-write';
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

    expectSuccess(await cli('train', '--method', 'n2v2', '--resume', ...common, '--steps', '6', '-o', out, '-q'));
    expect(sidecarOf(out).step).toBe(6);
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
      const sidecar = sidecarOf(out);
      expect(sidecar.step).toBeGreaterThanOrEqual(1);
      expect(sidecar.method).toBe(method);
    }
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
    expectCleanFailure(await run('--method', 'nb2nb', '--images', images, '--patch', '33'), /even patch sides/);
    expectCleanFailure(await run('--method', 'n2x', '--images', images), /--method must be one of supervised, n2n, n2v, n2v2, nb2nb/);
    expectCleanFailure(await run('--method', 'n2v', '--images', images, '--struct', 'diagonal:3'), /--struct needs horizontal:SPAN/);
    expectCleanFailure(await run('--method', 'n2v', '--images', join(tmp.path, 'nothing-*.png')), /--images .*no PNG or TIFF file matches/);
    expectCleanFailure(await run('--clean', images, '--noise', 'gaussian:25', '--normalize', '1,99'), /--normalize is for --method n2n/);
  }, 240_000);
});
