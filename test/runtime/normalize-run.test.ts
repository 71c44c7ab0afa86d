/**
 * RunOptions.normalize: percentile normalisation wired into the run path. Each case is checked against the same
 * model run without the option on an input normalised in float64 here, its output mapped back in float64 (the
 * percentiles computed here too, by NumPy's 'linear' rule, independently of src/io/normalize.ts).
 */
import { describe, expect, it } from 'vitest';
import { createApi } from '../../src/api';
import { GPUUnavailableError, InvalidInputError } from '../../src/errors';
import type { FloatImage, RasterImage } from '../../src/io/image';
import { networkFromCheckpoint } from '../../src/models/load';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { writeSafetensors } from '../../src/weights/safetensors';
import { readFixtureJson } from '../helpers/fixture-loader';
import { loadDnCNNFixture } from '../helpers/fixtures';
import { getTestContext } from '../helpers/gpu';
import { relL2, seededRandom } from '../helpers/random';
import { type ManifestEntry, seededStateDict } from '../helpers/seeded-weights';

const SLOW = 300_000;

/** np.percentile(values, p) (method 'linear'), float64. */
function npPercentile(values: ArrayLike<number>, p: number): number {
  const sorted = Float64Array.from(values).sort();
  const pos = ((sorted.length - 1) * p) / 100;
  const i = Math.floor(pos);
  const j = Math.min(i + 1, sorted.length - 1);
  return sorted[i] + (sorted[j] - sorted[i]) * (pos - i);
}

/** Per-channel percentile ranges of a planar image, over rows [y0, y1) only. */
function ranges(img: FloatImage, low: number, high: number, y0 = 0, y1 = img.height): { lo: number[]; hi: number[] } {
  const plane = img.width * img.height;
  const lo: number[] = [];
  const hi: number[] = [];
  for (let c = 0; c < img.channels; c++) {
    const v = img.data.subarray(c * plane + y0 * img.width, c * plane + y1 * img.width);
    lo.push(npPercentile(v, low));
    hi.push(npPercentile(v, high));
  }
  return { lo, hi };
}

/** Planar float image whose channel c lies in [offset[c], offset[c] + span[c]], with a few outliers. */
function image(width: number, height: number, offset: number[], span: number[], seed: number): FloatImage {
  const r = seededRandom(seed);
  const channels = offset.length;
  const data = new Float32Array(width * height * channels);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < width * height; i++) {
      const x = i % width;
      const y = Math.floor(i / width);
      const smooth = 0.5 + 0.4 * Math.sin(x / 3 + c) * Math.cos(y / 4);
      data[c * width * height + i] = offset[c] + span[c] * Math.min(1, Math.max(0, smooth + 0.1 * (r() - 0.5)));
    }
    data[c * width * height + 3] = offset[c] + 3 * span[c]; // an outlier, cut by the upper percentile
  }
  return { width, height, channels, data };
}

/** The reference: normalise (float64) → the model without the option → map back (float64). */
async function manual(model: RestorationModel, img: FloatImage, low: number, high: number, symmetric = false): Promise<Float64Array> {
  const { lo, hi } = ranges(img, low, high);
  const plane = img.width * img.height;
  const x = new Float32Array(img.data.length);
  for (let i = 0; i < x.length; i++) {
    const c = Math.floor(i / plane);
    const n = (img.data[i] - lo[c]) / (hi[c] - lo[c]);
    x[i] = symmetric ? 2 * n - 1 : n;
  }
  const y = (await model.runFloat({ ...img, data: x })).image;
  const oplane = y.width * y.height;
  return Float64Array.from(y.data, (v, i) => {
    const c = Math.floor(i / oplane);
    return (symmetric ? (v + 1) / 2 : v) * (hi[c] - lo[c]) + lo[c];
  });
}

async function dncnn(name: string): Promise<RestorationModel> {
  const f = loadDnCNNFixture(name);
  return new RestorationModel(await getTestContext(), networkFromCheckpoint(f.weights, { name }), name);
}

