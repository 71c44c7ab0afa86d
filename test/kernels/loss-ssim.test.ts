import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { paddedChannels, type Shape4 } from '../../src/gpu/tensor';
import { ssimLoss, ssimLossWindow, type SsimLossOptions } from '../../src/kernels/loss-ssim';
import { readFixtureJson } from '../helpers/fixture-loader';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';

/** test/fixtures/losses/ssim.json (tools/torch/loss_fixtures.py): NCHW tensors, float32 inputs, float64 results. */
interface SsimFixture {
  torch: string;
  window: number[];
  cases: { name: string; shape: number[]; dataRange: number; pred: number[]; target: number[]; loss: number; grad: number[] }[];
}

const fixture = await readFixtureJson<SsimFixture>('test/fixtures/losses/ssim.json');

/** An NHWC tensor's real values (float32-rounded, unpadded order) and its padded upload. */
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
  return { shape, values: Float64Array.from(values, Math.fround), padded };
}

/** NCHW → NHWC; `f32` rounds to float32 (the fixture's inputs are written as the shortest decimal of a float32). */
function nchwToNhwc(values: ArrayLike<number>, [n, c, h, w]: number[], f32 = false): Float64Array {
  const out = new Float64Array(values.length);
  if (f32) values = Float64Array.from(values, Math.fround);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[((b * h + y) * w + x) * c + ch] = values[((b * c + ch) * h + y) * w + x];
  return out;
}

function count(shape: Shape4): number {
  return shape[0] * shape[1] * shape[2] * shape[3];
}

interface Reference {
  loss: number;
  grad: Float64Array;
}

// ---------------------------------------------------------------------------------------------------------------
// Float64 reference: pytorch-msssim's ssim as training.md §2.3 writes it, on NHWC data, straight from the
// formulas (the 2-D window applied directly, the gradient with the divisions by A1 and A2 as written there).

function ssimLoss64(p: Float64Array, t: Float64Array, shape: Shape4, dataRange: number, weight: number, window: number[]): Reference {
  const [n, h, w, c] = shape;
  const k = window.length;
  const oh = h - k + 1;
  const ow = w - k + 1;
  const at = (b: number, y: number, x: number, ch: number) => ((b * h + y) * w + x) * c + ch;
  const c1 = (0.01 * dataRange) ** 2;
  const c2 = (0.03 * dataRange) ** 2;
  const positions = n * c * oh * ow;
  const coef = -weight / positions;
  let sum = 0;
  const grad = new Float64Array(p.length);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          let mx = 0;
          let my = 0;
          let exx = 0;
          let eyy = 0;
          let exy = 0;
          for (let ky = 0; ky < k; ky++)
            for (let kx = 0; kx < k; kx++) {
              const g = window[ky] * window[kx];
              const x = p[at(b, oy + ky, ox + kx, ch)];
              const y = t[at(b, oy + ky, ox + kx, ch)];
              mx += g * x;
              my += g * y;
              exx += g * x * x;
              eyy += g * y * y;
              exy += g * x * y;
            }
          const a1 = 2 * mx * my + c1;
          const a2 = 2 * (exy - mx * my) + c2;
          const b1 = mx * mx + my * my + c1;
          const b2 = exx - mx * mx + (eyy - my * my) + c2;
          const s = (a1 * a2) / (b1 * b2);
          sum += s;
          const dMu = s * ((2 * my) / a1 - (2 * my) / a2 - (2 * mx) / b1 + (2 * mx) / b2) * coef;
          const dXx = (-s / b2) * coef;
          const dXy = ((2 * s) / a2) * coef;
          for (let ky = 0; ky < k; ky++)
            for (let kx = 0; kx < k; kx++) {
              const i = at(b, oy + ky, ox + kx, ch);
              grad[i] += window[ky] * window[kx] * (dMu + 2 * p[i] * dXx + t[i] * dXy);
            }
        }
  return { loss: weight * (1 - sum / positions), grad };
}

const WINDOW = ssimLossWindow(11, 1.5);

// ---------------------------------------------------------------------------------------------------------------

interface RunOutput {
  loss: Float32Array;
  grad: Float32Array;
}

