import { describe, expect, it } from 'vitest';
import { AbortedError, InvalidInputError } from '../../src/errors';
import type { FloatImage } from '../../src/io/image';
import { createRng } from '../../src/io/noise';
import { DnCNN } from '../../src/models/dncnn';
import { N2VUNet, n2vUNetConfig } from '../../src/models/n2v-unet';
import type { Network } from '../../src/models/network';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { fineTune, type FineTuneOptions, type NamedImage } from '../../src/training/fine-tune';
import type { FitProgress } from '../../src/training/fit';
import { initializeParameters } from '../../src/training/init';
import { getTestContext } from '../helpers/gpu';

/*
 * Self-supervised training at CI size (training.md §7): a small DnCNN from scratch on noisy images alone, 32×32
 * patches, tens of steps, synthetic Gaussian noise drawn once. The clean images are used only to score the
 * held-out image afterwards: training must lower the validation loss and raise the held-out PSNR clearly above
 * the noisy input's.
 */

const SIDE = 48;
const SIGMA = 0.15;

/** Piecewise-smooth test pictures (discs and ramps, each its own), in [0.1, 0.9]. */
function cleanImage(seed: number): FloatImage {
  const rng = createRng(seed);
  const discs = Array.from({ length: 4 }, () => ({ x: rng.next() * SIDE, y: rng.next() * SIDE, r: 6 + rng.next() * 12, v: rng.next() }));
  const data = new Float32Array(SIDE * SIDE);
  for (let y = 0; y < SIDE; y++)
    for (let x = 0; x < SIDE; x++) {
      let v = 0.3 + (0.3 * x) / SIDE;
      for (const d of discs) if ((x - d.x) ** 2 + (y - d.y) ** 2 < d.r ** 2) v = 0.1 + 0.8 * d.v;
      data[y * SIDE + x] = v;
    }
  return { width: SIDE, height: SIDE, channels: 1, data };
}

function noisy(clean: FloatImage, seed: number): FloatImage {
  const rng = createRng(seed);
  return { ...clean, data: clean.data.map((v) => v + SIGMA * rng.normal()) };
}

function psnr(a: Float32Array, b: Float32Array): number {
  let se = 0;
  a.forEach((v, i) => (se += (v - b[i]) ** 2));
  return 10 * Math.log10(1 / (se / a.length));
}

function smallDnCNN(): DnCNN {
  const model = new DnCNN({ inChannels: 1, outChannels: 1, nc: 16, nb: 5, actMode: 'R' });
  initializeParameters(model, 7);
  return model;
}

/** N2V2's own network at a quarter of CAREamics' width: N2V2's median replacement needs a non-residual net. */
function smallN2V2UNet(): N2VUNet {
  const model = new N2VUNet(n2vUNetConfig(1, 1, { n2v2: true, numChannelsInit: 8 }));
  initializeParameters(model, 7);
  return model;
}

const cleans = [1, 2, 3, 4].map(cleanImage);
const images: NamedImage[] = cleans.map((c, i) => ({ name: `image${i}`, image: noisy(c, 100 + i) }));

async function heldOutPsnr(model: Network, name: string): Promise<{ before: number; after: number }> {
  const ctx = await getTestContext();
  const i = images.findIndex((im) => im.name === name);
  const session = new RestorationModel(ctx, model, 'check');
  try {
    const { image } = await session.runFloat(images[i].image);
    return { before: psnr(images[i].image.data, cleans[i].data), after: psnr(image.data, cleans[i].data) };
  } finally {
    await session.dispose();
  }
}

