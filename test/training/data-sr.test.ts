import { describe, expect, it } from 'vitest';
import type { FloatImage } from '../../src/io/image';
import { bicubicDownscale, modCrop } from '../../src/training/data/bicubic';
import { PatchBatches } from '../../src/training/data/patch-batches';
import { checkTrainingSet, type TrainingExample, type TrainingSet } from '../../src/training/data/training-set';
import { seededRandom } from '../helpers/random';

/*
 * Super-resolution batches: the low-resolution crop and the high-resolution window at s times its corner and size
 * stay aligned through the dihedral augmentation (BasicSR's paired_random_crop + augment), and symmetric networks
 * get 2x − 1.
 */

function randomImage(w: number, h: number, channels: number, seed: number): FloatImage {
  const r = seededRandom(seed);
  return { width: w, height: h, channels, data: Float32Array.from({ length: w * h * channels }, () => r()) };
}

/** Each low-resolution pixel as an s × s block (nearest-neighbour ×s): the high-resolution image of a perfect pair. */
function blocks(img: FloatImage, s: number): FloatImage {
  const W = img.width * s;
  const H = img.height * s;
  const data = new Float32Array(img.channels * W * H);
  for (let c = 0; c < img.channels; c++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++)
        data[(c * H + y) * W + x] = img.data[(c * img.height + Math.floor(y / s)) * img.width + Math.floor(x / s)];
    }
  }
  return { width: W, height: H, channels: img.channels, data };
}

const at = (data: Float32Array, b: number, c: number, channels: number, side: number, y: number, x: number) =>
  data[((b * channels + c) * side + y) * side + x];

describe('super-resolution patch batches', () => {
  for (const s of [2, 3, 4]) {
    it(`×${s}: every target patch is the ${s}× window of its input patch, through all dihedral modes`, () => {
      const examples: TrainingExample[] = [0, 1, 2].map((i) => {
        const low = randomImage(9 + i, 7 + 2 * i, 2, 10 * s + i);
        return { name: `img${i}.png`, input: low, target: blocks(low, s) };
      });
      const patch = 5;
      const batches = new PatchBatches({ examples }, { batch: 4, patch, augment: 'dihedral', seed: 3 }, { scale: s });
      for (let step = 0; step < 6; step++) {
        const { input, target } = batches.next();
        expect(input.length).toBe(4 * 2 * patch * patch);
        expect(target.length).toBe(4 * 2 * (s * patch) ** 2);
        for (let b = 0; b < 4; b++) {
          for (let c = 0; c < 2; c++) {
            for (let y = 0; y < s * patch; y++) {
              for (let x = 0; x < s * patch; x++) {
                const hr = at(target, b, c, 2, s * patch, y, x);
                const lr = at(input, b, c, 2, patch, Math.floor(y / s), Math.floor(x / s));
                if (hr !== lr) expect(hr, `batch ${step}, patch ${b}, channel ${c}, (${y}, ${x})`).toBe(lr);
              }
            }
          }
        }
      }
    });
  }

  it('takes the target window at s times the crop corner, sub-pixels in place', () => {
    // Values unique everywhere, so the input patch's corner can be found in the low-resolution image.
    const s = 2;
    const low = randomImage(11, 8, 1, 5);
    const high = randomImage(22, 16, 1, 6);
    const patch = 4;
    const batches = new PatchBatches(
      { examples: [{ name: 'a', input: low, target: high }] },
      { batch: 1, patch, augment: 'none', seed: 9 },
      { scale: s },
    );
    const corners = new Set<string>();
    for (let step = 0; step < 12; step++) {
      const { input, target } = batches.next();
      const first = input[0];
      const index = low.data.indexOf(first);
      const y0 = Math.floor(index / low.width);
      const x0 = index % low.width;
      corners.add(`${y0},${x0}`);
      for (let y = 0; y < patch; y++)
        for (let x = 0; x < patch; x++) expect(input[y * patch + x]).toBe(low.data[(y0 + y) * low.width + x0 + x]);
      for (let y = 0; y < s * patch; y++) {
        for (let x = 0; x < s * patch; x++) expect(target[y * s * patch + x]).toBe(high.data[(s * y0 + y) * high.width + s * x0 + x]);
      }
    }
    expect(corners.size).toBeGreaterThan(3);
  });

  it('with patch = the low-resolution size, batch = the pair count and no augmentation, is exactly the pairs in order', () => {
    const examples: TrainingExample[] = [0, 1, 2].map((i) => ({
      name: `p${i}`,
      input: randomImage(6, 6, 3, 20 + i),
      target: randomImage(12, 12, 3, 30 + i),
    }));
    const batches = new PatchBatches({ examples }, { batch: 3, patch: 6, augment: 'none', seed: 1 }, { scale: 2 });
    for (let step = 0; step < 2; step++) {
      const { input, target } = batches.next();
      expect([...input]).toEqual(examples.flatMap((ex) => [...ex.input!.data]));
      expect([...target]).toEqual(examples.flatMap((ex) => [...ex.target.data]));
    }
  });

  it('maps input and target to [-1, 1] for symmetric networks, and leaves masks as they are', () => {
    const low = randomImage(4, 4, 1, 40);
    const high = randomImage(8, 8, 1, 41);
    const mask: FloatImage = { width: 8, height: 8, channels: 1, data: Float32Array.from({ length: 64 }, (_, i) => i % 2) };
    const set: TrainingSet = { examples: [{ name: 'a', input: low, target: high, mask }] };
    const options = { batch: 1, patch: 4, augment: 'none' as const, seed: 0 };
    const b = new PatchBatches(set, options, { scale: 2, valueRange: 'symmetric' }).next();
    expect([...b.input]).toEqual([...low.data].map((v) => Math.fround(2 * v - 1)));
    expect([...b.target]).toEqual([...high.data].map((v) => Math.fround(2 * v - 1)));
    expect([...b.mask!]).toEqual([...mask.data]);
  });

  it('draws the same batches as before for denoisers (scale 1, unit range)', () => {
    const examples: TrainingExample[] = [0, 1].map((i) => ({
      name: `d${i}`,
      input: randomImage(10, 9, 1, 50 + i),
      target: randomImage(10, 9, 1, 60 + i),
    }));
    const options = { batch: 3, patch: 5, augment: 'dihedral' as const, seed: 4 };
    const plain = new PatchBatches({ examples }, options);
    const layout = new PatchBatches({ examples }, options, { scale: 1, valueRange: 'unit' });
    for (let step = 0; step < 3; step++) expect(layout.next()).toEqual(plain.next());
  });

  it('refuses a bad scale or value range', () => {
    const set: TrainingSet = { examples: [{ name: 'a', input: randomImage(4, 4, 1, 1), target: randomImage(8, 8, 1, 2) }] };
    const options = { batch: 1, patch: 4, augment: 'none' as const, seed: 0 };
    expect(() => new PatchBatches(set, options, { scale: 1.5 })).toThrow(/scale must be a positive integer/);
    expect(() => new PatchBatches(set, options, { valueRange: 'wide' as 'unit' })).toThrow(/valueRange/);
  });
});