describe('RunOptions.normalize', { timeout: SLOW }, () => {
  it('DnCNN, RGB: per-channel percentiles to [0, 1] before the network, the inverse after', async () => {
    const model = await dncnn('tiny_r_color');
    // Channels in very different ranges, none of them [0, 1]: the option must change what the network sees.
    const img = image(19, 11, [0.2, -3, 40], [0.3, 2, 100], 1);
    const got = await model.runFloat(img, { normalize: { low: 1, high: 99.8 } });
    const want = await manual(model, img, 1, 99.8);
    const plain = await model.runFloat(img);
    model.dispose();
    expect([got.image.width, got.image.height, got.image.channels]).toEqual([19, 11, 3]);
    const err = relL2(got.image.data, want);
    console.log(`normalize 1/99.8, tiny DnCNN RGB: relL2 vs float64 manual ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(1e-5);
    expect(relL2(plain.image.data, want)).toBeGreaterThan(1e-2); // the option has an effect
  });

  it('tiled runs use the statistics of the whole image, not of each tile', async () => {
    const model = await dncnn('tiny_r_gray');
    const img = image(40, 30, [0.1], [0.5], 2);
    // Make the halves differ, so per-tile statistics would differ from the whole image's.
    for (let i = 0; i < 40 * 15; i++) img.data[i] = 0.1 + 0.2 * (img.data[i] - 0.1);
    const normalize = { low: 2, high: 98 };
    const tiled = await model.runFloat(img, { normalize, tileSize: 16 });
    const want = await manual(model, img, 2, 98);
    model.dispose();
    expect(tiled.stats.tiles).toBe(3 * 2);
    expect(relL2(tiled.image.data, want)).toBeLessThanOrEqual(1e-5);
  });

  it('run() on a 16-bit image: normalised, mapped back, then clamped and rounded to 16 bits', async () => {
    const model = await dncnn('tiny_r_gray');
    const w = 21;
    const h = 14;
    const r = seededRandom(3);
    // A dim image (levels 9000..14000) with a few saturated pixels: the output range stays the input's.
    const data = Uint16Array.from({ length: w * h }, (_, i) => 9000 + Math.round(5000 * (0.5 + 0.4 * Math.sin(i / 5)) + 300 * (r() - 0.5)));
    data[7] = 65535;
    data[8] = 0;
    const raster: RasterImage = { width: w, height: h, channels: 1, bitDepth: 16, data };
    const out = await model.run(raster, { normalize: { low: 1, high: 99 } });
    const ref = await manual(model, { width: w, height: h, channels: 1, data: Float32Array.from(data, (v) => v / 65535) }, 1, 99);
    model.dispose();
    expect(out.bitDepth).toBe(16);
    let worst = 0;
    for (let i = 0; i < ref.length; i++) {
      const q = Math.min(65535, Math.max(0, Math.round(ref[i] * 65535)));
      worst = Math.max(worst, Math.abs(out.data[i] - q));
    }
    expect(worst).toBeLessThanOrEqual(1); // float32 rounding can move a value across a rounding boundary
  });

  it('a [-1, 1] network (SINSR, seeded weights) gets the normalised input as [-1, 1]', async () => {
    const meta = await readFixtureJson<{ seed: number; manifest: ManifestEntry[] }>('test/fixtures/sinsr/tiny.json');
    const bytes = writeSafetensors(seededStateDict(meta.seed, meta.manifest));
    const model = new RestorationModel(await getTestContext(), networkFromCheckpoint(bytes, { name: 'sinsr' }), 'sinsr');
    const img = image(8, 6, [0, 0.5, 100], [1, 0.1, 50], 4);
    const got = await model.runFloat(img, { normalize: { low: 0, high: 100 } });
    const want = await manual(model, img, 0, 100, true);
    model.dispose();
    expect([got.image.width, got.image.height]).toEqual([32, 24]);
    expect(relL2(got.image.data, want)).toBeLessThanOrEqual(1e-5);
  });

  it('bad percentiles fail with InvalidInputError naming the option, before any GPU work', async () => {
    const model = await dncnn('tiny_r_gray');
    const img = image(8, 8, [0], [1], 5);
    for (const normalize of [
      { low: 99, high: 1 },
      { low: 50, high: 50 },
      { low: -1, high: 99 },
      { low: 1, high: 100.5 },
      { low: Number.NaN, high: 99 },
      { low: 1, high: Number.NaN },
      { low: '1', high: 99 },
      null,
    ]) {
      const run = model.runFloat(img, { normalize: normalize as never });
      await expect(run).rejects.toBeInstanceOf(InvalidInputError);
      await expect(run).rejects.toThrow(/^runFloat: options\.normalize: needs percentiles \{ low, high \} with 0 <= low < high <= 100/);
    }
    // A flat image has equal percentiles: no map exists.
    const flat = { width: 8, height: 8, channels: 1, data: new Float32Array(64).fill(0.25) };
    await expect(model.runFloat(flat, { normalize: { low: 1, high: 99 } })).rejects.toThrow(
      /^normalize: the 1 and 99 percentiles of channel 0 are both 0.25/,
    );
    model.dispose();
  });

  it('denoise() and upscale() check the option before reading the weights or asking for a device', async () => {
    const api = createApi({
      createContext: () => Promise.reject(new GPUUnavailableError('no device here')),
      readBuiltinWeights: () => Promise.reject(new Error('not used')),
    });
    const img = image(4, 4, [0], [1], 6);
    const garbage = new Uint8Array([1, 2, 3]); // would fail with CHECKPOINT_FORMAT if read first
    await expect(api.denoise(img, { weights: garbage, normalize: { low: 60, high: 40 } })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringMatching(/^denoise: options\.normalize: .* got low=60, high=40/),
    });
    await expect(api.upscale(img, { weights: garbage, normalize: { low: 0, high: 101 } })).rejects.toBeInstanceOf(InvalidInputError);
    // Through the API on a real device, the option reaches the run.
    const ctx = await getTestContext();
    const f = loadDnCNNFixture('tiny_r_gray');
    const x = image(17, 13, [0.3], [0.2], 7);
    const viaApi = await api.denoise(x, { context: ctx, weights: f.weights, normalize: { low: 1, high: 99.8 } });
    const model = await dncnn('tiny_r_gray');
    const want = await manual(model, x, 1, 99.8);
    model.dispose();
    expect(relL2(viaApi.data, want)).toBeLessThanOrEqual(1e-5);
  });
});
