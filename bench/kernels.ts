/**
 * Kernel microbenchmarks: one dispatch per plan (convolution 3×3 / 1×1 / 2×2 stride 2, transposed convolution
 * 2×2 stride 2, token Linear as a 1×1 convolution, SCUNet window attention W and SW) at given feature-map sizes,
 * with the variant the selector picks for this adapter. Reports the median time (GPU timestamp queries where
 * the device has them, wall time otherwise), p10–p90, GFLOP/s and an estimated GB/s, as a Markdown table and as
 * JSON together with the adapter's name, limits and features.
 *
 *   node dist/bench/kernels.js [--cases conv3x3_64,wmsa_c64] [--sizes 256x256,1024x768] [--runs 5] [--warmup 1]
 *     [--json out.json] [--conv-variant px16,cb4,wg64,uw] [--convt-variant subpixel,px16,cb4,wg64,uw]
 *     [--attn-variant direct,rows2]
 *
 * Sizes are feature-map sizes WxH (image convention: width × height); for the stride-2 and transposed
 * convolutions they are the input's size. Tensors larger than one storage binding (on lavapipe 128 MiB, i.e.
 * 1024×768 with more than 42 f32 channels) run as convolutions in row bands, or with the tensor split across
 * bindings (other kernels); a case that still exceeds a device limit is reported as skipped with the limit.
 */
import { parseBenchArgs } from './args';
import { LimitExceededError } from '../src/errors';
import type { GPUContext } from '../src/gpu/context';
import { BufferUsage } from '../src/gpu/flags';
import { Graph, type TensorValue } from '../src/gpu/graph';
import { createNodeContext, releaseNodeGPU } from '../src/gpu/node-gpu';
import { Plan } from '../src/gpu/plan';
import { type Shape4, tensorBytes, tensorElements } from '../src/gpu/tensor';
import { conv2d } from '../src/kernels/conv2d';
import { type Conv2dGeometry, conv2dOutputShape, packBias, packConv2dWeight } from '../src/kernels/conv2d-geometry';
import { selectConv2dVariant } from '../src/kernels/conv2d-variants';
import { convTranspose2d } from '../src/kernels/conv-transpose2d';
import { type ConvTranspose2dGeometry, packConvTranspose2dWeight } from '../src/kernels/conv-transpose2d-geometry';
import { selectConvTranspose2dVariant } from '../src/kernels/conv-transpose2d-variants';
import {
  packRelativePositionBias,
  WINDOW_ATTENTION_HEAD_DIM,
  WINDOW_ATTENTION_SIZE,
  windowAttention,
} from '../src/kernels/window-attention';
import { selectWindowAttentionVariant } from '../src/kernels/window-attention-variants';
import { parseConv2dVariant, parseConvTranspose2dVariant, parseWindowAttentionVariant } from './variant-text';
import { fmt, fmtRange, markdownTable, parseSize } from './report';
import { writeJson } from './write-json';
import { type Summary, summarize } from './stats';

const USAGE = `
  node dist/bench/kernels.js [--cases conv3x3_64,wmsa_c64] [--sizes 256x256,1024x768] [--runs 5] [--warmup 1]
    [--json out.json] [--conv-variant px16,cb4,wg64,uw] [--convt-variant subpixel,px16,cb4,wg64,uw]
    [--attn-variant direct,rows2]
`;

const BYTES_NOTE =
  'GB/s is an estimate: bytes = input read once + weights (and bias) read once + output written once, f32 with ' +
  'channels padded to 4; caches, re-reads of overlapping taps and padding are not counted.';
const FLOPS_NOTE =
  'GFLOP/s counts 2 FLOP per multiply-accumulate of the convolution / GEMM (attention: QKᵀ and AV only, softmax ' +
  'and the relative position bias ignored).';

/** What one case adds to the graph, for the record. */
interface Built {
  output: TensorValue;
  /** Bytes of the constant buffers the dispatch reads (weights, bias, relative position bias). */
  constBytes: number;
  variant: unknown;
  buffers: GPUBuffer[];
}

interface BenchCase {
  name: string;
  description: string;
  /** Channels of the graph input. */
  inChannels: number;
  /** Why this size cannot run (e.g. not a multiple of the window), or undefined. */
  unsupported?(h: number, w: number): string | undefined;
  flops(h: number, w: number): number;
  build(ctx: GPUContext, g: Graph, x: TensorValue, label: string): Built;
}

/** Deterministic, smallish values (the timings do not depend on them; this only avoids denormals and NaN). */
function pattern(n: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (((i * 7919) % 257) / 257 - 0.5) * scale;
  return a;
}

function storage(ctx: GPUContext, data: Float32Array, what: string): GPUBuffer {
  return ctx.createBufferWithData(data, BufferUsage.STORAGE, what);
}

