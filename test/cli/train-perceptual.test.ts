/**
 * `webgpu-restore train` with the perceptual loss (`--loss …+0.1*perceptual --vgg VGG19.pth:LAYERS`) and the
 * validation LPIPS (`--lpips BACKBONE.pth,HEADS.pth`): the printed LPIPS is the distance computed here, with the
 * library, on the validation output of the checkpoint the run wrote; the perceptual term moves the weights; flags
 * that go together are refused alone.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identifyNetwork, readCheckpointFile, readContents } from '../../src/cli/checkpoint-file';
import { readTrainingExamples } from '../../src/cli/train-data';
import { Lpips, lpips } from '../../src/runtime/lpips';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { readPth } from '../../src/weights/pth';
import { toFloat32 } from '../../src/weights/tensor';
import { getTestContext } from '../helpers/gpu';
import { relL2 } from '../helpers/random';
import { cli, expectCleanFailure, expectSuccess, FIXTURE, type Result, requireBuiltCli, tempDir } from './helpers';

// A tiny DnCNN (8 features, BatchNorm) and two 16×16 gray noisy/clean pairs: one trains, one validates.
const DATA = FIXTURE('training/cli');
const VGG19 = FIXTURE('perceptual/vgg19.pth');
const LPIPS_FILES = `${FIXTURE('perceptual/vgg16.pth')},${FIXTURE('perceptual/lpips-vgg.pth')}`;
const RUN = [
  ...['train', '-w', join(DATA, 'init.pth'), '--pairs', `${join(DATA, 'noisy')},${join(DATA, 'clean')}`],
  ...['--patch', '16', '--batch', '1', '--augment', 'none', '--split', '50,50,0', '--steps', '1'],
  // SGD moves each weight by lr·gradient, so the perceptual term's share of the gradient shows in the weights
  // (Adam's first step is ±lr whatever the gradient's size).
  ...['--optimizer', 'sgd', '--lr', '0.05'],
];

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => {
  requireBuiltCli();
  tmp = tempDir();
});
afterAll(() => tmp.remove());

function weights(path: string): Map<string, Float32Array> {
  const sd = readPth(new Uint8Array(readFileSync(path)));
  return new Map([...sd].filter(([, t]) => t.dtype !== 'int64').map(([k, t]) => [k, toFloat32(t)]));
}

function printed(text: string, pattern: RegExp, r: Result): number {
  const m = pattern.exec(text);
  expect(m, `${pattern} in:\n${r.stdout}\n${r.stderr}`).not.toBeNull();
  return Number(m![1]);
}

/** LPIPS of the checkpoint's output on the validation image against its clean target, as fit.ts validates. */
async function expectedLpips(checkpoint: string, validationName: string): Promise<number> {
  const ctx = await getTestContext();
  const file = await readCheckpointFile(checkpoint);
  const network = identifyNetwork(readContents(file).stateDict, file.name).network;
  const examples = await readTrainingExamples({ pairs: { noisy: join(DATA, 'noisy'), clean: join(DATA, 'clean') } });
  const example = examples.find((ex) => ex.name === validationName)!;
  const session = new RestorationModel(ctx, network, file.name);
  const [backbone, heads] = LPIPS_FILES.split(',').map((p) => readFileSync(p));
  const model = Lpips.fromCheckpoints(ctx, backbone, heads);
  try {
    const { image } = await session.runFloat(example.input!);
    return await lpips(model, image, example.target);
  } finally {
    model.dispose();
    await session.dispose();
    network.release();
  }
}

describe('webgpu-restore train --loss …perceptual --vgg, --lpips', () => {
  it('prints the validation LPIPS of the trained network, and the perceptual term changes the weights', async () => {
    const withLpips = join(tmp.path, 'perceptual.pth');
    const r = await cli(...RUN, '--loss', 'l1+0.1*perceptual', '--vgg', `${VGG19}:conv2_2=1`, '--lpips', LPIPS_FILES, '-o', withLpips);
    expectSuccess(r);
    const line = printed(r.stderr, /^step 1\/1 .* val [\d.]+ dB [\d.]+ lpips ([\d.e-]+) eta/m, r);
    const summary = printed(r.stdout, /best validation [\d.]+ dB \/ SSIM [\d.]+ \/ LPIPS ([\d.e-]+) at step 1/, r);
    expect(summary).toBe(line);
    const sidecar = JSON.parse(readFileSync(`${withLpips}.json`, 'utf8')) as { validation: string[] };
    expect(sidecar.validation).toHaveLength(1);
    const expected = await expectedLpips(withLpips, sidecar.validation[0]);
    expect(expected).toBeGreaterThan(0);
    // Printed to 4 significant digits.
    expect(Math.abs(line - expected) / expected).toBeLessThan(6e-4);

    const plain = join(tmp.path, 'plain.pth');
    const q = await cli(...RUN, '--loss', 'l1', '-o', plain);
    expectSuccess(q);
    expect(q.stderr).toMatch(/^step 1\/1 .* val [\d.]+ dB [\d.]+ eta/m);
    expect(`${q.stdout}${q.stderr}`).not.toMatch(/lpips/i);
    expect(q.stdout).toMatch(/best validation [\d.]+ dB \/ SSIM [\d.]+ at step 1/);

    // The same seed, data and step: only the perceptual term's gradient tells the two apart. (The biases before
    // BatchNorm have no gradient, so they stay at init in both.)
    const all = (m: Map<string, Float32Array>) => Float32Array.from([...m.keys()].sort().flatMap((k) => [...m.get(k)!]));
    const [a, b, init] = [weights(withLpips), weights(plain), weights(join(DATA, 'init.pth'))].map(all);
    expect(relL2(b, init), 'l1 alone trains').toBeGreaterThan(1e-2);
    expect(relL2(a, b), 'the perceptual term moves the weights').toBeGreaterThan(1e-3);
  }, 120_000);

  it('refuses --vgg without a perceptual term, perceptual without --vgg, and --lpips without validation images', async () => {
    const out = join(tmp.path, 'bad.pth');
    expectCleanFailure(await cli(...RUN, '--loss', 'l1', '--vgg', VGG19, '-o', out), /--vgg is the network of the perceptual loss/, 2);
    expectCleanFailure(await cli(...RUN, '--loss', 'l1+perceptual', '-o', out), /--loss perceptual needs --vgg/, 2);
    expectCleanFailure(
      await cli(...RUN, '--loss', 'l1+perceptual', '--vgg', `${VGG19}:conv9_9`, '-o', out),
      /--vgg: vgg19 has no layer 'conv9_9'/,
      2,
    );
    expectCleanFailure(
      await cli(...RUN, '--split', '100,0,0', '--lpips', LPIPS_FILES, '-o', out),
      /--lpips scores the validation images, and the split 100,0,0 leaves none/,
      2,
    );
  }, 60_000);
});
