import { describe, expect, it } from 'vitest';
import type { GPUContext } from '../../src/gpu/context';
import { writeBuffer } from '../../src/gpu/context';
import { BufferUsage } from '../../src/gpu/flags';
import { type Binding, Graph } from '../../src/gpu/graph';
import { ParameterArena } from '../../src/gpu/parameter-arena';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, type Shape4 } from '../../src/gpu/tensor';
import type { Activation } from '../../src/kernels/activation';
import {
  batchNormFrozenBackward,
  batchNormFrozenForward,
  batchNormTrainBackward,
  batchNormTrainForward,
  MOMENTUM_FACTOR_BYTES,
} from '../../src/kernels/batchnorm-train';
import { statisticsChunks } from '../../src/kernels/batchnorm-train.wgsl';
import { getTestContext, readWhole } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';
import { toF32 } from '../helpers/reference-norm';

// ---------------------------------------------------------------------------------------------------------------
// Float64 references (NCHW), PyTorch 1.13 semantics (docs/training.md §1.4)
// ---------------------------------------------------------------------------------------------------------------

type Nchw = readonly [number, number, number, number];
const NONE: Activation = { kind: 'none' };
const RELU: Activation = { kind: 'relu' };
const LEAKY: Activation = { kind: 'leakyRelu', alpha: 0.2 };

function act64(a: Activation, z: number): number {
  return a.kind === 'relu' ? (z > 0 ? z : 0) : a.kind === 'leakyRelu' ? (z > 0 ? z : a.alpha * z) : z;
}

/** d act/dz, with PyTorch's kinks: relu'(0) = 0, leaky_relu'(0) = α. */
function actGrad64(a: Activation, z: number): number {
  return a.kind === 'relu' ? (z > 0 ? 1 : 0) : a.kind === 'leakyRelu' ? (z > 0 ? 1 : a.alpha) : 1;
}

/** Visits every element of channel ch of an NCHW tensor. */
function forChannel(shape: Nchw, ch: number, f: (i: number) => void): void {
  const [n, c, h, w] = shape;
  for (let b = 0; b < n; b++) for (let p = 0; p < h * w; p++) f((b * c + ch) * h * w + p);
}

interface TrainForwardRef {
  z: Float64Array;
  y: Float64Array;
  xhat: Float64Array;
  mean: Float64Array;
  invStd: Float64Array;
  runningMean: Float64Array;
  runningVar: Float64Array;
}

/** nn.BatchNorm2d.train() forward: biased batch variance normalises, the unbiased one enters running_var. */
function bnTrainForwardRef(
  x: ArrayLike<number>,
  shape: Nchw,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  runningMean: ArrayLike<number>,
  runningVar: ArrayLike<number>,
  momentum: number,
  eps: number,
  act: Activation,
): TrainForwardRef {
  const c = shape[1];
  const m = shape[0] * shape[2] * shape[3];
  const r: TrainForwardRef = {
    z: new Float64Array(x.length),
    y: new Float64Array(x.length),
    xhat: new Float64Array(x.length),
    mean: new Float64Array(c),
    invStd: new Float64Array(c),
    runningMean: new Float64Array(c),
    runningVar: new Float64Array(c),
  };
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    forChannel(shape, ch, (i) => (s += x[i]));
    const mu = s / m;
    let sq = 0;
    forChannel(shape, ch, (i) => (sq += (x[i] - mu) ** 2));
    const inv = 1 / Math.sqrt(sq / m + eps);
    r.mean[ch] = mu;
    r.invStd[ch] = inv;
    r.runningMean[ch] = (1 - momentum) * runningMean[ch] + momentum * mu;
    r.runningVar[ch] = (1 - momentum) * runningVar[ch] + (momentum * sq) / (m - 1);
    forChannel(shape, ch, (i) => {
      r.xhat[i] = (x[i] - mu) * inv;
      r.z[i] = gamma[ch] * r.xhat[i] + beta[ch];
      r.y[i] = act64(act, r.z[i]);
    });
  }
  return r;
}

interface Grads {
  dx: Float64Array;
  dWeight: Float64Array;
  dBias: Float64Array;
}

/** Train-mode backward: dβ = Σg, dγ = Σg·x̂, dx = (γ·invStd/M)·(M·g − dβ − x̂·dγ), g through the activation. */
function bnTrainBackwardRef(gy: ArrayLike<number>, fwd: TrainForwardRef, shape: Nchw, gamma: ArrayLike<number>, act: Activation): Grads {
  const c = shape[1];
  const m = shape[0] * shape[2] * shape[3];
  const out: Grads = { dx: new Float64Array(gy.length), dWeight: new Float64Array(c), dBias: new Float64Array(c) };
  const g = Float64Array.from(gy, (v, i) => v * actGrad64(act, fwd.z[i]));
  for (let ch = 0; ch < c; ch++) {
    let db = 0;
    let dg = 0;
    forChannel(shape, ch, (i) => {
      db += g[i];
      dg += g[i] * fwd.xhat[i];
    });
    out.dBias[ch] = db;
    out.dWeight[ch] = dg;
    forChannel(shape, ch, (i) => (out.dx[i] = ((gamma[ch] * fwd.invStd[ch]) / m) * (m * g[i] - db - fwd.xhat[i] * dg)));
  }
  return out;
}

