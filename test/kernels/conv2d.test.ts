import { BufferUsage } from '../../src/gpu/flags';
import { describe, expect, it } from 'vitest';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw } from '../../src/gpu/tensor';
import { conv2d } from '../../src/kernels/conv2d';
import { type Conv2dGeometry, packBias, packConv2dWeight } from '../../src/kernels/conv2d-geometry';
import { type Conv2dVariant, selectConv2dVariant } from '../../src/kernels/conv2d-variants';
import { type BindingLimits, convRowBands } from '../../src/kernels/conv2d-bands';
import { CONV2D_CASES, type Conv2dCase, conv2dVariantsFor, variantKey } from '../helpers/conv2d-cases';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';
import { conv2dRef } from '../helpers/reference';
import { SOFTWARE } from '../helpers/test-variants';

async function check(c: Conv2dCase, variant: Conv2dVariant, seed: number, bindingLimits?: BindingLimits): Promise<number> {
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
  const y = conv2d(g, input, { weight, bias, geometry, variant, label: 'conv', bindingLimits }, { activation: act });
  g.output(y);
  if (bindingLimits) expect(g.nodes.length).toBeGreaterThan(1); // really split into row bands
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

// Cold, lavapipe compiles a wide register-tiled shader of a large kernel (7×7 with px8..px32 rr) for one to
// two minutes; warm (Mesa's shader cache) it takes a second.
const COLD_COMPILE_MS = 400_000;

describe('conv2d against a float64 reference', () => {
  CONV2D_CASES.forEach(([name, c], i) => {
    for (const variant of conv2dVariantsFor(c)) {
      it(
        `${name} [${variantKey(variant)}]`,
        async () => {
          const err = await check(c, variant, 100 + i);
          expect(err).toBeLessThanOrEqual(1e-5);
        },
        COLD_COMPILE_MS,
      );
    }
  });
});

/** The smallest binding limit (in steps of 64 bytes) at which this case runs in at least two row bands. */
function smallLimits(c: Conv2dCase, align: number): BindingLimits {
  const stride = c.stride ?? 1;
  const dilation = c.dilation ?? 1;
  const pad = c.pad ?? [Math.floor(c.k[0] / 2), Math.floor(c.k[1] / 2)];
  const ho = Math.floor((c.h + 2 * pad[0] - dilation * (c.k[0] - 1) - 1) / stride) + 1;
  const wo = Math.floor((c.w + 2 * pad[1] - dilation * (c.k[1] - 1) - 1) / stride) + 1;
  const g = {
    h: c.h,
    ho,
    kernelH: c.k[0],
    stride,
    dilation,
    padTop: pad[0],
    inRowBytes: c.w * Math.ceil(c.cin / 4) * 16,
    outRowBytes: wo * Math.ceil(c.cout / 4) * 16,
  };
  for (let maxBytes = 64; maxBytes < 1 << 24; maxBytes += 64) {
    const bands = convRowBands(g, { maxBytes, align });
    if (bands && bands.length >= 2) return { maxBytes, align };
  }
  throw new Error('no banding limit found');
}

describe('conv2d in row bands (tensors larger than one binding) against a float64 reference', () => {
  const cases = CONV2D_CASES.filter(([, c]) => (c.n ?? 1) === 1 && c.h >= 6);
  cases.forEach(([name, c], i) => {
    for (const align of [16, 256]) {
      let limits: BindingLimits;
      try {
        limits = smallLimits(c, align);
      } catch {
        continue; // too few rows to split at this alignment
      }
      const geometry = {
        inChannels: c.cin,
        outChannels: c.cout,
        kernelSize: c.k,
        stride: c.stride ?? 1,
        padding: [0, 0] as [number, number],
        dilation: c.dilation ?? 1,
      };
      // The pixel-tile pick, and a channel-lanes tile of 2 rows (bands cut through its tile grid).
      const lanes: Conv2dVariant = { channelLanes: true, rows: 2, px: 3, cb: 1, workgroupSize: 8 };
      for (const variant of [selectConv2dVariant(SOFTWARE, geometry, 128), lanes]) {
        it(
          `${name}, offsets aligned to ${align} [${variantKey(variant)}]`,
          async () => {
            const ctx = await getTestContext();
            if (ctx.limits.minStorageBufferOffsetAlignment > align) return; // the device cannot bind at this alignment
            const err = await check(c, variant, 300 + i, limits);
            expect(err).toBeLessThanOrEqual(1e-5);
          },
          COLD_COMPILE_MS,
        );
      }
    }
  });

  it('bands cover every output row, read every input row they need, and respect the limit and alignment', () => {
    for (const [k, s, d, p] of [
      [3, 1, 1, 1],
      [7, 2, 1, 3],
      [3, 1, 2, 2],
      [2, 2, 1, 0],
      [5, 1, 1, 2],
    ]) {
      for (const align of [16, 256]) {
        const h = 97;
        const ho = Math.floor((h + 2 * p - d * (k - 1) - 1) / s) + 1;
        const g = { h, ho, kernelH: k, stride: s, dilation: d, padTop: p, inRowBytes: 48, outRowBytes: 80, resRowBytes: 112 };
        const limits = { maxBytes: 4096, align };
        const bands = convRowBands(g, limits)!;
        expect(bands.length).toBeGreaterThan(1);
        let next = 0;
        for (const b of bands) {
          expect(b.oy0).toBe(next);
          next = b.oy1;
          expect((b.r0 * g.inRowBytes) % align).toBe(0);
          expect((b.oy0 * g.outRowBytes) % align).toBe(0);
          expect((b.oy0 * g.resRowBytes) % align).toBe(0);
          expect(b.rows * g.inRowBytes).toBeLessThanOrEqual(limits.maxBytes);
          expect((b.oy1 - b.oy0) * g.resRowBytes).toBeLessThanOrEqual(limits.maxBytes);
          for (let oy = b.oy0; oy < b.oy1; oy++) {
            for (let ky = 0; ky < k; ky++) {
              const iy = oy * s - p + ky * d;
              if (iy < 0 || iy >= h) continue;
              // A real row the band needs lies in its window, where the shader finds it with the band's padding.
              expect(iy).toBeGreaterThanOrEqual(b.r0);
              expect(iy).toBeLessThan(b.r0 + b.rows);
              expect((oy - b.oy0) * s - b.padY + ky * d).toBe(iy - b.r0);
            }
          }
        }
        expect(next).toBe(ho);
      }
    }
    expect(
      convRowBands(
        { h: 10, ho: 10, kernelH: 3, stride: 1, dilation: 1, padTop: 1, inRowBytes: 64, outRowBytes: 64 },
        { maxBytes: 1 << 20, align: 16 },
      ),
    ).toBeNull();
    // One output row with its input rows cannot fit: the plan's chunked bindings take over.
    expect(
      convRowBands(
        { h: 10, ho: 10, kernelH: 3, stride: 1, dilation: 1, padTop: 1, inRowBytes: 4096, outRowBytes: 64 },
        { maxBytes: 8192, align: 16 },
      ),
    ).toBeNull();
  });
});