function convCase(
  name: string,
  description: string,
  cin: number,
  cout: number,
  k: number,
  stride: number,
  pad: number,
  bias: boolean,
): BenchCase {
  const geometry: Conv2dGeometry = {
    inChannels: cin,
    outChannels: cout,
    kernelSize: [k, k],
    stride,
    padding: [pad, pad],
    dilation: 1,
  };
  const outSize = (s: number) => Math.floor((s + 2 * pad - k) / stride) + 1;
  return {
    name,
    description,
    inChannels: cin,
    flops: (h, w) => 2 * outSize(h) * outSize(w) * cout * cin * k * k,
    build(ctx, g, x, label) {
      const weight = packConv2dWeight(pattern(cout * cin * k * k, 2 / Math.sqrt(cin * k * k)), geometry);
      const buffers = [storage(ctx, weight, `${label} weight`)];
      let constBytes = weight.byteLength;
      if (bias) {
        const b = packBias(pattern(cout, 0.1), cout);
        buffers.push(storage(ctx, b, `${label} bias`));
        constBytes += b.byteLength;
      }
      const [, , wo] = conv2dOutputShape(x.shape, geometry);
      const variant = selectConv2dVariant(ctx, geometry, wo);
      const output = conv2d(g, x, {
        weight: buffers[0],
        bias: bias ? buffers[1] : undefined,
        geometry,
        variant,
        label,
        // As the Conv2d layer does: row bands when a tensor exceeds one binding (1024×768 × 64 ch on lavapipe).
        bindingLimits: { maxBytes: ctx.storageBindingLimit, align: ctx.limits.minStorageBufferOffsetAlignment },
      });
      return { output, constBytes, variant, buffers };
    },
  };
}

function convTransposeCase(name: string, description: string, cin: number, cout: number): BenchCase {
  const geometry: ConvTranspose2dGeometry = {
    inChannels: cin,
    outChannels: cout,
    kernelSize: [2, 2],
    stride: 2,
    padding: [0, 0],
    outputPadding: [0, 0],
  };
  return {
    name,
    description,
    inChannels: cin,
    flops: (h, w) => 2 * h * w * cin * cout * 4,
    build(ctx, g, x, label) {
      const weight = packConvTranspose2dWeight(pattern(cin * cout * 4, 2 / Math.sqrt(cin)), geometry);
      const buffers = [storage(ctx, weight, `${label} weight`)];
      const variant = selectConvTranspose2dVariant(ctx, geometry, x.shape[2]);
      const output = convTranspose2d(g, x, { weight: buffers[0], geometry, variant, label });
      return { output, constBytes: weight.byteLength, variant, buffers };
    },
  };
}

function attentionCase(name: string, description: string, channels: number, shifted: boolean): BenchCase {
  const heads = channels / WINDOW_ATTENTION_HEAD_DIM;
  const win = WINDOW_ATTENTION_SIZE;
  const tokens = win * win;
  return {
    name,
    description,
    inChannels: 3 * channels,
    unsupported: (h, w) => (h % win || w % win ? `feature map ${w}x${h} is not a multiple of the ${win}x${win} window` : undefined),
    // Per window and head: QKᵀ (64×64×32 MACs) and AV (the same), 2 FLOP per MAC.
    flops: (h, w) => 4 * tokens * tokens * WINDOW_ATTENTION_HEAD_DIM * heads * ((h / win) * (w / win)),
    build(ctx, g, x, label) {
      const rel = packRelativePositionBias(pattern(heads * (2 * win - 1) ** 2, 1), heads);
      const buffers = [storage(ctx, rel, `${label} relative position bias`)];
      const variant = selectWindowAttentionVariant(ctx);
      const output = windowAttention(g, x, { bias: buffers[0], heads, shifted, variant, label });
      return { output, constBytes: rel.byteLength, variant, buffers };
    },
  };
}

// SCUNet's shapes: level-0 convolutions at 64 channels, the 2×2 stride-2 down (bias-free) and the transposed
// up (bias-free), the block's qkv Linear C→3C and MLP C→4C, and window attention with C = 64 and 128.
const CASES: BenchCase[] = [
  convCase('conv3x3_64', 'conv 3×3 64→64 +bias', 64, 64, 3, 1, 1, true),
  convCase('conv3x3_128', 'conv 3×3 128→128 +bias', 128, 128, 3, 1, 1, true),
  convCase('conv1x1_64', 'conv 1×1 64→64 +bias', 64, 64, 1, 1, 0, true),
  convCase('down2x2s2_64', 'conv 2×2 s2 64→128 (SCUNet down)', 64, 128, 2, 2, 0, false),
  convTransposeCase('convT2x2s2_128', 'convT 2×2 s2 128→64 (SCUNet up)', 128, 64),
  convCase('linear_64_192', 'linear 64→192 (qkv, 1×1 conv)', 64, 192, 1, 1, 0, true),
  convCase('linear_128_512', 'linear 128→512 (MLP, 1×1 conv)', 128, 512, 1, 1, 0, true),
  attentionCase('wmsa_c64', 'W-MSA C=64 (2 heads)', 64, false),
  attentionCase('swmsa_c64', 'SW-MSA C=64 (2 heads)', 64, true),
  attentionCase('wmsa_c128', 'W-MSA C=128 (4 heads)', 128, false),
];

