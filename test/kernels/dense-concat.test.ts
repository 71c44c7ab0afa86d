import { describe, expect, it } from 'vitest';
import { BufferUsage } from '../../src/gpu/flags';
import { Graph, type TensorValue } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, paddedChannels, type Shape4 } from '../../src/gpu/tensor';
import type { Activation } from '../../src/kernels/activation';
import { copyChannels, scaledAddChannels } from '../../src/kernels/channel-slice';
import { conv2d } from '../../src/kernels/conv2d';
import { type Conv2dGeometry, packBias, packConv2dWeight } from '../../src/kernels/conv2d-geometry';
import type { Conv2dVariant } from '../../src/kernels/conv2d-variants';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';
import { conv2dRef } from '../helpers/reference';
import { CONV2D_TEST_VARIANTS } from '../helpers/test-variants';

/**
 * The pieces dense blocks are built from (src/layers/concat-conv2d.ts): convolutions that read a channel prefix of
 * a wider input and add a residual read from a channel prefix of a wider tensor (src/kernels/conv2d.ts), and
 * channel-slice copies and scaled adds (src/kernels/channel-slice.ts), against float64 references.
 */

type NCHW = [number, number, number, number];

/** The first `c` channels of an NCHW tensor. */
function channelPrefix(x: ArrayLike<number>, [n, ctot, h, w]: NCHW, c: number): Float64Array {
  const out = new Float64Array(n * c * h * w);
  const plane = h * w;
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++) for (let p = 0; p < plane; p++) out[(b * c + ch) * plane + p] = x[(b * ctot + ch) * plane + p];
  return out;
}

async function runGraph(
  inputs: { shape: Shape4; data: ArrayLike<number> }[],
  build: (g: Graph, t: TensorValue[]) => TensorValue,
): Promise<{ y: Float32Array; shape: Shape4 }> {
  const ctx = await getTestContext();
  const g = new Graph();
  const ts = inputs.map((inp, i) => g.input(inp.shape, `in${i}`));
  const out = build(g, ts);
  g.output(out);
  const plan = await Plan.compile(ctx, g);
  try {
    plan.poison();
    const { outputs } = await plan.run(inputs.map((inp) => nchwToNhwcPadded(inp.data, inp.shape)));
    const c = out.shape[3];
    const cp = paddedChannels(c);
    outputs[0].forEach((v, i) => {
      if (i % cp >= c && v !== 0) throw new Error(`padded channel ${i % cp} holds ${v}`);
    });
    return { y: nhwcPaddedToNchw(outputs[0], out.shape), shape: out.shape };
  } finally {
    plan.dispose();
  }
}

interface PrefixCase {
  name: string;
  /** channels of the input tensor, channels the conv reads */
  ctot: number;
  cin: number;
  cout: number;
  h: number;
  w: number;
  /** channels of the residual tensor (its first cout are added), or none */
  rtot?: number;
  act: Activation;
  scale?: number;
}

const PREFIX_CASES: PrefixCase[] = [
  { name: '3x3 reads 5 of 12, 3 out', ctot: 12, cin: 5, cout: 3, h: 7, w: 9, act: { kind: 'leakyRelu', alpha: 0.2 } },
  {
    name: '3x3 reads 16 of 48, 8 out, + 0.2 scale and residual prefix 8 of 24',
    ctot: 48,
    cin: 16,
    cout: 8,
    h: 6,
    w: 11,
    rtot: 24,
    act: { kind: 'none' },
    scale: 0.2,
  },
  {
    name: '3x3 reads 8 of 8 (whole), 6 out, residual prefix 6 of 20',
    ctot: 8,
    cin: 8,
    cout: 6,
    h: 5,
    w: 4,
    rtot: 20,
    act: { kind: 'none' },
    scale: 0.2,
  },
  { name: '3x3 reads 12 of 13, 4 out, relu', ctot: 13, cin: 12, cout: 4, h: 1, w: 1, act: { kind: 'relu' } },
];

