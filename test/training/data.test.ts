import { describe, expect, it } from 'vitest';
import { createRng } from '../../src/io/noise';
import { type DihedralMode, dihedral, dihedralShape } from '../../src/training/data/dihedral';
import { addNoise, parseNoiseModel } from '../../src/training/data/noise-model';
import { PatchBatches } from '../../src/training/data/patch-batches';
import { poisson } from '../../src/training/data/poisson';
import { shuffled, splitIndices } from '../../src/training/data/split';
import { checkTrainingSet, type TrainingSet } from '../../src/training/data/training-set';

type Grid = number[][];

/** np.rot90(a): counter-clockwise, out[i][j] = a[j][w − 1 − i]. */
const rot90 = (a: Grid): Grid => a[0].map((_, i) => a.map((row) => row[a[0].length - 1 - i]));
const flipud = (a: Grid): Grid => [...a].reverse();
const turn = (a: Grid, k: number): Grid => (k === 0 ? a : turn(rot90(a), k - 1));
/** KAIR utils_image.augment_img, written as its source reads. */
const KAIR: ((a: Grid) => Grid)[] = [
  (a) => a,
  (a) => flipud(rot90(a)),
  (a) => flipud(a),
  (a) => turn(a, 3),
  (a) => flipud(turn(a, 2)),
  (a) => rot90(a),
  (a) => turn(a, 2),
  (a) => flipud(turn(a, 3)),
];

describe('dihedral augmentation', () => {
  const h = 3;
  const w = 5;
  const grid: Grid = Array.from({ length: h }, (_, y) => Array.from({ length: w }, (_, x) => y * 10 + x));
  for (let mode = 0; mode < 8; mode++) {
    it(`mode ${mode} is KAIR's augment_img mode ${mode}, on every channel`, () => {
      const data = Float32Array.from([...grid.flat(), ...grid.flat().map((v) => v + 100)]);
      const out = dihedral(data, 2, h, w, mode as DihedralMode);
      const ref = KAIR[mode](grid);
      const [ho, wo] = dihedralShape(mode as DihedralMode, h, w);
      expect([ref.length, ref[0].length]).toEqual([ho, wo]);
      expect([...out]).toEqual([...ref.flat(), ...ref.flat().map((v) => v + 100)]);
    });
  }
  it('refuses a mode outside 0–7 and a wrong size', () => {
    expect(() => dihedral(new Float32Array(15), 1, 3, 5, 8 as DihedralMode)).toThrow(/0–7/);
    expect(() => dihedral(new Float32Array(14), 1, 3, 5, 0)).toThrow(/1×3×5/);
  });
});

describe('Poisson sampling', () => {
  for (const lambda of [0.3, 4, 25, 400]) {
    it(`has mean and variance λ = ${lambda}`, () => {
      const rng = createRng(7);
      const n = 40_000;
      let s = 0;
      let s2 = 0;
      for (let i = 0; i < n; i++) {
        const k = poisson(rng, lambda);
        expect(Number.isInteger(k) && k >= 0).toBe(true);
        s += k;
        s2 += k * k;
      }
      const mean = s / n;
      const variance = s2 / n - mean * mean;
      // Five standard errors of the mean; the variance within 5 %.
      expect(Math.abs(mean - lambda)).toBeLessThan(5 * Math.sqrt(lambda / n));
      expect(Math.abs(variance / lambda - 1)).toBeLessThan(0.05);
    });
  }
});

describe('noise models', () => {
  it('parses the CLI spellings and refuses the rest', () => {
    expect(parseNoiseModel('gaussian:25')).toEqual({ kind: 'gaussian', sigma: 25 });
    expect(parseNoiseModel('gaussian:0-55')).toEqual({ kind: 'gaussian-range', sigmaMin: 0, sigmaMax: 55 });
    expect(parseNoiseModel('poisson-gaussian:0.01,0.02')).toEqual({ kind: 'poisson-gaussian', alpha: 0.01, sigma: 0.02 });
    expect(() => parseNoiseModel('gaussian:')).toThrow(/sigma/);
    expect(() => parseNoiseModel('gaussian:30-10')).toThrow(/30 > 10/);
    expect(() => parseNoiseModel('poisson-gaussian:0,1')).toThrow(/alpha/);
    expect(() => parseNoiseModel('speckle:3')).toThrow(/expected gaussian/);
  });

  it('adds Gaussian noise of σ/255 and Poisson–Gaussian noise of variance αx + σ²', () => {
    const n = 50_000;
    const clean = new Float32Array(n).fill(0.4);
    const g = addNoise(clean, { kind: 'gaussian', sigma: 25 }, createRng(1));
    const pg = addNoise(clean, { kind: 'poisson-gaussian', alpha: 0.01, sigma: 0.02 }, createRng(2));
    const stats = (a: Float32Array) => {
      const m = a.reduce((s, v) => s + v, 0) / a.length;
      return [m, a.reduce((s, v) => s + (v - m) ** 2, 0) / a.length];
    };
    const [gm, gv] = stats(g);
    expect(Math.abs(gm - 0.4)).toBeLessThan(0.002);
    expect(Math.abs(Math.sqrt(gv) / (25 / 255) - 1)).toBeLessThan(0.02);
    const [pm, pv] = stats(pg);
    expect(Math.abs(pm - 0.4)).toBeLessThan(0.002);
    expect(Math.abs(pv / (0.01 * 0.4 + 0.02 ** 2) - 1)).toBeLessThan(0.05);
  });
});

