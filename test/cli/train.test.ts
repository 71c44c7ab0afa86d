import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRAIN_OPTIONS } from '../../src/cli/train-options';
import { COMMAND_USAGE } from '../../src/cli/usage';
import { readPth } from '../../src/weights/pth';
import { toFloat32 } from '../../src/weights/tensor';
import { relL2 } from '../helpers/random';
import { cli, expectCleanFailure, expectSuccess, FIXTURE, noisyPair, requireBuiltCli, tempDir, writePng } from './helpers';

/*
 * `webgpu-restore train` end to end: the deterministic case (the given pairs, whole, in order, every step) equals
 * PyTorch 1.13's steps (tools/torch/make_cli_training_fixture.py); --resume goes on as if never stopped; bad
 * input stops with an error naming it.
 */
const DATA = FIXTURE('training/cli');

interface Expected {
  steps: number;
  after: Record<string, { shape: number[]; data: number[] }>;
}

const DETERMINISTIC = ['--pairs', `${join(DATA, 'noisy')},${join(DATA, 'clean')}`, '--patch', '16', '--batch', '2', '--augment', 'none'];
const ADAM = ['--split', '100,0,0', '--optimizer', 'adam', '--lr', '1e-3', '--loss', 'mse', '-q'];

function expectEqualsPyTorch(path: string, expected: Expected): void {
  const sd = readPth(new Uint8Array(readFileSync(path)));
  expect([...sd.keys()].sort()).toEqual(Object.keys(expected.after).sort());
  for (const [name, ref] of Object.entries(expected.after)) {
    const t = sd.get(name)!;
    expect(t.shape, name).toEqual(ref.shape);
    if (t.dtype === 'int64') expect(Array.from(t.data as BigInt64Array, Number), name).toEqual(ref.data);
    // The conv biases before BatchNorms have zero gradients in exact arithmetic: Adam moves them by ≤ lr a step.
    else if (/^model\.(2|5|8)\.bias$|running_mean$/.test(name)) expect(relL2(toFloat32(t), ref.data), name).toBeLessThanOrEqual(0.05);
    else expect(relL2(toFloat32(t), ref.data), name).toBeLessThanOrEqual(1e-4);
  }
}

