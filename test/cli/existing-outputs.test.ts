/**
 * No command replaces an existing file without --force: denoise/upscale outputs (-o, --out-dir, next to the
 * input) and convert's safetensors and manifest. In a batch a refused output is reported and skipped like a bad
 * file (exit code 1 at the end, the other inputs done); refusals known up front come before any device work.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
const PLACEHOLDER = 'an existing file that is not an output of ours';

let dir: string;
let removeDir: () => void;

beforeAll(() => {
  requireBuiltCli();
  ({ path: dir, remove: removeDir } = tempDir());
});

afterAll(() => removeDir?.());

function folder(name: string): string {
  const path = join(dir, name);
  mkdirSync(path, { recursive: true });
  return path;
}

function existing(path: string): string {
  writeFileSync(path, PLACEHOLDER);
  return path;
}

const unchanged = (path: string) => expect(readFileSync(path, 'utf8'), `${path} left as it was`).toBe(PLACEHOLDER);

describe('existing outputs are refused without --force', () => {
  it('denoise -o: refused before any device work, naming the file; --force replaces it', async () => {
    const d = folder('single');
    const input = writePng(join(d, 'in.png'), noisyPair(12, 10, 1, 8, 1).image);
    const out = existing(join(d, 'existing.png'));
    const r = await cli('denoise', input, '-o', out, '-w', GRAY_DNCNN);
    expectCleanFailure(r, /existing\.png exists; use --force to replace it/, 1);
    expect(r.stdout, 'no adapter requested').not.toMatch(/^adapter:/m);
    expect(r.stderr, 'Dawn not even started (it prints these when it finds the adapter)').not.toMatch(/artificially reduced/);
    unchanged(out);

    expectSuccess(await cli('denoise', input, '-o', out, '-w', GRAY_DNCNN, '--force', '-q'));
    expect(readPng(out).width).toBe(12);
  });

  it('upscale -o and the default name next to the input', async () => {
    const d = folder('upscale');
    const input = writePng(join(d, 'in.png'), noisyPair(8, 6, 3, 8, 2).image);
    const out = existing(join(d, 'big.png'));
    expectCleanFailure(await cli('upscale', input, '-o', out, '-w', X2), /big\.png exists; use --force/, 1);
    unchanged(out);
    const beside = existing(join(d, 'in.x2.png'));
    expectCleanFailure(await cli('upscale', input, '-w', X2), /in\.x2\.png exists; use --force/, 1);
    unchanged(beside);
  });

  it('a batch into --out-dir: the input whose output exists is reported and skipped, the others done', async () => {
    const inDir = folder('batch-in');
    const outDir = folder('batch-out');
    const a = writePng(join(inDir, 'a.png'), noisyPair(12, 10, 1, 8, 3).image);
    writePng(join(inDir, 'b.png'), noisyPair(12, 10, 1, 8, 4).image);
    const taken = existing(join(outDir, 'a.denoised.png'));
    const r = await cli('denoise', inDir, '--out-dir', outDir, '-w', GRAY_DNCNN);
    expectCleanFailure(r, /a\.denoised\.png exists; use --force/, 1);
    const err = ownStderr(r);
    expect(err).toMatch(/^error: .*a\.png: .*a\.denoised\.png exists; use --force to replace it$/m);
    expect(err).toContain(`1 of 2 input(s) done; failed: ${a}`);
    expect(r.stdout).toMatch(/^\[1\/1\] wrote .*b\.denoised\.png/m);
    unchanged(taken);
    expect(readPng(join(outDir, 'b.denoised.png')).width).toBe(12);

    // Run again with --force: both written.
    expectSuccess(await cli('denoise', inDir, '--out-dir', outDir, '-w', GRAY_DNCNN, '--force', '-q'));
    expect(readPng(taken).width).toBe(12);
  });

  it('an input whose output name needs its format (no image extension) is checked once it is read', async () => {
    const d = folder('noext');
    const input = join(d, 'scan');
    copyFileSync(writePng(join(d, 'scan.png'), noisyPair(12, 10, 1, 8, 5).image), input);
    const taken = existing(join(d, 'scan.denoised.png'));
    const r = await cli('denoise', input, '-w', GRAY_DNCNN, '-q');
    expectCleanFailure(r, /scan\.denoised\.png exists; use --force/, 1);
    unchanged(taken);
  });

  it('convert: an existing manifest alone is refused too, and nothing is written', async () => {
    const d = folder('convert');
    const out = join(d, 'x2.safetensors');
    const manifest = existing(join(d, 'x2.json'));
    const r = await cli('convert', X2, '-o', out);
    expectCleanFailure(r, /x2\.json exists; use --force/, 1);
    unchanged(manifest);
    expect(() => readFileSync(out)).toThrow(/ENOENT/);
    expectSuccess(await cli('convert', X2, '-o', out, '--force', '-q'));
    expect(JSON.parse(readFileSync(manifest, 'utf8')).architecture).toBe('MSRResNet');
  });
});
