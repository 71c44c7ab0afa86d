import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identifyNetwork } from '../../src/cli/checkpoint-file';
import type { RasterImage } from '../../src/io/image';
import { namedParameters } from '../../src/layers/module';
import { SINSR } from '../../src/models/sinsr';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { trainedStateToPth } from '../../src/training/checkpoint';
import { splitIndices } from '../../src/training/data/split';
import { initializeParameters } from '../../src/training/init';
import { type TrainedTensor, Trainer } from '../../src/training/trainer';
import { readPth } from '../../src/weights/pth';
import { toFloat32 } from '../../src/weights/tensor';
import { getTestContext } from '../helpers/gpu';
import { relL2 } from '../helpers/random';
import { cli, expectCleanFailure, expectSuccess, FIXTURE, readPng, requireBuiltCli, tempDir, writePng } from './helpers';

/*
 * `webgpu-restore train` on low/high-resolution pairs: with the whole pairs in order every step, the checkpoint it
 * writes equals the library Trainer's after the same steps on the same batch (a ×2 MSRResNet; a SINSR, whose
 * images map to [-1, 1]); the result upscales; bad pairs and flags are refused by name.
 */

/** A smooth RGB image, different per seed, as 8-bit codes. */
function rgb(w: number, h: number, seed: number): RasterImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        data[(y * w + x) * 3 + c] = Math.round(127 + 100 * Math.sin((x + 3 * c + seed) / (2 + seed)) * Math.cos((y - seed) / 3));
      }
    }
  }
  return { width: w, height: h, channels: 3, bitDepth: 8, data };
}

/** Planar float values in [0, 1] of an 8-bit image, as the CLI reads it, optionally mapped by `f`. */
function planar(img: RasterImage, f: (v: number) => number = (v) => v): Float32Array {
  const { width: w, height: h, channels } = img;
  const out = new Float32Array(channels * w * h);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < w * h; i++) out[c * w * h + i] = f(Math.fround(img.data[i * channels + c] / 255));
  }
  return out;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

interface Pairs {
  lr: string;
  hr: string;
  names: string[];
  low: RasterImage[];
  high: RasterImage[];
}

function writePairs(root: string, count: number, side: number, scale: number, seed: number): Pairs {
  const lr = join(root, 'lr');
  const hr = join(root, 'hr');
  mkdirSync(lr, { recursive: true });
  mkdirSync(hr, { recursive: true });
  const names = Array.from({ length: count }, (_, i) => `p${i}.png`);
  const low = names.map((_, i) => rgb(side, side, seed + i));
  const high = names.map((_, i) => rgb(side * scale, side * scale, seed + 10 + i));
  names.forEach((n, i) => {
    writePng(join(lr, n), low[i]);
    writePng(join(hr, n), high[i]);
  });
  return { lr, hr, names, low, high };
}

const ADAM = ['--optimizer', 'adam', '--lr', '1e-3', '--loss', 'mse', '--augment', 'none', '-q'];

/** Trains `model` in this process on `steps` copies of one batch with the CLI's settings; returns its state_dict. */
async function trainerSteps(
  model: ReturnType<typeof identifyNetwork>['network'],
  batch: { input: Float32Array; target: Float32Array },
  shape: [number, number, number, number],
  steps: number,
  validation?: { input: Float32Array; target: Float32Array; side: number },
): Promise<{ state: Map<string, TrainedTensor>; psnr?: number }> {
  const ctx = await getTestContext();
  const trainer = await Trainer.create(ctx, model, {
    batchShape: shape,
    loss: { kind: 'mse' },
    optimizer: { kind: 'adam', lr: 1e-3, weightDecay: 0 },
  });
  try {
    for (let s = 0; s < steps; s++) await trainer.step(batch);
    const state = await trainer.stateDict();
    if (!validation) return { state };
    await trainer.syncToModel();
    const session = new RestorationModel(ctx, model, 'test');
    try {
      const { side } = validation;
      const { image } = await session.runFloat({ width: side, height: side, channels: 3, data: validation.input });
      let se = 0;
      for (let i = 0; i < image.data.length; i++) se += ((image.data[i] + 1) / 2 - validation.target[i]) ** 2;
      return { state, psnr: 10 * Math.log10(image.data.length / se) };
    } finally {
      await session.dispose();
    }
  } finally {
    trainer.dispose();
  }
}

