import { describe, expect, it } from 'vitest';
import { BufferUsage } from '../../src/gpu/flags';
import { Graph, type TensorValue } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, paddedChannels, type Shape4 } from '../../src/gpu/tensor';
import type { Activation } from '../../src/kernels/activation';
import { convTranspose2d } from '../../src/kernels/conv-transpose2d';
import {
  type ConvTranspose2dGeometry,
  convTranspose2dOutputShape,
  isSubpixelConvTranspose2d,
  packConvTranspose2dBias,
  packConvTranspose2dWeight,
} from '../../src/kernels/conv-transpose2d-geometry';
import { type ConvTranspose2dVariant, selectConvTranspose2dVariant } from '../../src/kernels/conv-transpose2d-variants';
import { ConvTranspose2d } from '../../src/layers/conv-transpose2d';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';
import { convTranspose2dRef } from '../helpers/reference-conv-transpose';
import { CONV_TRANSPOSE2D_TEST_VARIANTS, HARDWARE, SOFTWARE } from '../helpers/test-variants';
import { ForwardBuilder } from '../../src/layers/forward-builder';

interface Case {
  n?: number;
  cin: number;
  cout: number;
  h: number;
  w: number;
  k: [number, number];
  stride: number;
  pad?: [number, number];
  outputPadding?: [number, number];
  bias?: boolean;
  act?: Activation;
  /** Also run the fixed test variants (every case runs the selector's picks); keeps the shader count modest. */
  fixed?: boolean;
}

const CASES: [string, Case][] = [
  // 2×2 stride 2 padding 0: the sub-pixel GEMMs. The first three share one shader key (k2x2, bias, none, mask).
  ['k2 s2, 1→1, 1x1', { fixed: true, cin: 1, cout: 1, h: 1, w: 1, k: [2, 2], stride: 2 }],
  ['k2 s2, 3→3, 7x13', { cin: 3, cout: 3, h: 7, w: 13, k: [2, 2], stride: 2 }],
  ['k2 s2, 13→6, 9x5, batch 2', { fixed: true, n: 2, cin: 13, cout: 6, h: 9, w: 5, k: [2, 2], stride: 2 }],
  ['k2 s2, 64→32, 7x13', { cin: 64, cout: 32, h: 7, w: 13, k: [2, 2], stride: 2 }],
  [
    'k2 s2, 5→5, 9x5, no bias, relu',
    { fixed: true, cin: 5, cout: 5, h: 9, w: 5, k: [2, 2], stride: 2, bias: false, act: { kind: 'relu' } },
  ],
  // The general gather.
  [
    'k3 s2 p1 op1, 5→3, 7x6, sigmoid',
    { fixed: true, cin: 5, cout: 3, h: 7, w: 6, k: [3, 3], stride: 2, pad: [1, 1], outputPadding: [1, 1], act: { kind: 'sigmoid' } },
  ],
  ['k4 s2 p1, 6→8, 5x9, no bias', { cin: 6, cout: 8, h: 5, w: 9, k: [4, 4], stride: 2, pad: [1, 1], bias: false }],
  ['k3 s1 p1, 4→5, 5x7', { fixed: true, cin: 4, cout: 5, h: 5, w: 7, k: [3, 3], stride: 1, pad: [1, 1] }],
  ['k3 s1 p1, 4→5, 1x1', { cin: 4, cout: 5, h: 1, w: 1, k: [3, 3], stride: 1, pad: [1, 1] }],
  ['k2 s2 op1, 3→6, 5x7 (odd, bias-only last row/col)', { cin: 3, cout: 6, h: 5, w: 7, k: [2, 2], stride: 2, outputPadding: [1, 1] }],
  [
    'k5x3 s3 p(2,1) op(2,0), 7→4, 4x5, leaky',
    {
      fixed: true,
      cin: 7,
      cout: 4,
      h: 4,
      w: 5,
      k: [5, 3],
      stride: 3,
      pad: [2, 1],
      outputPadding: [2, 0],
      act: { kind: 'leakyRelu', alpha: 0.2 },
    },
  ],
];

function geometryOf(c: Case): ConvTranspose2dGeometry {
  return {
    inChannels: c.cin,
    outChannels: c.cout,
    kernelSize: c.k,
    stride: c.stride,
    padding: c.pad ?? [0, 0],
    outputPadding: c.outputPadding ?? [0, 0],
  };
}

function variantTag(v: ConvTranspose2dVariant): string {
  return `${v.algorithm} px${v.px} cb${v.cb} wg${v.workgroupSize}${v.allTaps ? ' at' : ''}${v.uniformWeights ? ' uw' : ''}`;
}