/** Compiles, poisons and runs `ssimLoss` on pred and target `runs` times; one plan, fresh outputs each run. */
async function runSsim(pred: Data, target: Data, options: SsimLossOptions, runs = 1): Promise<RunOutput[]> {
  const ctx = await getTestContext();
  const g = new Graph();
  const tp = g.input(pred.shape, 'pred');
  const tt = g.input(target.shape, 'target');
  const { loss, grad } = ssimLoss(g, tp, tt, options);
  expect(loss.shape).toEqual([1, 1, 1, 1]);
  expect(grad.shape).toEqual(pred.shape);
  g.output(loss);
  g.output(grad);
  const plan = await Plan.compile(ctx, g);
  try {
    const out: RunOutput[] = [];
    for (let r = 0; r < runs; r++) {
      plan.poison();
      const [l, gr] = (await plan.run([pred.padded, target.padded])).outputs;
      out.push({ loss: l, grad: gr });
    }
    return out;
  } finally {
    plan.dispose();
  }
}

/** Loss within rel 1e-5 (lanes 1–3 zero), gradient rel-L2 within `gradTolerance`, padded channels 0. */
function expectMatches({ loss, grad }: RunOutput, ref: Reference, c: number, gradTolerance = 1e-4): void {
  const cp = paddedChannels(c);
  grad.forEach((v, k) => {
    if (k % cp >= c && v !== 0) throw new Error(`gradient padded channel ${k % cp} holds ${v}`);
  });
  expect(Array.from(loss.subarray(1))).toEqual([0, 0, 0]);
  const relLoss = Math.abs(loss[0] - ref.loss) / Math.abs(ref.loss);
  expect(relLoss, `loss ${loss[0]} vs ${ref.loss}`).toBeLessThanOrEqual(1e-5);
  const real = Float64Array.from(grad.filter((_, k) => k % cp < c));
  expect(relL2(real, ref.grad), 'gradient').toBeLessThanOrEqual(gradTolerance);
}

function randomPair(shape: Shape4, seed: number, dataRange: number, noise: number): [Data, Data] {
  const target = Float64Array.from(randomArray(count(shape), seed), (v) => ((v + 1) / 2) * dataRange);
  const pred = Float64Array.from(randomArray(count(shape), seed + 1), (v, k) => target[k] + v * noise * dataRange);
  return [pack(pred, shape), pack(target, shape)];
}

describe('the float64 SSIM loss reference', () => {
  it('builds the window pytorch-msssim builds', () => {
    expect(WINDOW.length).toBe(11);
    WINDOW.forEach((v, k) => expect(Math.abs(v - fixture.window[k]) / v, `tap ${k}`).toBeLessThan(1e-6));
  });

  it('matches central differences on a tiny image', () => {
    const shape: Shape4 = [1, 12, 11, 2];
    const [pred, target] = randomPair(shape, 3, 1, 0.2);
    const f = (x: Float64Array) => ssimLoss64(x, target.values, shape, 1, 0.8, WINDOW);
    const { grad } = f(pred.values);
    const numeric = pred.values.map((v, k) => {
      const step = 1e-6 * Math.max(1, Math.abs(v));
      const plus = pred.values.slice();
      const minus = pred.values.slice();
      plus[k] = v + step;
      minus[k] = v - step;
      return (f(plus).loss - f(minus).loss) / (2 * step);
    });
    expect(relL2(grad, numeric)).toBeLessThanOrEqual(1e-6);
  });

  for (const c of fixture.cases) {
    it(`matches PyTorch (pytorch-msssim restated): ${c.name}`, () => {
      const [n, ch, h, w] = c.shape;
      const shape: Shape4 = [n, h, w, ch];
      const pred = nchwToNhwc(c.pred, c.shape, true);
      const target = nchwToNhwc(c.target, c.shape, true);
      // With PyTorch's own (float32-built) window, only float64 rounding separates the two.
      const exact = ssimLoss64(pred, target, shape, c.dataRange, 1, fixture.window.map(Math.fround));
      expect(Math.abs(exact.loss - c.loss) / c.loss).toBeLessThan(1e-12);
      expect(relL2(exact.grad, nchwToNhwc(c.grad, c.shape))).toBeLessThan(1e-12);
      // With ours (float64), the window's float32 rounding moves 1 − SSIM by about 1e-7.
      const ref = ssimLoss64(pred, target, shape, c.dataRange, 1, WINDOW);
      expect(Math.abs(ref.loss - c.loss) / c.loss).toBeLessThan(1e-6);
      expect(relL2(ref.grad, nchwToNhwc(c.grad, c.shape))).toBeLessThan(1e-6);
    });
  }
});

