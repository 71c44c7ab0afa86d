/** The single-file `denoise` command and the CLI's error handling (usage errors exit 2, failures exit 1). */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { networkFromCheckpoint } from '../../src/models/load';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { getTestContext } from '../helpers/gpu';
import {
  cli,
  expectCleanFailure,
  FIXTURE,
  headerBitDepth,
  mseAgainst,
  noisyPair,
  ownStderr,
  readPng,
  requireBuiltCli,
  tempDir,
  writePng as writePngAt,
} from './helpers';

let dir: string;
let removeDir: () => void;
const writePng = (name: string, image: Parameters<typeof writePngAt>[1]) => writePngAt(join(dir, name), image);

beforeAll(() => {
  requireBuiltCli();
  ({ path: dir, remove: removeDir } = tempDir());
});

afterAll(() => removeDir?.());

describe('webgpu-restore denoise', () => {
  it('denoises an 8-bit grayscale PNG with the built-in model', async () => {
    const { clean, image } = noisyPair(24, 20, 1, 8, 1);
    const input = writePng('gray8.png', image);
    const output = join(dir, 'gray8.out.png');
    const r = await cli('denoise', input, '-o', output);
    expect(r.code, ownStderr(r)).toBe(0);
    expect(r.stdout).toMatch(/^adapter: \S/m);
    expect(r.stdout).toMatch(/24×20/);
    const out = readPng(output);
    expect([out.width, out.height, out.channels, out.bitDepth]).toEqual([24, 20, 1, 8]);
    expect(headerBitDepth(output)).toBe(8);
    // It really denoised: much closer to the clean image than the noisy input was.
    expect(mseAgainst(out, clean)).toBeLessThan(0.6 * mseAgainst(image, clean));
  });

  it('keeps 16-bit input 16-bit', async () => {
    const { clean, image } = noisyPair(24, 20, 1, 16, 2);
    const input = writePng('gray16.png', image);
    const output = join(dir, 'gray16.out.png');
    const r = await cli('denoise', input, '-o', output, '--quiet');
    expect(r.code, ownStderr(r)).toBe(0);
    expect(r.stdout.trim()).toBe(''); // --quiet
    const out = readPng(output);
    expect([out.width, out.height, out.channels, out.bitDepth]).toEqual([24, 20, 1, 16]);
    expect(out.data).toBeInstanceOf(Uint16Array);
    expect(headerBitDepth(output)).toBe(16);
    // Values use the 16-bit range (not 8-bit values scaled up by 257).
    expect([...out.data].some((v) => v % 257 !== 0)).toBe(true);
    expect(mseAgainst(out, clean)).toBeLessThan(0.6 * mseAgainst(image, clean));
  });

  it('--weights with a colour checkpoint on an RGB PNG gives the same RGB image as the library', async () => {
    const { image } = noisyPair(13, 9, 3, 8, 3);
    const input = writePng('rgb.png', image);
    const output = join(dir, 'rgb.out.png');
    const weights = FIXTURE('dncnn/tiny_r_color.pth');
    const r = await cli('denoise', input, '-o', output, '--weights', weights);
    expect(r.code, ownStderr(r)).toBe(0);
    expect(r.stdout).toMatch(/tiny_r_color\.pth/);
    const out = readPng(output);
    expect([out.width, out.height, out.channels, out.bitDepth]).toEqual([13, 9, 3, 8]);
    expect(out.data).not.toEqual(image.data);

    const ctx = await getTestContext();
    const model = new RestorationModel(ctx, networkFromCheckpoint(readFileSync(weights)), 'tiny_r_color');
    const expected = await model.run(image);
    model.dispose();
    let maxDiff = 0;
    for (let i = 0; i < expected.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(expected.data[i] - out.data[i]));
    expect(maxDiff).toBeLessThanOrEqual(1);
  });

  it('--kernels lists the kernel variants the run used', async () => {
    const { image } = noisyPair(9, 7, 3, 8, 5);
    const input = writePng('rgb-kernels.png', image);
    const r = await cli(
      'denoise',
      input,
      '-o',
      join(dir, 'rgb-kernels.out.png'),
      '--weights',
      FIXTURE('dncnn/tiny_r_color.pth'),
      '--kernels',
    );
    expect(r.code, ownStderr(r)).toBe(0);
    // tiny_r_color: 3→8 head (ReLU), 8→8 body (ReLU), 8→3 tail, then the residual subtraction.
    expect(r.stdout).toMatch(/^kernel: conv2d\[k3x3,.*relu,bias\]$/m);
    expect(r.stdout).toMatch(/^kernel: conv2d\[k3x3,.*none,bias,mask\]$/m);
    expect(r.stdout).toMatch(/^kernel: binary\[sub\]$/m);
  });

  it('--gray converts an RGB image for the grayscale built-in model', async () => {
    const { image } = noisyPair(16, 12, 3, 8, 4);
    const input = writePng('rgb-for-gray.png', image);
    const output = join(dir, 'rgb-for-gray.out.png');
    const r = await cli('denoise', input, '-o', output, '--gray');
    expect(r.code, ownStderr(r)).toBe(0);
    const out = readPng(output);
    expect([out.width, out.height, out.channels, out.bitDepth]).toEqual([16, 12, 1, 8]);
  });
});

