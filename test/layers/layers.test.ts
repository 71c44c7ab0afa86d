import { describe, expect, it } from 'vitest';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, type Shape4 } from '../../src/gpu/tensor';
import { LayerNorm } from '../../src/layers/layernorm';
import { Linear } from '../../src/layers/linear';
import { loadStateDict } from '../../src/layers/module';
import type { StateDict } from '../../src/weights/state-dict';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';
import { layerNormRef } from '../helpers/reference-norm';

/** A state_dict as PyTorch would name it, so the test also checks the layers' parameter names and shapes. */
function stateDict(entries: Record<string, [number[], Float64Array]>): StateDict {
  const sd: StateDict = new Map();
  for (const [k, [shape, data]] of Object.entries(entries)) sd.set(k, { dtype: 'float64', shape, data });
  return sd;
}

async function runLayer(
  build: (g: Graph, x: ReturnType<Graph['input']>) => ReturnType<Graph['input']>,
  x: Float64Array,
  shape: Shape4,
): Promise<Float32Array> {
  const ctx = await getTestContext();
  const g = new Graph();
  const input = g.input(shape);
  const y = build(g, input);
  g.output(y);
  const plan = await Plan.compile(ctx, g);
  plan.poison();
  const out = (await plan.run([nchwToNhwcPadded(x, shape)])).outputs[0];
  plan.dispose();
  return nhwcPaddedToNchw(out, y.shape);
}

describe('layers with PyTorch parameter names', () => {
  it('Linear(13, 7) on every pixel equals x·Wᵀ + b', async () => {
    const ctx = await getTestContext();
    const [n, h, w, cin, cout] = [2, 3, 5, 13, 7];
    const weight = randomArray(cout * cin, 1);
    const bias = randomArray(cout, 2);
    const layer = new Linear(cin, cout);
    loadStateDict(layer, stateDict({ weight: [[cout, cin], weight], bias: [[cout], bias] }));
    const x = randomArray(n * cin * h * w, 3);
    const y = await runLayer((g, t) => layer.forward(ctx, g, t), x, [n, h, w, cin]);
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
    const y = await runLayer((g, t) => layer.forward(ctx, g, t), x, [n, h, w, c]);
    expect(relL2(y, layerNormRef(x, [n, c, h, w], weight, bias, 1e-5))).toBeLessThanOrEqual(1e-5);
    layer.release();
  });

  it('reject the wrong channel count by name', async () => {
    const ctx = await getTestContext();
    const layer = new LayerNorm(8);
    loadStateDict(layer, stateDict({ weight: [[8], new Float64Array(8)], bias: [[8], new Float64Array(8)] }));
    const g = new Graph();
    expect(() => layer.forward(ctx, g, g.input([1, 2, 2, 6]), 'norm1')).toThrow(/norm1: LayerNorm\(8\) got 6 channels/);
  });
});