describe('ssimLoss on the GPU', () => {
  for (const c of fixture.cases) {
    it(`matches PyTorch: ${c.name}`, async () => {
      const [n, ch, h, w] = c.shape;
      const shape: Shape4 = [n, h, w, ch];
      const pred = pack(nchwToNhwc(c.pred, c.shape, true), shape);
      const target = pack(nchwToNhwc(c.target, c.shape, true), shape);
      const [out] = await runSsim(pred, target, { label: 'ssim', dataRange: c.dataRange });
      expectMatches(out, { loss: c.loss, grad: nchwToNhwc(c.grad, c.shape) }, ch);
    });
  }

  const cases: [string, Shape4, number, number, number][] = [
    ['3 channels, weight 0.7', [1, 13, 12, 3], 1, 0.1, 0.7],
    ['5 channels (two groups), batch 2', [2, 11, 15, 5], 1, 0.15, 1],
    ['data range 255', [1, 14, 13, 2], 255, 0.1, 1],
    ['two-pass reduction', [2, 26, 24, 3], 1, 0.1, 2],
  ];
  cases.forEach(([name, shape, dataRange, noise, weight], k) => {
    it(`matches the float64 reference: ${name} ${shape.join('x')}`, async () => {
      const [pred, target] = randomPair(shape, 100 + 10 * k, dataRange, noise);
      const [out] = await runSsim(pred, target, { label: 'ssim', dataRange, weight });
      expectMatches(out, ssimLoss64(pred.values, target.values, shape, dataRange, weight, WINDOW), shape[3]);
    });
  });

  it('takes another window size and σ', async () => {
    const shape: Shape4 = [1, 9, 10, 1];
    const [pred, target] = randomPair(shape, 7, 1, 0.2);
    const [out] = await runSsim(pred, target, { label: 'ssim', windowSize: 7, sigma: 1 });
    expectMatches(out, ssimLoss64(pred.values, target.values, shape, 1, 1, ssimLossWindow(7, 1)), 1);
  });

  it('identical images: loss 0', async () => {
    const shape: Shape4 = [1, 11, 11, 3];
    const [pred] = randomPair(shape, 9, 1, 0);
    const [out] = await runSsim(pred, pred, { label: 'ssim' });
    expect(Math.abs(out.loss[0])).toBeLessThan(1e-6);
  });

  it('is deterministic: two runs give the same bits', async () => {
    const shape: Shape4 = [2, 26, 24, 3];
    const [pred, target] = randomPair(shape, 55, 1, 0.1);
    const [a, b] = await runSsim(pred, target, { label: 'ssim' }, 2);
    expect(Array.from(b.loss)).toEqual(Array.from(a.loss));
    expect(b.grad).toEqual(a.grad);
  });

  it('names bad inputs', () => {
    const g = new Graph();
    const p = g.input([1, 12, 12, 3], 'pred');
    expect(() => ssimLoss(g, p, g.input([1, 12, 13, 3], 'target'), { label: 'ssim' })).toThrow(
      /ssim: target 'target' \[1, 12, 13, 3\] does not match pred/,
    );
    const short = g.input([1, 10, 12, 3], 'short');
    expect(() => ssimLoss(g, short, short, { label: 'ssim' })).toThrow(InvalidInputError);
    expect(() => ssimLoss(g, short, short, { label: 'ssim' })).toThrow(/ssim: pred 'short' .* is 10×12 pixels, smaller than the 11×11/);
    const narrow = g.input([1, 12, 10, 3], 'narrow');
    expect(() => ssimLoss(g, narrow, narrow, { label: 'ssim' })).toThrow(/ssim: pred 'narrow' .* is 12×10 pixels/);
    expect(() => ssimLoss(g, p, p, { label: 'ssim', dataRange: 0 })).toThrow(/ssim: dataRange must be a positive/);
    expect(() => ssimLoss(g, p, p, { label: 'ssim', windowSize: 8 })).toThrow(/ssim: windowSize must be an odd/);
    expect(() => ssimLoss(g, p, p, { label: 'ssim', sigma: -1 })).toThrow(/ssim: sigma must be/);
    expect(() => ssimLoss(g, p, p, { label: 'ssim', weight: Number.NaN })).toThrow(/ssim: weight must be a finite number/);
  });
});
