/**
 * The adapter's limit, measured with our own kernels: the best f32 GEMM throughput over the matmul variants
 * (src/kernels/matmul.ts) and the copy bandwidth (copyBufferToBuffer, and a vec4 copy shader). Benchmarks call
 * `measureRoofline(ctx, { quick: true })` to report a network's GFLOP/s as a fraction of what this adapter can
 * do with our kernels; `bench/roofline.ts` is the command-line front end.
 *
 * Timing: GPU timestamp queries where the device has them, wall time otherwise. The GEMM runs as a one-node
 * plan, timed as the other kernel benchmarks are (Plan.run with timing). A buffer copy cannot carry timestamps
 * itself, so it is recorded between two empty compute passes that write them.
 */
import type { GPUContext } from '../src/gpu/context';
import { BufferUsage } from '../src/gpu/flags';
import { spreadWorkgroups } from '../src/gpu/dispatch';
import { Graph } from '../src/gpu/graph';
import { Plan } from '../src/gpu/plan';
import { readMapped } from '../src/gpu/recorder';
import { packUniforms } from '../src/gpu/shader';
import { paddedChannels } from '../src/gpu/tensor';
import { type MatmulVariant, matmul, matmulVariantTags, matmulWorkgroupBytes, selectMatmulVariant } from '../src/kernels/matmul';
import { conv2d } from '../src/kernels/conv2d';
import { type Conv2dGeometry, packConv2dWeight } from '../src/kernels/conv2d-geometry';
import { selectConv2dVariant } from '../src/kernels/conv2d-variants';
import { variantTags } from '../src/kernels/conv2d.wgsl';
import { type Summary, summarize } from './stats';

/**
 * The variants the roofline benchmark tries: register tiles of several shapes with B or A workgroup-uniform
 * (what CPU adapters like), a square-workgroup register tile, and the classic staged GPU tilings (16×16 and 8×8
 * workgroups, 4×4 to 8×8 outputs per invocation).
 */
export const MATMUL_BENCH_VARIANTS: readonly MatmulVariant[] = [
  // Registers only, B workgroup-uniform (wgX = 1).
  { rows: 4, cols: 4, wgX: 1, wgY: 64 },
  { rows: 2, cols: 4, wgX: 1, wgY: 64 },
  { rows: 4, cols: 2, wgX: 1, wgY: 64 },
  { rows: 8, cols: 2, wgX: 1, wgY: 64 },
  { rows: 8, cols: 4, wgX: 1, wgY: 64 },
  { rows: 1, cols: 8, wgX: 1, wgY: 64 },
  { rows: 4, cols: 4, wgX: 1, wgY: 16 },
  { rows: 8, cols: 8, wgX: 1, wgY: 32 },
  { rows: 16, cols: 4, wgX: 1, wgY: 32 },
  { rows: 8, cols: 8, wgX: 1, wgY: 16 },
  // Registers only, A workgroup-uniform (wgY = 1).
  { rows: 4, cols: 4, wgX: 64, wgY: 1 },
  { rows: 8, cols: 1, wgX: 64, wgY: 1 },
  // Registers only, square workgroup (platform.md's 5.3 GFLOP/s shape: vec4 columns × 4 rows).
  { rows: 4, cols: 1, wgX: 8, wgY: 8 },
  { rows: 4, cols: 4, wgX: 8, wgY: 8 },
  // Workgroup-memory staging, as on GPUs.
  { rows: 4, cols: 1, wgX: 16, wgY: 16, sharedK: 16 },
  { rows: 8, cols: 2, wgX: 8, wgY: 8, sharedK: 16 },
  { rows: 4, cols: 2, wgX: 16, wgY: 16, sharedK: 16 },
  { rows: 8, cols: 2, wgX: 16, wgY: 16, sharedK: 8 },
];

export interface GemmSize {
  m: number;
  n: number;
  k: number;
}

