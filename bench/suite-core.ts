/**
 * The model benchmark itself, shared by the Node command (bench/models.ts) and the browser page
 * (bench/browser/suite.ts): each network of bench/networks.ts at a size, whole image in one plan, first run
 * (plan compilation + first run) apart from the timed runs, median/p10/p90 of GPU time (timestamp queries, wall
 * time without them), counted FLOPs and minimum bytes (src/gpu/cost.ts) with the achieved GFLOP/s and GB/s, GPU
 * memory, and the fraction of the adapter's roofline (roofline-lib.ts). No Node modules here.
 */
import { LimitExceededError, RestoreError } from '../src/errors';
import type { GPUContext } from '../src/gpu/context';
import { BufferUsage } from '../src/gpu/flags';
import { architectureByName } from '../src/models/registry';
import type { RestorationModel } from '../src/runtime/restoration-model';
import { type BenchEnvironment, defaultInputSize, NETWORKS, networkByKey, type NetworkSpec, pattern, SEED } from './networks';
import { parameterCount } from './random-weights';
import { fmt, fmtRange, markdownTable, parseSize } from './report';
import type { RooflineResult } from './roofline-lib';
import { type Summary, summarize } from './stats';

/** Version of the JSON report's layout; bump it when a field changes meaning or goes away. */
export const MODELS_REPORT_SCHEMA = 2;

/** One network at one input size: `dncnn@256x256`. */
export interface BenchCase {
  spec: NetworkSpec;
  width: number;
  height: number;
}

/**
 * `full` (`npm run bench`): the networks and sizes of issue 8 (×4 upscalers from 64²). `quick`
 * (`npm run bench:quick`): a subset that finishes in a few minutes on a 2-core software adapter.
 */
export const SUITES: Record<string, { cases: string; runs: number; roofline: 'quick' | 'full' }> = {
  full: {
    cases: 'dncnn@256x256,dncnn@1024x768,scunet@256x256,unet@256x256,resnet34-unet@256x256,rrdbnet@64x64,msrresnet@64x64',
    runs: 3,
    roofline: 'full',
  },
  quick: { cases: 'dncnn@128x128,unet@128x128,resnet34-unet@128x128,msrresnet@32x32', runs: 3, roofline: 'quick' },
};

/**
 * Parses `key@WxH,key@WxH,...` (a key alone takes the network's default size, `defaultSize` when given).
 * @throws Error naming the unknown network or bad size.
 */
export function parseCases(text: string, defaultSize?: { width: number; height: number }): BenchCase[] {
  return text
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0)
    .map((t) => {
      const [key, size] = t.split('@');
      const spec = networkByKey(key);
      if (!spec) throw new Error(`unknown network '${key}' (known: ${NETWORKS.map((n) => n.key).join(', ')})`);
      const { width, height } = size ? parseSize(size) : (defaultSize ?? defaultInputSize(spec));
      return { spec, width, height };
    });
}

export interface NetworkResult {
  network: string;
  description: string;
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
  input: { width: number; height: number; channels: number };
  output?: { width: number; height: number; channels: number };
  parameters?: number;
  /** model.warmup: plan compilation (pipelines, buffers, bind groups) and the weight upload. */
  compileMs?: number;
  /** Wall time of the first run after compilation (lazy shader JIT on some drivers); the first warm-up run. */
  firstRunMs?: number;
  timing?: 'gpu-timestamps' | 'wall';
  /** The statistics' source: GPU time where the device has timestamps, else wall time. */
  ms?: Summary;
  /** Wall time of each measured run: upload, dispatches, readback. */
  wallMs?: Summary;
  dispatches?: number;
  /** Counted FLOPs and minimum bytes of one run (src/gpu/cost.ts), and their rates at the median time. */
  flops?: number;
  bytes?: number;
  gflopPerSecond?: number;
  gbPerSecond?: number;
  /**
   * Against the adapter's roofline (roofline-lib.ts): achieved GFLOP/s over the best measured GFLOP/s, and over
   * what the roofline allows at this network's arithmetic intensity, min(peak, FLOP/byte × copy bandwidth).
   */
  fractionOfPeak?: number;
  fractionOfRoofline?: number;
  activationBytes?: number;
  /** Bytes of the storage buffers uploaded while building the network's plan: its packed weights. */
  weightBytes?: number;
  /** Output values that are not finite (should be 0; random weights are scaled to keep them tame). */
  nonFiniteOutputs?: number;
}