function expectSameState(path: string, state: Map<string, TrainedTensor>, init: Map<string, Float32Array>): void {
  const written = readPth(new Uint8Array(readFileSync(path)));
  expect([...written.keys()].sort()).toEqual([...state.keys()].sort());
  let moved = 0;
  for (const [name, t] of state) {
    const ours = toFloat32(written.get(name)!);
    expect(relL2(ours, t.data as Float32Array), name).toBeLessThanOrEqual(1e-6);
    moved = Math.max(moved, relL2(ours, init.get(name)!));
  }
  // The comparison means something only if training moved the weights.
  expect(moved).toBeGreaterThan(1e-5);
}

describe('webgpu-restore train: super-resolution pairs', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(() => {
    requireBuiltCli();
    tmp = tempDir();
  });
  afterAll(() => tmp.remove());

  it('trains a ×2 MSRResNet on whole LR/HR pairs as the library Trainer does, and upscale runs the result', async () => {
    const data = writePairs(join(tmp.path, 'x2'), 3, 6, 2, 1);
    const init = FIXTURE('msrresnet/tiny_x2.pth');
    const out = join(tmp.path, 'msr.pth');
    const args = ['--pairs', `${data.lr},${data.hr}`, '--patch', '6', '--batch', '3', '--split', '100,0,0'];
    expectSuccess(await cli('train', '-w', init, ...args, ...ADAM, '--steps', '2', '-o', out));

    const sd = readPth(new Uint8Array(readFileSync(init)));
    const initial = new Map([...sd].map(([k, t]) => [k, toFloat32(t)]));
    const { network } = identifyNetwork(sd, 'tiny_x2.pth');
    const order = splitIndices(3, { train: 1, validation: 0, test: 0 }, 0).train;
    const batch = {
      input: concat(order.map((i) => planar(data.low[i]))),
      target: concat(order.map((i) => planar(data.high[i]))),
    };
    try {
      const { state } = await trainerSteps(network, batch, [3, 3, 6, 6], 2);
      expectSameState(out, state, initial);
    } finally {
      network.release();
    }

    const up = join(tmp.path, 'up.png');
    expectSuccess(await cli('upscale', join(data.lr, 'p0.png'), '-w', out, '-o', up, '-q'));
    const img = readPng(up);
    expect([img.width, img.height, img.channels]).toEqual([12, 12, 3]);
  }, 120_000);

  it('trains SINSR on [-1, 1] images (input and target 2x − 1) and validates its (y + 1) / 2 against the HR image', async () => {
    const data = writePairs(join(tmp.path, 'sinsr'), 3, 8, 4, 20);
    const model = new SINSR(tinySinsr);
    initializeParameters(model, 5);
    const initial = new Map(namedParameters(model).map(([k, p]) => [k, Float32Array.from(p.data!)]));
    const init = join(tmp.path, 'sinsr_init.pth');
    const entries = new Map<string, TrainedTensor>(
      [...initial].map(([k, d]) => [k, { shape: shapeOf(model, k), dtype: 'float32', data: d }]),
    );
    writeFileSync(init, trainedStateToPth(entries));

    const out = join(tmp.path, 'sinsr.pth');
    const args = ['--pairs', `${data.lr},${data.hr}`, '--patch', '8', '--batch', '2', '--split', '67,33,0'];
    const r = await cli('train', '-w', init, ...args, ...ADAM.filter((a) => a !== '-q'), '--steps', '1', '-o', out);
    expectSuccess(r);
    const printed = Number(/best validation ([\d.]+) dB/.exec(r.stdout)?.[1]);

    const parts = splitIndices(3, { train: 0.67, validation: 0.33, test: 0 }, 0);
    const sym = (v: number) => 2 * v - 1;
    const batch = {
      input: concat(parts.train.map((i) => planar(data.low[i], sym))),
      target: concat(parts.train.map((i) => planar(data.high[i], sym))),
    };
    const v = parts.validation[0];
    const network = identifyNetwork(readPth(new Uint8Array(readFileSync(init))), 'sinsr_init.pth').network;
    try {
      const { state, psnr } = await trainerSteps(network, batch, [2, 3, 8, 8], 1, {
        input: planar(data.low[v], sym),
        target: planar(data.high[v]),
        side: 8,
      });
      expectSameState(out, state, initial);
      expect(Math.abs(printed - psnr!), `printed ${printed} dB, expected ${psnr} dB`).toBeLessThanOrEqual(0.006);
    } finally {
      network.release();
    }
  }, 120_000);

  it('--degrade bicubic makes the low-resolution images of --clean HR images (cropped to multiples of the scale)', async () => {
    const hr = join(tmp.path, 'hr-only');
    mkdirSync(hr);
    for (let i = 0; i < 2; i++) writePng(join(hr, `h${i}.png`), rgb(13, 12, 60 + i));
    const out = join(tmp.path, 'degrade.pth');
    const args = ['--clean', hr, '--degrade', 'bicubic', '--patch', '6', '--batch', '2', '--split', '100,0,0'];
    expectSuccess(await cli('train', '-w', FIXTURE('msrresnet/tiny_x2.pth'), ...args, ...ADAM, '--steps', '1', '-o', out));
    expect(JSON.parse(readFileSync(`${out}.json`, 'utf8'))).toMatchObject({ step: 1, architecture: 'MSRResNet' });
  }, 60_000);

  it('refuses pairs of the wrong size, --scale where it does not apply, and an unknown --arch, naming them', async () => {
    const data = writePairs(join(tmp.path, 'bad'), 2, 6, 2, 40);
    writePng(join(data.hr, 'p1.png'), rgb(12, 11, 3));
    const out = join(tmp.path, 'bad.pth');
    const pairs = ['--pairs', `${data.lr},${data.hr}`, '--patch', '4', '--steps', '1', '-o', out];
    expectCleanFailure(
      await cli('train', '-w', FIXTURE('msrresnet/tiny_x2.pth'), ...pairs),
      /p1\.png: the high-resolution image is 12×11, not 2× its low-resolution image 6×6 \(expected 12×12\)/,
    );
    const clean = ['--clean', data.hr, '--noise', 'gaussian:25', '--steps', '1', '-o', out];
    expectCleanFailure(
      await cli('train', '--arch', 'dncnn', '--scale', '2', ...clean),
      /--scale is for the super-resolution networks .*dncnn is a denoiser/,
      2,
    );
    expectCleanFailure(
      await cli('train', '--arch', 'srresnet', '--scale', '3', ...pairs),
      /--arch srresnet is built for ×2, ×4, ×8, not ×3/,
      2,
    );
    expectCleanFailure(
      await cli('train', '-w', FIXTURE('msrresnet/tiny_x2.pth'), '--scale', '4', ...pairs),
      /--scale 4: the checkpoint holds a ×2 MSRResNet/,
      2,
    );
    expectCleanFailure(
      await cli('train', '--arch', 'msrresnet', ...clean),
      /MSRResNet is a ×4 super-resolution network: train it on --pairs LR_DIR,HR_DIR/,
      2,
    );
    expectCleanFailure(
      await cli('train', '--arch', 'dncnn', '--degrade', 'bicubic', ...clean),
      /--degrade bicubic makes the low-resolution images of --clean HR_DIR for a super-resolution network/,
      2,
    );
    expectCleanFailure(
      await cli('train', '--arch', 'edsr', ...clean),
      /--arch must be one of dncnn, unet, resunet-scse, scunet, n2v-unet, n2v2-unet, msrresnet, srresnet, rrdbnet, sinsr, sinsr-cbam, got 'edsr'/,
      2,
    );
  }, 60_000);
});

/** A reduced SINSR (the parity fixtures' widths), so a step runs in seconds on a software adapter. */
const tinySinsr = {
  inChannels: 3,
  outChannels: 3,
  firstFeat: 6,
  numFeat: 8,
  growth: 3,
  numLayers: 2,
  numRDBs: 2,
  numRRDBs: 1,
  attention: 'none' as const,
  reduction: 8,
};

function shapeOf(model: SINSR, name: string): readonly number[] {
  return namedParameters(model).find(([k]) => k === name)![1].shape;
}
