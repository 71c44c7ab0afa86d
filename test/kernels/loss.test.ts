import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { paddedChannels, type Shape4 } from '../../src/gpu/tensor';
import {
  type LossResult,
  maskedMseLoss,
  pixelLoss,
  type PixelLossKind,
  laplacianLoss,
  sobelGradientLoss,
  totalVariationLoss,
} from '../../src/kernels/loss';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2, seededRandom } from '../helpers/random';

/** Real elements of an NHWC tensor (f32-rounded, unpadded order) and its padded upload. */
interface Data {
  shape: Shape4;
  values: Float64Array;
  padded: Float32Array;
}

function pack(values: ArrayLike<number>, shape: Shape4): Data {
  const c = shape[3];
  const cp = paddedChannels(c);
  const padded = new Float32Array((values.length / c) * cp);
  for (let k = 0; k < values.length; k++) padded[Math.floor(k / c) * cp + (k % c)] = values[k];
  return { shape, values: Float64Array.from(padded.filter((_, k) => k % cp < c)), padded };
}

function count(shape: Shape4): number {
  return shape[0] * shape[1] * shape[2] * shape[3];
}

function random(shape: Shape4, seed: number, scale = 1): Data {
  return pack(randomArray(count(shape), seed, scale), shape);
}

interface Reference {
  loss: number;
  grad: Float64Array;
}

/** Runs `build` on the inputs and checks loss ([1,1,1,1], rest 0) and gradient (padded channels 0) against `ref`. */
async function checkAgainst(inputs: Data[], build: (g: Graph, t: ReturnType<Graph['input']>[]) => LossResult, ref: Reference) {
  const ctx = await getTestContext();
  const g = new Graph();
  const tensors = inputs.map((d, k) => g.input(d.shape, `input ${k}`));
  const { loss, grad } = build(g, tensors);
  expect(loss.shape).toEqual([1, 1, 1, 1]);
  expect(grad.shape).toEqual(inputs[0].shape);
  g.output(loss);
  g.output(grad);
  const plan = await Plan.compile(ctx, g);
  plan.poison();
  const [l, gr] = (await plan.run(inputs.map((d) => d.padded))).outputs;
  plan.dispose();
  const c = inputs[0].shape[3];
  const cp = paddedChannels(c);
  gr.forEach((v, k) => {
    if (k % cp >= c && v !== 0) throw new Error(`gradient padded channel ${k % cp} holds ${v}`);
  });
  expect(Array.from(l.subarray(1))).toEqual([0, 0, 0]);
  const relLoss = Math.abs(l[0] - ref.loss) / Math.max(Math.abs(ref.loss), 1e-30);
  expect(relLoss, `loss ${l[0]} vs ${ref.loss}`).toBeLessThanOrEqual(1e-5);
  expect(relL2(Float64Array.from(gr.filter((_, k) => k % cp < c)), ref.grad)).toBeLessThanOrEqual(1e-6);
}

/** Central differences of `loss` at `x` (h = 1e-6·max(1, |x|)) against the analytic gradient of the reference. */
function expectGradientMatchesDifferences(x: Float64Array, f: (x: Float64Array) => Reference): void {
  const { grad } = f(x);
  const numeric = x.map((v, k) => {
    const h = 1e-6 * Math.max(1, Math.abs(v));
    const plus = x.slice();
    const minus = x.slice();
    plus[k] = v + h;
    minus[k] = v - h;
    return (f(plus).loss - f(minus).loss) / (2 * h);
  });
  expect(relL2(grad, numeric)).toBeLessThanOrEqual(1e-6);
}

// ---------------------------------------------------------------------------------------------------------------
// Float64 references, written from the PyTorch formulas (training.md §2).