export interface RooflineOptions {
  /** Fewer variants (the adapter's pick and the best alternatives), 512³, 1 warm-up, 2 runs, 64 MiB copies. */
  quick?: boolean;
  /** GEMM sizes; default 1024³ (quick: 512³). */
  sizes?: GemmSize[];
  /** Matmul variants to try; default MATMUL_BENCH_VARIANTS (quick: QUICK_VARIANTS for the adapter). */
  variants?: readonly MatmulVariant[];
  /** Timed runs per measurement (default 3, quick 2) after `warmup` untimed ones (default 1). */
  runs?: number;
  warmup?: number;
  /** Bytes per copy; default 256 MiB (quick 64 MiB), lowered to what the device allows. */
  copyBytes?: number;
  /** Sides of the square maps for the 3×3 convolutions timed as implicit GEMMs; default 256 (quick 128). */
  convSides?: number[];
  /** Skip the GEMM or the copies. */
  skipGemm?: boolean;
  skipCopy?: boolean;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface GemmResult {
  /** A plain GEMM (src/kernels/matmul.ts), or a 3×3 convolution counted as the implicit GEMM it is. */
  kernel: 'matmul' | 'conv2d';
  variant: string;
  size: GemmSize;
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
  flops: number;
  compileMs?: number;
  /** Wall time of each untimed warm-up run (the first may include the driver's shader compilation). */
  warmupMs?: number[];
  timing?: 'gpu-timestamps' | 'wall';
  /** Time of the dispatch alone (timestamps), or wall time of upload + dispatch + readback. */
  ms?: Summary;
  wallMs?: Summary;
  gflops?: number;
  /** Largest relative error of sampled output entries against a float64 dot product (a wrong kernel is not fast). */
  sampledRelError?: number;
}

export interface CopyResult {
  method: 'copyBufferToBuffer' | 'vec4 copy shader';
  bytes: number;
  status: 'ok' | 'failed';
  reason?: string;
  timing?: 'gpu-timestamps' | 'wall';
  ms?: Summary;
  wallMs?: Summary;
  /** (read + write bytes) / time. */
  gbps?: number;
}

export interface RooflineResult {
  schema: 2;
  adapterName: string;
  timestamps: boolean;
  /** Best GEMM GFLOP/s over the variants and sizes, its variant tags and size. */
  gflops: number | null;
  variant: string | null;
  gemmSize: GemmSize | null;
  /** Best copy bandwidth in GB/s (read + write bytes), and the method that reached it. */
  gbps: number | null;
  copyMethod: string | null;
  runs: number;
  warmup: number;
  gemm: GemmResult[];
  copy: CopyResult[];
}

/**
 * Quick mode's variants: the adapter's pick plus the runners-up of the full list on that kind of adapter.
 * Software: measured on lavapipe (see bench/roofline.ts). Hardware: the staged GPU tilings (untuned).
 */
export function quickVariants(isSoftware: boolean): MatmulVariant[] {
  const pick = selectMatmulVariant({ adapter: { vendor: '', architecture: '', device: '', description: '', isSoftware } });
  const others: MatmulVariant[] = isSoftware
    ? [
        { rows: 16, cols: 4, wgX: 1, wgY: 32 },
        { rows: 4, cols: 2, wgX: 1, wgY: 64 },
      ]
    : [
        { rows: 4, cols: 1, wgX: 16, wgY: 16, sharedK: 16 },
        { rows: 8, cols: 2, wgX: 16, wgY: 16, sharedK: 8 },
      ];
  const seen = new Set<string>();
  return [pick, ...others].filter((v) => !seen.has(matmulVariantTags(v)) && seen.add(matmulVariantTags(v)) !== undefined);
}

const MIB = 2 ** 20;

export async function measureRoofline(ctx: GPUContext, options: RooflineOptions = {}): Promise<RooflineResult> {
  const quick = options.quick ?? false;
  const runs = options.runs ?? (quick ? 2 : 3);
  const warmup = options.warmup ?? 1;
  const log = options.log ?? (() => undefined);
  const sizes = options.sizes ?? [quick ? { m: 512, n: 512, k: 512 } : { m: 1024, n: 1024, k: 1024 }];
  const variants = options.variants ?? (quick ? quickVariants(ctx.adapter.isSoftware) : MATMUL_BENCH_VARIANTS);
  const gemm: GemmResult[] = [];
  if (!options.skipGemm) {
    for (const size of sizes) gemm.push(...(await measureGemms(ctx, variants, size, runs, warmup, log)));
    for (const side of options.convSides ?? [quick ? 128 : 256]) {
      const convs = [64, 128].map((c) => () => prepareConvGemm(ctx, side, c, warmup));
      gemm.push(...(await timeInRounds(ctx, 'implicit GEMM', convs, runs, log)));
    }
  }
  const copy: CopyResult[] = [];
  if (!options.skipCopy) {
    const wanted = options.copyBytes ?? (quick ? 64 : 256) * MIB;
    for (const method of ['copyBufferToBuffer', 'vec4 copy shader'] as const) {
      const r = await measureCopy(ctx, method, wanted, runs, warmup);
      copy.push(r);
      log(
        r.status === 'ok'
          ? `${method} ${(r.bytes / MIB).toFixed(0)} MiB: ${r.ms!.median.toFixed(2)} ms, ${r.gbps!.toFixed(2)} GB/s`
          : `${method}: failed: ${r.reason}`,
      );
    }
  }
  const bestGemm = best(gemm, (r) => r.gflops);
  const bestCopy = best(copy, (r) => r.gbps);
  return {
    schema: 2,
    adapterName: ctx.adapterName,
    timestamps: ctx.hasTimestamps,
    gflops: bestGemm?.gflops ?? null,
    variant: bestGemm?.variant ?? null,
    gemmSize: bestGemm?.size ?? null,
    gbps: bestCopy?.gbps ?? null,
    copyMethod: bestCopy?.method ?? null,
    runs,
    warmup,
    gemm,
    copy,
  };
}

function best<T extends { status: string }>(xs: T[], value: (x: T) => number | undefined): T | undefined {
  let out: T | undefined;
  for (const x of xs) if (x.status === 'ok' && (value(x) ?? -1) > (out ? (value(out) ?? -1) : -1)) out = x;
  return out;
}

/** Deterministic values in [-1, 1) (xorshift), so sampled outputs can be checked against float64 dot products. */
function randomMatrix(rows: number, cols: number, seed: number): Float32Array {
  const cp = paddedChannels(cols);
  const out = new Float32Array(rows * cp);
  let s = seed >>> 0 || 1;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      out[r * cp + c] = (s >>> 0) / 2 ** 31 - 1;
    }
  }
  return out;
}

