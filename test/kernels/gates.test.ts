import { describe, expect, it } from 'vitest';
import { BufferUsage } from '../../src/gpu/flags';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, type Shape4 } from '../../src/gpu/tensor';
import { applyGates, channelGate, packGateWeights, type SCSEWeights, scse } from '../../src/kernels/gates';
import { readFixtureJson } from '../helpers/fixture-loader';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';
import { scseRef, toF32 } from '../helpers/reference-norm';

function randomWeights(c: number, hidden: number, seed: number, spatial: boolean): SCSEWeights {
  const w: SCSEWeights = {
    cse1Weight: { data: toF32(randomArray(hidden * c, seed, 2 / Math.sqrt(c))), shape: [hidden, c, 1, 1] },
    cse1Bias: { data: toF32(randomArray(hidden, seed + 1, 0.5)), shape: [hidden] },
    cse2Weight: { data: toF32(randomArray(c * hidden, seed + 2, 2 / Math.sqrt(hidden))), shape: [c, hidden, 1, 1] },
    cse2Bias: { data: toF32(randomArray(c, seed + 3, 0.5)), shape: [c] },
  };
  if (spatial) {
    w.sseWeight = { data: toF32(randomArray(c, seed + 4, 2 / Math.sqrt(c))), shape: [1, c, 1, 1] };
    w.sseBias = { data: toF32(randomArray(1, seed + 5, 0.5)), shape: [1] };
  }
  return w;
}

/** Runs SCSE/SE on NCHW `x`; returns NCHW output and the gate vector after checking the padding. */
async function runGates(
  x: ArrayLike<number>,
  shape: Shape4,
  weights: SCSEWeights,
  spatial: boolean,
): Promise<{ y: Float32Array; gate: Float32Array }> {
  const ctx = await getTestContext();
  const packed = packGateWeights(weights);
  const cg = ctx.createBufferWithData(packed.channelGate, BufferUsage.STORAGE, 'cse weights');
  const sg = packed.spatialGate ? ctx.createBufferWithData(packed.spatialGate, BufferUsage.STORAGE, 'sse weights') : undefined;
  const g = new Graph();
  const input = g.input(shape);
  const gate = channelGate(g, input, { weights: cg, hidden: packed.hidden, label: 'att' });
  const y = applyGates(g, input, gate, { spatialGate: spatial ? sg : undefined, label: 'att' });
  g.output(y);
  g.output(gate);
  const plan = await Plan.compile(ctx, g);
  plan.poison();
  const { outputs } = await plan.run([nchwToNhwcPadded(x, shape)]);
  plan.dispose();
  cg.destroy();
  sg?.destroy();
  const c = shape[3];
  const cp = Math.ceil(c / 4) * 4;
  for (const out of outputs) {
    out.forEach((v, i) => {
      if (i % cp >= c && v !== 0) throw new Error(`padded channel ${i % cp} holds ${v}`);
    });
  }
  return { y: nhwcPaddedToNchw(outputs[0], shape), gate: nhwcPaddedToNchw(outputs[1], [shape[0], 1, 1, c]) };
}

function reference(x: ArrayLike<number>, shape: Shape4, w: SCSEWeights, spatial: boolean): Float64Array {
  const [n, h, wd, c] = shape;
  const sse = spatial && w.sseWeight && w.sseBias ? { weight: w.sseWeight.data, bias: w.sseBias.data[0] } : undefined;
  return scseRef(x, [n, c, h, wd], w.cse1Weight.data, w.cse1Bias.data, w.cse2Weight.data, w.cse2Bias.data, sse);
}

