import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { BufferUsage } from '../../src/gpu/flags';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw } from '../../src/gpu/tensor';
import { conv2d, type ResidualMode } from '../../src/kernels/conv2d';
import { type Conv2dGeometry, packBias, packConv2dWeight, packPreluSlopes } from '../../src/kernels/conv2d-geometry';
import { type Conv2dVariant, selectConv2dVariant } from '../../src/kernels/conv2d-variants';
import { Conv2d } from '../../src/layers/conv2d';
import { type Conv2dCase, conv2dVariantsFor, variantKey } from '../helpers/conv2d-cases';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';
import { conv2dRef } from '../helpers/reference';
import { CONV2D_TEST_VARIANTS, HARDWARE, SOFTWARE } from '../helpers/test-variants';
import { ForwardBuilder } from '../../src/layers/forward-builder';

/** A conv2d case with the grouped / PReLU / scale / residual extras, and which variants to run it with. */
interface ExtCase extends Conv2dCase {
  prelu?: 'scalar' | 'channel';
  scale?: number;
  residual?: ResidualMode;
  /** all: the fixed test variants and the selector's picks; selected: only the selector's picks; fixed: only the fixed ones. */
  variants?: 'all' | 'selected' | 'fixed';
}

function geometryOf(c: Conv2dCase): Conv2dGeometry {
  return {
    inChannels: c.cin,
    outChannels: c.cout,
    kernelSize: c.k,
    stride: c.stride ?? 1,
    padding: c.pad ?? [Math.floor(c.k[0] / 2), Math.floor(c.k[1] / 2)],
    dilation: c.dilation ?? 1,
    groups: c.groups ?? 1,
  };
}

function variantsOf(c: ExtCase): Conv2dVariant[] {
  const g = geometryOf(c);
  const selected = [selectConv2dVariant(SOFTWARE, g), selectConv2dVariant(HARDWARE, g)];
  if (c.variants === 'selected') return selected;
  if (c.variants === 'fixed') return CONV2D_TEST_VARIANTS;
  return conv2dVariantsFor(c);
}

async function check(c: ExtCase, variant: Conv2dVariant, seed: number): Promise<number> {
  const ctx = await getTestContext();
  const n = c.n ?? 1;
  const geometry = geometryOf(c);
  const groups = c.groups ?? 1;
  const act = c.act ?? { kind: 'none' };
  const cing = c.cin / groups;
  const x = randomArray(n * c.cin * c.h * c.w, seed);
  const wt = randomArray(c.cout * cing * c.k[0] * c.k[1], seed + 1, 1 / Math.sqrt(cing * c.k[0] * c.k[1]));
  const b = c.bias === false ? undefined : randomArray(c.cout, seed + 2, 0.5);
  const slopes = c.prelu === 'scalar' ? [0.25] : c.prelu === 'channel' ? randomArray(c.cout, seed + 3, 0.5) : undefined;
  const ho = Math.floor((c.h + 2 * geometry.padding[0] - geometry.dilation * (c.k[0] - 1) - 1) / geometry.stride) + 1;
  const wo = Math.floor((c.w + 2 * geometry.padding[1] - geometry.dilation * (c.k[1] - 1) - 1) / geometry.stride) + 1;
  const r = c.residual ? randomArray(n * c.cout * ho * wo, seed + 4) : undefined;
  const ref = conv2dRef(x, [n, c.cin, c.h, c.w], wt, b, c.cout, c.k, geometry.stride, [...geometry.padding], geometry.dilation, act, {
    groups,
    prelu: slopes,
    scale: c.scale,
    residual: r && c.residual ? { y: r, mode: c.residual } : undefined,
  });

  const g = new Graph();
  const input = g.input([n, c.h, c.w, c.cin]);
  const res = r ? g.input([n, ho, wo, c.cout]) : undefined;
  const weight = ctx.createBufferWithData(packConv2dWeight(wt, geometry), BufferUsage.STORAGE, 'test weight');
  const bias = b ? ctx.createBufferWithData(packBias(b, c.cout), BufferUsage.STORAGE, 'test bias') : undefined;
  const prelu = slopes ? ctx.createBufferWithData(packPreluSlopes(slopes, c.cout), BufferUsage.STORAGE, 'test slopes') : undefined;
  const y = conv2d(
    g,
    input,
    { weight, bias, geometry, variant, label: 'conv' },
    {
      activation: act,
      prelu,
      scale: c.scale,
      residual: res && c.residual ? { tensor: res, mode: c.residual } : undefined,
    },
  );
  g.output(y);
  const plan = await Plan.compile(ctx, g);
  plan.poison();
  const inputs = [nchwToNhwcPadded(x, [n, c.h, c.w, c.cin])];
  if (r) inputs.push(nchwToNhwcPadded(r, [n, ho, wo, c.cout]));
  const { outputs } = await plan.run(inputs);
  plan.dispose();
  weight.destroy();
  bias?.destroy();
  prelu?.destroy();
  expect(y.shape).toEqual([n, ref.ho, ref.wo, c.cout]);
  const out = outputs[0];
  const cp = Math.ceil(c.cout / 4) * 4;
  for (let i = 0; i < out.length; i++) {
    if (i % cp >= c.cout && out[i] !== 0) throw new Error(`padded channel ${i % cp} holds ${out[i]}`);
  }
  return relL2(nhwcPaddedToNchw(out, y.shape), ref.y);
}