/** Eval-mode forward from the running statistics (pre-activation z and y). */
function bnEvalForwardRef(
  x: ArrayLike<number>,
  shape: Nchw,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  rm: ArrayLike<number>,
  rv: ArrayLike<number>,
  eps: number,
  act: Activation,
): { z: Float64Array; y: Float64Array } {
  const z = new Float64Array(x.length);
  const y = new Float64Array(x.length);
  for (let ch = 0; ch < shape[1]; ch++) {
    forChannel(shape, ch, (i) => {
      z[i] = (gamma[ch] * (x[i] - rm[ch])) / Math.sqrt(rv[ch] + eps) + beta[ch];
      y[i] = act64(act, z[i]);
    });
  }
  return { z, y };
}

/** Frozen backward: dx = g·γ/√(rv+eps), dγ = Σg·(x−rm)/√(rv+eps), dβ = Σg. */
function bnFrozenBackwardRef(
  gy: ArrayLike<number>,
  x: ArrayLike<number>,
  z: ArrayLike<number>,
  shape: Nchw,
  gamma: ArrayLike<number>,
  rm: ArrayLike<number>,
  rv: ArrayLike<number>,
  eps: number,
  act: Activation,
): Grads {
  const c = shape[1];
  const out: Grads = { dx: new Float64Array(gy.length), dWeight: new Float64Array(c), dBias: new Float64Array(c) };
  for (let ch = 0; ch < c; ch++) {
    const inv = 1 / Math.sqrt(rv[ch] + eps);
    forChannel(shape, ch, (i) => {
      const g = gy[i] * actGrad64(act, z[i]);
      out.dx[i] = g * gamma[ch] * inv;
      out.dWeight[ch] += g * (x[i] - rm[ch]) * inv;
      out.dBias[ch] += g;
    });
  }
  return out;
}

/** ∂/∂v of Σ gy·f(v) by central differences, h = 1e-6·max(1, |v|). */
function centralDifferences(v: Float64Array, loss: () => number): Float64Array {
  const out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const keep = v[i];
    const h = 1e-6 * Math.max(1, Math.abs(keep));
    v[i] = keep + h;
    const up = loss();
    v[i] = keep - h;
    const down = loss();
    v[i] = keep;
    out[i] = (up - down) / (2 * h);
  }
  return out;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

