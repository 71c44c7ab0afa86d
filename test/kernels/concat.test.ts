import { describe, expect, it } from 'vitest';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, paddedChannels } from '../../src/gpu/tensor';
import { type ConcatOptions, type ConcatPlacement, concatChannels } from '../../src/kernels/concat';
import { getTestContext } from '../helpers/gpu';
import { randomArray } from '../helpers/random';

type NCHW = [n: number, c: number, h: number, w: number];

/**
 * float64 reference, from the PyTorch ops it replaces: F.interpolate(nearest, ×scale), then F.pad(·, [left, right,
 * top, bottom]) (negative amounts crop) to the output size, then torch.cat on channels.
 */
function concatRef(a: Float64Array, sa: NCHW, b: Float64Array, sb: NCHW, options: ConcatOptions) {
  const place = (p: ConcatPlacement | undefined) => ({ top: p?.top ?? 0, left: p?.left ?? 0, scale: p?.scale ?? 1 });
  const pa = place(options.first);
  const pb = place(options.second);
  const [ho, wo] = options.size ?? [sa[2] * pa.scale, sa[3] * pa.scale];
  const n = sa[0];
  const c = sa[1] + sb[1];
  const out = new Float64Array(n * c * ho * wo);
  const read = (x: Float64Array, [, cx, h, w]: NCHW, p: typeof pa, bi: number, ch: number, oy: number, ox: number) => {
    const ry = oy - p.top;
    const rx = ox - p.left;
    if (ry < 0 || rx < 0 || ry >= h * p.scale || rx >= w * p.scale) return 0;
    return x[((bi * cx + ch) * h + Math.floor(ry / p.scale)) * w + Math.floor(rx / p.scale)];
  };
  let i = 0;
  for (let bi = 0; bi < n; bi++)
    for (let ch = 0; ch < c; ch++)
      for (let oy = 0; oy < ho; oy++)
        for (let ox = 0; ox < wo; ox++) out[i++] = ch < sa[1] ? read(a, sa, pa, bi, ch, oy, ox) : read(b, sb, pb, bi, ch - sa[1], oy, ox);
  return { y: out, shape: [n, c, ho, wo] as NCHW };
}

async function runConcat(a: Float64Array, sa: NCHW, b: Float64Array, sb: NCHW, options: ConcatOptions) {
  const ctx = await getTestContext();
  const nhwc = ([n, c, h, w]: NCHW) => [n, h, w, c] as const;
  const g = new Graph();
  const ta = g.input(nhwc(sa), 'a');
  const tb = g.input(nhwc(sb), 'b');
  const out = concatChannels(g, ta, tb, options, 'cat');
  g.output(out);
  const plan = await Plan.compile(ctx, g);
  try {
    plan.poison();
    const { outputs } = await plan.run([nchwToNhwcPadded(a, nhwc(sa)), nchwToNhwcPadded(b, nhwc(sb))]);
    const c = out.shape[3];
    const cp = paddedChannels(c);
    outputs[0].forEach((v, i) => {
      if (i % cp >= c && v !== 0) throw new Error(`padded channel ${i % cp} holds ${v}`);
    });
    const [n, h, w] = out.shape;
    return { y: nhwcPaddedToNchw(outputs[0], out.shape), shape: [n, c, h, w] as NCHW };
  } finally {
    plan.dispose();
  }
}

const CASES: [string, NCHW, NCHW, ConcatOptions][] = [
  ['same size, aligned channels (8 + 5)', [1, 8, 5, 7], [1, 5, 5, 7], {}],
  ['milesial Up: skip first, upsampled map zero-padded right/bottom', [1, 4, 7, 9], [1, 6, 6, 8], { second: { top: 0, left: 0 } }],
  ['milesial-style split with offsets', [2, 4, 9, 11], [2, 3, 6, 8], { second: { top: 1, left: 2 } }],
  ['unaligned first input (3 + 6) gathers lanes', [1, 3, 6, 5], [1, 6, 6, 5], {}],
  ['unaligned, 1 + 1 channels', [2, 1, 3, 4], [2, 1, 3, 4], {}],
  ['smp decoder: nearest ×2 of the first, skip second', [1, 12, 3, 4], [1, 8, 6, 8], { first: { scale: 2 } }],
  ['nearest ×2 with unaligned channels and an explicit size', [1, 5, 3, 4], [1, 2, 7, 9], { first: { scale: 2 }, size: [7, 9] }],
  ['negative offsets crop (F.pad with negative amounts)', [1, 4, 5, 6], [1, 4, 8, 9], { second: { top: -2, left: -1 } }],
];

describe('concatChannels against a float64 reference (exact)', () => {
  for (const [name, sa, sb, options] of CASES) {
    it(name, async () => {
      const a = randomArray(
        sa.reduce((p, q) => p * q),
        3 + sa[1],
      );
      const b = randomArray(
        sb.reduce((p, q) => p * q),
        7 + sb[1],
      );
      const ref = concatRef(a, sa, b, sb, options);
      const out = await runConcat(a, sa, b, sb, options);
      expect(out.shape).toEqual(ref.shape);
      expect(Array.from(out.y)).toEqual(Array.from(Float32Array.from(ref.y)));
    });
  }

  it('rejects bad placements and mismatched batches', () => {
    const g = new Graph();
    const a = g.input([1, 4, 4, 4]);
    const b = g.input([2, 4, 4, 4]);
    expect(() => concatChannels(g, a, b, {}, 'cat')).toThrow(/cat: batch sizes differ/);
    expect(() => concatChannels(g, a, a, { first: { scale: 0 } }, 'cat')).toThrow(/scale 0 must be a positive integer/);
    expect(() => concatChannels(g, a, a, { second: { top: 0.5 } }, 'cat')).toThrow(/must be integers/);
    expect(() => concatChannels(g, a, a, { size: [0, 3] }, 'cat')).toThrow(/output size 0x3/);
  });
});