const dw = (c: number, h: number, w: number, extra: Partial<ExtCase> = {}): ExtCase => ({
  cin: c,
  cout: c,
  groups: c,
  h,
  w,
  k: [3, 3],
  ...extra,
});

const CASES: [string, ExtCase][] = [
  // Depthwise 3×3 pad 1, every variant (one shader per variant: the channel count is a uniform).
  ['dw 3x3 p1, C=1', dw(1, 7, 9)],
  ['dw 3x3 p1, C=3', dw(3, 9, 11)],
  ['dw 3x3 p1, C=6', dw(6, 5, 13)],
  ['dw 3x3 p1, C=64', dw(64, 7, 9)],
  // Depthwise 3×3 dilation 2 pad 2 (SINSR), including an image narrower than the dilated kernel.
  ['dw 3x3 d2 p2, C=1', dw(1, 9, 7, { dilation: 2, pad: [2, 2] })],
  ['dw 3x3 d2 p2, C=3', dw(3, 11, 9, { dilation: 2, pad: [2, 2] })],
  ['dw 3x3 d2 p2, C=6', dw(6, 7, 3, { dilation: 2, pad: [2, 2] })],
  ['dw 3x3 d2 p2, C=64', dw(64, 5, 7, { dilation: 2, pad: [2, 2] })],
  // Depthwise 5×5 pad 2, including a 3×3 image (kernel larger than the image).
  ['dw 5x5 p2, C=1', dw(1, 3, 3, { k: [5, 5] })],
  ['dw 5x5 p2, C=3', dw(3, 9, 7, { k: [5, 5] })],
  ['dw 5x5 p2, C=6', dw(6, 11, 13, { k: [5, 5] })],
  ['dw 5x5 p2, C=64', dw(64, 7, 5, { k: [5, 5] })],
  // General groups.
  ['groups 2, 3x3, 8→16', { cin: 8, cout: 16, groups: 2, h: 9, w: 11, k: [3, 3] }],
  ['groups 2, 3x3, 16→8, batch 2', { n: 2, cin: 16, cout: 8, groups: 2, h: 5, w: 7, k: [3, 3], variants: 'fixed' }],
  // PReLU: a shared slope (nn.PReLU()) and one per channel.
  ['3x3 5→7 PReLU scalar', { cin: 5, cout: 7, h: 6, w: 9, k: [3, 3], prelu: 'scalar', variants: 'selected' }],
  ['3x3 5→7 PReLU per channel', { cin: 5, cout: 7, h: 6, w: 9, k: [3, 3], prelu: 'channel', variants: 'selected' }],
  [
    'dw 3x3 s2 C=6 batch 2 no bias, PReLU per channel',
    dw(6, 9, 11, { n: 2, stride: 2, bias: false, prelu: 'channel', variants: 'selected' }),
  ],
  ['dw 3x3 s2 C=3, PReLU scalar', dw(3, 8, 7, { stride: 2, bias: false, prelu: 'scalar', variants: 'selected' })],
  // Residuals with scale 0.2: ResNet's relu(conv + identity) and ESRGAN's conv·0.2 + x.
  [
    '3x3 6→6 relu, residual before activation, ×0.2',
    { cin: 6, cout: 6, h: 7, w: 9, k: [3, 3], act: { kind: 'relu' }, residual: 'beforeActivation', scale: 0.2, variants: 'selected' },
  ],
  [
    '3x3 5→3 sigmoid, residual after activation, ×0.2',
    { cin: 5, cout: 3, h: 5, w: 11, k: [3, 3], act: { kind: 'sigmoid' }, residual: 'afterActivation', scale: 0.2, variants: 'selected' },
  ],
  [
    'dw 3x3 C=6 leaky, residual after activation, ×0.2',
    dw(6, 7, 9, { act: { kind: 'leakyRelu', alpha: 0.2 }, residual: 'afterActivation', scale: 0.2, variants: 'selected' }),
  ],
];

describe('grouped and depthwise conv2d, PReLU, scale and residual epilogues against a float64 reference', () => {
  CASES.forEach(([name, c], i) => {
    for (const variant of variantsOf(c)) {
      it(`${name} [${variantKey(variant)}]`, async () => {
        const err = await check(c, variant, 300 + 10 * i);
        expect(err).toBeLessThanOrEqual(1e-5);
      });
    }
  });
});