const { values } = parseBenchArgs(USAGE, {
  cases: { type: 'string' },
  sizes: { type: 'string', default: '256x256,1024x768' },
  runs: { type: 'string', default: '5' },
  warmup: { type: 'string', default: '1' },
  json: { type: 'string' },
  'conv-variant': { type: 'string' },
  'convt-variant': { type: 'string' },
  'attn-variant': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
});
if (values.help) {
  console.log(
    'node dist/bench/kernels.js [--cases a,b] [--sizes 256x256,1024x768] [--runs 5] [--warmup 1] [--json out.json]\n' +
      '  [--conv-variant px16,cb4,wg64,uw] [--convt-variant subpixel,px16,cb4,wg64,uw] [--attn-variant direct,rows2]\n' +
      `cases: ${CASES.map((c) => c.name).join(', ')}`,
  );
  process.exit(0);
}
const runs = Number(values.runs);
const warmup = Number(values.warmup);
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(warmup) || warmup < 0) {
  console.error('--runs must be ≥ 1 and --warmup ≥ 0');
  process.exit(2);
}
const sizes = values.sizes.split(',').map(parseSize);
let cases = CASES;
if (values.cases) {
  const wanted = values.cases.split(',').map((s) => s.trim());
  const unknown = wanted.filter((n) => !CASES.some((c) => c.name === n));
  if (unknown.length > 0) {
    console.error(`unknown case(s) ${unknown.join(', ')}; known: ${CASES.map((c) => c.name).join(', ')}`);
    process.exit(2);
  }
  cases = CASES.filter((c) => wanted.includes(c.name));
}
// Forced variants (`ctx.variantOverrides`, set once the context exists below), and their texts for the record.
const overrides: Record<string, string> = {};
const forced = {
  ...(values['conv-variant'] ? { conv2d: parseConv2dVariant(values['conv-variant']) } : {}),
  ...(values['convt-variant'] ? { convTranspose2d: parseConvTranspose2dVariant(values['convt-variant']) } : {}),
  ...(values['attn-variant'] ? { windowAttention: parseWindowAttentionVariant(values['attn-variant']) } : {}),
};
if (values['conv-variant']) overrides.conv2d = values['conv-variant'];
if (values['convt-variant']) overrides.convTranspose2d = values['convt-variant'];
if (values['attn-variant']) overrides.windowAttention = values['attn-variant'];

interface CaseResult {
  case: string;
  description: string;
  size: { width: number; height: number };
  inputShape: Shape4;
  outputShape?: Shape4;
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
  limit?: { name: string; requested: number; allowed: number };
  kernel?: string;
  variant?: unknown;
  flops: number;
  bytes?: number;
  compileMs?: number;
  /** Wall time of each warm-up run (not in the statistics). */
  warmupMs?: number[];
  timing?: 'gpu-timestamps' | 'wall';
  /** GPU time of the dispatch from timestamp queries (null when the device has none). */
  gpuMs?: Summary | null;
  /** Wall time of `plan.run`: input upload, the dispatch, output readback. */
  wallMs?: Summary;
  gflopPerSecond?: number;
  gbPerSecond?: number;
}

const ctx = await createNodeContext();
Object.assign(ctx.variantOverrides, forced);
console.log(`adapter: ${ctx.adapterName}`);
console.log(
  `limits: maxStorageBufferBindingSize ${ctx.limits.maxStorageBufferBindingSize}, maxBufferSize ${ctx.limits.maxBufferSize}; ` +
    `timestamps: ${ctx.hasTimestamps ? 'yes' : 'no (wall time: upload + dispatch + readback)'}`,
);
const results: CaseResult[] = [];

