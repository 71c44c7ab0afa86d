import { describe, expect, it } from 'vitest';
import { BufferUsage } from '../../src/gpu/flags';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { paddedChannels } from '../../src/gpu/tensor';
import { packRelativePositionBias, windowAttention } from '../../src/kernels/window-attention';
import { selectWindowAttentionVariant, type WindowAttentionVariant } from '../../src/kernels/window-attention-variants';
import { readFixtureF32, readFixtureJson } from '../helpers/fixture-loader';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';
import { wmsaRef } from '../helpers/reference-wmsa';
import { HARDWARE, SOFTWARE, WINDOW_ATTENTION_TEST_VARIANTS } from '../helpers/test-variants';

interface FixtureCase {
  name: string;
  h: number;
  w: number;
  heads: number;
  shifted: boolean;
  pixelStride: number;
  qkvSeed: number;
  qkvScale: number;
  biasSeed: number;
  biasScale: number;
  qkvHead: number[];
  biasHead: number[];
}

// Read up front (top-level await: the test cases are generated from the manifest) by a loader that works in Node
// and in the browser project alike.
const FIXTURE_DIR = 'test/fixtures/wmsa/';
const MANIFEST: { cases: FixtureCase[] } = await readFixtureJson(`${FIXTURE_DIR}cases.json`);
const OUTPUTS = new Map(
  await Promise.all(MANIFEST.cases.map(async (c) => [c.name, await readFixtureF32(`${FIXTURE_DIR}${c.name}.f32`)] as const)),
);
/** `WMSA_VERBOSE=1` prints the errors (Node only: the browser has no process.env). */
const VERBOSE = !!globalThis.process?.env.WMSA_VERBOSE;

function fixtureOutput(c: FixtureCase): Float32Array {
  return OUTPUTS.get(c.name)!;
}

/** Every `stride`-th pixel (all channels) of an NHWC [1, H, W, C] tensor, as the fixtures store it. */
function samplePixels(y: ArrayLike<number>, pixels: number, channels: number, stride: number): Float64Array {
  const out: number[] = [];
  for (let p = 0; p < pixels; p += stride) for (let k = 0; k < channels; k++) out.push(y[p * channels + k]);
  return Float64Array.from(out);
}

interface Inputs {
  n: number;
  h: number;
  w: number;
  heads: number;
  shifted: boolean;
  qkv: Float32Array;
  bias: Float32Array;
}

function fixtureInputs(c: FixtureCase): Inputs {
  const C = c.heads * 32;
  return {
    n: 1,
    h: c.h,
    w: c.w,
    heads: c.heads,
    shifted: c.shifted,
    qkv: Float32Array.from(randomArray(c.h * c.w * 3 * C, c.qkvSeed, c.qkvScale)),
    bias: Float32Array.from(randomArray(c.heads * 225, c.biasSeed, c.biasScale)),
  };
}

const refCache = new Map<string, Float64Array>();
function reference(key: string, x: Inputs): Float64Array {
  let r = refCache.get(key);
  if (!r) {
    r = wmsaRef(x.qkv, [x.n, x.h, x.w], x.heads, x.bias, x.shifted);
    refCache.set(key, r);
  }
  return r;
}

async function runKernel(x: Inputs, variant: WindowAttentionVariant, timing = false): Promise<{ y: Float32Array; gpuMs?: number }> {
  const ctx = await getTestContext();
  const C = x.heads * 32;
  const g = new Graph();
  const qkv = g.input([x.n, x.h, x.w, 3 * C], 'qkv');
  const bias = ctx.createBufferWithData(packRelativePositionBias(x.bias, x.heads), BufferUsage.STORAGE, 'rel bias');
  const y = windowAttention(g, qkv, { bias, heads: x.heads, shifted: x.shifted, variant, label: 'wmsa' });
  g.output(y);
  expect(y.shape).toEqual([x.n, x.h, x.w, C]);
  const plan = await Plan.compile(ctx, g);
  plan.poison();
  const { outputs, gpuMs } = await plan.run([x.qkv], { timing });
  plan.dispose();
  bias.destroy();
  const out = outputs[0];
  // C = heads·32 is a multiple of 4: no padded channels. Every element must have been written (no NaN poison).
  expect(paddedChannels(C)).toBe(C);
  expect(out.length).toBe(x.n * x.h * x.w * C);
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i])) throw new Error(`output element ${i} holds ${out[i]} (poison not overwritten)`);
  }
  return { y: out, gpuMs };
}