/** Counts the bytes of STORAGE buffers created with data on `ctx` from now on (the layers' weight uploads). */
function countWeightUploads(ctx: GPUContext): () => number {
  let bytes = 0;
  const create = ctx.createBufferWithData.bind(ctx);
  ctx.createBufferWithData = (data, usage, what) => {
    const buffer = create(data, usage, what);
    if (usage & BufferUsage.STORAGE) bytes += buffer.size;
    return buffer;
  };
  return () => bytes;
}

/** Runs one case on `ctx` (which the caller disposes afterwards: a fresh one per case keeps memory apart). */
export async function benchCase(
  ctx: GPUContext,
  c: BenchCase,
  options: { runs: number; warmup: number; env: BenchEnvironment },
): Promise<NetworkResult> {
  const { spec, width, height } = c;
  const architecture = architectureByName(spec.architecture);
  const weightBytes = countWeightUploads(ctx);
  let model: RestorationModel | undefined;
  const base = { network: spec.key, description: spec.description };
  let input = { width, height, channels: 0 };
  try {
    model = await spec.load(ctx, options.env);
    input = { width, height, channels: model.network.inChannels };
    const image = pattern(width, height, input.channels, architecture.valueRange === 'symmetric');
    const t0 = performance.now();
    await model.warmup(height, width);
    const compileMs = performance.now() - t0;
    // Always the whole image in one plan (tileSize 0): an image too big for the device is reported as skipped
    // with the limit it hit, not silently run as tiles (which would time something else).
    const whole = { tileSize: 0 };
    let firstRunMs: number | undefined;
    for (let i = 0; i < options.warmup; i++) {
      const { stats } = await model.runFloat(image, whole);
      firstRunMs ??= stats.wallMs;
    }
    const wall: number[] = [];
    const gpu: number[] = [];
    let last: Awaited<ReturnType<RestorationModel['runFloat']>> | undefined;
    for (let i = 0; i < options.runs; i++) {
      last = await model.runFloat(image, whole);
      wall.push(last.stats.wallMs);
      if (last.stats.gpuMs !== undefined) gpu.push(last.stats.gpuMs);
      firstRunMs ??= last.stats.wallMs;
    }
    const { image: out, stats } = last!;
    const useGpu = gpu.length === options.runs;
    const ms = summarize(useGpu ? gpu : wall);
    return {
      ...base,
      status: 'ok',
      input,
      output: { width: out.width, height: out.height, channels: out.channels },
      parameters: parameterCount(model.network),
      compileMs,
      firstRunMs,
      timing: useGpu ? 'gpu-timestamps' : 'wall',
      ms,
      wallMs: summarize(wall),
      dispatches: stats.dispatches,
      flops: stats.flops,
      bytes: stats.bytes,
      gflopPerSecond: stats.flops / ms.median / 1e6,
      gbPerSecond: stats.bytes / ms.median / 1e6,
      activationBytes: stats.activationBytes,
      weightBytes: weightBytes(),
      nonFiniteOutputs: out.data.reduce((n, v) => (Number.isFinite(v) ? n : n + 1), 0),
    };
  } catch (e) {
    if (e instanceof LimitExceededError) {
      const reason = `${e.limit}: needs ${fmt(e.requested / 2 ** 20)} MiB, the device allows ${fmt(e.allowed / 2 ** 20)} MiB`;
      return { ...base, status: 'skipped', reason, input };
    }
    if (e instanceof RestoreError && e.code === 'GPU_OUT_OF_MEMORY') return { ...base, status: 'skipped', reason: e.message, input };
    return { ...base, status: 'failed', reason: e instanceof Error ? `${e.name}: ${e.message}` : String(e), input };
  } finally {
    await model?.dispose();
  }
}