/** The fixed test variants that apply plus the selector's picks on a software and a hardware adapter. */
function variantsFor(c: Case): ConvTranspose2dVariant[] {
  const g = geometryOf(c);
  const sub = isSubpixelConvTranspose2d(g);
  // Sub-pixel geometries are also checked with one gather variant (it must agree); general ones only gather.
  const fixed = c.fixed
    ? CONV_TRANSPOSE2D_TEST_VARIANTS.filter((v) =>
        sub ? v.algorithm === 'subpixel' || (c.n === 2 && v.px === 3) : v.algorithm === 'gather',
      )
    : [];
  // The software table's pick for this input and for a wide one (its tile and workgroup follow the input's shape).
  const software = [selectConvTranspose2dVariant(SOFTWARE, g, c.w), selectConvTranspose2dVariant(SOFTWARE, g)];
  const all = [...fixed, ...software, selectConvTranspose2dVariant(HARDWARE, g)];
  const seen = new Set<string>();
  return all.filter((v) => !seen.has(variantTag(v)) && seen.add(variantTag(v)) !== undefined);
}

interface Prepared {
  x: Float64Array;
  ref: Float64Array;
  geometry: ConvTranspose2dGeometry;
  wt: Float64Array;
  b: Float64Array | undefined;
  act: Activation;
  inShape: Shape4;
}

function prepare(c: Case, seed: number): Prepared {
  const n = c.n ?? 1;
  const geometry = geometryOf(c);
  const act = c.act ?? { kind: 'none' };
  const x = randomArray(n * c.cin * c.h * c.w, seed);
  const wt = randomArray(c.cin * c.cout * c.k[0] * c.k[1], seed + 1, 1 / Math.sqrt(c.cin));
  const b = c.bias === false ? undefined : randomArray(c.cout, seed + 2, 0.5);
  const { y } = convTranspose2dRef(
    x,
    [n, c.cin, c.h, c.w],
    wt,
    b,
    c.cout,
    c.k,
    c.stride,
    [...geometry.padding],
    [...geometry.outputPadding],
    act,
  );
  return { x, ref: y, geometry, wt, b, act, inShape: [n, c.h, c.w, c.cin] };
}

/** Runs the plan on poisoned buffers and checks that the padded channels of the (only) output are exact zeros. */
async function runChecked(g: Graph, input: Float32Array, out: TensorValue): Promise<Float32Array> {
  const ctx = await getTestContext();
  g.output(out);
  const plan = await Plan.compile(ctx, g);
  plan.poison();
  const { outputs } = await plan.run([input]);
  plan.dispose();
  const y = outputs[0];
  const c = out.shape[3];
  const cp = paddedChannels(c);
  for (let i = 0; i < y.length; i++) {
    if (i % cp >= c && y[i] !== 0) throw new Error(`padded channel ${i % cp} holds ${y[i]}`);
  }
  return y;
}

async function check(c: Case, variant: ConvTranspose2dVariant, seed: number): Promise<number> {
  const ctx = await getTestContext();
  const p = prepare(c, seed);
  const g = new Graph();
  const input = g.input(p.inShape);
  const weight = ctx.createBufferWithData(packConvTranspose2dWeight(p.wt, p.geometry), BufferUsage.STORAGE, 'test weight');
  const bias = p.b ? ctx.createBufferWithData(packConvTranspose2dBias(p.b, c.cout), BufferUsage.STORAGE, 'test bias') : undefined;
  const y = convTranspose2d(g, input, { weight, bias, geometry: p.geometry, variant, label: 'convT' }, { activation: p.act });
  expect(y.shape).toEqual(convTranspose2dOutputShape(p.inShape, p.geometry));
  const out = await runChecked(g, nchwToNhwcPadded(p.x, p.inShape), y);
  weight.destroy();
  bias?.destroy();
  return relL2(nhwcPaddedToNchw(out, y.shape), p.ref);
}