function pixelLoss64(kind: PixelLossKind, p: Float64Array, t: Float64Array, weight: number, eps: number): Reference {
  const m = p.length;
  let sum = 0;
  const grad = new Float64Array(m);
  p.forEach((v, k) => {
    const d = v - t[k];
    if (kind === 'mse') {
      sum += d * d;
      grad[k] = (2 * d * weight) / m;
    } else if (kind === 'l1') {
      sum += Math.abs(d);
      grad[k] = (Math.sign(d) * weight) / m;
    } else {
      const r = Math.sqrt(d * d + eps);
      sum += r;
      grad[k] = ((d / r) * weight) / m;
    }
  });
  return { loss: (sum / m) * weight, grad };
}

/** ((1−m)e²).sum()/(1−m).sum() + λ(m e²).sum()/m.sum(), empty regions dropped; mask broadcast over channels. */
function maskedMse64(p: Float64Array, t: Float64Array, mask: Float64Array, c: number, lambda: number, weight: number): Reference {
  const maskAt = (k: number) => (mask.length === p.length ? mask[k] : mask[Math.floor(k / c)]);
  let n0 = 0;
  let n1 = 0;
  let s0 = 0;
  let s1 = 0;
  p.forEach((v, k) => {
    const e = v - t[k];
    const m = maskAt(k);
    n1 += m;
    n0 += 1 - m;
    s1 += m * e * e;
    s0 += (1 - m) * e * e;
  });
  const inv0 = n0 > 0 ? 1 / n0 : 0;
  const inv1 = n1 > 0 ? lambda / n1 : 0;
  const grad = p.map((v, k) => 2 * (v - t[k]) * ((1 - maskAt(k)) * inv0 + maskAt(k) * inv1) * weight);
  return { loss: ((n0 > 0 ? s0 / n0 : 0) + (n1 > 0 ? (lambda * s1) / n1 : 0)) * weight, grad };
}

/** Visits every pair (a, b) of vertically (dir 0) or horizontally (dir 1) adjacent elements, b below / right of a. */
function forEachDifference(shape: Shape4, visit: (a: number, b: number, dir: 0 | 1) => void): void {
  const [n, h, w, c] = shape;
  const at = (b: number, y: number, x: number, ch: number) => ((b * h + y) * w + x) * c + ch;
  for (let b = 0; b < n; b++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let ch = 0; ch < c; ch++) {
          if (y + 1 < h) visit(at(b, y, x, ch), at(b, y + 1, x, ch), 0);
          if (x + 1 < w) visit(at(b, y, x, ch), at(b, y, x + 1, ch), 1);
        }
}

/** kornia total_variation(reduction='sum') averaged over N, or KAIR TVLoss; gradients scattered per difference. */
function totalVariation64(x: Float64Array, shape: Shape4, kind: 'anisotropic-l1' | 'squared', weight: number): Reference {
  const [n, h, w, c] = shape;
  const sums = [0, 0];
  const grad = new Float64Array(x.length);
  const coef =
    kind === 'squared'
      ? [(c * (h - 1) * w) / 2, (c * h * (w - 1)) / 2].map((k) => (k > 0 ? weight / (k * n) : 0))
      : [weight / n, weight / n];
  forEachDifference(shape, (a, b, dir) => {
    const d = x[b] - x[a];
    sums[dir] += kind === 'squared' ? d * d : Math.abs(d);
    const df = (kind === 'squared' ? 2 * d : Math.sign(d)) * coef[dir];
    grad[b] += df;
    grad[a] -= df;
  });
  return { loss: coef[0] * sums[0] + coef[1] * sums[1], grad };
}

const SOBEL_X = [
  [-1, 0, 1],
  [-2, 0, 2],
  [-1, 0, 1],
];
const SOBEL_Y = SOBEL_X.map((row, i) => row.map((_, j) => SOBEL_X[j][i]));
const LAPLACIAN = [
  [0, 1, 0],
  [1, -4, 1],
  [0, 1, 0],
];