/** A variant ready to time: its compiled one-node plan, or why it cannot run. */
interface PreparedGemm {
  result: GemmResult;
  plan?: Plan;
  inputs: Float32Array[];
  /** Frees what the plan uses but does not own (the convolution's weights). */
  release?: () => void;
  gpu: number[];
  wall: number[];
}

/**
 * Times every variant at one size. All plans are compiled and warmed up first, then the timed runs go in
 * rounds (each round runs every variant once), so a change in the machine's load — the VMs we run on are
 * shared — spreads over all variants instead of favouring whichever happened to run in a quiet minute.
 */
async function measureGemms(
  ctx: GPUContext,
  variants: readonly MatmulVariant[],
  size: GemmSize,
  runs: number,
  warmup: number,
  log: (line: string) => void,
): Promise<GemmResult[]> {
  const { m, n, k } = size;
  const inputs = [randomMatrix(m, k, 1), randomMatrix(k, n, 2)];
  return timeInRounds(
    ctx,
    `matmul ${m}x${n}x${k}`,
    variants.map((v) => () => prepareGemm(ctx, v, size, inputs, warmup)),
    runs,
    log,
  );
}

/**
 * Compiles and warms up every candidate, then times them in rounds (each round runs every candidate once), so
 * a change in the machine's load — the VMs we run on are shared — spreads over all of them instead of favouring
 * whichever happened to run in a quiet minute.
 */
