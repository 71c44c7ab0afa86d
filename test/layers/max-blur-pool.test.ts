import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { Graph, type TensorValue } from '../../src/gpu/graph';
import { Conv2d } from '../../src/layers/conv2d';
import { ForwardBuilder, type ForwardOptions } from '../../src/layers/forward-builder';
import { MaxBlurPool } from '../../src/layers/max-blur-pool';
import { Module, namedParameters } from '../../src/layers/module';
import type { Network } from '../../src/models/network';
import { Trainer } from '../../src/training/trainer';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';
import type { NCHW } from '../helpers/reference-spatial';
import { runGraph } from '../helpers/run-graph';

/*
 * N2V2's MaxBlurPool (CAREamics' models/unet/layers.py): F.max_pool2d(k 2, s 1) then a depthwise conv with the
 * normalised Pascal kernel [1,2,1]ᵀ[1,2,1]/16, zero padding 1, stride 2. Checked against a float64 reference written
 * here from that definition (its adjoint checked by central differences), at odd sizes and channel counts that are
 * not multiples of 4, on poisoned buffers; the backward through one training step of conv1×1 → MaxBlurPool.
 */

const BLUR = [1, 2, 1].flatMap((a) => [1, 2, 1].map((b) => (a * b) / 16));

interface Pooled {
  y: Float64Array;
  shape: NCHW;
  /** Per max-pooled element, the flat index of its window's argmax in x (ties to the first tap, as PyTorch). */
  argmax: Int32Array;
}

function maxBlurPoolRef(x: ArrayLike<number>, [n, c, h, w]: NCHW): Pooled {
  const [hm, wm] = [h - 1, w - 1];
  const argmax = new Int32Array(n * c * hm * wm);
  const m = new Float64Array(argmax.length);
  for (let p = 0; p < n * c; p++)
    for (let i = 0; i < hm; i++)
      for (let j = 0; j < wm; j++) {
        let best = -Infinity;
        let at = -1;
        for (const [dy, dx] of [
          [0, 0],
          [0, 1],
          [1, 0],
          [1, 1],
        ]) {
          const k = (p * h + i + dy) * w + j + dx;
          if (x[k] > best) [best, at] = [x[k], k];
        }
        m[(p * hm + i) * wm + j] = best;
        argmax[(p * hm + i) * wm + j] = at;
      }
  const [ho, wo] = [Math.floor((hm - 1) / 2) + 1, Math.floor((wm - 1) / 2) + 1];
  const y = new Float64Array(n * c * ho * wo);
  for (let p = 0; p < n * c; p++)
    for (let oy = 0; oy < ho; oy++)
      for (let ox = 0; ox < wo; ox++) {
        let s = 0;
        for (let ky = 0; ky < 3; ky++)
          for (let kx = 0; kx < 3; kx++) {
            const [i, j] = [2 * oy - 1 + ky, 2 * ox - 1 + kx];
            if (i >= 0 && i < hm && j >= 0 && j < wm) s += BLUR[ky * 3 + kx] * m[(p * hm + i) * wm + j];
          }
        y[(p * ho + oy) * wo + ox] = s;
      }
  return { y, shape: [n, c, ho, wo], argmax };
}

/** dx of ⟨gy, MaxBlurPool(x)⟩: the blur's transpose, then each maximum's gradient to its argmax. */
function maxBlurPoolBackwardRef(x: ArrayLike<number>, shape: NCHW, gy: ArrayLike<number>): Float64Array {
  const [n, c, h, w] = shape;
  const { argmax, shape: out } = maxBlurPoolRef(x, shape);
  const [, , ho, wo] = out;
  const [hm, wm] = [h - 1, w - 1];
  const dm = new Float64Array(n * c * hm * wm);
  for (let p = 0; p < n * c; p++)
    for (let oy = 0; oy < ho; oy++)
      for (let ox = 0; ox < wo; ox++)
        for (let ky = 0; ky < 3; ky++)
          for (let kx = 0; kx < 3; kx++) {
            const [i, j] = [2 * oy - 1 + ky, 2 * ox - 1 + kx];
            if (i >= 0 && i < hm && j >= 0 && j < wm) dm[(p * hm + i) * wm + j] += BLUR[ky * 3 + kx] * gy[(p * ho + oy) * wo + ox];
          }
  const dx = new Float64Array(n * c * h * w);
  dm.forEach((g, k) => (dx[argmax[k]] += g));
  return dx;
}

const count = (s: NCHW) => s[0] * s[1] * s[2] * s[3];
const SHAPES: NCHW[] = [
  [2, 5, 7, 9],
  [1, 8, 6, 11],
  [1, 3, 2, 2],
  [1, 12, 13, 4],
];