describe('splits', () => {
  it('splits 70/20/10 by whole images, seeded, disjoint and complete', () => {
    const s = splitIndices(20, undefined, 3);
    expect([s.train.length, s.validation.length, s.test.length]).toEqual([14, 4, 2]);
    expect([...s.train, ...s.validation, ...s.test].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(splitIndices(20, undefined, 3)).toEqual(s);
    expect(splitIndices(20, undefined, 4)).not.toEqual(s);
  });
  it('keeps one training image however few there are, and refuses bad fractions', () => {
    expect(splitIndices(1).train).toHaveLength(1);
    expect(splitIndices(2).train.length).toBeGreaterThanOrEqual(1);
    expect(() => splitIndices(5, { train: 0.5, validation: 0.2, test: 0.2 })).toThrow(/sum to 1/);
  });
  it('shuffles as a permutation', () => {
    expect([...shuffled(9, 1)].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });
});

describe('patch batches', () => {
  const image = (name: string, h: number, w: number, base: number) => ({
    name,
    target: { width: w, height: h, channels: 1, data: Float32Array.from({ length: h * w }, (_, i) => base + i / 1000) },
  });

  it('with patch = image size, batch = image count and no augmentation, is exactly the images in order', () => {
    const set: TrainingSet = {
      examples: [0, 1].map((i) => ({
        ...image(`s${i}`, 5, 5, i),
        input: { width: 5, height: 5, channels: 1, data: new Float32Array(25).fill(i) },
      })),
    };
    const exact = new PatchBatches(set, { batch: 2, patch: 5, augment: 'none', seed: 9 });
    for (let k = 0; k < 3; k++) {
      const b = exact.next();
      expect([...b.target]).toEqual([...set.examples[0].target.data, ...set.examples[1].target.data]);
      expect([...b.input]).toEqual([...set.examples[0].input!.data, ...set.examples[1].input!.data]);
    }
  });

  it('crops inside the image, registers input and target, is seeded, and adds the noise model to clean-only sets', () => {
    const set: TrainingSet = { examples: [image('a', 9, 7, 0), image('b', 8, 11, 1)], noise: { kind: 'gaussian', sigma: 0 } };
    const draw = (seed: number) => new PatchBatches(set, { batch: 4, patch: 3, augment: 'dihedral', seed }).next();
    const b = draw(5);
    // σ = 0: the input equals the target, so crops and augmentations were applied to both alike.
    expect([...b.input]).toEqual([...b.target]);
    expect(draw(5)).toEqual(b);
    expect(draw(6)).not.toEqual(b);
    for (const v of b.target) expect(v).toBeGreaterThanOrEqual(0);
  });

  it('names what is wrong with a training set', () => {
    const ch = { input: 1, target: 1 };
    expect(() => checkTrainingSet({ examples: [image('tiny.png', 3, 3, 0)], noise: { kind: 'gaussian', sigma: 25 } }, ch, 8)).toThrow(
      /tiny.png is 3×3, smaller than the 8×8 patch/,
    );
    expect(() => checkTrainingSet({ examples: [image('clean.png', 9, 9, 0)] }, ch, 8)).toThrow(/clean.png: .*needs a noise model/);
    const pair = { ...image('p.png', 9, 9, 0), input: { width: 8, height: 9, channels: 1, data: new Float32Array(72) } };
    expect(() => checkTrainingSet({ examples: [pair] }, ch, 8)).toThrow(/p.png: the noisy image is 8×9, its clean image 9×9/);
    const masked = { ...image('m.png', 9, 9, 0), mask: { width: 9, height: 8, channels: 1, data: new Float32Array(72) } };
    expect(() => checkTrainingSet({ examples: [masked], noise: { kind: 'gaussian', sigma: 1 } }, ch, 8)).toThrow(/m.png: the mask is 9×8/);
    expect(() => checkTrainingSet({ examples: [] }, ch, 8)).toThrow(/no images/);
  });
});