async function timeInRounds(
  ctx: GPUContext,
  what: string,
  candidates: (() => Promise<PreparedGemm>)[],
  runs: number,
  log: (line: string) => void,
): Promise<GemmResult[]> {
  const prepared: PreparedGemm[] = [];
  try {
    for (const prepare of candidates) {
      const p = await prepare();
      prepared.push(p);
      const r = p.result;
      if (r.status !== 'ok') log(`${what} ${r.variant}: ${r.status}: ${r.reason}`);
      else log(`${what} ${r.variant}: compiled in ${fmtSeconds(r.compileMs)}, warm-up ${r.warmupMs!.map(fmtSeconds).join(' ')}`);
    }
    for (let round = 0; round < runs; round++) {
      for (const p of prepared) {
        if (!p.plan) continue;
        try {
          const t = performance.now();
          const r = await p.plan.run(p.inputs, { timing: true });
          p.wall.push(performance.now() - t);
          if (r.gpuMs !== undefined) p.gpu.push(r.gpuMs);
        } catch (e) {
          if (ctx.isLost) throw e;
          p.result = { ...p.result, status: 'failed', reason: errorText(e) };
          p.plan.dispose();
          p.plan = undefined;
        }
      }
    }
  } finally {
    for (const p of prepared) {
      p.plan?.dispose();
      p.release?.();
    }
    ctx.buffers.trim();
  }
  return prepared.map((p) => {
    if (p.result.status !== 'ok') return p.result;
    const useGpu = p.gpu.length === runs;
    const ms = summarize(useGpu ? p.gpu : p.wall);
    const r: GemmResult = {
      ...p.result,
      timing: useGpu ? 'gpu-timestamps' : 'wall',
      ms,
      wallMs: summarize(p.wall),
      gflops: p.result.flops / ms.median / 1e6,
    };
    log(`${what} ${r.variant}: ${ms.median.toFixed(1)} ms, ${r.gflops!.toFixed(2)} GFLOP/s`);
    return r;
  });
}

/**
 * A 3×3 convolution (stride 1, pad 1) as an implicit GEMM — M = H·W pixels, N = Cout, K = 9·Cin — with the
 * variant the conv2d table picks for it: the GEMM our networks actually run, and on CPU adapters our fastest one
 * (each gathered input feeds three taps), so it belongs in the adapter's compute roof.
 */
async function prepareConvGemm(ctx: GPUContext, side: number, channels: number, warmup: number): Promise<PreparedGemm> {
  const geometry: Conv2dGeometry = {
    inChannels: channels,
    outChannels: channels,
    kernelSize: [3, 3],
    stride: 1,
    padding: [1, 1],
    dilation: 1,
  };
  const variant = selectConv2dVariant(ctx, geometry, side);
  const size = { m: side * side, n: channels, k: 9 * channels };
  const base: GemmResult = {
    kernel: 'conv2d',
    variant: `conv3x3 ${channels}→${channels} ${side}² ${variantTags(variant)}`,
    size,
    status: 'ok',
    flops: 2 * size.m * size.n * size.k,
  };
  const x = randomMatrix(side * side, channels, 3);
  const w = randomMatrix(channels * channels * 9, 1, 4).filter((_, i) => i % 4 === 0);
  const owned: GPUBuffer[] = [];
  let plan: Plan | undefined;
  try {
    const weight = ctx.createBufferWithData(packConv2dWeight(w, geometry), BufferUsage.STORAGE, 'roofline conv weight');
    owned.push(weight);
    const g = new Graph();
    const input = g.input([1, side, side, channels], 'x');
    g.output(conv2d(g, input, { weight, geometry, variant, label: 'conv' }));
    const t0 = performance.now();
    plan = await Plan.compile(ctx, g);
    const compileMs = performance.now() - t0;
    const warmupMs: number[] = [];
    let sampledRelError = Number.NaN;
    for (let i = 0; i < Math.max(1, warmup); i++) {
      const t = performance.now();
      const { outputs } = await plan.run([x]);
      warmupMs.push(performance.now() - t);
      if (i === 0) sampledRelError = sampleConvError(x, w, outputs[0], side, channels);
    }
    const result = { ...base, compileMs, warmupMs, sampledRelError };
    if (!(sampledRelError <= 1e-4)) {
      plan.dispose();
      weight.destroy();
      return {
        result: { ...result, status: 'failed', reason: `wrong result: sampled relative error ${sampledRelError}` },
        inputs: [x],
        gpu: [],
        wall: [],
      };
    }
    return { result, plan, inputs: [x], release: () => weight.destroy(), gpu: [], wall: [] };
  } catch (e) {
    plan?.dispose();
    for (const b of owned) b.destroy();
    if (ctx.isLost) throw e;
    return { result: { ...base, status: 'failed', reason: errorText(e) }, inputs: [x], gpu: [], wall: [] };
  }
}