/** Fills in a result's fractions of the roofline (no-op without a measured one). */
export function withRoofline(r: NetworkResult, roof: RooflineResult | undefined): NetworkResult {
  if (!roof || r.status !== 'ok' || !roof.gflops || !roof.gbps || !r.flops || !r.bytes) return r;
  const attainable = Math.min(roof.gflops, (r.flops / r.bytes) * roof.gbps);
  return { ...r, fractionOfPeak: r.gflopPerSecond! / roof.gflops, fractionOfRoofline: r.gflopPerSecond! / attainable };
}

export const FLOPS_NOTE =
  'GFLOP/s and GB/s: counted FLOPs (2 per multiply-add; conv epilogues not counted) and minimum bytes (inputs, ' +
  'weights read once, outputs written once, logical channels) of every dispatch (src/gpu/cost.ts) over the median time. ' +
  '% of peak: of the best GFLOP/s our kernels reach on this adapter (GEMM or 3×3 implicit GEMM, bench/roofline-lib.ts); ' +
  '% of roofline: of min(peak, FLOP/byte × best copy GB/s).';

const pct = (x: number | undefined) => (x === undefined ? '–' : `${fmt(100 * x)} %`);
const shape = (s: { width: number; height: number; channels: number } | undefined) => (s ? `${s.width}×${s.height}×${s.channels}` : '–');
const mibOf = (bytes: number | undefined) => (bytes === undefined ? '–' : fmt(bytes / 2 ** 20));

/** The results as a Markdown table. */
export function modelsTable(results: NetworkResult[]): string {
  const rows = results.map((r) =>
    r.status !== 'ok'
      ? [r.description, shape(r.input), '–', `${r.status}: ${r.reason}`]
      : [
          r.description,
          shape(r.input),
          shape(r.output),
          fmt(r.ms!.median),
          fmtRange(r.ms!.p10, r.ms!.p90),
          r.timing!,
          fmt(r.compileMs! + r.firstRunMs!),
          String(r.dispatches),
          fmt(r.flops! / 1e9),
          fmt(r.gflopPerSecond),
          fmt(r.gbPerSecond),
          pct(r.fractionOfPeak),
          pct(r.fractionOfRoofline),
          mibOf(r.activationBytes),
          mibOf(r.weightBytes),
        ],
  );
  return markdownTable(
    [
      'network',
      'input W×H×C',
      'output W×H×C',
      'median ms',
      'p10–p90 ms',
      'timing',
      'first run ms',
      'dispatches',
      'GFLOP',
      'GFLOP/s',
      'GB/s',
      '% of peak',
      '% of roofline',
      'activations MiB',
      'weights MiB',
    ],
    rows,
  );
}

/** The roofline in one line, for under the table. */
export function rooflineLine(roof: RooflineResult | undefined): string {
  if (!roof) return 'roofline: not measured (--roofline none)';
  return `roofline: peak ${fmt(roof.gflops)} GFLOP/s (${roof.variant ?? '–'}), ${fmt(roof.gbps)} GB/s (${roof.copyMethod ?? '–'})`;
}

/** The JSON report (schema MODELS_REPORT_SCHEMA). */
export function modelsReport(fields: {
  host: 'node' | 'browser';
  adapterName: string;
  device: unknown;
  runs: number;
  warmup: number;
  roofline: RooflineResult | undefined;
  results: NetworkResult[];
  userAgent?: string;
}) {
  return {
    schema: MODELS_REPORT_SCHEMA,
    benchmark: 'models',
    date: new Date().toISOString(),
    ...fields,
    seed: SEED,
    notes: {
      weights: 'DnCNN: built-in σ=25 weights; the others: seeded random weights (bench/random-weights.ts), fan-in scaled',
      ms: 'GPU time of the dispatches from timestamp queries when timing is gpu-timestamps, else wall time',
      wallMs: 'input upload + dispatches + output readback',
      firstRun: 'compileMs (plan: pipelines, buffers, bind groups, weight upload) + firstRunMs (first run after it)',
      flops: FLOPS_NOTE,
      memory: 'activationBytes: the plan’s activation buffers after liveness sharing; weightBytes: packed weight buffers',
    },
  };
}
