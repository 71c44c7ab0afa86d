import { BufferUsage } from '../../src/gpu/flags';
import { describe, expect, it } from 'vitest';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw } from '../../src/gpu/tensor';
import { type Activation } from '../../src/kernels/activation';
import {
  CONV2D_TEST_VARIANTS,
  type Conv2dGeometry,
  type Conv2dVariant,
  conv2d,
  packBias,
  packConv2dWeight,
  selectConv2dVariant,
} from '../../src/kernels/conv2d';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';
import { conv2dRef } from '../helpers/reference';

interface Case {
  n?: number;
  cin: number;
  cout: number;
  h: number;
  w: number;
  k: [number, number];
  stride?: number;
  pad?: [number, number];
  dilation?: number;
  bias?: boolean;
  act?: Activation;
}

async function check(c: Case, variant: Conv2dVariant, seed: number): Promise<number> {
  const ctx = await getTestContext();
  const n = c.n ?? 1;
  const stride = c.stride ?? 1;
  const pad = c.pad ?? [Math.floor(c.k[0] / 2), Math.floor(c.k[1] / 2)];
  const dilation = c.dilation ?? 1;
  const act = c.act ?? { kind: 'none' };
  const x = randomArray(n * c.cin * c.h * c.w, seed);
  const wt = randomArray(c.cout * c.cin * c.k[0] * c.k[1], seed + 1, 1 / Math.sqrt(c.cin * c.k[0] * c.k[1]));
  const b = c.bias === false ? undefined : randomArray(c.cout, seed + 2, 0.5);
  const ref = conv2dRef(x, [n, c.cin, c.h, c.w], wt, b, c.cout, c.k, stride, pad, dilation, act);

  const geometry: Conv2dGeometry = {
    inChannels: c.cin,
    outChannels: c.cout,
    kernelSize: c.k,
    stride,
    padding: pad,
    dilation,
  };
  const g = new Graph();
  const input = g.input([n, c.h, c.w, c.cin]);
  const weight = ctx.createBufferWithData(packConv2dWeight(wt, geometry), BufferUsage.STORAGE, 'test weight');
  const bias = b ? ctx.createBufferWithData(packBias(b, c.cout), BufferUsage.STORAGE, 'test bias') : undefined;
  const y = conv2d(g, input, { weight, bias, geometry, variant, label: 'conv' }, { activation: act });
  g.output(y);
  const plan = await Plan.compile(ctx, g);
  plan.poison();
  const { outputs } = await plan.run([nchwToNhwcPadded(x, [n, c.h, c.w, c.cin])]);
  plan.dispose();
  weight.destroy();
  bias?.destroy();
  expect(y.shape).toEqual([n, ref.ho, ref.wo, c.cout]);
  // Padded channels must be exactly zero, not poison.
  const out = outputs[0];
  const cp = Math.ceil(c.cout / 4) * 4;
  for (let i = 0; i < out.length; i++) {
    if (i % cp >= c.cout && out[i] !== 0) throw new Error(`padded channel ${i % cp} holds ${out[i]}`);
  }
  return relL2(nhwcPaddedToNchw(out, y.shape), ref.y);
}

const CASES: [string, Case][] = [
  ['1x1 image, 3x3, 1→1', { cin: 1, cout: 1, h: 1, w: 1, k: [3, 3] }],
  ['7x13, 3x3, 1→64 relu', { cin: 1, cout: 64, h: 7, w: 13, k: [3, 3], act: { kind: 'relu' } }],
  ['7x13, 3x3, 64→1', { cin: 64, cout: 1, h: 7, w: 13, k: [3, 3] }],
  ['33x47, 3x3, 3→3', { cin: 3, cout: 3, h: 33, w: 47, k: [3, 3] }],
  ['33x47, 3x3, 64→64 relu', { cin: 64, cout: 64, h: 33, w: 47, k: [3, 3], act: { kind: 'relu' } }],
  ['9x11, 3x3, 5→7 no bias, batch 2', { n: 2, cin: 5, cout: 7, h: 9, w: 11, k: [3, 3], bias: false }],
  ['1x1 conv 13→6 sigmoid', { cin: 13, cout: 6, h: 5, w: 9, k: [1, 1], act: { kind: 'sigmoid' } }],
  ['2x2 stride 2, 8→16', { cin: 8, cout: 16, h: 10, w: 14, k: [2, 2], stride: 2, pad: [0, 0] }],
  ['7x7 stride 2 pad 3, 3→8', { cin: 3, cout: 8, h: 17, w: 19, k: [7, 7], stride: 2, pad: [3, 3] }],
  ['3x3 dilation 2, 4→4 leaky', { cin: 4, cout: 4, h: 12, w: 9, k: [3, 3], pad: [2, 2], dilation: 2, act: { kind: 'leakyRelu', alpha: 0.2 } }],
  ['5x3 kernel, asym pad, 6→5 tanh', { cin: 6, cout: 5, h: 8, w: 11, k: [5, 3], pad: [2, 1], act: { kind: 'tanh' } }],
  ['3x3 gelu 4→8', { cin: 4, cout: 8, h: 6, w: 7, k: [3, 3], act: { kind: 'gelu' } }],
];

const SOFTWARE = { vendor: '', architecture: '', device: '', description: 'llvmpipe', isSoftware: true };
const HARDWARE = { ...SOFTWARE, description: 'discrete', isSoftware: false };

function variantsFor(c: Case): Conv2dVariant[] {
  const geometry = { inChannels: c.cin, outChannels: c.cout, kernelSize: c.k, stride: 1, padding: [0, 0] as [number, number], dilation: 1 };
  const all = [...CONV2D_TEST_VARIANTS, selectConv2dVariant(SOFTWARE, geometry), selectConv2dVariant(HARDWARE, geometry)];
  const seen = new Set<string>();
  return all.filter((v) => {
    const k = `${v.px}/${v.cb}/${v.workgroupSize}`;
    return !seen.has(k) && seen.add(k) !== undefined;
  });
}

describe('conv2d against a float64 reference', () => {
  CASES.forEach(([name, c], i) => {
    for (const variant of variantsFor(c)) {
      it(`${name} [px${variant.px} cb${variant.cb} wg${variant.workgroupSize}]`, async () => {
        const err = await check(c, variant, 100 + i);
        expect(err).toBeLessThanOrEqual(1e-5);
      });
    }
  });
});