describe('fineTune: self-supervised training on noisy images alone', () => {
  const cases: [string, FineTuneOptions, number, () => Network][] = [
    ['Noise2Void (DnCNN)', { method: 'n2v', percentage: 2, steps: 60 }, 3, smallDnCNN],
    ['N2V2 (its U-Net)', { method: 'n2v2', percentage: 2, steps: 200 }, 2, smallN2V2UNet],
    ['Neighbor2Neighbor (DnCNN)', { method: 'neighbor2neighbor', steps: 60 }, 3, smallDnCNN],
  ];
  for (const [name, method, margin, network] of cases) {
    it(`${name} lowers the validation loss and gains ≥ ${margin} dB on a held-out image`, async () => {
      const ctx = await getTestContext();
      const model = network();
      const progress: FitProgress[] = [];
      const result = await fineTune(ctx, model, images, {
        ...method,
        patch: 32,
        batch: 8,
        validations: 3,
        validationFraction: 0.25,
        optimizer: { kind: 'adam', lr: 2e-3 },
        seed: 5,
        onProgress: (p) => progress.push(p),
      });
      expect(result.steps).toBe(method.steps);
      expect(result.validationImages).toHaveLength(1);
      const losses = progress.filter((p) => p.validation).map((p) => p.validation!.loss!);
      expect(losses).toHaveLength(3);
      expect(losses[2]).toBeLessThan(losses[0]);
      expect(progress.every((p) => p.validation?.psnr === undefined)).toBe(true);
      expect(result.best).toBeDefined();
      expect(result.last.size).toBeGreaterThan(0);
      const { before, after } = await heldOutPsnr(model, result.validationImages[0]);
      console.log(
        `${name}: held-out ${before.toFixed(2)} → ${after.toFixed(2)} dB, val loss ${losses.map((l) => l.toExponential(3)).join(' → ')}`,
      );
      expect(after - before, `${before.toFixed(2)} → ${after.toFixed(2)} dB`).toBeGreaterThanOrEqual(margin);
    }, 240_000);
  }

  it('ends on the time budget, validated, and stops on the signal keeping the weights', async () => {
    const ctx = await getTestContext();
    const model = smallDnCNN();
    const timed = await fineTune(ctx, model, images, { method: 'n2v', patch: 32, batch: 4, maxSeconds: 0.5, seed: 1 });
    expect(timed.outOfTime).toBe(true);
    expect(timed.steps).toBeGreaterThan(0);
    expect(timed.bestValidation?.loss).toBeGreaterThan(0);
    const controller = new AbortController();
    const stopped = fineTune(ctx, model, images, {
      method: 'n2v',
      patch: 32,
      batch: 4,
      steps: 1000,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.step === 3) controller.abort();
      },
    });
    await expect(stopped).rejects.toThrow(AbortedError);
  }, 120_000);

  it('names bad input; constant images and mixed sizes are fine', async () => {
    const ctx = await getTestContext();
    const model = smallDnCNN();
    const small = { name: 'tiny', image: { width: 20, height: 40, channels: 1, data: new Float32Array(800) } };
    await expect(fineTune(ctx, model, [small], { method: 'n2v', patch: 32, steps: 1 })).rejects.toThrow(
      /tiny is 20×40, smaller than the 32×32 patch/,
    );
    const rgb = { name: 'rgb', image: { width: 40, height: 40, channels: 3, data: new Float32Array(4800) } };
    await expect(fineTune(ctx, model, [rgb], { method: 'n2v', patch: 32, steps: 1 })).rejects.toThrow(
      /rgb has 3 channel\(s\), the network takes 1/,
    );
    await expect(fineTune(ctx, model, [], { method: 'n2v' })).rejects.toThrow(InvalidInputError);
    await expect(fineTune(ctx, model, images, { method: 'neighbor2neighbor', patch: 33, steps: 1 })).rejects.toThrow(/even patch sides/);
    const constant = { name: 'flat', image: { width: 40, height: 36, channels: 1, data: new Float32Array(1440).fill(0.5) } };
    const result = await fineTune(ctx, model, [constant, images[0]], {
      method: 'n2v2',
      patch: 32,
      batch: 2,
      steps: 2,
      normalize: { low: 1, high: 99.8 },
    });
    expect(result.steps).toBe(2);
    expect(Number.isFinite(result.lastLoss)).toBe(true);
    expect(result.normalize).toEqual({ low: 1, high: 99.8 });
  }, 120_000);
});
