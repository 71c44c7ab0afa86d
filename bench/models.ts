/**
 * Every network at its full-size configuration: first-run time, GPU time (median, p10–p90 of repeated runs after
 * warm-up; timestamp queries where the adapter has them, wall time otherwise), dispatches, counted GFLOP with the
 * achieved GFLOP/s and GB/s (src/gpu/cost.ts), and GPU memory (activations after liveness sharing, packed weights).
 * The networks are bench/networks.ts's. DnCNN-17 runs the built-in σ=25 weights; the others run
 * deterministic random weights (bench/random-weights.ts), which time the same. Markdown table + JSON.
 *
 *   node dist/bench/models.js [--networks dncnn,scunet] [--size 1024x768] [--runs 5] [--warmup 1] [--json out.json]
 *
 * --size is the input size W×H for every chosen network; without it denoisers run 256×256 and ×4 upscalers a
 * 64×64 input. Each network gets a fresh device, so its first run pays for its own pipelines (Mesa's shader disk
 * cache still helps a second invocation) and its buffers are gone before the next network starts.
 */
import { parseArgs } from 'node:util';
import { LimitExceededError, RestoreError } from '../src/errors';
import type { GPUContext } from '../src/gpu/context';
import { BufferUsage } from '../src/gpu/flags';
import { createNodeContext, releaseNodeGPU } from '../src/node';
import { architectureByName } from '../src/models/registry';
import type { RestorationModel } from '../src/models/restoration-model';
import { defaultInputSize, NETWORKS, networkByKey, pattern, SEED, type NetworkSpec } from './networks';
import { parameterCount } from './random-weights';
import { fmt, fmtRange, markdownTable, parseSize, writeJson } from './report';
import { type Summary, summarize } from './stats';

const { values } = parseArgs({
  options: {
    networks: { type: 'string', default: NETWORKS.map((n) => n.key).join(',') },
    size: { type: 'string' },
    runs: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    json: { type: 'string' },
  },
});
function usage(message: string): never {
  console.error(`bench/models: ${message}`);
  process.exit(2);
}
const runs = Number(values.runs);
const warmup = Number(values.warmup);
if (!(Number.isInteger(runs) && runs >= 1 && Number.isInteger(warmup) && warmup >= 0)) usage('--runs must be ≥ 1 and --warmup ≥ 0 (integers)');
const chosen = values.networks.split(',').map((key) => {
  const spec = networkByKey(key);
  return spec ?? usage(`unknown network '${key}' (known: ${NETWORKS.map((n) => n.key).join(', ')})`);
});
let fixedSize: { width: number; height: number } | undefined;
try {
  fixedSize = values.size ? parseSize(values.size) : undefined;
} catch (e) {
  usage((e as Error).message);
}

const FLOPS_NOTE =
  'GFLOP/s and GB/s: counted FLOPs (2 per multiply-add; conv epilogues not counted) and minimum bytes (inputs, ' +
  'weights read once, outputs written once, logical channels) of every dispatch (src/gpu/cost.ts) over the median time.';