describe('SCSE / SE gates against a float64 reference', () => {
  const cases: Array<[Shape4, number, boolean]> = [
    [[1, 1, 1, 1], 1, true],
    [[1, 5, 7, 3], 1, true],
    [[2, 5, 3, 20], 5, true],
    [[1, 4, 7, 48], 3, true],
    [[1, 40, 37, 3], 2, true], // many pixels: many pooling slices
    [[2, 3, 5, 13], 2, false],
    [[1, 6, 5, 64], 4, false],
    [[1, 3, 5, 768], 48, true], // smp r34 decoder block 0 attention1
    [[2, 1, 1, 512], 32, true],
    [[1, 2, 3, 6], 3, false],
  ];
  cases.forEach(([shape, hidden, spatial], i) => {
    it(`${spatial ? 'SCSE' : 'SE'} ${shape.join('x')} hidden ${hidden}`, async () => {
      const [n, h, w, c] = shape;
      const x = toF32(randomArray(n * c * h * w, 900 + i, 1.5));
      const weights = randomWeights(c, hidden, 1000 + 10 * i, spatial);
      const { y } = await runGates(x, shape, weights, spatial);
      expect(relL2(y, reference(x, shape, weights, spatial))).toBeLessThanOrEqual(1e-5);
    });
  });

  it('the gate vector alone (SE of an all-ones input) is cSE', async () => {
    const shape: Shape4 = [2, 3, 4, 7];
    // batch 0: ones (its SE output is cSE itself); batch 1: random
    const x = new Float64Array(2 * 7 * 3 * 4).fill(1);
    x.set(toF32(randomArray(7 * 12, 55)), 7 * 12);
    const weights = randomWeights(7, 2, 2000, false);
    const { gate } = await runGates(x, shape, weights, false);
    const ones = reference(new Float64Array(7 * 12).fill(1), [1, 3, 4, 7], weights, false);
    const expected0 = Array.from({ length: 7 }, (_, ch) => ones[ch * 12]);
    expect(relL2(gate.slice(0, 7), expected0)).toBeLessThanOrEqual(1e-6);
  });

  it('scse() builds both dispatches; SE via spatial: false', async () => {
    const ctx = await getTestContext();
    const shape: Shape4 = [1, 3, 3, 5];
    const weights = randomWeights(5, 2, 3000, true);
    const x = toF32(randomArray(45, 66));
    const packed = packGateWeights(weights);
    const cg = ctx.createBufferWithData(packed.channelGate, BufferUsage.STORAGE, 'cse');
    const sg = ctx.createBufferWithData(packed.spatialGate as Float32Array, BufferUsage.STORAGE, 'sse');
    const g = new Graph();
    const input = g.input(shape);
    const a = scse(g, input, { channelGate: cg, spatialGate: sg, hidden: packed.hidden, label: 'scse' });
    const b = scse(g, input, { channelGate: cg, hidden: packed.hidden, spatial: false, label: 'se' });
    g.output(a);
    g.output(b);
    expect(g.nodes.length).toBe(4);
    const plan = await Plan.compile(ctx, g);
    plan.poison();
    const { outputs } = await plan.run([nchwToNhwcPadded(x, shape)]);
    plan.dispose();
    cg.destroy();
    sg.destroy();
    expect(relL2(nhwcPaddedToNchw(outputs[0], shape), reference(x, shape, weights, true))).toBeLessThanOrEqual(1e-5);
    expect(relL2(nhwcPaddedToNchw(outputs[1], shape), reference(x, shape, weights, false))).toBeLessThanOrEqual(1e-5);
  });

  for (const name of ['scse_c20_r4', 'scse_c48_r16']) {
    it(`matches the PyTorch SCSEModule fixture ${name}`, async () => {
      const f = await readFixtureJson(`test/fixtures/norm/${name}.json`);
      const [n, c, h, w] = f.inputShape as number[];
      const p = f.params;
      const weights: SCSEWeights = {
        cse1Weight: p['cSE.1.weight'],
        cse1Bias: p['cSE.1.bias'],
        cse2Weight: p['cSE.3.weight'],
        cse2Bias: p['cSE.3.bias'],
        sseWeight: p['sSE.0.weight'],
        sseBias: p['sSE.0.bias'],
      };
      const { y } = await runGates(f.input, [n, h, w, c], weights, true);
      expect(relL2(y, f.output)).toBeLessThanOrEqual(1e-5);
    });
  }

  it('rejects bad shapes and parameters', async () => {
    const w = randomWeights(8, 2, 4000, true);
    expect(() => packGateWeights({ ...w, cse2Weight: { data: new Float32Array(16), shape: [8, 3, 1, 1] } })).toThrow(
      /cSE\.3\.weight has shape \[8, 3, 1, 1\], expected \[8, 2, 1, 1\]/,
    );
    expect(() => packGateWeights({ ...w, cse1Bias: { data: new Float32Array(3), shape: [3] } })).toThrow(
      /cSE\.1\.bias has shape \[3\], expected \[2\]/,
    );
    expect(() => packGateWeights({ ...w, sseBias: undefined })).toThrow(/sSE\.0 needs both weight and bias/);
    const ctx = await getTestContext();
    const packed = packGateWeights(w);
    const cg = ctx.createBufferWithData(packed.channelGate, BufferUsage.STORAGE, 'cse');
    const g = new Graph();
    const input = g.input([1, 4, 4, 8]);
    const wrong = g.input([1, 4, 4, 12]);
    expect(() => channelGate(g, wrong, { weights: cg, hidden: 2, label: 'att' })).toThrow(/att: channel-gate weights buffer holds/);
    expect(() => channelGate(g, input, { weights: cg, hidden: 0, label: 'att' })).toThrow(/hidden width 0/);
    const gate = channelGate(g, input, { weights: cg, hidden: 2, label: 'att' });
    expect(gate.shape).toEqual([1, 1, 1, 8]);
    expect(() => applyGates(g, wrong, gate, { label: 'att' })).toThrow(
      /att: gate shape \[1, 1, 1, 8\] does not match input \[1, 4, 4, 12\]/,
    );
    expect(() => scse(g, input, { channelGate: cg, hidden: 2, label: 'att' })).toThrow(/needs the spatial-gate/);
    cg.destroy();
  });
});