describe('convTranspose2d against a float64 reference', () => {
  CASES.forEach(([name, c], i) => {
    for (const variant of variantsFor(c)) {
      it(`${name} [${variantTag(variant)}]`, async () => {
        const err = await check(c, variant, 300 + 7 * i);
        expect(err).toBeLessThanOrEqual(1e-5);
      });
    }
  });

  it('output size follows PyTorch', () => {
    const g = geometryOf(CASES[5][1]);
    expect(convTranspose2dOutputShape([1, 7, 6, 5], g)).toEqual([1, 14, 12, 3]);
    expect(convTranspose2dOutputShape([1, 5, 9, 6], geometryOf(CASES[6][1]))).toEqual([1, 10, 18, 8]);
  });

  it('selector picks the sub-pixel kernel exactly for kernel = stride, padding 0, output_padding 0', () => {
    for (const [, c] of CASES) {
      const g = geometryOf(c);
      const expected = c.k[0] === c.stride && c.k[1] === c.stride && !c.pad && !c.outputPadding ? 'subpixel' : 'gather';
      expect(selectConvTranspose2dVariant(SOFTWARE, g).algorithm).toBe(expected);
      expect(selectConvTranspose2dVariant(HARDWARE, g).algorithm).toBe(expected);
    }
  });

  it('rejects a sub-pixel variant on a general geometry and output_padding ≥ stride', () => {
    const g = new Graph();
    const input = g.input([1, 4, 4, 5]);
    const fake = {} as GPUBuffer;
    const geometry = geometryOf(CASES[5][1]);
    expect(() => convTranspose2d(g, input, { weight: fake, geometry, variant: CONV_TRANSPOSE2D_TEST_VARIANTS[0], label: 'bad' })).toThrow(
      /sub-pixel/,
    );
    expect(() =>
      convTranspose2d(g, input, {
        weight: fake,
        geometry: { ...geometry, outputPadding: [2, 2] },
        variant: CONV_TRANSPOSE2D_TEST_VARIANTS[3],
        label: 'bad',
      }),
    ).toThrow(/output_padding/);
  });

  it('writes channel slices of a wider tensor (outChannelOffset): [convT 13→3 gather | pad | convT 13→6 sub-pixel]', async () => {
    // Both slices are written by the two dispatches and the rest is padding, so with poisoned buffers every
    // element of the wide tensor is checked: a kernel writing outside its slice would leave NaN or clobber the
    // other slice (the sub-pixel one runs second and sits above the gather's padded lane 3).
    const ctx = await getTestContext();
    const a: Case = { cin: 13, cout: 3, h: 7, w: 13, k: [2, 2], stride: 2 };
    const b: Case = { cin: 13, cout: 6, h: 7, w: 13, k: [2, 2], stride: 2 };
    const pa = prepare(a, 900);
    const pb = prepare(b, 900); // the same input x (same seed and size); other weights (other Cout)
    expect(Array.from(pa.x)).toEqual(Array.from(pb.x));
    const g = new Graph();
    const input = g.input(pa.inShape);
    const [n, ho, wo] = convTranspose2dOutputShape(pa.inShape, pa.geometry);
    const wide = g.tensor([n, ho, wo, 10], 'wide');
    const bufs = [
      ctx.createBufferWithData(packConvTranspose2dWeight(pa.wt, pa.geometry), BufferUsage.STORAGE, 'a weight'),
      ctx.createBufferWithData(packConvTranspose2dBias(pa.b!, 3), BufferUsage.STORAGE, 'a bias'),
      ctx.createBufferWithData(packConvTranspose2dWeight(pb.wt, pb.geometry), BufferUsage.STORAGE, 'b weight'),
      ctx.createBufferWithData(packConvTranspose2dBias(pb.b!, 6), BufferUsage.STORAGE, 'b bias'),
    ];
    const gather = CONV_TRANSPOSE2D_TEST_VARIANTS[4];
    const sub = CONV_TRANSPOSE2D_TEST_VARIANTS[0];
    convTranspose2d(
      g,
      input,
      { weight: bufs[0], bias: bufs[1], geometry: pa.geometry, variant: gather, label: 'a' },
      { outChannelOffset: 0 },
      wide,
    );
    convTranspose2d(
      g,
      input,
      { weight: bufs[2], bias: bufs[3], geometry: pb.geometry, variant: sub, label: 'b' },
      { outChannelOffset: 4 },
      wide,
    );
    const out = nhwcPaddedToNchw(await runChecked(g, nchwToNhwcPadded(pa.x, pa.inShape), wide), wide.shape);
    for (const buf of bufs) buf.destroy();
    const plane = ho * wo;
    expect(relL2(out.subarray(0, 3 * plane), pa.ref)).toBeLessThanOrEqual(1e-5);
    expect(Array.from(out.subarray(3 * plane, 4 * plane)).every((v) => v === 0)).toBe(true);
    expect(relL2(out.subarray(4 * plane, 10 * plane), pb.ref)).toBeLessThanOrEqual(1e-5);
  });

  it('ConvTranspose2d layer: PyTorch-shaped parameters, selected variant, offset into a wider output', async () => {
    const ctx = await getTestContext();
    const c: Case = { cin: 13, cout: 6, h: 9, w: 5, k: [2, 2], stride: 2 };
    const p = prepare(c, 950);
    const layer = new ConvTranspose2d(13, 6, 2, { stride: 2 });
    expect(layer.weight.shape).toEqual([13, 6, 2, 2]);
    expect(layer.bias?.shape).toEqual([6]);
    layer.weight.data = p.wt;
    layer.bias!.data = p.b;
    const g = new Graph();
    const input = g.input(p.inShape);
    const y = layer.forward(new ForwardBuilder(ctx, g), input, { label: 'up' });
    expect(y.shape).toEqual([1, 18, 10, 6]);
    const out = await runChecked(g, nchwToNhwcPadded(p.x, p.inShape), y);
    layer.release();
    expect(relL2(nhwcPaddedToNchw(out, y.shape), p.ref)).toBeLessThanOrEqual(1e-5);
    expect(() => new ConvTranspose2d(4, 4, 3, { stride: 2, outputPadding: 2 })).toThrow(/output_padding/);
  });
});