/** As sampleError, for the 3×3 zero-padded convolution (NHWC input, weight [Cout][Cin][3][3]). */
function sampleConvError(x: Float32Array, w: Float32Array, y: Float32Array, side: number, c: number): number {
  let worst = 0;
  for (let s = 0; s < 64; s++) {
    const pix = (s * 7919) % (side * side);
    const oy = Math.floor(pix / side);
    const ox = pix % side;
    const co = (s * 104729 + 13) % c;
    let ref = 0;
    let nx = 0;
    let nw = 0;
    for (let ky = 0; ky < 3; ky++) {
      for (let kx = 0; kx < 3; kx++) {
        const iy = oy + ky - 1;
        const ix = ox + kx - 1;
        for (let ci = 0; ci < c; ci++) {
          const wv = w[((co * c + ci) * 3 + ky) * 3 + kx];
          const xv = iy >= 0 && iy < side && ix >= 0 && ix < side ? x[(iy * side + ix) * c + ci] : 0;
          ref += xv * wv;
          nx += xv * xv;
          nw += wv * wv;
        }
      }
    }
    const err = Math.abs(y[pix * c + co] - ref) / Math.sqrt(nx * nw || 1);
    if (!(err <= worst)) worst = err;
  }
  return worst;
}

function fmtSeconds(ms: number | undefined): string {
  return ms === undefined ? '–' : `${(ms / 1000).toFixed(1)} s`;
}

function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** Compiles one variant's plan and runs it `warmup` times (at least once, to check a sample of its output). */
async function prepareGemm(
  ctx: GPUContext,
  v: MatmulVariant,
  size: GemmSize,
  inputs: Float32Array[],
  warmup: number,
): Promise<PreparedGemm> {
  const { m, n, k } = size;
  const base: GemmResult = { kernel: 'matmul', variant: matmulVariantTags(v), size, status: 'ok', flops: 2 * m * n * k };
  const limits = ctx.limits;
  const skipped = (reason: string): PreparedGemm => ({ result: { ...base, status: 'skipped', reason }, inputs, gpu: [], wall: [] });
  if (matmulWorkgroupBytes(v) > limits.maxComputeWorkgroupStorageSize) {
    return skipped(`needs ${matmulWorkgroupBytes(v)} B of workgroup memory, device allows ${limits.maxComputeWorkgroupStorageSize}`);
  }
  if (
    v.wgX * v.wgY > limits.maxComputeInvocationsPerWorkgroup ||
    v.wgX > limits.maxComputeWorkgroupSizeX ||
    v.wgY > limits.maxComputeWorkgroupSizeY
  ) {
    return skipped(`workgroup ${v.wgX}x${v.wgY} exceeds the device's limits`);
  }
  let plan: Plan | undefined;
  try {
    const g = new Graph();
    const a = g.input([1, 1, m, k], 'A');
    const b = g.input([1, 1, k, n], 'B');
    g.output(matmul(g, a, b, { variant: v, label: 'matmul' }));
    const t0 = performance.now();
    plan = await Plan.compile(ctx, g);
    const compileMs = performance.now() - t0;
    // The first run may also pay for the driver's lazy shader compilation: timed apart, never in the statistics.
    const warmupMs: number[] = [];
    let sampledRelError = Number.NaN;
    for (let i = 0; i < Math.max(1, warmup); i++) {
      const t = performance.now();
      const { outputs } = await plan.run(inputs);
      warmupMs.push(performance.now() - t);
      if (i === 0) sampledRelError = sampleError(inputs[0], inputs[1], outputs[0], size);
    }
    const result = { ...base, compileMs, warmupMs, sampledRelError };
    if (!(sampledRelError <= 1e-4)) {
      plan.dispose();
      return {
        result: { ...result, status: 'failed', reason: `wrong result: sampled relative error ${sampledRelError}` },
        inputs,
        gpu: [],
        wall: [],
      };
    }
    return { result, plan, inputs, gpu: [], wall: [] };
  } catch (e) {
    plan?.dispose();
    if (ctx.isLost) throw e;
    return { result: { ...base, status: 'failed', reason: errorText(e) }, inputs, gpu: [], wall: [] };
  }
}

