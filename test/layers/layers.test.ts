import { describe, expect, it } from 'vitest';
import { Graph } from '../../src/gpu/graph';
import { LayerNorm } from '../../src/layers/layernorm';
import { Linear } from '../../src/layers/linear';
import { loadStateDict } from '../../src/layers/module';
import type { StateDict } from '../../src/weights/state-dict';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';
import { layerNormRef } from '../helpers/reference-norm';
import {
  bilinearRef,
  maxPool2dRef,
  nearestRef,
  pixelShuffleRef,
  pixelUnshuffleRef,
  globalAvgPoolRef,
  runSpatial,
} from '../helpers/reference-spatial';
import { AdaptiveAvgPool2d, MaxPool2d, PixelShuffle, PixelUnshuffle, Upsample } from '../../src/layers/spatial';
import { BatchNorm2d } from '../../src/layers/batchnorm';
import { CBAM } from '../../src/layers/cbam';
import { ConvTranspose2d } from '../../src/layers/conv-transpose2d';
import { ForwardBuilder } from '../../src/layers/forward-builder';

/** A state_dict as PyTorch would name it, so the test also checks the layers' parameter names and shapes. */
function stateDict(entries: Record<string, [number[], Float64Array]>): StateDict {
  const sd: StateDict = new Map();
  for (const [k, [shape, data]] of Object.entries(entries)) sd.set(k, { dtype: 'float64', shape, data });
  return sd;
}