/** F.conv2d with each 3×3 kernel, groups=C, zero padding 1, then the criterion's mean over all maps. */
function filterLoss64(
  p: Float64Array,
  t: Float64Array,
  shape: Shape4,
  kernels: number[][][],
  criterion: 'l1' | 'mse',
  weight: number,
): Reference {
  const [n, h, w, c] = shape;
  const at = (b: number, y: number, x: number, ch: number) => ((b * h + y) * w + x) * c + ch;
  const scale = weight / (kernels.length * p.length);
  const grad = new Float64Array(p.length);
  let sum = 0;
  for (let b = 0; b < n; b++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let ch = 0; ch < c; ch++)
          for (const kernel of kernels) {
            const taps: [number, number][] = [];
            for (let dy = -1; dy <= 1; dy++)
              for (let dx = -1; dx <= 1; dx++) {
                if (y + dy < 0 || y + dy >= h || x + dx < 0 || x + dx >= w) continue;
                taps.push([at(b, y + dy, x + dx, ch), kernel[dy + 1][dx + 1]]);
              }
            const g = taps.reduce((s, [k, weight]) => s + weight * (p[k] - t[k]), 0);
            sum += criterion === 'l1' ? Math.abs(g) : g * g;
            const df = (criterion === 'l1' ? Math.sign(g) : 2 * g) * scale;
            for (const [k, weight] of taps) grad[k] += weight * df;
          }
  return { loss: sum * scale, grad };
}

const sobelLoss64 = (p: Float64Array, t: Float64Array, shape: Shape4, criterion: 'l1' | 'mse', weight: number) =>
  filterLoss64(p, t, shape, [SOBEL_X, SOBEL_Y], criterion, weight);
const laplacianLoss64 = (p: Float64Array, t: Float64Array, shape: Shape4, criterion: 'l1' | 'mse', weight: number) =>
  filterLoss64(p, t, shape, [LAPLACIAN], criterion, weight);

// ---------------------------------------------------------------------------------------------------------------

const SHAPES: Shape4[] = [
  [1, 5, 7, 3],
  [2, 9, 6, 13],
  [1, 1, 1, 1],
  // More vec4 items than one chunk: the two-pass reduction.
  [2, 40, 40, 5],
];

describe('the float64 loss references', () => {
  const shape: Shape4 = [2, 3, 4, 2];
  const p = randomArray(count(shape), 1);
  const t = randomArray(count(shape), 2);
  const far = (values: number[], what: string) => expect(Math.min(...values.map(Math.abs)), what).toBeGreaterThan(1e-4);

  it('pixel losses: gradients match central differences', () => {
    far(
      Array.from(p, (v, k) => v - t[k]),
      '|p − t| away from the L1 kink',
    );
    for (const kind of ['mse', 'l1', 'charbonnier'] as const) {
      expectGradientMatchesDifferences(p, (x) => pixelLoss64(kind, x, t, 0.7, 1e-6));
    }
  });

  it('masked MSE: gradients match central differences, per-channel and broadcast masks', () => {
    const mask = Float64Array.from(randomArray(count(shape), 3), (v) => (v > 0 ? 1 : 0));
    const pixelMask = Float64Array.from(randomArray(count(shape) / 2, 4), (v) => (v > 0 ? 1 : 0));
    expectGradientMatchesDifferences(p, (x) => maskedMse64(x, t, mask, 2, 2.5, 1));
    expectGradientMatchesDifferences(p, (x) => maskedMse64(x, t, pixelMask, 2, 0.5, 2));
    expectGradientMatchesDifferences(p, (x) => maskedMse64(x, t, new Float64Array(count(shape)), 2, 0.5, 1));
    expectGradientMatchesDifferences(p, (x) => maskedMse64(x, t, new Float64Array(count(shape)).fill(1), 2, 0.5, 1));
  });

  it('total variation: gradients match central differences', () => {
    const diffs: number[] = [];
    forEachDifference(shape, (a, b) => diffs.push(p[b] - p[a]));
    far(diffs, 'differences away from the |·| kink');
    for (const kind of ['anisotropic-l1', 'squared'] as const)
      expectGradientMatchesDifferences(p, (x) => totalVariation64(x, shape, kind, 1.5));
  });

  it('Sobel and Laplacian: gradients match central differences', () => {
    for (const criterion of ['l1', 'mse'] as const) {
      expectGradientMatchesDifferences(p, (x) => sobelLoss64(x, t, shape, criterion, 1));
      expectGradientMatchesDifferences(p, (x) => laplacianLoss64(x, t, shape, criterion, 1));
    }
  });
});