/** Largest |got − ref| / (|A row|·|B column|) over 64 sampled entries: scale-free, and exact products give ~1e-7. */
function sampleError(a: Float32Array, b: Float32Array, c: Float32Array, { m, n, k }: GemmSize): number {
  const kp = paddedChannels(k);
  const np = paddedChannels(n);
  let worst = 0;
  for (let s = 0; s < 64; s++) {
    const i = (s * 7919) % m;
    const j = (s * 104729 + 13) % n;
    let ref = 0;
    let na = 0;
    let nb = 0;
    for (let q = 0; q < k; q++) {
      const x = a[i * kp + q];
      const y = b[q * np + j];
      ref += x * y;
      na += x * x;
      nb += y * y;
    }
    const err = Math.abs(c[i * np + j] - ref) / Math.sqrt(na * nb || 1);
    if (!(err <= worst)) worst = err; // NaN propagates as the worst
  }
  return worst;
}

const COPY_WORKGROUP = 256;
/** vec4s each invocation copies, strided by the grid so neighbouring invocations touch neighbouring addresses. */
const COPY_PER_INVOCATION = 4;

const COPY_WGSL = `struct Params { count: u32, stride: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(${COPY_WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * ${COPY_WORKGROUP}u + lid;
${Array.from(
  { length: COPY_PER_INVOCATION },
  (_, s) => `  if (i + ${s}u * p.stride < p.count) { dst[i + ${s}u * p.stride] = src[i + ${s}u * p.stride]; }`,
).join('\n')}
}`;