describe('float64 references against central differences', () => {
  const shape: Nchw = [2, 3, 2, 3];
  const count = 2 * 3 * 2 * 3;
  for (const act of [NONE, RELU, LEAKY]) {
    it(`train-mode backward, ${act.kind}`, () => {
      const x = randomArray(count, 11, 2);
      const gamma = randomArray(3, 12, 1.5);
      const beta = randomArray(3, 13, 0.5);
      const gy = randomArray(count, 14);
      const zero = new Float64Array(3);
      const loss = () => dot(gy, bnTrainForwardRef(x, shape, gamma, beta, zero, zero, 0.1, 1e-5, act).y);
      const fwd = bnTrainForwardRef(x, shape, gamma, beta, zero, zero, 0.1, 1e-5, act);
      // Kinks are far from these inputs, so the differences are smooth.
      expect(Math.min(...fwd.z.map(Math.abs))).toBeGreaterThan(1e-3);
      const ref = bnTrainBackwardRef(gy, fwd, shape, gamma, act);
      expect(relL2(ref.dx, centralDifferences(x, loss))).toBeLessThan(1e-6);
      expect(relL2(ref.dWeight, centralDifferences(gamma, loss))).toBeLessThan(1e-6);
      expect(relL2(ref.dBias, centralDifferences(beta, loss))).toBeLessThan(1e-6);
    });
    it(`frozen backward, ${act.kind}`, () => {
      const x = randomArray(count, 21, 2);
      const gamma = randomArray(3, 22, 1.5);
      const beta = randomArray(3, 23, 0.5);
      const rm = randomArray(3, 24, 0.3);
      const rv = randomArray(3, 25, 0.5).map((v) => v + 0.7);
      const gy = randomArray(count, 26);
      const loss = () => dot(gy, bnEvalForwardRef(x, shape, gamma, beta, rm, rv, 1e-4, act).y);
      const { z } = bnEvalForwardRef(x, shape, gamma, beta, rm, rv, 1e-4, act);
      expect(Math.min(...z.map(Math.abs))).toBeGreaterThan(1e-3);
      const ref = bnFrozenBackwardRef(gy, x, z, shape, gamma, rm, rv, 1e-4, act);
      expect(relL2(ref.dx, centralDifferences(x, loss))).toBeLessThan(1e-6);
      expect(relL2(ref.dWeight, centralDifferences(gamma, loss))).toBeLessThan(1e-6);
      expect(relL2(ref.dBias, centralDifferences(beta, loss))).toBeLessThan(1e-6);
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// GPU
// ---------------------------------------------------------------------------------------------------------------

const ceil4 = (v: number) => Math.ceil(v / 4) * 4;

/** Bitwise equality (NaN poison included). */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return ua.length === ub.length && ua.every((v, i) => v === ub[i]);
}

/** NHWC-padded output → NCHW, after checking its padded channels are exactly 0. */
function fromNhwc(data: Float32Array, shape: Shape4, what: string): Float32Array {
  const c = shape[3];
  const cp = ceil4(c);
  data.forEach((v, i) => {
    if (i % cp >= c && v !== 0) throw new Error(`${what}: padded channel ${i % cp} holds ${v}`);
  });
  return nhwcPaddedToNchw(data, shape);
}

/**
 * Parameters as the trainer holds them: γ and β in an arena with their gradients ('grad', poisoned with NaN before
 * each run), the running statistics in another ('value'). `entry` reads one tensor back and checks that its padded
 * lanes are 0 and that nothing past them was touched (still NaN in 'grad').
 */
class BnParams {
  readonly keys = { weight: {}, bias: {}, runningMean: {}, runningVar: {} };
  readonly learn: ParameterArena;
  readonly stats: ParameterArena;
  constructor(
    readonly ctx: GPUContext,
    readonly c: number,
    init: { weight: ArrayLike<number>; bias: ArrayLike<number>; runningMean: ArrayLike<number>; runningVar: ArrayLike<number> },
  ) {
    const k = this.keys;
    this.learn = new ParameterArena(
      ctx,
      [
        { key: k.weight, numel: c, label: 'weight' },
        { key: k.bias, numel: c, label: 'bias' },
      ],
      'bn learn',
    );
    this.stats = new ParameterArena(
      ctx,
      [
        { key: k.runningMean, numel: c, label: 'running_mean' },
        { key: k.runningVar, numel: c, label: 'running_var' },
      ],
      'bn stats',
    );
    this.learn.write(k.weight, 'value', init.weight);
    this.learn.write(k.bias, 'value', init.bias);
    this.stats.write(k.runningMean, 'value', init.runningMean);
    this.stats.write(k.runningVar, 'value', init.runningVar);
  }
  range(key: object, role: string): Binding {
    return (this.learn.has(key) ? this.learn : this.stats).range(key, role);
  }
  poisonGrads(): void {
    writeBuffer(this.ctx.device, this.learn.buffer('grad'), 0, new Float32Array(this.learn.elements).fill(Number.NaN));
  }
  async entry(key: object, role: string): Promise<Float32Array> {
    const arena = this.learn.has(key) ? this.learn : this.stats;
    const all = await readWhole(this.ctx, arena.buffer(role));
    const { offset, numel, label } = arena.entry(key);
    for (let i = numel; i < ceil4(numel); i++) expect(all[offset + i], `${label} padded lane ${i}`).toBe(0);
    // Entries start on 256-byte (64-float) boundaries: the gap after this one, if any, is left alone.
    if (role === 'grad' && ceil4(numel) % 64 !== 0) expect(all[offset + ceil4(numel)], `${label}: past its range`).toBeNaN();
    return all.slice(offset, offset + numel);
  }
  dispose(): void {
    this.learn.dispose();
    this.stats.dispose();
  }
}

interface TrainCase {
  name: string;
  shape: Shape4;
  momentum: number;
  eps: number;
  act: Activation;
  offset?: number;
  tolerance?: number;
}

const TRAIN_CASES: TrainCase[] = [
  { name: '2x5x7x3 momentum 0.1', shape: [2, 5, 7, 3], momentum: 0.1, eps: 1e-5, act: NONE },
  { name: '1x9x6x13 KAIR momentum 0.9 eps 1e-4, relu', shape: [1, 9, 6, 13], momentum: 0.9, eps: 1e-4, act: RELU },
  { name: '4x16x16x8 leakyRelu 0.2', shape: [4, 16, 16, 8], momentum: 0.1, eps: 1e-5, act: LEAKY },
  // 4608 pixels: 144 chunks, so every thread of the reduce adds several partials.
  { name: '2x48x48x5 many chunks, relu', shape: [2, 48, 48, 5], momentum: 0.9, eps: 1e-4, act: RELU },
  // The mean is stored in f32 (as PyTorch's is): its rounding (ulp 6e-5 at 1000) bounds y's accuracy at ~1e-5·|γ|·invStd.
  { name: '2x6x5x6 features around 1000', shape: [2, 6, 5, 6], momentum: 0.1, eps: 1e-5, act: NONE, offset: 1000, tolerance: 1e-4 },
];

describe('batchNormTrainForward / batchNormTrainBackward against float64 references', () => {
  TRAIN_CASES.forEach((tc, caseIndex) => {
    it(tc.name, async () => {
      const ctx = await getTestContext();
      const [n, h, w, c] = tc.shape;
      const nchw: Nchw = [n, c, h, w];
      const count = n * c * h * w;
      const seed = 1000 + 100 * caseIndex;
      const xs = [0, 1].map((s) => toF32(randomArray(count, seed + s, 2).map((v, i) => v + (tc.offset ?? 0) + 0.3 * ((i * 7) % 5))));
      const gys = [0, 1].map((s) => toF32(randomArray(count, seed + 10 + s)));
      const gamma = toF32(randomArray(c, seed + 20, 1.5));
      const beta = toF32(randomArray(c, seed + 21, 0.5));
      const rm0 = toF32(randomArray(c, seed + 22, 0.5));
      const rv0 = toF32(randomArray(c, seed + 23, 0.5).map((v) => v + 1));
      const params = new BnParams(ctx, c, { weight: gamma, bias: beta, runningMean: rm0, runningVar: rv0 });
      const k = params.keys;

      const g = new Graph();
      const x = g.input(tc.shape, 'x');
      const gy = g.input(tc.shape, 'gy');
      const fused = tc.act.kind === 'none' ? {} : { activation: tc.act };
      const weight = params.range(k.weight, 'value');
      const fwd = batchNormTrainForward(g, x, {
        weight,
        bias: params.range(k.bias, 'value'),
        runningMean: params.range(k.runningMean, 'value'),
        runningVar: params.range(k.runningVar, 'value'),
        momentum: tc.momentum,
        eps: tc.eps,
        ...fused,
        label: 'bn',
      });
      const dx = batchNormTrainBackward(
        g,
        gy,
        x,
        { mean: fwd.mean, invStd: fwd.invStd },
        {
          weight,
          dWeight: params.range(k.weight, 'grad'),
          dBias: params.range(k.bias, 'grad'),
          ...(tc.act.kind === 'none' ? {} : { activation: tc.act, y: fwd.y }),
          label: 'bn backward',
        },
      );
      expect(fwd.mean.shape).toEqual([1, 1, 1, c]);
      expect(fwd.invStd.shape).toEqual([1, 1, 1, c]);
      for (const t of [fwd.y, fwd.mean, fwd.invStd, dx]) g.output(t);
      const plan = await Plan.compile(ctx, g);

      const step = async (s: number) => {
        plan.poison();
        params.poisonGrads();
        const { outputs } = await plan.run([nchwToNhwcPadded(xs[s], tc.shape), nchwToNhwcPadded(gys[s], tc.shape)]);
        return {
          outputs,
          dWeight: await params.entry(k.weight, 'grad'),
          dBias: await params.entry(k.bias, 'grad'),
          runningMean: await params.entry(k.runningMean, 'value'),
          runningVar: await params.entry(k.runningVar, 'value'),
        };
      };
      let rm: ArrayLike<number> = rm0;
      let rv: ArrayLike<number> = rv0;
      const firstRun = await step(0);
      for (const s of [0, 1]) {
        const got = s === 0 ? firstRun : await step(s);
        // The second step starts from the running statistics the first one left on the GPU.
        const ref = bnTrainForwardRef(xs[s], nchw, gamma, beta, rm, rv, tc.momentum, tc.eps, tc.act);
        const grads = bnTrainBackwardRef(gys[s], ref, nchw, gamma, tc.act);
        const [y, mean, invStd, dxOut] = got.outputs;
        const tol = tc.tolerance ?? 1e-5;
        expect(relL2(fromNhwc(y, tc.shape, 'y'), ref.y), `y, step ${s + 1}`).toBeLessThanOrEqual(tol);
        expect(relL2(fromNhwc(mean, [1, 1, 1, c], 'mean'), ref.mean), `mean, step ${s + 1}`).toBeLessThanOrEqual(1e-6);
        expect(relL2(fromNhwc(invStd, [1, 1, 1, c], 'invStd'), ref.invStd), `invStd, step ${s + 1}`).toBeLessThanOrEqual(1e-5);
        expect(relL2(fromNhwc(dxOut, tc.shape, 'dx'), grads.dx), `dx, step ${s + 1}`).toBeLessThanOrEqual(tol);
        expect(relL2(got.dWeight, grads.dWeight), `dWeight, step ${s + 1}`).toBeLessThanOrEqual(1e-4);
        expect(relL2(got.dBias, grads.dBias), `dBias, step ${s + 1}`).toBeLessThanOrEqual(1e-4);
        expect(relL2(got.runningMean, ref.runningMean), `running_mean, step ${s + 1}`).toBeLessThanOrEqual(1e-6);
        expect(relL2(got.runningVar, ref.runningVar), `running_var, step ${s + 1}`).toBeLessThanOrEqual(1e-5);
        rm = got.runningMean;
        rv = got.runningVar;
      }
      // Same inputs again: every output and gradient bitwise identical (fixed reduction order).
      const again = await step(0);
      again.outputs.forEach((o, i) => expect(sameBits(o, firstRun.outputs[i]), `output ${i}`).toBe(true));
      expect(Array.from(again.dWeight)).toEqual(Array.from(firstRun.dWeight));
      expect(Array.from(again.dBias)).toEqual(Array.from(firstRun.dBias));
      plan.dispose();
      params.dispose();
    });
  });

  it('takes plain STORAGE buffers as parameter bindings', async () => {
    const ctx = await getTestContext();
    const shape: Shape4 = [1, 5, 4, 6];
    const c = 6;
    const nchw: Nchw = [1, c, 5, 4];
    const x = toF32(randomArray(120, 71, 2));
    const gyData = toF32(randomArray(120, 72));
    const gamma = toF32(randomArray(c, 73, 1.5));
    const beta = toF32(randomArray(c, 74, 0.5));
    const usage = BufferUsage.STORAGE | BufferUsage.COPY_SRC;
    const padded = (v: ArrayLike<number>) => {
      const out = new Float32Array(8);
      out.set(Array.from(v));
      return out;
    };
    const buf = (v: ArrayLike<number>, what: string) => ctx.createBufferWithData(padded(v), usage, what);
    const [wB, bB, rmB, rvB, dwB, dbB] = [
      buf(gamma, 'w'),
      buf(beta, 'b'),
      buf(new Float32Array(c), 'rm'),
      buf(new Float32Array(c).fill(1), 'rv'),
      buf(new Float32Array(c).fill(Number.NaN), 'dw'),
      buf(new Float32Array(c).fill(Number.NaN), 'db'),
    ];
    const g = new Graph();
    const xIn = g.input(shape, 'x');
    const gy = g.input(shape, 'gy');
    const fwd = batchNormTrainForward(g, xIn, {
      weight: wB,
      bias: bB,
      runningMean: rmB,
      runningVar: rvB,
      momentum: 0.1,
      eps: 1e-5,
      label: 'bn',
    });
    const dx = batchNormTrainBackward(g, gy, xIn, fwd, { weight: wB, dWeight: dwB, dBias: dbB, label: 'bn backward' });
    g.output(fwd.y);
    g.output(dx);
    const plan = await Plan.compile(ctx, g);
    plan.poison();
    const { outputs } = await plan.run([nchwToNhwcPadded(x, shape), nchwToNhwcPadded(gyData, shape)]);
    const ref = bnTrainForwardRef(x, nchw, gamma, beta, new Float64Array(c), new Float64Array(c).fill(1), 0.1, 1e-5, NONE);
    const grads = bnTrainBackwardRef(gyData, ref, nchw, gamma, NONE);
    expect(relL2(fromNhwc(outputs[0], shape, 'y'), ref.y)).toBeLessThanOrEqual(1e-5);
    expect(relL2(fromNhwc(outputs[1], shape, 'dx'), grads.dx)).toBeLessThanOrEqual(1e-5);
    const dw = await readWhole(ctx, dwB);
    const rmOut = await readWhole(ctx, rmB);
    expect(relL2(dw.slice(0, c), grads.dWeight)).toBeLessThanOrEqual(1e-4);
    expect(relL2((await readWhole(ctx, dbB)).slice(0, c), grads.dBias)).toBeLessThanOrEqual(1e-4);
    expect(relL2(rmOut.slice(0, c), ref.runningMean)).toBeLessThanOrEqual(1e-6);
    expect([dw[6], dw[7], rmOut[6], rmOut[7]]).toEqual([0, 0, 0, 0]);
    plan.dispose();
    for (const b of [wB, bB, rmB, rvB, dwB, dbB]) b.destroy();
  });
});

interface FrozenCase {
  name: string;
  shape: Shape4;
  eps: number;
  act: Activation;
  grads: 'both' | 'weight' | 'bias' | 'none';
}

const FROZEN_CASES: FrozenCase[] = [
  { name: '2x5x7x3', shape: [2, 5, 7, 3], eps: 1e-5, act: NONE, grads: 'both' },
  { name: '1x9x6x13 eps 1e-4, relu', shape: [1, 9, 6, 13], eps: 1e-4, act: RELU, grads: 'both' },
  { name: '4x16x16x8 leakyRelu, dBias only', shape: [4, 16, 16, 8], eps: 1e-5, act: LEAKY, grads: 'bias' },
  { name: '2x48x48x5 many chunks, dWeight only', shape: [2, 48, 48, 5], eps: 1e-4, act: NONE, grads: 'weight' },
  { name: '1x3x5x7 relu, no parameter gradients', shape: [1, 3, 5, 7], eps: 1e-5, act: RELU, grads: 'none' },
];

describe('batchNormFrozenBackward against a float64 reference', () => {
  FROZEN_CASES.forEach((tc, caseIndex) => {
    it(tc.name, async () => {
      const ctx = await getTestContext();
      const [n, h, w, c] = tc.shape;
      const nchw: Nchw = [n, c, h, w];
      const count = n * c * h * w;
      const seed = 3000 + 100 * caseIndex;
      const x = toF32(randomArray(count, seed, 2));
      const gyData = toF32(randomArray(count, seed + 1));
      const gamma = toF32(randomArray(c, seed + 2, 1.5));
      const beta = toF32(randomArray(c, seed + 3, 0.5));
      const rm = toF32(randomArray(c, seed + 4, 0.5));
      // Small variances, so eps matters.
      const rv = toF32(randomArray(c, seed + 5, 1e-4).map((v) => v + 2e-4));
      const params = new BnParams(ctx, c, { weight: gamma, bias: beta, runningMean: rm, runningVar: rv });
      const k = params.keys;
      const fwd = bnEvalForwardRef(x, nchw, gamma, beta, rm, rv, tc.eps, tc.act);
      const ref = bnFrozenBackwardRef(gyData, x, fwd.z, nchw, gamma, rm, rv, tc.eps, tc.act);

      const g = new Graph();
      const xIn = g.input(tc.shape, 'x');
      const gy = g.input(tc.shape, 'gy');
      const yIn = tc.act.kind === 'none' ? undefined : g.input(tc.shape, 'y');
      const wantWeight = tc.grads === 'both' || tc.grads === 'weight';
      const wantBias = tc.grads === 'both' || tc.grads === 'bias';
      const dx = batchNormFrozenBackward(g, gy, xIn, {
        weight: params.range(k.weight, 'value'),
        bias: params.range(k.bias, 'value'),
        runningMean: params.range(k.runningMean, 'value'),
        runningVar: params.range(k.runningVar, 'value'),
        eps: tc.eps,
        ...(wantWeight ? { dWeight: params.range(k.weight, 'grad') } : {}),
        ...(wantBias ? { dBias: params.range(k.bias, 'grad') } : {}),
        ...(yIn ? { activation: tc.act, y: yIn } : {}),
        label: 'frozen bn backward',
      });
      g.output(dx);
      const plan = await Plan.compile(ctx, g);
      const inputs = [
        nchwToNhwcPadded(x, tc.shape),
        nchwToNhwcPadded(gyData, tc.shape),
        ...(yIn ? [nchwToNhwcPadded(fwd.y, tc.shape)] : []),
      ];
      const run = async () => {
        plan.poison();
        params.poisonGrads();
        const { outputs } = await plan.run(inputs);
        const all = await readWhole(ctx, params.learn.buffer('grad'));
        return { dx: outputs[0], grads: all };
      };
      const first = await run();
      expect(relL2(fromNhwc(first.dx, tc.shape, 'dx'), ref.dx)).toBeLessThanOrEqual(1e-5);
      const gradOf = async (key: object, wanted: boolean, expected: Float64Array, what: string) => {
        if (!wanted) {
          // Not asked for: left alone (still the NaN poison).
          const { offset } = params.learn.entry(key);
          expect(first.grads[offset], what).toBeNaN();
          return;
        }
        expect(relL2(await params.entry(key, 'grad'), expected), what).toBeLessThanOrEqual(1e-4);
      };
      await gradOf(k.weight, wantWeight, ref.dWeight, 'dWeight');
      await gradOf(k.bias, wantBias, ref.dBias, 'dBias');
      const again = await run();
      expect(sameBits(again.dx, first.dx)).toBe(true);
      expect(sameBits(again.grads, first.grads)).toBe(true);
      plan.dispose();
      params.dispose();
    });
  });
});

describe('batchNormFrozenForward (eval mode in training) and its backward against float64 references', () => {
  const CASES: { name: string; shape: Shape4; eps: number; act: Activation }[] = [
    { name: '1x5x7x3', shape: [1, 5, 7, 3], eps: 1e-5, act: NONE },
    { name: '2x9x6x13 KAIR eps 1e-4, relu', shape: [2, 9, 6, 13], eps: 1e-4, act: RELU },
    { name: '3x4x5x8 leakyRelu 0.2', shape: [3, 4, 5, 8], eps: 1e-5, act: LEAKY },
    // One pixel per channel is fine in eval mode (PyTorch raises only when training with batch statistics).
    { name: '1x1x1x6 one value per channel', shape: [1, 1, 1, 6], eps: 1e-5, act: RELU },
  ];
  CASES.forEach((tc, caseIndex) => {
    it(tc.name, async () => {
      const ctx = await getTestContext();
      const [n, h, w, c] = tc.shape;
      const nchw: Nchw = [n, c, h, w];
      const count = n * c * h * w;
      const seed = 5000 + 100 * caseIndex;
      // Features offset from 0, as after a convolution: the running mean matters.
      const x = toF32(randomArray(count, seed, 2).map((v) => v + 0.4));
      const gyData = toF32(randomArray(count, seed + 1));
      const gamma = toF32(randomArray(c, seed + 2, 1.5));
      const beta = toF32(randomArray(c, seed + 3, 0.5));
      const rm = toF32(randomArray(c, seed + 4, 0.5));
      const rv = toF32(randomArray(c, seed + 5, 0.5).map((v) => v + 0.6));
      const params = new BnParams(ctx, c, { weight: gamma, bias: beta, runningMean: rm, runningVar: rv });
      const k = params.keys;
      const ref = bnEvalForwardRef(x, nchw, gamma, beta, rm, rv, tc.eps, tc.act);
      const grads = bnFrozenBackwardRef(gyData, x, ref.z, nchw, gamma, rm, rv, tc.eps, tc.act);

      const g = new Graph();
      const xIn = g.input(tc.shape, 'x');
      const gy = g.input(tc.shape, 'gy');
      const fused = tc.act.kind === 'none' ? {} : { activation: tc.act };
      const bound = {
        weight: params.range(k.weight, 'value'),
        bias: params.range(k.bias, 'value'),
        runningMean: params.range(k.runningMean, 'value'),
        runningVar: params.range(k.runningVar, 'value'),
        eps: tc.eps,
      };
      const y = batchNormFrozenForward(g, xIn, { ...bound, ...fused, label: 'frozen bn' });
      // The backward as the training graph chains it: the fused activation undone from the forward's y.
      const dx = batchNormFrozenBackward(g, gy, xIn, {
        ...bound,
        dWeight: params.range(k.weight, 'grad'),
        dBias: params.range(k.bias, 'grad'),
        ...(tc.act.kind === 'none' ? {} : { activation: tc.act, y }),
        label: 'frozen bn backward',
      });
      g.output(y);
      g.output(dx);
      const plan = await Plan.compile(ctx, g);
      const run = async () => {
        plan.poison();
        params.poisonGrads();
        const { outputs } = await plan.run([nchwToNhwcPadded(x, tc.shape), nchwToNhwcPadded(gyData, tc.shape)]);
        return outputs;
      };
      const first = await run();
      expect(relL2(fromNhwc(first[0], tc.shape, 'y'), ref.y), 'y').toBeLessThanOrEqual(1e-6);
      expect(relL2(fromNhwc(first[1], tc.shape, 'dx'), grads.dx), 'dx').toBeLessThanOrEqual(1e-5);
      expect(relL2(await params.entry(k.weight, 'grad'), grads.dWeight), 'dWeight').toBeLessThanOrEqual(1e-4);
      expect(relL2(await params.entry(k.bias, 'grad'), grads.dBias), 'dBias').toBeLessThanOrEqual(1e-4);
      // Eval mode only reads the running statistics and the parameters.
      expect(Array.from(await params.entry(k.runningMean, 'value'))).toEqual(Array.from(rm));
      expect(Array.from(await params.entry(k.runningVar, 'value'))).toEqual(Array.from(rv));
      expect(Array.from(await params.entry(k.weight, 'value'))).toEqual(Array.from(gamma));
      const again = await run();
      again.forEach((o, i) => expect(sameBits(o, first[i]), `output ${i}`).toBe(true));
      plan.dispose();
      params.dispose();
    });
  });

  it('reads γ, β and the running statistics on every run (they change between steps)', async () => {
    const ctx = await getTestContext();
    const shape: Shape4 = [1, 3, 4, 5];
    const nchw: Nchw = [1, 5, 3, 4];
    const x = toF32(randomArray(60, 5501, 2));
    const init = (s: number) => ({
      weight: toF32(randomArray(5, s, 1.5)),
      bias: toF32(randomArray(5, s + 1, 0.5)),
      runningMean: toF32(randomArray(5, s + 2, 0.5)),
      runningVar: toF32(randomArray(5, s + 3, 0.5).map((v) => v + 0.6)),
    });
    const a = init(5510);
    const params = new BnParams(ctx, 5, a);
    const k = params.keys;
    const g = new Graph();
    const xIn = g.input(shape, 'x');
    const y = batchNormFrozenForward(g, xIn, {
      weight: params.range(k.weight, 'value'),
      bias: params.range(k.bias, 'value'),
      runningMean: params.range(k.runningMean, 'value'),
      runningVar: params.range(k.runningVar, 'value'),
      eps: 1e-5,
      label: 'frozen bn',
    });
    g.output(y);
    const plan = await Plan.compile(ctx, g);
    for (const values of [a, init(5520)]) {
      params.learn.write(k.weight, 'value', values.weight);
      params.learn.write(k.bias, 'value', values.bias);
      params.stats.write(k.runningMean, 'value', values.runningMean);
      params.stats.write(k.runningVar, 'value', values.runningVar);
      plan.poison();
      const { outputs } = await plan.run([nchwToNhwcPadded(x, shape)]);
      const ref = bnEvalForwardRef(x, nchw, values.weight, values.bias, values.runningMean, values.runningVar, 1e-5, NONE);
      expect(relL2(fromNhwc(outputs[0], shape, 'y'), ref.y)).toBeLessThanOrEqual(1e-6);
    }
    plan.dispose();
    params.dispose();
  });
});

describe('batchNormTrainForward with the momentum read at run time (momentum=None)', () => {
  it('updates the running statistics with the factor written before each run', async () => {
    const ctx = await getTestContext();
    const shape: Shape4 = [2, 5, 3, 7];
    const [n, h, w, c] = shape;
    const nchw: Nchw = [n, c, h, w];
    const count = n * c * h * w;
    const xs = [0, 1, 2].map((s) => toF32(randomArray(count, 6000 + s, 2).map((v, i) => v + 0.3 * (i % 3))));
    const gamma = toF32(randomArray(c, 6010, 1.5));
    const beta = toF32(randomArray(c, 6011, 0.5));
    const rm0 = toF32(randomArray(c, 6012, 0.5));
    const rv0 = toF32(randomArray(c, 6013, 0.5).map((v) => v + 1));
    const params = new BnParams(ctx, c, { weight: gamma, bias: beta, runningMean: rm0, runningVar: rv0 });
    const k = params.keys;
    const factor = ctx.createBufferWithData(new Float32Array(4), BufferUsage.STORAGE, 'factor');
    const g = new Graph();
    const xIn = g.input(shape, 'x');
    const fwd = batchNormTrainForward(g, xIn, {
      weight: params.range(k.weight, 'value'),
      bias: params.range(k.bias, 'value'),
      runningMean: params.range(k.runningMean, 'value'),
      runningVar: params.range(k.runningVar, 'value'),
      momentum: factor,
      eps: 1e-4,
      activation: RELU,
      label: 'bn',
    });
    g.output(fwd.y);
    const plan = await Plan.compile(ctx, g);
    let rm: ArrayLike<number> = rm0;
    let rv: ArrayLike<number> = rv0;
    // PyTorch's cumulative average from num_batches_tracked 3: factors 1/4, 1/5, 1/6 (m and 1 − m from float64).
    for (const s of [0, 1, 2]) {
      const m = 1 / (4 + s);
      writeBuffer(ctx.device, factor, 0, Float32Array.of(m, 1 - m));
      plan.poison();
      const { outputs } = await plan.run([nchwToNhwcPadded(xs[s], shape)]);
      const ref = bnTrainForwardRef(xs[s], nchw, gamma, beta, rm, rv, m, 1e-4, RELU);
      expect(relL2(fromNhwc(outputs[0], shape, 'y'), ref.y), `y, run ${s + 1}`).toBeLessThanOrEqual(1e-5);
      const gotMean = await params.entry(k.runningMean, 'value');
      const gotVar = await params.entry(k.runningVar, 'value');
      expect(relL2(gotMean, ref.runningMean), `running_mean, run ${s + 1}`).toBeLessThanOrEqual(1e-6);
      expect(relL2(gotVar, ref.runningVar), `running_var, run ${s + 1}`).toBeLessThanOrEqual(1e-5);
      rm = gotMean;
      rv = gotVar;
    }
    // Factor 1 (the first batch ever): the running statistics become the batch's own.
    writeBuffer(ctx.device, factor, 0, Float32Array.of(1, 0));
    await plan.run([nchwToNhwcPadded(xs[0], shape)]);
    const first = bnTrainForwardRef(xs[0], nchw, gamma, beta, rm, rv, 1, 1e-4, RELU);
    expect(relL2(await params.entry(k.runningMean, 'value'), first.mean)).toBeLessThanOrEqual(1e-6);
    plan.dispose();
    params.dispose();
    factor.destroy();
  });
});

describe('BatchNorm training: errors and work split', () => {
  async function bindings(c: number) {
    const ctx = await getTestContext();
    const b = (n: number) => ctx.createBufferWithData(new Float32Array(n), BufferUsage.STORAGE, 'p');
    return { full: b(ceil4(c)), small: b(4) };
  }

  it('rejects one value per channel, as PyTorch does', async () => {
    const { full } = await bindings(5);
    const g = new Graph();
    const x = g.input([1, 1, 1, 5]);
    const p = { weight: full, bias: full, runningMean: full, runningVar: full, momentum: 0.1, eps: 1e-5, label: 'bn1' };
    expect(() => batchNormTrainForward(g, x, p)).toThrow(/bn1: Expected more than 1 value per channel when training/);
    // Two values per channel are enough (M − 1 = 1 for the unbiased variance).
    expect(() => batchNormTrainForward(g, g.input([2, 1, 1, 5]), p)).not.toThrow();
    full.destroy();
  });

  it('names bad shapes, bindings, eps and activations', async () => {
    const { full, small } = await bindings(5);
    const g = new Graph();
    const x = g.input([2, 3, 3, 5]);
    const p = { weight: full, bias: full, runningMean: full, runningVar: full, momentum: 0.1, eps: 1e-5, label: 'bn' };
    expect(() => batchNormTrainForward(g, x, { ...p, runningVar: small })).toThrow(
      /bn: runningVar spans 16 bytes, expected 32 for 5 channels/,
    );
    expect(() => batchNormTrainForward(g, x, { ...p, eps: -1 })).toThrow(/bn: eps must be/);
    expect(() => batchNormTrainForward(g, x, { ...p, momentum: Number.NaN })).toThrow(/bn: momentum/);
    expect(() => batchNormTrainForward(g, x, { ...p, activation: { kind: 'sigmoid' } })).toThrow(
      /fuses only relu or leakyRelu, not 'sigmoid'/,
    );
    const fwd = batchNormTrainForward(g, x, p);
    const back = { weight: full, dWeight: full, dBias: full, label: 'bwd' };
    const gyBad = g.input([2, 3, 4, 5]);
    expect(() => batchNormTrainBackward(g, gyBad, x, fwd, back)).toThrow(/bwd: the gradient gy is \[2, 3, 4, 5\], expected \[2, 3, 3, 5\]/);
    const gy = g.input([2, 3, 3, 5]);
    expect(() => batchNormTrainBackward(g, gy, x, { mean: fwd.mean, invStd: g.input([1, 1, 1, 4]) }, back)).toThrow(
      /bwd: the saved invStd/,
    );
    expect(() => batchNormTrainBackward(g, gy, x, fwd, { ...back, dBias: small })).toThrow(/bwd: dBias spans 16 bytes/);
    expect(() => batchNormTrainBackward(g, gy, x, fwd, { ...back, activation: RELU })).toThrow(
      /bwd: the fused relu needs the forward output y/,
    );
    expect(() => batchNormTrainBackward(g, gy, x, fwd, { ...back, activation: RELU, y: gyBad })).toThrow(/bwd: the forward output y is/);
    expect(() => batchNormTrainForward(g, x, { ...p, momentum: { buffer: full, offset: 0, size: 4 } })).toThrow(
      new RegExp(`bn: the momentum binding spans 4 bytes, expected ${MOMENTUM_FACTOR_BYTES}`),
    );
    const eval_ = { weight: full, bias: full, runningMean: full, runningVar: full, eps: 1e-4, label: 'evl' };
    expect(() => batchNormFrozenForward(g, x, { ...eval_, bias: small })).toThrow(/evl: bias spans 16 bytes, expected 32 for 5 channels/);
    expect(() => batchNormFrozenForward(g, x, { ...eval_, eps: Number.NaN })).toThrow(/evl: eps must be/);
    expect(() => batchNormFrozenForward(g, x, { ...eval_, activation: { kind: 'gelu' } })).toThrow(/evl: .*fuses only relu or leakyRelu/);
    const frozen = { weight: full, runningMean: full, runningVar: full, eps: 1e-5, label: 'frz' };
    expect(() => batchNormFrozenBackward(g, gyBad, x, frozen)).toThrow(/frz: the gradient gy/);
    expect(() => batchNormFrozenBackward(g, gy, x, { ...frozen, dWeight: small })).toThrow(/frz: dWeight spans 16 bytes/);
    expect(() => batchNormFrozenBackward(g, gy, x, { ...frozen, eps: Number.POSITIVE_INFINITY })).toThrow(/frz: eps/);
    full.destroy();
    small.destroy();
  });

  it('splits the statistics of a 16x64x64x64 batch over many invocations', () => {
    // 65,536 pixels, 16 channel vec4s: no invocation of the partials pass handles more than 64 pixels, and the
    // reduce adds at most 64 partials per thread.
    const chunks = statisticsChunks(16 * 64 * 64, 16);
    expect(Math.ceil((16 * 64 * 64) / chunks)).toBeLessThanOrEqual(64);
    expect(chunks / 64).toBeLessThanOrEqual(64);
    const g = new Graph();
    const x = g.input([16, 64, 64, 64]);
    const fake = { buffer: {} as GPUBuffer, offset: 0, size: 256 };
    batchNormTrainForward(g, x, { weight: fake, bias: fake, runningMean: fake, runningVar: fake, momentum: 0.1, eps: 1e-5, label: 'bn' });
    const partials = g.nodes.filter((nd) => nd.label.endsWith('.partials'));
    expect(partials).toHaveLength(2);
    for (const nd of partials) expect(nd.workgroups as number).toBeGreaterThanOrEqual(256);
  });
});