describe('conv2d reading a channel prefix and adding a residual prefix (float64 reference)', () => {
  PREFIX_CASES.forEach((c, idx) => {
    // The prefix and the residual stride are plain uniforms, the same in every tile; one variant of each kind
    // (per-lane weights, workgroup-uniform weights, shared input columns) is enough.
    const variants: Conv2dVariant[] = [
      CONV2D_TEST_VARIANTS[0],
      CONV2D_TEST_VARIANTS[2],
      { px: 8, cb: 2, workgroupSize: 64, uniformWeights: true, rowReuse: true },
    ];
    for (const variant of variants) {
      it(`${c.name} [px${variant.px} cb${variant.cb}${variant.uniformWeights ? ' uw' : ''}${variant.rowReuse ? ' rr' : ''}]`, async () => {
        const ctx = await getTestContext();
        const seed = 500 + idx * 10;
        const xShape: NCHW = [1, c.ctot, c.h, c.w];
        const x = randomArray(c.ctot * c.h * c.w, seed);
        const wt = randomArray(c.cout * c.cin * 9, seed + 1, 1 / Math.sqrt(c.cin * 9));
        const b = randomArray(c.cout, seed + 2, 0.5);
        const rShape: NCHW = [1, c.rtot ?? 1, c.h, c.w];
        const r = c.rtot ? randomArray(c.rtot * c.h * c.w, seed + 3) : undefined;
        const ref = conv2dRef(channelPrefix(x, xShape, c.cin), [1, c.cin, c.h, c.w], wt, b, c.cout, [3, 3], 1, [1, 1], 1, c.act, {
          scale: c.scale,
          residual: r ? { y: channelPrefix(r, rShape, c.cout), mode: 'afterActivation' } : undefined,
        });
        const geometry: Conv2dGeometry = {
          inChannels: c.cin,
          outChannels: c.cout,
          kernelSize: [3, 3],
          stride: 1,
          padding: [1, 1],
          dilation: 1,
        };
        const weight = ctx.createBufferWithData(packConv2dWeight(wt, geometry), BufferUsage.STORAGE, 'w');
        const bias = ctx.createBufferWithData(packBias(b, c.cout), BufferUsage.STORAGE, 'b');
        const inputs = [{ shape: [1, c.h, c.w, c.ctot] as Shape4, data: x }];
        if (r) inputs.push({ shape: [1, c.h, c.w, c.rtot!] as Shape4, data: r });
        const out = await runGraph(inputs, (g, [t, rt]) =>
          conv2d(
            g,
            t,
            { weight, bias, geometry, variant, label: 'conv', readInputPrefix: true },
            {
              activation: c.act,
              scale: c.scale,
              residual: rt ? { tensor: rt, mode: 'afterActivation', prefix: true } : undefined,
            },
          ),
        );
        weight.destroy();
        bias.destroy();
        expect(out.shape).toEqual([1, c.h, c.w, c.cout]);
        expect(relL2(out.y, ref.y)).toBeLessThanOrEqual(1e-5);
      });
    }
  });

  it('rejects a prefix wider than the input and a residual narrower than the output', async () => {
    const ctx = await getTestContext();
    const geometry: Conv2dGeometry = { inChannels: 8, outChannels: 4, kernelSize: [3, 3], stride: 1, padding: [1, 1], dilation: 1 };
    const weight = ctx.createBufferWithData(packConv2dWeight(new Float64Array(8 * 4 * 9), geometry), BufferUsage.STORAGE, 'w');
    const variant = CONV2D_TEST_VARIANTS[0];
    const g = new Graph();
    const narrow = g.input([1, 4, 4, 6]);
    expect(() => conv2d(g, narrow, { weight, geometry, variant, label: 'c', readInputPrefix: true })).toThrow(/fewer than the 8/);
    const wide = g.input([1, 4, 4, 12]);
    expect(() => conv2d(g, wide, { weight, geometry, variant, label: 'c' })).toThrow(/expects 8 input channels/);
    const r = g.input([1, 4, 4, 3]);
    expect(() =>
      conv2d(
        g,
        wide,
        { weight, geometry, variant, label: 'c', readInputPrefix: true },
        { residual: { tensor: r, mode: 'afterActivation', prefix: true } },
      ),
    ).toThrow(/residual/);
    weight.destroy();
  });
});

