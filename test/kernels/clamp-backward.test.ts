import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { paddedChannels, type Shape4 } from '../../src/gpu/tensor';
import { clampBackward } from '../../src/kernels/clamp-backward';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';

function pack(values: Float64Array, shape: Shape4): { values: Float64Array; padded: Float32Array } {
  const c = shape[3];
  const cp = paddedChannels(c);
  const padded = new Float32Array((values.length / c) * cp);
  values.forEach((v, k) => (padded[Math.floor(k / c) * cp + (k % c)] = v));
  return { values: Float64Array.from(padded.filter((_, k) => k % cp < c)), padded };
}

function realOf(out: Float32Array, c: number): Float64Array {
  const cp = paddedChannels(c);
  out.forEach((v, k) => {
    if (k % cp >= c && v !== 0) throw new Error(`padded channel ${k % cp} holds ${v}`);
  });
  return Float64Array.from(out.filter((_, k) => k % cp < c));
}

const clamp64 = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);

/** PyTorch 1.13's clamp gradient: g where lo ≤ x ≤ hi (bounds included), 0 elsewhere. */
const clampGrad64 = (g: Float64Array, x: Float64Array, lo: number, hi: number) => g.map((v, k) => (x[k] >= lo && x[k] <= hi ? v : 0));

const CASES: [string, Shape4, number, number][] = [
  ['[0, 1] C3', [1, 5, 7, 3], 0, 1],
  ['[-0.5, 0.25] C13 batch 2', [2, 9, 6, 13], -0.5, 0.25],
  ['[0.3, inf) C6', [1, 4, 3, 6], 0.3, Infinity],
  ['(-inf, 0] C1', [1, 1, 1, 1], -Infinity, 0],
];

describe('clampBackward against float64', () => {
  it('its float64 reference matches central differences of Σ g·clamp(x) away from the bounds', () => {
    const x = randomArray(40, 1, 2).filter((v) => Math.abs(v) > 1e-3 && Math.abs(v - 1) > 1e-3);
    const g = randomArray(x.length, 2);
    const h = 1e-6;
    const fd = x.map((v, k) => (g[k] * (clamp64(v + h, 0, 1) - clamp64(v - h, 0, 1))) / (2 * h));
    expect(relL2(clampGrad64(g, x, 0, 1), fd)).toBeLessThanOrEqual(1e-6);
  });

  for (const [name, shape, lo, hi] of CASES) {
    it(name, async () => {
      const ctx = await getTestContext();
      const c = shape[3];
      const count = shape[0] * shape[1] * shape[2] * c;
      const x = pack(randomArray(count, 10 + c, 1.5), shape);
      // Values exactly at the bounds pass the gradient (PyTorch's clamp_backward is inclusive), infinities
      // pass only through an infinite bound.
      const exact = [lo, hi, Infinity, -Infinity];
      exact.forEach((v, k) => {
        const at = Math.floor(k * 1.5) * paddedChannels(c);
        x.padded[at] = v;
        x.values[Math.floor(k * 1.5) * c] = Math.fround(v);
      });
      const gy = pack(randomArray(count, 20 + c), shape);
      const g = new Graph();
      g.output(clampBackward(g, g.input(shape, 'gy'), g.input(shape, 'x'), lo, hi, 'clamp backward'));
      const plan = await Plan.compile(ctx, g);
      try {
        plan.poison();
        const [dx] = (await plan.run([gy.padded, x.padded])).outputs;
        const ref = clampGrad64(gy.values, x.values, Math.fround(lo), Math.fround(hi));
        expect(relL2(realOf(dx, c), ref)).toBeLessThanOrEqual(1e-6);
        // The branch chosen at each element is exact: zeros where the reference has them.
        realOf(dx, c).forEach((v, k) => expect(v === 0, `element ${k}`).toBe(ref[k] === 0));
      } finally {
        plan.dispose();
      }
    });
  }

  it('names a mismatched input and bounds that are not an interval', () => {
    const g = new Graph();
    const gy = g.input([1, 2, 2, 3], 'gy');
    expect(() => clampBackward(g, gy, g.input([1, 2, 3, 3], 'x'), 0, 1, 'clamp')).toThrow(InvalidInputError);
    expect(() => clampBackward(g, gy, g.input([1, 2, 3, 3], 'x'), 0, 1, 'clamp')).toThrow(/clamp: input 'x' \[1, 2, 3, 3\] does not match/);
    expect(() => clampBackward(g, gy, gy, 1, 0, 'clamp')).toThrow(/clamp: clamp bounds \[1, 0\] are not an interval/);
    expect(() => clampBackward(g, gy, gy, Number.NaN, 0, 'clamp')).toThrow(/not an interval/);
  });
});