describe('pixelLoss against float64', () => {
  for (const kind of ['mse', 'l1', 'charbonnier'] as const) {
    for (const shape of SHAPES) {
      it(`${kind} ${shape.join('x')}`, async () => {
        const weight = shape[3] === 13 ? 0.5 : 1;
        const eps = shape[0] === 2 ? 1e-9 : 1e-3;
        const p = random(shape, 10 + shape[3]);
        const t = random(shape, 20 + shape[3]);
        await checkAgainst(
          [p, t],
          (g, [tp, tt]) => pixelLoss(g, kind, tp, tt, { label: kind, weight, eps }),
          pixelLoss64(kind, p.values, t.values, weight, eps),
        );
      });
    }
  }

  it('L1 and Charbonnier have zero gradient where pred equals target', async () => {
    const shape: Shape4 = [1, 3, 3, 3];
    const p = random(shape, 5);
    const tValues = Float64Array.from(p.values);
    for (let k = 0; k < tValues.length; k += 2) tValues[k] += 0.25;
    const t = pack(tValues, shape);
    for (const kind of ['l1', 'charbonnier'] as const) {
      await checkAgainst(
        [p, t],
        (g, [tp, tt]) => pixelLoss(g, kind, tp, tt, { label: kind }),
        pixelLoss64(kind, p.values, t.values, 1, 1e-9),
      );
    }
  });

  it('names bad inputs', () => {
    const g = new Graph();
    const p = g.input([1, 4, 4, 3], 'pred');
    const t = g.input([1, 4, 5, 3], 'target');
    expect(() => pixelLoss(g, 'mse', p, t, { label: 'mse' })).toThrow(/mse: target 'target' \[1, 4, 5, 3\] does not match pred/);
    expect(() => pixelLoss(g, 'charbonnier', p, p, { label: 'charb', eps: 0 })).toThrow(/charb: Charbonnier eps/);
    expect(() => pixelLoss(g, 'l1', p, p, { label: 'l1', weight: Number.NaN })).toThrow(/l1: weight must be a finite number/);
    expect(() => pixelLoss(g, 'huber' as PixelLossKind, p, p, { label: 'huber' })).toThrow(InvalidInputError);
  });
});

function binaryMask(length: number, seed: number, fraction = 0.3): Float64Array {
  const r = seededRandom(seed);
  return Float64Array.from({ length }, () => (r() < fraction ? 1 : 0));
}