describe('layers with PyTorch parameter names', () => {
  it('standalone BatchNorm2d(6, eps=1e-4) with a fused ReLU equals relu((x−μ)/√(σ²+ε)·γ+β)', async () => {
    const ctx = await getTestContext();
    const [n, c, h, w] = [1, 6, 5, 7];
    const gamma = randomArray(c, 11);
    const beta = randomArray(c, 12);
    const mean = randomArray(c, 13, 0.3);
    const variance = Float64Array.from(randomArray(c, 14), (v) => 0.6 + 0.5 * v);
    const bn = new BatchNorm2d(c, 1e-4);
    loadStateDict(bn, stateDict({ weight: [[c], gamma], bias: [[c], beta], running_mean: [[c], mean], running_var: [[c], variance] }));
    const x = randomArray(n * c * h * w, 15);
    const { y } = await runSpatial(x, [n, c, h, w], (g, t) =>
      bn.forward(new ForwardBuilder(ctx, g), t, { epilogue: { activation: { kind: 'relu' } } }),
    );
    const ref = x.map((v, i) => {
      const ch = Math.floor(i / (h * w)) % c;
      return Math.max(0, ((v - mean[ch]) / Math.sqrt(variance[ch] + 1e-4)) * gamma[ch] + beta[ch]);
    });
    bn.release();
    expect(relL2(y, ref)).toBeLessThanOrEqual(1e-5);
  });

  it('Linear(13, 7) on every pixel equals x·Wᵀ + b', async () => {
    const ctx = await getTestContext();
    const [n, h, w, cin, cout] = [2, 3, 5, 13, 7];
    const weight = randomArray(cout * cin, 1);
    const bias = randomArray(cout, 2);
    const layer = new Linear(cin, cout);
    loadStateDict(layer, stateDict({ weight: [[cout, cin], weight], bias: [[cout], bias] }));
    const x = randomArray(n * cin * h * w, 3);
    const { y } = await runSpatial(x, [n, cin, h, w], (g, t) => layer.forward(new ForwardBuilder(ctx, g), t));
    const ref = new Float64Array(n * cout * h * w);
    for (let b = 0; b < n; b++)
      for (let o = 0; o < cout; o++)
        for (let p = 0; p < h * w; p++) {
          let s = bias[o];
          for (let i = 0; i < cin; i++) s += weight[o * cin + i] * x[(b * cin + i) * h * w + p];
          ref[(b * cout + o) * h * w + p] = s;
        }
    expect(relL2(y, ref)).toBeLessThanOrEqual(1e-5);
    layer.release();
  });

  it('LayerNorm(6) over channels', async () => {
    const ctx = await getTestContext();
    const [n, h, w, c] = [1, 4, 7, 6];
    const weight = randomArray(c, 4);
    const bias = randomArray(c, 5);
    const layer = new LayerNorm(c);
    loadStateDict(layer, stateDict({ weight: [[c], weight], bias: [[c], bias] }));
    const x = randomArray(n * c * h * w, 6, 3);
    const { y } = await runSpatial(x, [n, c, h, w], (g, t) => layer.forward(new ForwardBuilder(ctx, g), t));
    expect(relL2(y, layerNormRef(x, [n, c, h, w], weight, bias, 1e-5))).toBeLessThanOrEqual(1e-5);
    layer.release();
  });

  it('reject the wrong channel count by name', async () => {
    const ctx = await getTestContext();
    const layer = new LayerNorm(8);
    loadStateDict(layer, stateDict({ weight: [[8], new Float64Array(8)], bias: [[8], new Float64Array(8)] }));
    const g = new Graph();
    expect(() => layer.forward(new ForwardBuilder(ctx, g), g.input([1, 2, 2, 6]), { label: 'norm1' })).toThrow(
      /norm1: LayerNorm\(8\) got 6 channels/,
    );
  });

  it('refuse fusion options they cannot apply, by name, before any dispatch', async () => {
    const ctx = await getTestContext();
    const g = new Graph();
    const b = new ForwardBuilder(ctx, g);
    const x = g.input([1, 4, 4, 8]);
    const slice = { tensor: g.input([1, 4, 4, 16]), channelOffset: 8 };
    const norm = new LayerNorm(8);
    expect(() => norm.forward(b, x, { label: 'ln', epilogue: { activation: { kind: 'relu' } } })).toThrow(
      /ln: LayerNorm cannot fuse an epilogue/,
    );
    expect(() => norm.forward(b, x, { label: 'ln', output: slice })).toThrow(/ln: LayerNorm cannot write into a channel slice/);
    const residual = { tensor: x, mode: 'afterActivation' as const };
    expect(() => new BatchNorm2d(8).forward(b, x, { label: 'bn', epilogue: { residual } })).toThrow(
      /bn: BatchNorm2d fuses only activation \(not residual\)/,
    );
    expect(() => new BatchNorm2d(8).forward(b, x, { label: 'bn', output: slice })).toThrow(
      /bn: BatchNorm2d cannot write into a channel slice/,
    );
    expect(() => new ConvTranspose2d(8, 4, 2, { stride: 2 }).forward(b, x, { label: 'up', epilogue: { scale: 2 } })).toThrow(
      /up: ConvTranspose2d fuses only activation \(not scale\)/,
    );
    expect(() => new CBAM(8, 2).forward(b, x, { label: 'cbam', epilogue: { residual: { tensor: x, mode: 'beforeActivation' } } })).toThrow(
      /cbam: CBAM adds a residual only after the gating/,
    );
    expect(g.nodes).toEqual([]);
  });

  it('parameter-free modules dispatch the matching kernels', async () => {
    const ctx = await getTestContext();
    const shape: [number, number, number, number] = [1, 8, 6, 10];
    const x = randomArray(8 * 6 * 10, 7);
    const cases: [string, { forward: typeof MaxPool2d.prototype.forward }, { y: Float64Array }][] = [
      ['MaxPool2d(2)', new MaxPool2d({ kernel: 2 }), maxPool2dRef(x, shape, [2, 2], [2, 2], [0, 0])],
      ['AdaptiveAvgPool2d(1)', new AdaptiveAvgPool2d(), globalAvgPoolRef(x, shape)],
      ['Upsample(2, nearest)', new Upsample({ mode: 'nearest', scaleFactor: 2 }), nearestRef(x, shape, 12, 20)],
      [
        'Upsample(2, bilinear, align_corners)',
        new Upsample({ mode: 'bilinear', scaleFactor: 2, alignCorners: true }),
        bilinearRef(x, shape, 12, 20, true),
      ],
      ['PixelShuffle(2)', new PixelShuffle(2), pixelShuffleRef(x, shape, 2)],
      ['PixelUnshuffle(2)', new PixelUnshuffle(2), pixelUnshuffleRef(x, shape, 2)],
    ];
    for (const [name, module, ref] of cases) {
      const { y } = await runSpatial(x, shape, (g, t) => module.forward(new ForwardBuilder(ctx, g), t));
      expect(relL2(y, ref.y), name).toBeLessThanOrEqual(1e-5);
    }
  });
});