async function measureCopy(
  ctx: GPUContext,
  method: CopyResult['method'],
  wanted: number,
  runs: number,
  warmup: number,
): Promise<CopyResult> {
  const limits = ctx.limits;
  // Whole 256-byte units, within one buffer (copies) or one binding (the shader).
  const cap = method === 'copyBufferToBuffer' ? limits.maxBufferSize : limits.maxStorageBufferBindingSize;
  const bytes = Math.floor(Math.min(wanted, cap) / 256) * 256;
  const base: CopyResult = { method, bytes, status: 'ok' };
  const device = ctx.device;
  const owned: { destroy(): void }[] = [];
  try {
    const usage = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;
    const src = ctx.createBuffer({ size: bytes, usage }, 'roofline copy source');
    owned.push(src);
    const dst = ctx.createBuffer({ size: bytes, usage }, 'roofline copy destination');
    owned.push(dst);
    // Touch the source once so the copy reads committed memory, not a lazily zeroed page.
    const fill = new Float32Array(Math.min(bytes, 16 * MIB) / 4).fill(1);
    for (let off = 0; off < bytes; off += fill.byteLength) {
      device.queue.writeBuffer(src, off, fill.buffer, 0, Math.min(fill.byteLength, bytes - off));
    }
    let record: (pass: GPUCommandEncoder) => void;
    if (method === 'copyBufferToBuffer') {
      record = (encoder) => encoder.copyBufferToBuffer(src, 0, dst, 0, bytes);
    } else {
      const kernel = await ctx.pipelines.get({ label: `roofline vec4 copy[wg${COPY_WORKGROUP},v${COPY_PER_INVOCATION}]`, code: COPY_WGSL });
      const count = bytes / 16;
      const workgroups = Math.ceil(count / (COPY_WORKGROUP * COPY_PER_INVOCATION));
      const grid = spreadWorkgroups(workgroups, limits.maxComputeWorkgroupsPerDimension);
      const stride = grid[0] * grid[1] * COPY_WORKGROUP;
      const uniforms = ctx.createBufferWithData(
        new Uint8Array(packUniforms(kernel.shader, { count, stride })),
        BufferUsage.UNIFORM,
        'roofline copy uniforms',
      );
      owned.push(uniforms);
      const bindGroup = device.createBindGroup({
        layout: kernel.bindGroupLayout,
        entries: [
          { binding: 0, resource: { buffer: uniforms } },
          { binding: 1, resource: { buffer: src } },
          { binding: 2, resource: { buffer: dst } },
        ],
      });
      record = (encoder) => {
        const pass = encoder.beginComputePass();
        pass.setPipeline(kernel.pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(...grid);
        pass.end();
      };
    }
    const timer = ctx.hasTimestamps ? new PassTimer(ctx) : undefined;
    if (timer) owned.push(timer);
    const once = async (timed: boolean): Promise<{ wall: number; gpu?: number }> => {
      const encoder = device.createCommandEncoder({ label: `roofline ${method}` });
      if (timed && timer) timer.begin(encoder);
      record(encoder);
      if (timed && timer) timer.end(encoder);
      const t = performance.now();
      device.queue.submit([encoder.finish()]);
      await ctx.raceLost(device.queue.onSubmittedWorkDone());
      const wall = performance.now() - t;
      return { wall, gpu: timed && timer ? await timer.read() : undefined };
    };
    for (let i = 0; i < warmup; i++) await once(false);
    const gpu: number[] = [];
    const wall: number[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await once(true);
      wall.push(r.wall);
      if (r.gpu !== undefined) gpu.push(r.gpu);
    }
    ctx.throwIfFailed();
    const useGpu = gpu.length === runs;
    const ms = summarize(useGpu ? gpu : wall);
    return { ...base, timing: useGpu ? 'gpu-timestamps' : 'wall', ms, wallMs: summarize(wall), gbps: (2 * bytes) / ms.median / 1e6 };
  } catch (e) {
    if (ctx.isLost) throw e;
    return { ...base, status: 'failed', reason: errorText(e) };
  } finally {
    for (const o of owned) o.destroy();
  }
}

/** Timestamps around whatever is recorded between `begin` and `end`: two empty compute passes that write them. */
class PassTimer {
  private readonly set: GPUQuerySet;
  private readonly resolveBuffer: GPUBuffer;
  private readonly readBuffer: GPUBuffer;

  constructor(private readonly ctx: GPUContext) {
    this.set = ctx.device.createQuerySet({ type: 'timestamp', count: 2 });
    this.resolveBuffer = ctx.createBuffer({ size: 16, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC }, 'roofline timestamps');
    this.readBuffer = ctx.createBuffer({ size: 16, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST }, 'roofline timestamps readback');
  }

  begin(encoder: GPUCommandEncoder): void {
    encoder.beginComputePass({ timestampWrites: { querySet: this.set, endOfPassWriteIndex: 0 } }).end();
  }

  end(encoder: GPUCommandEncoder): void {
    encoder.beginComputePass({ timestampWrites: { querySet: this.set, beginningOfPassWriteIndex: 1 } }).end();
    encoder.resolveQuerySet(this.set, 0, 2, this.resolveBuffer, 0);
    encoder.copyBufferToBuffer(this.resolveBuffer, 0, this.readBuffer, 0, 16);
  }

  async read(): Promise<number> {
    const t = new BigUint64Array(await readMapped(this.ctx, this.readBuffer, 16));
    return Number(t[1] - t[0]) / 1e6;
  }

  destroy(): void {
    this.set.destroy();
    this.resolveBuffer.destroy();
    this.readBuffer.destroy();
  }
}