describe('webgpu-restore errors', () => {
  it('a missing input file', async () => {
    const missing = join(dir, 'does-not-exist.png');
    const r = await cli('denoise', missing, '-o', join(dir, 'x.png'));
    expectCleanFailure(r, /does-not-exist\.png/);
    expect(ownStderr(r)).toMatch(/IMAGE_FORMAT|no such file|ENOENT/);
    expect(existsSync(join(dir, 'x.png'))).toBe(false);
  });

  it('an input that is not a PNG (JPEG bytes)', async () => {
    const path = join(dir, 'photo.png');
    writeFileSync(path, Uint8Array.of(0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00));
    const r = await cli('denoise', path, '-o', join(dir, 'photo.out.png'));
    expectCleanFailure(r, /photo\.png/);
    expect(ownStderr(r)).toMatch(/JPEG/);
    expect(ownStderr(r)).toMatch(/IMAGE_FORMAT/);
  });

  it('an RGB image for the grayscale built-in model', async () => {
    const { image } = noisyPair(8, 6, 3, 8, 5);
    const input = writePng('rgb-small.png', image);
    const r = await cli('denoise', input, '-o', join(dir, 'rgb-small.out.png'));
    expectCleanFailure(r, /grayscale/);
    expect(ownStderr(r)).toMatch(/RGB|3 channels/);
    expect(existsSync(join(dir, 'rgb-small.out.png'))).toBe(false);
  });

  it('a truncated checkpoint', async () => {
    const bytes = readFileSync(FIXTURE('dncnn/tiny_r_gray.pth'));
    const weights = join(dir, 'half.pth');
    writeFileSync(weights, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const input = writePng('for-half.png', noisyPair(8, 6, 1, 8, 6).image);
    const r = await cli('denoise', input, '-o', join(dir, 'half.out.png'), '--weights', weights);
    expectCleanFailure(r, /CHECKPOINT_TRUNCATED/);
    expect(ownStderr(r)).toMatch(/half\.pth/);
  });

  it('a checkpoint of an unknown network', async () => {
    const input = writePng('for-zip.png', noisyPair(8, 6, 1, 8, 7).image);
    const r = await cli('denoise', input, '-o', join(dir, 'zip.out.png'), '-w', FIXTURE('weights/zip_basic.pth'));
    expectCleanFailure(r, /not a network we know/);
    expect(ownStderr(r)).toMatch(/conv\.weight/); // the keys it saw
  });

  it('a weights file that does not exist', async () => {
    const input = writePng('for-nofile.png', noisyPair(8, 6, 1, 8, 8).image);
    const r = await cli('denoise', input, '-o', join(dir, 'nofile.out.png'), '-w', join(dir, 'nowhere.pth'));
    expectCleanFailure(r, /nowhere\.pth/);
  });

  it('an output in a directory that does not exist, or not a .png', async () => {
    const input = writePng('for-out.png', noisyPair(8, 6, 1, 8, 9).image);
    const weights = FIXTURE('dncnn/tiny_r_gray.pth');
    const badDir = await cli('denoise', input, '-o', join(dir, 'no-such-dir', 'out.png'), '-w', weights);
    expectCleanFailure(badDir, /no-such-dir/);
    const notPng = await cli('denoise', input, '-o', join(dir, 'out.jpg'), '-w', weights);
    expectCleanFailure(notPng, /out\.jpg/);
    expect(ownStderr(notPng)).toMatch(/PNG/);
    expect(existsSync(join(dir, 'out.jpg'))).toBe(false);
  });

  it('an unknown command prints the usage and exits 2', async () => {
    const r = await cli('sharpen', 'a.png', '-o', 'b.png');
    expectCleanFailure(r, /unknown command 'sharpen'/, 2);
    expect(ownStderr(r)).toMatch(/usage:/);
  });

  it('-o with several inputs, or no input at all, prints the usage and exits 2', async () => {
    const r = await cli('denoise', 'a.png', 'b.png', '-o', 'out.png');
    expectCleanFailure(r, /-o names one output.*--out-dir/, 2);
    expect(ownStderr(r)).toMatch(/usage:/);
    const none = await cli('denoise', '-o', 'out.png');
    expectCleanFailure(none, /at least one input/, 2);
  });

  it('an unknown option prints the usage and exits 2, without a stack trace', async () => {
    const r = await cli('denoise', 'a.png', '-o', 'b.png', '--sigma', '25');
    expectCleanFailure(r, /--sigma/, 2);
    expect(ownStderr(r)).toMatch(/usage:/);
  });

  it('no arguments prints the usage and exits 2; --help exits 0', async () => {
    const none = await cli();
    expect(none.code).toBe(2);
    expect(none.stdout + none.stderr).toMatch(/usage:/);
    const help = await cli('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/usage:[\s\S]*denoise[\s\S]*upscale[\s\S]*inspect[\s\S]*convert/);
    const denoiseHelp = await cli('denoise', '--help');
    expect(denoiseHelp.code).toBe(0);
    expect(denoiseHelp.stdout).toMatch(/usage:[\s\S]*--out-dir[\s\S]*--weights[\s\S]*--tile/);
  });

  it('bad option values exit 2 naming the option', async () => {
    expectCleanFailure(await cli('denoise', 'a.png', '--tile', 'big'), /--tile/, 2);
    expectCleanFailure(await cli('denoise', 'a.png', '--tile', '3'), /--tile needs an integer from 16/, 2);
    expectCleanFailure(await cli('denoise', 'a.png', '--model', 'dncnn_99'), /unknown built-in model 'dncnn_99'.*dncnn_25/, 2);
    expectCleanFailure(await cli('denoise', 'a.png', '--model', 'dncnn_25', '-w', 'x.pth'), /either --model or --weights/, 2);
    expectCleanFailure(await cli('compare', 'a.png', 'b.png', '--data-range', '-1'), /--data-range/, 2);
    expectCleanFailure(await cli('convert', 'a.pth', '-o', 'b.safetensors', '--dtype', 'int8'), /--dtype must be one of/, 2);
    expectCleanFailure(await cli('convert', 'a.pth', '-o', 'b.pth'), /\.safetensors/, 2);
    expectCleanFailure(await cli('inspect'), /exactly one checkpoint/, 2);
  });
});