describe('conv2d groups and epilogue validation', () => {
  const variant: Conv2dVariant = { px: 1, cb: 1, workgroupSize: 64 };
  const fakeBuffer = {} as GPUBuffer;
  const add = (geometry: Conv2dGeometry, inShape: [number, number, number, number], epilogue = {}) => {
    const g = new Graph();
    const input = g.input(inShape);
    return () => conv2d(g, input, { weight: fakeBuffer, geometry, variant, label: 'bad' }, epilogue);
  };
  const geo = (cin: number, cout: number, groups: number): Conv2dGeometry => ({
    inChannels: cin,
    outChannels: cout,
    kernelSize: [3, 3],
    stride: 1,
    padding: [1, 1],
    dilation: 1,
    groups,
  });

  it('rejects groups whose per-group channel counts are not multiples of 4', () => {
    expect(add(geo(6, 12, 3), [1, 4, 4, 6])).toThrow(InvalidInputError);
    expect(add(geo(6, 12, 3), [1, 4, 4, 6])).toThrow(/multiples of 4/);
    expect(() => packConv2dWeight(new Float32Array(12 * 2 * 9), geo(6, 12, 3))).toThrow(/multiples of 4/);
    expect(() => selectConv2dVariant(HARDWARE, geo(6, 12, 3))).toThrow(InvalidInputError);
  });

  it('rejects groups that do not divide the channels, and non-positive groups', () => {
    expect(add(geo(8, 12, 8), [1, 4, 4, 8])).toThrow(/must divide/);
    expect(add(geo(8, 8, 0), [1, 4, 4, 8])).toThrow(/positive integer/);
  });

  it('accepts depthwise for any channel count and checks the weight size', () => {
    expect(packConv2dWeight(new Float32Array(5 * 9), geo(5, 5, 5)).length).toBe(8 * 9);
    expect(() => packConv2dWeight(new Float32Array(5 * 5 * 9), geo(5, 5, 5))).toThrow(/expected 5x1x3x3/);
  });

  it('rejects a residual of the wrong shape, PReLU together with an activation, and a bad slope count', () => {
    const g = new Graph();
    const input = g.input([1, 4, 4, 8]);
    const wrong = g.input([1, 4, 4, 4]);
    const params = { weight: fakeBuffer, geometry: geo(8, 8, 2), variant, label: 'bad' };
    expect(() => conv2d(g, input, params, { residual: { tensor: wrong, mode: 'afterActivation' } })).toThrow(/residual 1x4x4x4/);
    expect(() => conv2d(g, input, params, { prelu: fakeBuffer, activation: { kind: 'relu' } })).toThrow(/PReLU replaces/);
    expect(() => packPreluSlopes([0.1, 0.2], 8)).toThrow(InvalidInputError);
    expect(Array.from(packPreluSlopes([0.5], 3))).toEqual([0.5, 0.5, 0.5, 0]);
  });
});

describe('Conv2d layer with groups', () => {
  it('runs a depthwise 3x3 with a residual through forward()', async () => {
    const ctx = await getTestContext();
    const c = 6;
    const conv = new Conv2d(c, c, 3, { padding: 1, groups: c });
    expect(conv.weight.shape).toEqual([c, 1, 3, 3]);
    const wt = randomArray(c * 9, 51, 0.3);
    const b = randomArray(c, 52, 0.5);
    conv.weight.data = wt;
    conv.bias!.data = b;
    const x = randomArray(c * 5 * 7, 53);
    const g = new Graph();
    const input = g.input([1, 5, 7, c]);
    const y = conv.forward(new ForwardBuilder(ctx, g), input, {
      epilogue: { activation: { kind: 'relu' }, residual: { tensor: input, mode: 'beforeActivation' } },
    });
    g.output(y);
    const plan = await Plan.compile(ctx, g);
    plan.poison();
    const { outputs } = await plan.run([nchwToNhwcPadded(x, [1, 5, 7, c])]);
    plan.dispose();
    conv.release();
    const ref = conv2dRef(
      x,
      [1, c, 5, 7],
      wt,
      b,
      c,
      [3, 3],
      1,
      [1, 1],
      1,
      { kind: 'relu' },
      {
        groups: c,
        residual: { y: x, mode: 'beforeActivation' },
      },
    );
    expect(relL2(nhwcPaddedToNchw(outputs[0], y.shape), ref.y)).toBeLessThanOrEqual(1e-5);
  });

  it('rejects an invalid grouping at construction', () => {
    expect(() => new Conv2d(6, 12, 3, { groups: 3 })).toThrow(InvalidInputError);
  });
});
