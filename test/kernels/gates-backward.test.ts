import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { Graph } from '../../src/gpu/graph';
import { gateProduct, gateProductBackward, type Gates } from '../../src/kernels/gates-backward';
import { runGraph } from '../helpers/run-graph';
import { randomArray, relL2 } from '../helpers/random';
import type { NCHW } from '../helpers/reference-spatial';

/*
 * The broadcast gate product of smp's SCSE, y = x·a + x·s (a per channel [N,1,1,C], s per pixel [N,H,W,1]), and its
 * backward, against float64 references written here (NCHW); the reference backward is itself checked against
 * central differences of Σ gy·y. Outputs are poisoned first and padded channels checked to be 0 (runGraph).
 */

interface Refs {
  y: Float64Array;
  dx: Float64Array;
  da: Float64Array;
  ds: Float64Array;
}

type Which = 'both' | 'channel' | 'pixel';

/** NCHW float64 forward and backward; `a` is [N·C], `s` is [N·H·W]; an absent gate is all-zero and unused. */
function reference(
  shape: NCHW,
  x: ArrayLike<number>,
  a: ArrayLike<number>,
  s: ArrayLike<number>,
  gy: ArrayLike<number>,
  which: Which,
): Refs {
  const [n, c, h, w] = shape;
  const hw = h * w;
  const useA = which !== 'pixel';
  const useS = which !== 'channel';
  const y = new Float64Array(n * c * hw);
  const dx = new Float64Array(n * c * hw);
  const da = new Float64Array(n * c);
  const ds = new Float64Array(n * hw);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let p = 0; p < hw; p++) {
        const i = (b * c + ch) * hw + p;
        const gateA = useA ? a[b * c + ch] : 0;
        const gateS = useS ? s[b * hw + p] : 0;
        y[i] = x[i] * gateA + x[i] * gateS;
        dx[i] = gy[i] * (gateA + gateS);
        if (useA) da[b * c + ch] += gy[i] * x[i];
        if (useS) ds[b * hw + p] += gy[i] * x[i];
      }
  return { y, dx, da, ds };
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let t = 0;
  for (let i = 0; i < a.length; i++) t += a[i] * b[i];
  return t;
}

describe('gate product backward: float64 reference', () => {
  it('matches central differences of Σ gy·y for x, a and s', () => {
    const shape: NCHW = [2, 3, 4, 5];
    const [n, c, h, w] = shape;
    const x = randomArray(n * c * h * w, 1);
    const a = randomArray(n * c, 2);
    const s = randomArray(n * h * w, 3);
    const gy = randomArray(n * c * h * w, 4);
    const ref = reference(shape, x, a, s, gy, 'both');
    const loss = (xv: Float64Array, av: Float64Array, sv: Float64Array) => dot(gy, reference(shape, xv, av, sv, gy, 'both').y);
    const check = (v: Float64Array, grad: Float64Array, at: (p: Float64Array) => number) => {
      const numeric = new Float64Array(v.length);
      for (let i = 0; i < v.length; i++) {
        const hstep = 1e-6 * Math.max(1, Math.abs(v[i]));
        const keep = v[i];
        v[i] = keep + hstep;
        const up = at(v);
        v[i] = keep - hstep;
        const down = at(v);
        v[i] = keep;
        numeric[i] = (up - down) / (2 * hstep);
      }
      expect(relL2(grad, numeric)).toBeLessThanOrEqual(1e-6);
    };
    check(x, ref.dx, (v) => loss(v, a, s));
    check(a, ref.da, (v) => loss(x, v, s));
    check(s, ref.ds, (v) => loss(x, a, v));
  });
});

describe('gate product on the GPU', () => {
  const cases: { shape: NCHW; which: Which }[] = [
    { shape: [1, 3, 5, 7], which: 'both' },
    { shape: [2, 13, 9, 6], which: 'both' },
    { shape: [2, 13, 9, 6], which: 'channel' },
    { shape: [2, 5, 7, 3], which: 'pixel' },
    // 552 pixels per item: the per-channel sums take the two-pass (split-K) reduction.
    { shape: [2, 13, 24, 23], which: 'both' },
  ];
  for (const { shape, which } of cases) {
    it(`forward and backward, ${which} gate(s), ${shape.join('x')}`, async () => {
      const [n, c, h, w] = shape;
      const x = randomArray(n * c * h * w, 11);
      const a = randomArray(n * c, 12);
      const s = randomArray(n * h * w, 13);
      const gy = randomArray(n * c * h * w, 14);
      const ref = reference(shape, x, a, s, gy, which);
      const inputs = [
        { shape, data: x },
        { shape, data: gy },
        { shape: [n, c, 1, 1] as NCHW, data: a },
        { shape: [n, 1, h, w] as NCHW, data: s },
      ];
      const runs = await runGraph(
        inputs,
        (g, [xt, gt, at, st]) => {
          const gates: Gates = {};
          if (which !== 'pixel') gates.channel = at;
          if (which !== 'channel') gates.pixel = st;
          const y = gateProduct(g, xt, gates, 'gate');
          const grads = gateProductBackward(g, gt, xt, gates, 'gate backward');
          return [y, grads.dx, ...(grads.dChannel ? [grads.dChannel] : []), ...(grads.dPixel ? [grads.dPixel] : [])];
        },
        2,
      );
      const [first, second] = runs;
      const out = first.outputs;
      expect(relL2(out[0], ref.y)).toBeLessThanOrEqual(1e-6);
      expect(relL2(out[1], ref.dx)).toBeLessThanOrEqual(1e-6);
      let k = 2;
      if (which !== 'pixel') expect(relL2(out[k++], ref.da)).toBeLessThanOrEqual(1e-5);
      if (which !== 'channel') expect(relL2(out[k++], ref.ds)).toBeLessThanOrEqual(1e-6);
      expect(out.length).toBe(k);
      // Fixed-order sums: a second run gives the same bits (compared as bytes: NaN-safe, and no Node Buffer, as the
      // browser runs this file too).
      first.raw.forEach((r, i) => expect(new Uint8Array(second.raw[i].buffer), `output ${i} bitwise`).toEqual(new Uint8Array(r.buffer)));
    });
  }

  it('names the bad input', () => {
    const g = new Graph();
    const x = g.input([2, 5, 6, 7], 'x');
    const gy = g.input([2, 5, 6, 7], 'gy');
    const wrongChannel = g.input([2, 1, 1, 6], 'a');
    const wrongPixel = g.input([1, 5, 6, 1], 's');
    expect(() => gateProduct(g, x, {}, 'gp')).toThrow(InvalidInputError);
    expect(() => gateProduct(g, x, { channel: wrongChannel }, 'gp')).toThrow(/channel gate 'a'/);
    expect(() => gateProduct(g, x, { pixel: wrongPixel }, 'gp')).toThrow(/pixel gate 's'/);
    expect(() => gateProductBackward(g, g.input([2, 5, 6, 3], 'bad'), x, { pixel: g.input([2, 5, 6, 1], 's2') }, 'gpb')).toThrow(
      /gradient \[2, 5, 6, 3\]/,
    );
    expect(() => gateProductBackward(g, gy, x, { channel: wrongChannel }, 'gpb')).toThrow(InvalidInputError);
  });
});
