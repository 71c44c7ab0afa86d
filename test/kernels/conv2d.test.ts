import { BufferUsage } from '../../src/gpu/flags';
import { describe, expect, it } from 'vitest';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw } from '../../src/gpu/tensor';
import { type Conv2dGeometry, type Conv2dVariant, conv2d, packBias, packConv2dWeight } from '../../src/kernels/conv2d';
import { CONV2D_CASES, type Conv2dCase, conv2dVariantsFor } from '../helpers/conv2d-cases';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';
import { conv2dRef } from '../helpers/reference';

async function check(c: Conv2dCase, variant: Conv2dVariant, seed: number): Promise<number> {
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

describe('conv2d against a float64 reference', () => {
  CONV2D_CASES.forEach(([name, c], i) => {
    for (const variant of conv2dVariantsFor(c)) {
      it(`${name} [px${variant.px} cb${variant.cb} wg${variant.workgroupSize}${variant.uniformWeights ? ' uw' : ''}${variant.rowReuse ? ' rr' : ''}]`, async () => {
        const err = await check(c, variant, 100 + i);
        expect(err).toBeLessThanOrEqual(1e-5);
      });
    }
  });
});
