import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { BufferUsage } from '../../src/gpu/flags';
import { Graph, type TensorValue } from '../../src/gpu/graph';
import { CBAM } from '../../src/layers/cbam';
import type { ForwardBuilder } from '../../src/layers/forward-builder';
import { Module, namedParameters } from '../../src/layers/module';
import type { Network } from '../../src/models/network';
import { Trainer } from '../../src/training/trainer';
import { globalAvgMaxPool } from '../../src/kernels/cbam';
import {
  avgMaxPoolBackward,
  type CbamMlpBindings,
  cbamMlpBackward,
  cbamMlpGate,
  cbamMlpHidden,
  channelGateBackward,
  channelGateMul,
  channelMeanMaxBackward,
  PIXEL_CHUNK,
  pixelGateBackward,
  pixelGateMul,
} from '../../src/kernels/cbam-backward';
import { channelMeanMax } from '../../src/kernels/channel-mean-max';
import { binary } from '../../src/kernels/elementwise';
import { getTestContext, readWhole } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';
import type { NCHW } from '../helpers/reference-spatial';
import { runGraph } from '../helpers/run-graph';

// ---------------------------------------------------------------------------------------------------------------
// Float64 references (NCHW) of CBAM as tools/torch/nets/sinsr.py writes it, differentiated by central differences
// ---------------------------------------------------------------------------------------------------------------