interface NetworkResult {
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

async function bench(spec: NetworkSpec): Promise<NetworkResult> {
  const architecture = architectureByName(spec.architecture);
  const ctx = await createNodeContext();
  const weightBytes = countWeightUploads(ctx);
  let model: RestorationModel | undefined;
  const base = { network: spec.key, description: spec.description };
  let input = { width: 0, height: 0, channels: 0 };
  try {
    model = await spec.load(ctx);
    const { width, height } = fixedSize ?? defaultInputSize(spec);
    input = { width, height, channels: model.network.inChannels };
    const image = pattern(width, height, input.channels, architecture.valueRange === 'symmetric');
    const t0 = performance.now();
    await model.warmup(height, width);
    const compileMs = performance.now() - t0;
    // Always the whole image in one plan (tileSize 0): an image too big for the device is reported as skipped
    // with the limit it hit, not silently run as tiles (which would time something else).
    const whole = { tileSize: 0 };
    let firstRunMs: number | undefined;
    for (let i = 0; i < warmup; i++) {
      const { stats } = await model.runFloat(image, whole);
      firstRunMs ??= stats.wallMs;
    }
    const wall: number[] = [];
    const gpu: number[] = [];
    let last: Awaited<ReturnType<RestorationModel['runFloat']>> | undefined;
    for (let i = 0; i < runs; i++) {
      last = await model.runFloat(image, whole);
      wall.push(last.stats.wallMs);
      if (last.stats.gpuMs !== undefined) gpu.push(last.stats.gpuMs);
      firstRunMs ??= last.stats.wallMs;
    }
    const { image: out, stats } = last!;
    const useGpu = gpu.length === runs;
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
    model?.dispose();
    ctx.dispose();
  }
}

const results: NetworkResult[] = [];
let device: ReturnType<GPUContext['describe']>;
let adapterName: string;
{
  // The adapter, once, from a context of its own (each network's context is disposed after its run).
  const ctx = await createNodeContext();
  device = ctx.describe();
  adapterName = ctx.adapterName;
  console.log(`adapter: ${adapterName}; timestamps: ${ctx.hasTimestamps ? 'yes' : 'no (wall time: upload + dispatches + readback)'}`);
  ctx.dispose();
}
for (const spec of chosen) {
  const r = await bench(spec);
  results.push(r);
  const what = `${spec.key} ${r.input.width}x${r.input.height}`;
  if (r.status === 'ok') console.error(`${what}: ${fmt(r.ms!.median)} ms (${r.timing}), first run ${fmt(r.compileMs! + r.firstRunMs!)} ms`);
  else console.error(`${what}: ${r.status}: ${r.reason}`);
  if (r.nonFiniteOutputs) console.error(`${what}: warning: ${r.nonFiniteOutputs} non-finite output values`);
}

const size = (s: { width: number; height: number; channels: number } | undefined) => (s ? `${s.width}×${s.height}×${s.channels}` : '–');
const mibOf = (bytes: number | undefined) => (bytes === undefined ? '–' : fmt(bytes / 2 ** 20));
const rows = results.map((r) =>
  r.status !== 'ok'
    ? [r.description, size(r.input), '–', `${r.status}: ${r.reason}`]
    : [
        r.description,
        size(r.input),
        size(r.output),
        fmt(r.ms!.median),
        fmtRange(r.ms!.p10, r.ms!.p90),
        r.timing!,
        fmt(r.compileMs! + r.firstRunMs!),
        String(r.dispatches),
        fmt(r.flops! / 1e9),
        fmt(r.gflopPerSecond),
        fmt(r.gbPerSecond),
        mibOf(r.activationBytes),
        mibOf(r.weightBytes),
        mibOf(r.activationBytes! + r.weightBytes!),
      ],
);
console.log();
console.log(
  markdownTable(
    ['network', 'input W×H×C', 'output W×H×C', 'median ms', 'p10–p90 ms', 'timing', 'first run ms', 'dispatches', 'GFLOP', 'GFLOP/s', 'GB/s', 'activations MiB', 'weights MiB', 'GPU MiB'],
    rows,
  ),
);
console.log();
console.log(
  `adapter: ${adapterName} · runs: ${runs} after ${warmup} warm-up · first run = plan compile ` +
    `(pipelines, buffers, weight upload) + the first run's wall time · GPU MiB = activations (peak, after liveness sharing) + packed weights. ` +
    `${FLOPS_NOTE}`,
);

const report = {
  schema: 1,
  benchmark: 'models',
  date: new Date().toISOString(),
  adapterName,
  device,
  runs,
  warmup,
  seed: SEED,
  notes: {
    weights: 'DnCNN: built-in σ=25 weights; the others: seeded random weights (bench/random-weights.ts), fan-in scaled',
    ms: 'GPU time of the dispatches from timestamp queries when timing is gpu-timestamps, else wall time',
    wallMs: 'input upload + dispatches + output readback',
    firstRun: 'compileMs (plan: pipelines, buffers, bind groups, weight upload) + firstRunMs (first run after it)',
    flops: FLOPS_NOTE,
    memory: 'activationBytes: the plan’s activation buffers after liveness sharing; weightBytes: packed weight buffers',
  },
  results,
};
console.log(JSON.stringify(report));
if (values.json) writeJson(values.json, report);
releaseNodeGPU();
process.exit(0);