function variantsUnderTest(): WindowAttentionVariant[] {
  const all = [...WINDOW_ATTENTION_TEST_VARIANTS, selectWindowAttentionVariant(SOFTWARE), selectWindowAttentionVariant(HARDWARE)];
  const seen = new Set<string>();
  return all.filter((v) => {
    const k = `${v.mode}/${v.rows}`;
    return !seen.has(k) && seen.add(k) !== undefined;
  });
}

const tag = (v: WindowAttentionVariant) => (v.mode === 'workgroup' ? 'wg' : `direct rows${v.rows}`);

describe('WMSA references agree', () => {
  it('the mulberry32 inputs match the generator of the fixtures', () => {
    for (const c of MANIFEST.cases) {
      const x = fixtureInputs(c);
      expect(Array.from(x.qkv.subarray(0, 4))).toEqual(c.qkvHead);
      expect(Array.from(x.bias.subarray(0, 4))).toEqual(c.biasHead);
    }
  });

  for (const c of MANIFEST.cases) {
    it(`float64 TS reference vs PyTorch fixture ${c.name}`, () => {
      const x = fixtureInputs(c);
      const ref = reference(c.name, x);
      const sampled = samplePixels(ref, c.h * c.w, c.heads * 32, c.pixelStride);
      const err = relL2(sampled, fixtureOutput(c));
      if (VERBOSE) console.log(`${c.name}: TS reference vs torch relL2 ${err.toExponential(2)}`);
      expect(err).toBeLessThanOrEqual(1e-6);
    });
  }

  it('the fixtures tell wrong semantics apart (transposed bias, no shift, wrong reverse roll)', () => {
    const c = MANIFEST.cases.find((k) => k.name === 'sw_24x40_h2')!;
    const x = fixtureInputs(c);
    const fix = fixtureOutput(c);
    const sample = (y: Float64Array) => samplePixels(y, c.h * c.w, 64, c.pixelStride);
    // Bias indexed [h, r_k − r_q + 7, c_k − c_q + 7] instead (query and key swapped).
    const transposed = new Float32Array(x.bias.length);
    for (let h = 0; h < 2; h++) {
      for (let i = 0; i < 15; i++) for (let j = 0; j < 15; j++) transposed[(h * 15 + i) * 15 + j] = x.bias[(h * 15 + 14 - i) * 15 + 14 - j];
    }
    expect(relL2(sample(wmsaRef(x.qkv, [1, c.h, c.w], 2, transposed, true)), fix)).toBeGreaterThan(1e-2);
    expect(relL2(sample(wmsaRef(x.qkv, [1, c.h, c.w], 2, x.bias, false)), fix)).toBeGreaterThan(1e-2);
    // Reverse roll done as (−4, −4) again instead of (+4, +4): out'[i, j] = out[i + 8, j + 8].
    const right = wmsaRef(x.qkv, [1, c.h, c.w], 2, x.bias, true);
    const wrongRoll = new Float64Array(right.length);
    for (let i = 0; i < c.h; i++) {
      for (let j = 0; j < c.w; j++) {
        const src = (((i + 8) % c.h) * c.w + ((j + 8) % c.w)) * 64;
        for (let k = 0; k < 64; k++) wrongRoll[(i * c.w + j) * 64 + k] = right[src + k];
      }
    }
    expect(relL2(sample(wrongRoll), fix)).toBeGreaterThan(1e-2);
  });
});