describe('maskedMseLoss against float64', () => {
  const cases: [string, Shape4, 'channels' | 'pixel', 'random' | 'zeros' | 'ones', number][] = [
    ['per-channel mask', [1, 5, 7, 3], 'channels', 'random', 2],
    ['per-channel mask', [2, 9, 6, 13], 'channels', 'random', 0.5],
    ['per-channel mask', [1, 1, 1, 1], 'channels', 'ones', 3],
    ['1-channel mask over 3 channels', [1, 5, 7, 3], 'pixel', 'random', 4],
    ['1-channel mask over 13 channels', [2, 9, 6, 13], 'pixel', 'random', 1],
    ['1-channel mask, two passes', [2, 40, 40, 5], 'pixel', 'random', 2],
    ['no defect (N₁ = 0)', [2, 9, 6, 13], 'channels', 'zeros', 2],
    ['no defect, 1-channel mask (N₁ = 0)', [1, 5, 7, 3], 'pixel', 'zeros', 2],
    ['all defect (N₀ = 0)', [1, 5, 7, 3], 'channels', 'ones', 0.25],
    ['all defect, 1-channel mask (N₀ = 0)', [2, 9, 6, 13], 'pixel', 'ones', 2],
  ];
  cases.forEach(([name, shape, maskKind, fill, lambda], k) => {
    it(`${name} ${shape.join('x')} λ ${lambda}`, async () => {
      const maskShape: Shape4 = maskKind === 'pixel' ? [shape[0], shape[1], shape[2], 1] : shape;
      const length = count(maskShape);
      const maskValues = fill === 'random' ? binaryMask(length, 60 + k) : new Float64Array(length).fill(fill === 'ones' ? 1 : 0);
      const p = random(shape, 30 + k);
      const t = random(shape, 40 + k);
      const mask = pack(maskValues, maskShape);
      const weight = k % 2 === 0 ? 1 : 0.75;
      await checkAgainst(
        [p, t, mask],
        (g, [tp, tt, tm]) => maskedMseLoss(g, tp, tt, tm, { label: 'masked', lambda, weight }),
        maskedMse64(p.values, t.values, mask.values, shape[3], lambda, weight),
      );
    });
  });

  // Noise2Void's loss (outside 0): Σm(p − t)²/Σm over the whole batch, gradient 2m(p − t)/Σm, as n2v/CAREamics.
  const blindSpotCases: [Shape4, 'channels' | 'pixel'][] = [
    [[2, 9, 6, 1], 'pixel'],
    [[1, 7, 5, 3], 'pixel'],
    [[2, 5, 9, 13], 'channels'],
  ];
  blindSpotCases.forEach(([shape, maskKind], k) => {
    it(`blind spots only (outside 0) ${shape.join('x')}, ${maskKind} mask`, async () => {
      const maskShape: Shape4 = maskKind === 'pixel' ? [shape[0], shape[1], shape[2], 1] : shape;
      const maskValues = binaryMask(count(maskShape), 90 + k, 0.05);
      maskValues[3] = 1;
      const p = random(shape, 70 + k);
      const t = random(shape, 80 + k);
      const at = (i: number) => (maskKind === 'pixel' ? maskValues[Math.floor(i / shape[3])] : maskValues[i]);
      let spots = 0;
      let sum = 0;
      p.values.forEach((v, i) => {
        spots += at(i);
        sum += at(i) * (v - t.values[i]) ** 2;
      });
      const grad = p.values.map((v, i) => (2 * at(i) * (v - t.values[i])) / spots);
      await checkAgainst(
        [p, t, pack(maskValues, maskShape)],
        (g, [tp, tt, tm]) => maskedMseLoss(g, tp, tt, tm, { label: 'n2v', lambda: 1, outside: 0 }),
        { loss: sum / spots, grad },
      );
    });
  });

  it('names bad inputs', () => {
    const g = new Graph();
    const p = g.input([1, 4, 4, 3], 'pred');
    const wrong = g.input([1, 4, 5, 1], 'defects');
    const twoChannels = g.input([1, 4, 4, 2], 'two');
    const mask = g.input([1, 4, 4, 1], 'mask');
    expect(() => maskedMseLoss(g, p, p, wrong, { label: 'mmse', lambda: 1 })).toThrow(/mmse: mask 'defects' \[1, 4, 5, 1\] does not fit/);
    expect(() => maskedMseLoss(g, p, p, twoChannels, { label: 'mmse', lambda: 1 })).toThrow(/mask 'two'/);
    for (const lambda of [Number.NaN, -1, Infinity]) {
      expect(() => maskedMseLoss(g, p, p, mask, { label: 'mmse', lambda })).toThrow(/mmse: lambda must be a finite number/);
      expect(() => maskedMseLoss(g, p, p, mask, { label: 'mmse', lambda: 1, outside: lambda })).toThrow(
        /mmse: outside must be a finite number/,
      );
    }
    expect(() => maskedMseLoss(g, p, g.input([1, 4, 4, 4], 'target'), mask, { label: 'mmse', lambda: 1 })).toThrow(
      /target 'target' \[1, 4, 4, 4\] does not match pred/,
    );
  });
});