describe('channel slices (float64 reference)', () => {
  it('copyChannels assembles [a (6 ch) | gap | b (3 ch) | gap | c (4 ch)] and zeroes the gaps', async () => {
    const [h, w] = [5, 7];
    const pieces = [6, 3, 4];
    const offsets = [0, 8, 12];
    const data = pieces.map((c, i) => randomArray(c * h * w, 40 + i));
    const out = await runGraph(
      pieces.map((c, i) => ({ shape: [1, h, w, c] as Shape4, data: data[i] })),
      (g, ts) => {
        const cat = g.tensor([1, h, w, 16], 'cat');
        ts.forEach((t, i) => copyChannels(g, t, cat, offsets[i], `copy${i}`));
        return cat;
      },
    );
    const plane = h * w;
    for (let ch = 0; ch < 16; ch++) {
      const k = offsets.findIndex((o, i) => ch >= o && ch < o + pieces[i]);
      for (let p = 0; p < plane; p++) {
        const got = out.y[ch * plane + p];
        expect(got).toBe(k < 0 ? 0 : Math.fround(data[k][(ch - offsets[k]) * plane + p]));
      }
    }
  });

  it('scaledAddChannels: x[:, :6] + 0.2·r into channels 4..10 of a wider tensor', async () => {
    const [h, w] = [3, 4];
    const x = randomArray(12 * h * w, 71);
    const r = randomArray(6 * h * w, 72);
    const fill = randomArray(4 * h * w, 73);
    const out = await runGraph(
      [
        { shape: [1, h, w, 12], data: x },
        { shape: [1, h, w, 6], data: r },
        { shape: [1, h, w, 4], data: fill },
      ],
      (g, [xt, rt, ft]) => {
        const y = g.tensor([1, h, w, 12], 'y');
        copyChannels(g, ft, y, 0, 'fill');
        scaledAddChannels(g, xt, rt, 0.2, 6, 'add', { tensor: y, offset: 4 });
        // channels 10, 11 are the last vec4's padded lanes of the slice: written 0
        return y;
      },
    );
    const plane = h * w;
    const ref = new Float64Array(12 * plane);
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < 4; c++) ref[c * plane + p] = Math.fround(fill[c * plane + p]);
      for (let c = 0; c < 6; c++) ref[(4 + c) * plane + p] = Math.fround(x[c * plane + p]) + 0.2 * Math.fround(r[c * plane + p]);
    }
    expect(relL2(out.y, ref)).toBeLessThanOrEqual(1e-6);
    for (let p = 0; p < plane; p++) expect([out.y[10 * plane + p], out.y[11 * plane + p]]).toEqual([0, 0]);
  });

  it('rejects unaligned offsets and slices that do not fit', () => {
    const g = new Graph();
    const a = g.input([1, 2, 2, 6]);
    const dst = g.tensor([1, 2, 2, 8], 'dst');
    expect(() => copyChannels(g, a, dst, 2, 'c')).toThrow(/multiple of 4/);
    expect(() => copyChannels(g, a, dst, 4, 'c')).toThrow(/inside 8 channels/);
    expect(() => copyChannels(g, a, a, 0, 'c')).toThrow(/cannot also be an input/);
    const other = g.input([1, 3, 2, 6]);
    expect(() => scaledAddChannels(g, a, other, 1, 6, 's')).toThrow(/does not match/);
  });
});