describe('MaxBlurPool (N2V2)', () => {
  it('has a float64 reference whose adjoint matches central differences', () => {
    const shape: NCHW = [1, 2, 5, 6];
    const x = randomArray(count(shape), 3);
    const { y, shape: out } = maxBlurPoolRef(x, shape);
    const gy = randomArray(count(out), 4);
    const dx = maxBlurPoolBackwardRef(x, shape, gy);
    const objective = (v: Float64Array) => maxBlurPoolRef(v, shape).y.reduce((s, t, i) => s + t * gy[i], 0);
    const numeric = Float64Array.from(x, (_, i) => {
      const [up, down] = [Float64Array.from(x), Float64Array.from(x)];
      up[i] += 1e-6;
      down[i] -= 1e-6;
      return (objective(up) - objective(down)) / 2e-6;
    });
    expect(y.length).toBe(1 * 2 * 2 * 3);
    expect(relL2(dx, numeric)).toBeLessThanOrEqual(1e-6);
  });

  for (const shape of SHAPES) {
    it(`forward equals the reference at ${shape.join('×')} (poisoned buffers)`, async () => {
      const ctx = await getTestContext();
      const x = randomArray(count(shape), 10 + shape[3]);
      const ref = maxBlurPoolRef(x, shape);
      const pool = new MaxBlurPool(shape[1]);
      const [run] = await runGraph([{ shape, data: x }], (g, [t]) => [pool.forward(new ForwardBuilder(ctx, g), t)]);
      pool.release();
      expect(run.outputs[0].length).toBe(ref.y.length);
      expect(relL2(run.outputs[0], ref.y)).toBeLessThanOrEqual(1e-6);
    });
  }

  it('output size is ⌊H/2⌋ × ⌊W/2⌋, as MaxPool2d(2)', async () => {
    const ctx = await getTestContext();
    const g = new Graph();
    const y = new MaxBlurPool(4).forward(new ForwardBuilder(ctx, g), g.input([1, 9, 12, 4]));
    expect(y.shape).toEqual([1, 4, 6, 4]);
  });

  it('rejects a wrong channel count and maps smaller than 2×2', async () => {
    const ctx = await getTestContext();
    const g = new Graph();
    const b = new ForwardBuilder(ctx, g);
    expect(() => new MaxBlurPool(4).forward(b, g.input([1, 8, 8, 3]))).toThrow(/expects 4 channels, got 3/);
    expect(() => new MaxBlurPool(4).forward(b, g.input([1, 1, 8, 4]))).toThrow(InvalidInputError);
  });

  /** conv1×1 (with bias) → MaxBlurPool: the convolution's gradients carry the pool's input gradient. */
  class PooledConv extends Module implements Network {
    readonly architecture = 'PooledConv';
    readonly scale = 1;
    readonly conv: Conv2d;
    private readonly pool: MaxBlurPool;

    constructor(
      readonly inChannels: number,
      readonly outChannels: number,
    ) {
      super();
      this.conv = new Conv2d(inChannels, outChannels, 1, { bias: true });
      this.pool = new MaxBlurPool(outChannels);
    }

    override get supportsTraining(): boolean {
      return true;
    }

    override children(): [string, Module][] {
      return [['conv', this.conv]];
    }

    protected override internals(): Module[] {
      return [this.pool];
    }

    forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
      const label = options.label ?? 'net';
      return this.pool.forward(b, this.conv.forward(b, x, { label: `${label}.conv` }), { label: `${label}.pool` });
    }
  }

  it('trains: one step gives the float64 output and the gradients through the pool', async () => {
    const [n, ci, c, h, w] = [2, 3, 6, 7, 10];
    const model = new PooledConv(ci, c);
    namedParameters(model).forEach(
      ([, p], k) =>
        (p.data = randomArray(
          p.shape.reduce((a, d) => a * d, 1),
          20 + k,
          0.8,
        )),
    );
    const W = model.conv.weight.data!;
    const bias = model.conv.bias!.data!;
    const x = randomArray(n * ci * h * w, 30);
    const u = new Float64Array(n * c * h * w);
    for (let b = 0; b < n; b++)
      for (let o = 0; o < c; o++)
        for (let q = 0; q < h * w; q++) {
          let v = bias[o];
          for (let k = 0; k < ci; k++) v += W[o * ci + k] * x[(b * ci + k) * h * w + q];
          u[(b * c + o) * h * w + q] = v;
        }
    const shape: NCHW = [n, c, h, w];
    const { y, shape: out } = maxBlurPoolRef(u, shape);
    const t = randomArray(count(out), 31);
    const loss = y.reduce((s, v, i) => s + (v - t[i]) ** 2, 0) / y.length;
    const du = maxBlurPoolBackwardRef(
      u,
      shape,
      y.map((v, i) => (2 * (v - t[i])) / y.length),
    );
    const dW = new Float64Array(W.length);
    const dBias = new Float64Array(c);
    for (let b = 0; b < n; b++)
      for (let o = 0; o < c; o++)
        for (let q = 0; q < h * w; q++) {
          const d = du[(b * c + o) * h * w + q];
          dBias[o] += d;
          for (let k = 0; k < ci; k++) dW[o * ci + k] += d * x[(b * ci + k) * h * w + q];
        }

    const trainer = await Trainer.create(await getTestContext(), model, {
      batchShape: [n, ci, h, w],
      loss: { kind: 'mse' },
      optimizer: { kind: 'sgd', lr: 0.01 },
      returnOutput: true,
    });
    try {
      const r = await trainer.step({ input: x, target: t });
      expect(Math.abs(r.loss - loss) / loss).toBeLessThanOrEqual(1e-5);
      expect(relL2(r.output!, y)).toBeLessThanOrEqual(1e-5);
      const grads = await trainer.gradients();
      expect(relL2(grads.get('conv.weight')!, dW)).toBeLessThanOrEqual(1e-4);
      expect(relL2(grads.get('conv.bias')!, dBias)).toBeLessThanOrEqual(1e-4);
    } finally {
      trainer.dispose();
      model.release();
    }
  });
});