describe('totalVariationLoss against float64', () => {
  for (const kind of ['anisotropic-l1', 'squared'] as const) {
    for (const shape of [...SHAPES, [1, 1, 6, 2] as Shape4]) {
      it(`${kind} ${shape.join('x')}`, async () => {
        const x = random(shape, 50 + shape[2]);
        const weight = shape[3] === 13 ? 2 : 1;
        await checkAgainst(
          [x],
          (g, [tx]) => totalVariationLoss(g, tx, { label: 'tv', kind, weight }),
          totalVariation64(x.values, shape, kind, weight),
        );
      });
    }
  }

  it('a constant image has zero loss and zero gradient (abs′(0) = 0)', async () => {
    const shape: Shape4 = [1, 4, 5, 3];
    const x = pack(new Float64Array(count(shape)).fill(0.5), shape);
    await checkAgainst([x], (g, [tx]) => totalVariationLoss(g, tx, { label: 'tv', kind: 'anisotropic-l1' }), {
      loss: 0,
      grad: new Float64Array(count(shape)),
    });
  });

  it('names an unknown kind', () => {
    const g = new Graph();
    const x = g.input([1, 4, 4, 3], 'x');
    expect(() => totalVariationLoss(g, x, { label: 'tv', kind: 'isotropic' as 'squared' })).toThrow(
      /tv: unknown total variation kind 'isotropic'/,
    );
  });
});

describe('sobelGradientLoss against float64', () => {
  for (const criterion of ['l1', 'mse'] as const) {
    for (const shape of SHAPES) {
      it(`${criterion} ${shape.join('x')}`, async () => {
        const p = random(shape, 70 + shape[1]);
        const t = random(shape, 80 + shape[1]);
        const weight = shape[3] === 13 ? 0.1 : 1;
        // A single pixel has no neighbours inside the image: both maps, the loss and the gradient are 0.
        const ref = sobelLoss64(p.values, t.values, shape, criterion, weight);
        await checkAgainst([p, t], (g, [tp, tt]) => sobelGradientLoss(g, tp, tt, { label: 'sobel', criterion, weight }), ref);
      });
    }
  }

  it('names bad inputs', () => {
    const g = new Graph();
    const p = g.input([1, 4, 4, 3], 'pred');
    expect(() => sobelGradientLoss(g, p, g.input([2, 4, 4, 3], 't'), { label: 'edges', criterion: 'l1' })).toThrow(/edges: target 't'/);
    expect(() => sobelGradientLoss(g, p, p, { label: 'edges', criterion: 'huber' as 'l1' })).toThrow(/edges: unknown Sobel criterion/);
  });
});

describe('laplacianLoss (second-order gradient loss) against float64', () => {
  for (const criterion of ['l1', 'mse'] as const) {
    for (const shape of SHAPES) {
      it(`${criterion} ${shape.join('x')}`, async () => {
        const p = random(shape, 90 + shape[1]);
        const t = random(shape, 100 + shape[1]);
        const weight = shape[3] === 13 ? 0.1 : 1;
        const ref = laplacianLoss64(p.values, t.values, shape, criterion, weight);
        await checkAgainst([p, t], (g, [tp, tt]) => laplacianLoss(g, tp, tt, { label: 'laplacian', criterion, weight }), ref);
      });
    }
  }

  it('names bad inputs', () => {
    const g = new Graph();
    const p = g.input([1, 4, 4, 3], 'pred');
    expect(() => laplacianLoss(g, p, g.input([1, 4, 5, 3], 't'), { label: 'second order', criterion: 'l1' })).toThrow(
      /second order: target 't'/,
    );
    expect(() => laplacianLoss(g, p, p, { label: 'lap', criterion: 'huber' as 'l1' })).toThrow(/lap: unknown Laplacian criterion/);
  });
});