describe('super-resolution training sets', () => {
  const pair = (name: string, lw: number, lh: number, hw: number, hh: number): TrainingExample => ({
    name,
    input: randomImage(lw, lh, 3, 1),
    target: randomImage(hw, hh, 3, 2),
  });
  const network = { input: 3, target: 3, scale: 4 };

  it('accepts pairs whose high-resolution image is exactly s times the low-resolution one', () => {
    expect(() => checkTrainingSet({ examples: [pair('a.png', 5, 3, 20, 12)] }, network, 3)).not.toThrow();
  });

  it('names the pair whose high-resolution image is not s times its low-resolution image', () => {
    const set = { examples: [pair('a.png', 5, 3, 20, 12), pair('b.png', 5, 3, 20, 13)] };
    expect(() => checkTrainingSet(set, network, 3)).toThrow(
      /b\.png: the high-resolution image is 20×13, not 4× its low-resolution image 5×3 \(expected 20×12\)/,
    );
  });

  it('names a high-resolution image without a pair, a low-resolution image smaller than the patch, and wrong channels', () => {
    const lonely: TrainingExample = { name: 'c.png', target: randomImage(8, 8, 3, 3) };
    expect(() => checkTrainingSet({ examples: [lonely], noise: { kind: 'gaussian', sigma: 25 } }, network, 2)).toThrow(
      /c\.png: a ×4 super-resolution network trains on low\/high-resolution pairs/,
    );
    expect(() => checkTrainingSet({ examples: [pair('d.png', 5, 3, 20, 12)] }, network, 4)).toThrow(
      /d\.png: its low-resolution image is 5×3, smaller than the 4×4 patch/,
    );
    expect(() => checkTrainingSet({ examples: [pair('e.png', 5, 3, 20, 12)] }, { ...network, input: 1 }, 2)).toThrow(
      /e\.png: the low-resolution image has 3 channel\(s\), the network takes 1/,
    );
  });
});

describe('bicubic degradation (imresize 1/s)', () => {
  it('keeps a constant image constant, borders included', () => {
    const img: FloatImage = { width: 12, height: 8, channels: 2, data: new Float32Array(192).fill(0.375) };
    const low = bicubicDownscale(img, 4);
    expect([low.width, low.height, low.channels]).toEqual([3, 2, 2]);
    for (const v of low.data) expect(v).toBeCloseTo(0.375, 6);
  });

  for (const s of [2, 3, 4]) {
    it(`×${s}: reproduces a linear ramp at the low-resolution pixel centres away from the borders`, () => {
      const W = 16 * s;
      const H = 10 * s;
      const f = (y: number, x: number) => 0.1 + (0.6 * x) / W + (0.25 * y) / H;
      const data = new Float32Array(W * H);
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data[y * W + x] = f(y, x);
      const low = bicubicDownscale({ width: W, height: H, channels: 1, data }, s);
      // Pixel i covers input pixels [s·i, s·i + s): its centre is s·i + (s − 1)/2. The kernel reaches 2s pixels.
      for (let y = 2; y < low.height - 2; y++) {
        for (let x = 2; x < low.width - 2; x++) {
          expect(low.data[y * low.width + x]).toBeCloseTo(f(s * y + (s - 1) / 2, s * x + (s - 1) / 2), 5);
        }
      }
    });
  }

  it('averages with the antialiasing kernel: an alternating pattern shrinks to its mean, and mod-crops to multiples of s', () => {
    const W = 24;
    const data = Float32Array.from({ length: W * 8 }, (_, i) => ((i % W) % 2 === 0 ? 1 : 0));
    const low = bicubicDownscale({ width: W, height: 8, channels: 1, data }, 2);
    for (let x = 2; x < low.width - 2; x++) expect(Math.abs(low.data[low.width * 2 + x] - 0.5)).toBeLessThan(0.1);
    const cropped = modCrop({ width: 7, height: 5, channels: 1, data: Float32Array.from({ length: 35 }, (_, i) => i) }, 3);
    expect([cropped.width, cropped.height]).toEqual([6, 3]);
    expect([...cropped.data]).toEqual([0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19]);
    expect(() => bicubicDownscale({ width: 7, height: 6, channels: 1, data: new Float32Array(42) }, 2)).toThrow(
      /7×6 image cannot shrink 2×/,
    );
  });
});