describe('window attention kernel against the float64 and PyTorch references', () => {
  for (const variant of variantsUnderTest()) {
    for (const c of MANIFEST.cases) {
      it(`${c.name} [${tag(variant)}]`, async () => {
        const x = fixtureInputs(c);
        const { y } = await runKernel(x, variant);
        const errRef = relL2(y, reference(c.name, x));
        const errTorch = relL2(samplePixels(y, c.h * c.w, c.heads * 32, c.pixelStride), fixtureOutput(c));
        if (VERBOSE)
          console.log(`${c.name} [${tag(variant)}] relL2 vs TS ${errRef.toExponential(2)}, vs torch ${errTorch.toExponential(2)}`);
        expect(errRef).toBeLessThanOrEqual(1e-5);
        expect(errTorch).toBeLessThanOrEqual(1e-5);
      });
    }
  }

  // Batch 2 and four heads (level-3 SCUNet width), TS reference only. The last two have scores spread over
  // ±100 (|q|, |k| up to 10, bias up to 30), so the running max of the online softmax is raised, and the
  // accumulators rescaled, many times inside one row, not only at its first key.
  const extra: [string, Omit<Inputs, 'qkv' | 'bias'>, number?, number?][] = [
    ['batch 2, 16x24, 1 head, SW', { n: 2, h: 16, w: 24, heads: 1, shifted: true }],
    ['batch 2, 16x24, 1 head, W', { n: 2, h: 16, w: 24, heads: 1, shifted: false }],
    ['8x16, 4 heads, SW', { n: 1, h: 8, w: 16, heads: 4, shifted: true }],
    ['sharp scores, 16x24, 2 heads, SW', { n: 1, h: 16, w: 24, heads: 2, shifted: true }, 10, 30],
    ['sharp scores, 8x8, 1 head, W', { n: 1, h: 8, w: 8, heads: 1, shifted: false }, 10, 30],
  ];
  for (const variant of [selectWindowAttentionVariant(SOFTWARE), selectWindowAttentionVariant(HARDWARE)]) {
    extra.forEach(([name, s, qkvScale = 2, biasScale = 2], i) => {
      it(`${name} [${tag(variant)}]`, async () => {
        const C = s.heads * 32;
        const x: Inputs = {
          ...s,
          qkv: Float32Array.from(randomArray(s.n * s.h * s.w * 3 * C, 300 + i, qkvScale)),
          bias: Float32Array.from(randomArray(s.heads * 225, 400 + i, biasScale)),
        };
        const { y } = await runKernel(x, variant);
        const err = relL2(y, reference(name, x));
        if (VERBOSE) console.log(`${name} [${tag(variant)}] relL2 vs TS ${err.toExponential(2)}`);
        expect(err).toBeLessThanOrEqual(1e-5);
      });
    });
  }
});

describe('window attention API', () => {
  it('selects the barrier-free variant on CPU adapters and workgroup memory on GPUs', () => {
    expect(selectWindowAttentionVariant(SOFTWARE).mode).toBe('direct');
    expect(selectWindowAttentionVariant(HARDWARE).mode).toBe('workgroup');
  });

  it('rejects bad shapes, head counts, variants and bias tables', () => {
    const g = new Graph();
    const fake = {} as GPUBuffer;
    const v: WindowAttentionVariant = { mode: 'workgroup', rows: 1 };
    const p = { bias: fake, heads: 2, shifted: false, variant: v, label: 'wmsa' };
    expect(() => windowAttention(g, g.input([1, 12, 16, 192]), p)).toThrow(/not a multiple of the 8x8 window/);
    expect(() => windowAttention(g, g.input([1, 16, 16, 96]), p)).toThrow(/3·2·32 channels/);
    expect(() => windowAttention(g, g.input([1, 8, 8, 192]), { ...p, variant: { mode: 'direct', rows: 3 } })).toThrow(/rows/);
    expect(() => packRelativePositionBias(new Float32Array(225), 2)).toThrow(/expected 2x15x15/);
  });
});