interface Mlp {
  w1: Float64Array;
  b1: Float64Array;
  w2: Float64Array;
  b2: Float64Array;
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** x·σ(mlp(x.mean((2,3))) + mlp(x.amax((2,3)))) per channel. */
function channelBranch(x: Float64Array, [n, c, h, w]: NCHW, m: Mlp, hidden: number): Float64Array {
  const hw = h * w;
  const y = new Float64Array(x.length);
  for (let b = 0; b < n; b++) {
    const rows = [new Float64Array(c), new Float64Array(c)];
    for (let ch = 0; ch < c; ch++) {
      let s = 0;
      let mx = -Infinity;
      for (let p = 0; p < hw; p++) {
        const v = x[(b * c + ch) * hw + p];
        s += v;
        mx = Math.max(mx, v);
      }
      rows[0][ch] = s / hw;
      rows[1][ch] = mx;
    }
    const z = new Float64Array(c);
    for (const row of rows) {
      const hid = Array.from({ length: hidden }, (_, j) => {
        let s = m.b1[j];
        for (let ch = 0; ch < c; ch++) s += m.w1[j * c + ch] * row[ch];
        return Math.max(s, 0);
      });
      for (let ch = 0; ch < c; ch++) {
        let s = m.b2[ch];
        for (let j = 0; j < hidden; j++) s += m.w2[ch * hidden + j] * hid[j];
        z[ch] += s;
      }
    }
    for (let ch = 0; ch < c; ch++) for (let p = 0; p < hw; p++) y[(b * c + ch) * hw + p] = x[(b * c + ch) * hw + p] * sigmoid(z[ch]);
  }
  return y;
}

/** Σ g·(xc·s) + Σ_pixels (dm·xc.mean(1) + dM·xc.amax(1)): the spatial branch against fixed upstream gradients. */
function spatialObjective(xc: Float64Array, s: Float64Array, g: Float64Array, dmm: Float64Array, [n, c, h, w]: NCHW): number {
  const hw = h * w;
  let total = 0;
  for (let b = 0; b < n; b++) {
    for (let p = 0; p < hw; p++) {
      let sum = 0;
      let mx = -Infinity;
      for (let ch = 0; ch < c; ch++) {
        const v = xc[(b * c + ch) * hw + p];
        total += g[(b * c + ch) * hw + p] * v * s[b * hw + p];
        sum += v;
        mx = Math.max(mx, v);
      }
      total += dmm[b * 2 * hw + p] * (sum / c) + dmm[(b * 2 + 1) * hw + p] * mx;
    }
  }
  return total;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((t, v, i) => t + v * b[i], 0);

/** Central differences of `f` with respect to every element of `v` (changed in place and restored). */
function numericGrad(v: Float64Array, f: () => number): Float64Array {
  const out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const keep = v[i];
    const step = 1e-6 * Math.max(1, Math.abs(keep));
    v[i] = keep + step;
    const up = f();
    v[i] = keep - step;
    const down = f();
    v[i] = keep;
    out[i] = (up - down) / (2 * step);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// GPU helpers
// ---------------------------------------------------------------------------------------------------------------

const padded4 = (v: ArrayLike<number>) => {
  const out = new Float32Array(Math.ceil(v.length / 4) * 4);
  out.set(Array.from(v));
  return out;
};

async function mlpBuffers(m: Mlp): Promise<{ params: CbamMlpBindings; grads: Record<keyof Mlp, GPUBuffer> }> {
  const ctx = await getTestContext();
  const up = (v: Float64Array, what: string) => ctx.createBufferWithData(padded4(v), BufferUsage.STORAGE, what);
  const poisoned = (v: Float64Array, what: string) =>
    ctx.createBufferWithData(padded4(new Float64Array(v.length).fill(NaN)), BufferUsage.STORAGE | BufferUsage.COPY_SRC, what);
  return {
    params: { w1: up(m.w1, 'w1'), b1: up(m.b1, 'b1'), w2: up(m.w2, 'w2'), b2: up(m.b2, 'b2') },
    grads: { w1: poisoned(m.w1, 'dw1'), b1: poisoned(m.b1, 'db1'), w2: poisoned(m.w2, 'dw2'), b2: poisoned(m.b2, 'db2') },
  };
}

function randomMlp(c: number, hidden: number, seed: number): Mlp {
  return {
    w1: randomArray(hidden * c, seed, 0.8),
    b1: randomArray(hidden, seed + 1, 0.3),
    w2: randomArray(c * hidden, seed + 2, 0.8),
    b2: randomArray(c, seed + 3, 0.3),
  };
}

// ---------------------------------------------------------------------------------------------------------------

describe('CBAM channel attention backward (pool, shared MLP, sigmoid gate)', () => {
  const cases: { shape: NCHW; hidden: number }[] = [
    { shape: [2, 6, 5, 7], hidden: 3 },
    // more pixels than one split-K chunk, odd channel count
    { shape: [1, 5, 13, 11], hidden: 2 },
  ];
  for (const { shape, hidden } of cases) {
    it(`${shape.join('×')} hidden ${hidden} matches float64 central differences`, async () => {
      const [n, c, h, w] = shape;
      if (shape === cases[1].shape) expect(h * w).toBeGreaterThan(PIXEL_CHUNK);
      const x = randomArray(n * c * h * w, 11 + c);
      const g = randomArray(x.length, 29 + c);
      const m = randomMlp(c, hidden, 41 + c);
      const objective = () => dot(channelBranch(x, shape, m, hidden), g);
      const ref = {
        y: channelBranch(x, shape, m, hidden),
        dx: numericGrad(x, objective),
        w1: numericGrad(m.w1, objective),
        b1: numericGrad(m.b1, objective),
        w2: numericGrad(m.w2, objective),
        b2: numericGrad(m.b2, objective),
      };
      const { params, grads } = await mlpBuffers(m);
      const runs = await runGraph(
        [
          { shape, data: x },
          { shape, data: g },
        ],
        (graph, [xt, gt]) => {
          const pooled = globalAvgMaxPool(graph, xt, 'pool');
          const hid = cbamMlpHidden(graph, pooled, params, hidden, 'mlp');
          const gate = cbamMlpGate(graph, hid, params, c, 'mlp');
          const y = channelGateMul(graph, xt, gate, 'xc');
          const { dx: dxGate, dGate } = channelGateBackward(graph, gt, xt, gate, 'xc backward');
          const dPooled = cbamMlpBackward(graph, dGate, gate, hid, pooled, params, grads, 'mlp backward');
          const dxPool = avgMaxPoolBackward(graph, dPooled, xt, pooled, 'pool backward');
          return [y, binary(graph, 'add', dxGate, dxPool, 'dx')];
        },
        2,
      );
      const [yGpu, dxGpu] = runs[0].outputs;
      expect(relL2(yGpu, ref.y)).toBeLessThanOrEqual(1e-6);
      expect(relL2(dxGpu, ref.dx)).toBeLessThanOrEqual(1e-5);
      const ctx = await getTestContext();
      for (const k of ['w1', 'b1', 'w2', 'b2'] as const) {
        const got = (await readWhole(ctx, grads[k])).subarray(0, ref[k].length);
        expect(relL2(got, ref[k]), `d${k}`).toBeLessThanOrEqual(1e-4);
      }
      // Deterministic: the second run (on poisoned buffers again) is bitwise the first.
      runs[1].raw.forEach((o, i) => expect(Array.from(o)).toEqual(Array.from(runs[0].raw[i])));
      for (const b of [...Object.values(params), ...Object.values(grads)]) (b as GPUBuffer).destroy();
    });
  }

  it('splits the max gradient evenly among tied maxima (torch.amax)', async () => {
    const shape: NCHW = [1, 1, 2, 3];
    // pixels 1 and 4 hold the maximum 3; the mean's gradient is g/6 everywhere
    const x = Float64Array.from([1, 3, 2, 0, 3, -1]);
    const dPooled = [0.6, 0.9]; // [d mean, d max] of the single channel
    const out = await runGraph(
      [
        { shape, data: x },
        { shape: [1, 1, 1, 2], data: dPooled },
      ],
      (graph, [xt, dp]) => [avgMaxPoolBackward(graph, dp, xt, globalAvgMaxPool(graph, xt, 'pool'), 'pool backward')],
    );
    const expected = Array.from(x, (v) => 0.6 / 6 + (v === 3 ? 0.9 / 2 : 0));
    out[0].outputs[0].forEach((v, i) => expect(Math.abs(v - expected[i]), `pixel ${i}`).toBeLessThanOrEqual(1e-7));
  });
});

describe('CBAM spatial attention backward (channel mean/max, per-pixel gate)', () => {
  it.each([[[2, 7, 3, 5] as NCHW], [[1, 4, 5, 3] as NCHW]])('%j matches float64 central differences', async (shape) => {
    const [n, c, h, w] = shape;
    const xc = randomArray(n * c * h * w, 5 + c);
    const s = Float64Array.from(randomArray(n * h * w, 7 + c), (v) => 0.5 + 0.4 * v);
    const g = randomArray(xc.length, 13 + c);
    const dmm = randomArray(n * 2 * h * w, 17 + c);
    const objective = () => spatialObjective(xc, s, g, dmm, shape);
    const ref = { dxc: numericGrad(xc, objective), ds: numericGrad(s, objective) };
    const yRef = Float64Array.from(xc, (v, i) => v * s[Math.floor(i / (c * h * w)) * h * w + (i % (h * w))]);
    const runs = await runGraph(
      [
        { shape, data: xc },
        { shape: [n, 1, h, w], data: s },
        { shape, data: g },
        { shape: [n, 2, h, w], data: dmm },
      ],
      (graph, [xt, st, gt, dt]) => {
        const y = pixelGateMul(graph, xt, st, 'out');
        const mm = channelMeanMax(graph, xt, 'mean_max');
        const { dx, dGate } = pixelGateBackward(graph, gt, xt, st, 'out backward');
        const dxMm = channelMeanMaxBackward(graph, dt, xt, 'mean_max backward');
        return [y, mm, binary(graph, 'add', dx, dxMm, 'dxc'), dGate];
      },
      2,
    );
    const [y, , dxc, ds] = runs[0].outputs;
    expect(relL2(y, yRef)).toBeLessThanOrEqual(1e-6);
    expect(relL2(dxc, ref.dxc)).toBeLessThanOrEqual(1e-5);
    expect(relL2(ds, ref.ds)).toBeLessThanOrEqual(1e-5);
    runs[1].raw.forEach((o, i) => expect(Array.from(o)).toEqual(Array.from(runs[0].raw[i])));
  });

  it('splits the channel max gradient evenly among tied channels', async () => {
    const shape: NCHW = [1, 5, 1, 1];
    const x = Float64Array.from([2, -1, 2, 0.5, 2]);
    const d = [0.5, 0.3];
    const out = await runGraph(
      [
        { shape, data: x },
        { shape: [1, 2, 1, 1], data: d },
      ],
      (graph, [xt, dt]) => [channelMeanMaxBackward(graph, dt, xt, 'mean_max backward')],
    );
    const expected = Array.from(x, (v) => 0.5 / 5 + (v === 2 ? 0.3 / 3 : 0));
    out[0].outputs[0].forEach((v, i) => expect(Math.abs(v - expected[i]), `channel ${i}`).toBeLessThanOrEqual(1e-7));
  });
});

describe('CBAM training kernels refuse bad inputs', () => {
  it('names the mismatched gate and the short parameter range', async () => {
    const graph = new Graph();
    const x = graph.input([1, 4, 4, 6], 'x');
    expect(() => channelGateMul(graph, x, graph.input([1, 1, 1, 5], 'gate'), 'xc')).toThrow(InvalidInputError);
    expect(() => channelGateMul(graph, x, graph.input([1, 1, 1, 5], 'gate'), 'xc')).toThrow(/channel gate is \[1, 1, 1, 5\]/);
    expect(() => pixelGateMul(graph, x, graph.input([1, 4, 3, 1], 'gate'), 'out')).toThrow(/pixel gate/);
    const ctx = await getTestContext();
    const small = ctx.createBufferWithData(new Float32Array(4), BufferUsage.STORAGE, 'small');
    const pooled = graph.input([1, 1, 2, 6], 'pooled');
    expect(() => cbamMlpHidden(graph, pooled, { w1: small, b1: small, w2: small, b2: small }, 3, 'mlp')).toThrow(
      /w1 spans 16 bytes, expected 72/,
    );
    small.destroy();
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The CBAM module in a training graph (src/layers/cbam-training.ts), through the trainer
// ---------------------------------------------------------------------------------------------------------------

/** The whole CBAM (channel branch, then σ(conv7×7([mean_c, amax_c])) with the [1, 2, 7, 7] weight), float64. */
function cbamReference(x: Float64Array, shape: NCHW, m: Mlp, hidden: number, conv: Float64Array): Float64Array {
  const [n, c, h, w] = shape;
  const xc = channelBranch(x, shape, m, hidden);
  const hw = h * w;
  const out = new Float64Array(x.length);
  for (let b = 0; b < n; b++) {
    const maps = [new Float64Array(hw), new Float64Array(hw)];
    for (let p = 0; p < hw; p++) {
      let s = 0;
      let mx = -Infinity;
      for (let ch = 0; ch < c; ch++) {
        s += xc[(b * c + ch) * hw + p];
        mx = Math.max(mx, xc[(b * c + ch) * hw + p]);
      }
      maps[0][p] = s / c;
      maps[1][p] = mx;
    }
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        let z = 0;
        for (let k = 0; k < 2; k++) {
          for (let ky = 0; ky < 7; ky++) {
            for (let kx = 0; kx < 7; kx++) {
              const iy = y + ky - 3;
              const ix = xx + kx - 3;
              if (iy >= 0 && iy < h && ix >= 0 && ix < w) z += conv[(k * 7 + ky) * 7 + kx] * maps[k][iy * w + ix];
            }
          }
        }
        const s = sigmoid(z);
        for (let ch = 0; ch < c; ch++) out[(b * c + ch) * hw + y * w + xx] = xc[(b * c + ch) * hw + y * w + xx] * s;
      }
    }
  }
  return out;
}

class CbamNet extends Module implements Network {
  readonly architecture = 'CbamNet';
  readonly scale = 1;
  readonly cbam: CBAM;
  constructor(
    readonly inChannels: number,
    reduction: number,
  ) {
    super();
    this.cbam = new CBAM(inChannels, reduction);
  }
  get outChannels(): number {
    return this.inChannels;
  }
  override get supportsTraining(): boolean {
    return true;
  }
  override children(): [string, Module][] {
    return [['cbam', this.cbam]];
  }
  forward(b: ForwardBuilder, x: TensorValue): TensorValue {
    return this.cbam.forward(b, x, { label: 'cbam' });
  }
}

describe('CBAM trains', () => {
  it('its parameter gradients under MSE equal float64 central differences', async () => {
    const shape: NCHW = [2, 6, 5, 7];
    const [n, c, h, w] = shape;
    const hidden = 3;
    const x = randomArray(n * c * h * w, 3);
    const target = randomArray(x.length, 4, 0.5);
    const m = randomMlp(c, hidden, 5);
    const conv = randomArray(2 * 49, 6, 0.3);
    const loss = () => cbamReference(x, shape, m, hidden, conv).reduce((t, v, i) => t + (v - target[i]) ** 2, 0) / x.length;
    const ref: Record<string, Float64Array> = {
      'cbam.channel_mlp.0.weight': numericGrad(m.w1, loss),
      'cbam.channel_mlp.0.bias': numericGrad(m.b1, loss),
      'cbam.channel_mlp.2.weight': numericGrad(m.w2, loss),
      'cbam.channel_mlp.2.bias': numericGrad(m.b2, loss),
      'cbam.spatial_conv.weight': numericGrad(conv, loss),
    };
    const net = new CbamNet(c, 2);
    const values: Record<string, Float64Array> = {
      'cbam.channel_mlp.0.weight': m.w1,
      'cbam.channel_mlp.0.bias': m.b1,
      'cbam.channel_mlp.2.weight': m.w2,
      'cbam.channel_mlp.2.bias': m.b2,
      'cbam.spatial_conv.weight': conv,
    };
    for (const [name, p] of namedParameters(net)) p.data = Float64Array.from(values[name]);
    const trainer = await Trainer.create(await getTestContext(), net, {
      batchShape: shape,
      loss: { kind: 'mse' },
      optimizer: { kind: 'sgd', lr: 0, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false },
    });
    try {
      const r = await trainer.step({ input: x, target });
      expect(Math.abs(r.loss - loss()) / loss()).toBeLessThanOrEqual(1e-5);
      const grads = await trainer.gradients();
      for (const [name, g] of Object.entries(ref)) expect(relL2(grads.get(name)!.subarray(0, g.length), g), name).toBeLessThanOrEqual(1e-4);
    } finally {
      trainer.dispose();
    }
  });
});