describe('webgpu-restore train', () => {
  let tmp: ReturnType<typeof tempDir>;
  let expected: Expected;
  beforeAll(() => {
    requireBuiltCli();
    tmp = tempDir();
    expected = JSON.parse(readFileSync(join(DATA, 'expected.json'), 'utf8')) as Expected;
  });
  afterAll(() => tmp.remove());

  it('documents every flag in --help', async () => {
    const r = await cli('train', '--help');
    expectSuccess(r);
    for (const flag of Object.keys(TRAIN_OPTIONS)) expect(r.stdout, `--${flag}`).toContain(`--${flag}`);
    expect(COMMAND_USAGE.train).toContain('weights_only=True');
  });

  it('given the whole images in order every step, equals PyTorch 1.13 (Adam, MSE, BatchNorm in train mode)', async () => {
    const out = join(tmp.path, 'det.pth');
    expectSuccess(
      await cli('train', '-w', join(DATA, 'init.pth'), ...DETERMINISTIC, ...ADAM, '--steps', String(expected.steps), '-o', out),
    );
    expectEqualsPyTorch(out, expected);
    expect(existsSync(`${out}.json`) && existsSync(`${out}.optimizer.safetensors`)).toBe(true);
    const sidecar = JSON.parse(readFileSync(`${out}.json`, 'utf8')) as { step: number; numBatchesTracked: Record<string, number> };
    expect(sidecar.step).toBe(expected.steps);
    expect(sidecar.numBatchesTracked['model.3.num_batches_tracked']).toBe(expected.steps);
  }, 180_000);

  it('--resume goes on from the saved step as if never stopped', async () => {
    const out = join(tmp.path, 'resumed.pth');
    expectSuccess(await cli('train', '-w', join(DATA, 'init.pth'), ...DETERMINISTIC, ...ADAM, '--steps', '2', '-o', out));
    expectSuccess(await cli('train', '--resume', ...DETERMINISTIC, ...ADAM, '--steps', String(expected.steps), '-o', out));
    expectEqualsPyTorch(out, expected);
  }, 180_000);

  it('trains a new DnCNN on clean images with synthetic noise, validating, and writes a checkpoint denoise can use', async () => {
    const dir = join(tmp.path, 'clean');
    mkdirSync(dir);
    for (let i = 0; i < 4; i++) writePng(join(dir, `img${i}.png`), noisyPair(24, 20, 1, 8, i).image);
    const out = join(tmp.path, 'new.pth');
    const r = await cli(
      'train',
      '--arch',
      'dncnn',
      '--clean',
      dir,
      '--noise',
      'gaussian:25',
      '--patch',
      '16',
      '--batch',
      '2',
      '--steps',
      '2',
      '--split',
      '50,50,0',
      '-o',
      out,
    );
    expectSuccess(r);
    expect(r.stdout).toMatch(/trained 2 steps .*best validation [\d.]+ dB/);
    expect(existsSync(out.replace(/\.pth$/, '.best.pth'))).toBe(true);
    const denoised = join(tmp.path, 'denoised.png');
    expectSuccess(await cli('denoise', join(dir, 'img0.png'), '-w', out, '-o', denoised, '-q'));
    expect(existsSync(denoised)).toBe(true);
  }, 300_000);

  it('refuses bad input with errors that name it', async () => {
    const out = join(tmp.path, 'bad.pth');
    const lonely = join(tmp.path, 'lonely');
    cpSync(join(DATA, 'noisy'), lonely, { recursive: true });
    writeFileSync(join(lonely, 'c.png'), readFileSync(join(DATA, 'noisy', 'a.png')));
    expectCleanFailure(
      await cli('train', '-w', join(DATA, 'init.pth'), '--pairs', `${lonely},${join(DATA, 'clean')}`, '--steps', '1', '-o', out),
      /no clean image .* for c/,
    );
    expectCleanFailure(
      await cli('train', '-w', join(DATA, 'init.pth'), ...DETERMINISTIC.slice(0, 2), '--patch', '32', '--steps', '1', '-o', out),
      /a\.png is 16×16, smaller than the 32×32 patch/,
    );
    expectCleanFailure(
      await cli('train', '--arch', 'msrresnet', '--clean', DATA, '--noise', 'gaussian:25', '--steps', '1', '-o', out),
      /MSRResNet is a ×4 super-resolution network: train it on --pairs LR_DIR,HR_DIR/,
      2,
    );
    expectCleanFailure(
      await cli('train', '--arch', 'dncnn', '--clean', DATA, '--noise', 'gaussian:25', '--optimizer', 'sgd', '--steps', '1', '-o', out),
      /sgd needs --lr/,
      2,
    );
    expectCleanFailure(await cli('train', '--arch', 'dncnn', '--clean', DATA, '--steps', '1', '-o', out), /--clean needs --noise/, 2);
    expectCleanFailure(
      await cli('train', '--arch', 'dncnn', '--clean', DATA, '--noise', 'gaussian:25', '--steps', '1'),
      /-o OUT.pth is required/,
      2,
    );
    expectCleanFailure(
      await cli('train', '-w', FIXTURE('msrresnet/tiny_x2.pth'), ...DETERMINISTIC, '--steps', '1', '-o', out),
      /a\.png: the high-resolution image has 1 channel\(s\), the network gives 3/,
    );
    const masks = join(tmp.path, 'masks');
    mkdirSync(masks);
    writePng(join(masks, 'a.png'), { width: 16, height: 16, channels: 1, bitDepth: 8, data: new Uint8Array(256) });
    writePng(join(masks, 'b.png'), { width: 8, height: 8, channels: 1, bitDepth: 8, data: new Uint8Array(64) });
    const withMasks = ['-w', join(DATA, 'init.pth'), ...DETERMINISTIC, '--steps', '1', '--masks', masks, '-o', out];
    expectCleanFailure(await cli('train', ...withMasks, '--lambda', '2'), /b\.png: the mask is 8×8, the image 16×16/);
    expectCleanFailure(await cli('train', ...withMasks), /--masks needs --lambda/, 2);
    expect(existsSync(out)).toBe(false);
  }, 180_000);
});