async function runCase(c: BenchCase, size: { width: number; height: number }): Promise<CaseResult> {
  const { width: w, height: h } = size;
  const inputShape: Shape4 = [1, h, w, c.inChannels];
  const base: CaseResult = { case: c.name, description: c.description, size, inputShape, status: 'ok', flops: c.flops(h, w) };
  const why = c.unsupported?.(h, w);
  if (why) return { ...base, status: 'skipped', reason: why };
  const g = new Graph();
  const x = g.input(inputShape, `${c.name} input`);
  let built: Built | undefined;
  let plan: Plan | undefined;
  try {
    built = c.build(ctx, g, x, c.name);
    g.output(built.output);
    const kernel = g.nodes[0].kernel.label;
    const bytes = tensorBytes(inputShape) + built.constBytes + tensorBytes(built.output.shape);
    const info = { ...base, outputShape: built.output.shape, kernel, variant: built.variant, bytes };
    const t0 = performance.now();
    plan = await Plan.compile(ctx, g);
    const compileMs = performance.now() - t0;
    const input = pattern(tensorElements(inputShape), 1);
    // The first run also pays for lazy shader JIT on some drivers: recorded apart, never in the statistics.
    const warmupMs: number[] = [];
    for (let i = 0; i < warmup; i++) {
      const t = performance.now();
      await plan.run([input]);
      warmupMs.push(performance.now() - t);
    }
    const wall: number[] = [];
    const gpu: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      const r = await plan.run([input], { timing: true });
      wall.push(performance.now() - t);
      if (r.gpuMs !== undefined) gpu.push(r.gpuMs);
    }
    const useGpu = gpu.length === runs;
    const ms = useGpu ? summarize(gpu).median : summarize(wall).median;
    return {
      ...info,
      compileMs,
      warmupMs,
      timing: useGpu ? 'gpu-timestamps' : 'wall',
      gpuMs: useGpu ? summarize(gpu) : null,
      wallMs: summarize(wall),
      gflopPerSecond: base.flops / ms / 1e6,
      gbPerSecond: bytes / ms / 1e6,
    };
  } catch (e) {
    const kernel = g.nodes[0]?.kernel.label;
    const extra = { kernel, variant: built?.variant, outputShape: built?.output.shape };
    if (e instanceof LimitExceededError) {
      return {
        ...base,
        ...extra,
        status: 'skipped',
        reason: `${e.limit}: needs ${e.requested} bytes (${fmt(e.requested / 2 ** 20)} MiB), device allows ${e.allowed} (${fmt(e.allowed / 2 ** 20)} MiB)`,
        limit: { name: e.limit, requested: e.requested, allowed: e.allowed },
      };
    }
    if (ctx.isLost) throw e;
    const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return { ...base, ...extra, status: 'failed', reason: message };
  } finally {
    plan?.dispose();
    for (const b of built?.buffers ?? []) b.destroy();
    // Big feature maps: give the pooled activation buffers back between cases instead of hoarding them.
    ctx.buffers.trim();
  }
}

for (const size of sizes) {
  for (const c of cases) {
    const r = await runCase(c, size);
    results.push(r);
    const what = `${c.name} ${size.width}x${size.height}`;
    if (r.status === 'ok') {
      const med = r.gpuMs?.median ?? r.wallMs!.median;
      console.error(`${what}: ${fmt(med)} ms (${r.timing}), ${fmt(r.gflopPerSecond)} GFLOP/s, compile ${fmt(r.compileMs)} ms`);
    } else console.error(`${what}: ${r.status}: ${r.reason}`);
  }
}

const rows = results.map((r) => {
  const s = r.gpuMs ?? r.wallMs;
  const size = `${r.size.width}×${r.size.height}`;
  if (r.status !== 'ok' || !s) {
    const why = r.limit ? `${r.limit.name} ${fmt(r.limit.requested / 2 ** 20)} MiB > ${fmt(r.limit.allowed / 2 ** 20)} MiB` : r.reason;
    return [r.description, size, r.kernel ?? '–', `${r.status}: ${why}`, '–', '–', '–', '–'];
  }
  return [
    r.description,
    size,
    r.kernel ?? '–',
    fmt(s.median),
    fmtRange(s.p10, s.p90),
    fmt(r.gflopPerSecond),
    fmt(r.gbPerSecond),
    r.timing!,
  ];
});
console.log();
console.log(markdownTable(['case', 'size (W×H)', 'variant', 'median ms', 'p10–p90 ms', 'GFLOP/s', 'GB/s (est.)', 'timing source'], rows));
console.log();
console.log(`${FLOPS_NOTE} ${BYTES_NOTE}`);
console.log(`runs: ${runs} after ${warmup} warm-up; wall time = upload + dispatch + readback.`);

const report = {
  benchmark: 'kernels',
  date: new Date().toISOString(),
  adapterName: ctx.adapterName,
  device: ctx.describe(),
  timestamps: ctx.hasTimestamps,
  runs,
  warmup,
  sizes,
  overrides,
  notes: { flops: FLOPS_NOTE, bytes: BYTES_NOTE, wall: 'wall time = input upload + dispatch + output readback' },
  results,
};
console.log(JSON.stringify(report));
if (values.json) writeJson(values.json, report);

ctx.dispose();
releaseNodeGPU();
process.exit(0);
