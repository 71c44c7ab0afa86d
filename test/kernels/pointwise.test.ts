import { describe, expect, it } from 'vitest';
import { Graph, type TensorValue } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, type Shape4 } from '../../src/gpu/tensor';
import { affine, clamp, scaledAdd } from '../../src/kernels/pointwise';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';

type Build = (g: Graph, x: TensorValue, r: TensorValue) => TensorValue;

interface Case {
  name: string;
  shape: Shape4;
  build: Build;
  ref: (x: number, r: number) => number;
  binary?: boolean;
}

const f = Math.fround;

const CASES: Case[] = [
  { name: 'clamp [0,1] C3', shape: [1, 7, 5, 3], build: (g, x) => clamp(g, x, 0, 1, 'c'), ref: (x) => Math.min(Math.max(x, 0), 1) },
  {
    name: 'clamp [0.25,0.75] C5 (masked)',
    shape: [2, 3, 5, 5],
    build: (g, x) => clamp(g, x, 0.25, 0.75, 'c'),
    ref: (x) => Math.min(Math.max(x, f(0.25)), f(0.75)),
  },
  {
    name: 'clamp [-0.9,-0.1] C1 (masked)',
    shape: [1, 1, 1, 1],
    build: (g, x) => clamp(g, x, -0.9, -0.1, 'c'),
    ref: (x) => Math.min(Math.max(x, f(-0.9)), f(-0.1)),
  },
  {
    name: 'clamp [0.3,inf) C6 (masked)',
    shape: [1, 4, 3, 6],
    build: (g, x) => clamp(g, x, 0.3, Infinity, 'c'),
    ref: (x) => Math.max(x, f(0.3)),
  },
  {
    name: 'clamp [0.3,0.5] C8 (no padding)',
    shape: [1, 5, 3, 8],
    build: (g, x) => clamp(g, x, 0.3, 0.5, 'c'),
    ref: (x) => Math.min(Math.max(x, f(0.3)), f(0.5)),
  },
  { name: 'affine ×0.2 C13', shape: [1, 3, 9, 13], build: (g, x) => affine(g, x, 0.2, 0, 'a'), ref: (x) => f(0.2) * x },
  { name: 'affine ×255 + 0.5 C3 (masked)', shape: [2, 5, 7, 3], build: (g, x) => affine(g, x, 255, 0.5, 'a'), ref: (x) => 255 * x + 0.5 },
  { name: 'affine −1.5x − 2 C64', shape: [1, 3, 5, 64], build: (g, x) => affine(g, x, -1.5, -2, 'a'), ref: (x) => -1.5 * x - 2 },
  {
    name: 'scaledAdd 0.2 C5',
    shape: [2, 3, 7, 5],
    build: (g, x, r) => scaledAdd(g, x, r, 0.2, 's'),
    ref: (x, r) => x + f(0.2) * r,
    binary: true,
  },
  { name: 'scaledAdd −1 C1 1x1', shape: [1, 1, 1, 1], build: (g, x, r) => scaledAdd(g, x, r, -1, 's'), ref: (x, r) => x - r, binary: true },
  { name: 'scaledAdd 1 C64', shape: [1, 5, 3, 64], build: (g, x, r) => scaledAdd(g, x, r, 1, 's'), ref: (x, r) => x + r, binary: true },
];

describe('pointwise ops against a float64 reference', () => {
  CASES.forEach((c, i) => {
    it(c.name, async () => {
      const ctx = await getTestContext();
      const [n, h, w, ch] = c.shape;
      const count = n * ch * h * w;
      const x = Float64Array.from(Float32Array.from(randomArray(count, 700 + i)));
      const r = Float64Array.from(Float32Array.from(randomArray(count, 800 + i)));
      const ref = x.map((v, k) => c.ref(v, r[k]));
      const g = new Graph();
      const tx = g.input(c.shape, 'x');
      const tr = c.binary ? g.input(c.shape, 'r') : tx;
      const y = c.build(g, tx, tr);
      g.output(y);
      const plan = await Plan.compile(ctx, g);
      plan.poison();
      const inputs = [nchwToNhwcPadded(x, c.shape)];
      if (c.binary) inputs.push(nchwToNhwcPadded(r, c.shape));
      const { outputs } = await plan.run(inputs);
      plan.dispose();
      const cp = Math.ceil(ch / 4) * 4;
      outputs[0].forEach((v, k) => {
        if (k % cp >= ch && v !== 0) throw new Error(`padded channel ${k % cp} holds ${v}`);
      });
      expect(relL2(nhwcPaddedToNchw(outputs[0], c.shape), ref)).toBeLessThanOrEqual(1e-5);
    });
  });

  it('rejects bad arguments', () => {
    const g = new Graph();
    const a = g.input([1, 2, 3, 4]);
    const b = g.input([1, 2, 3, 5]);
    expect(() => scaledAdd(g, a, b, 0.2, 'res')).toThrow(/res: shapes \[1, 2, 3, 4\] and \[1, 2, 3, 5\] differ/);
    expect(() => clamp(g, a, 1, 0, 'cl')).toThrow(/cl: clamp min 1 is greater than max 0/);
    expect(() => clamp(g, a, Number.NaN, 0, 'cl')).toThrow(/clamp min/);
    expect(() => affine(g, a, Infinity, 0, 'af')).toThrow(/af: scale must be a finite number/);
    expect(() => scaledAdd(g, a, a, Number.NaN, 'res')).toThrow(/alpha/);
  });
});
