/**
 * Peer comparison: our kernels against onnxruntime-web's WebGPU execution provider on the same Dawn adapter in
 * this same process, and against onnxruntime-node's CPU provider, on the same networks, weights and input, with
 * the outputs checked against each other and against PyTorch.
 *
 *   /usr/bin/python3 tools/torch/export_onnx.py [--networks dncnn,unet] [--sizes 50x70]   # once: bench/.onnx/
 *   node dist/bench/peers.js [--networks dncnn,unet [--size WxH] | --cases dncnn@256x256,unet@80x64] [--runs 3]
 *                            [--warmup 1] [--json out.json] [--runtimes ours,ort-web,ort-node] [--ort-layout NHWC|NCHW]
 *                            [--onnx-dir bench/.onnx]
 *
 * Weights: the seeded weights of tools/torch/seeded_weights.py; the ONNX files carry them, and we regenerate the
 * identical tensors from the export's seed and manifest. Input: bench/models.ts's deterministic pattern.
 * Times are wall times of a whole call with the output read back to the CPU (ort syncs in session.run), the
 * median of --runs after --warmup; ours also reports GPU time from timestamp queries. A network without an
 * export gets a row that says which command writes it.
 */
import { parseBenchArgs } from './args';
import { readFileSync } from 'node:fs';
import type { GPUContext } from '../src/gpu/context';
import type { FloatImage } from '../src/io/image';
import { createNodeContext, nodeGPU, releaseNodeGPU } from '../src/node';
import { DEFAULT_ONNX_DIR, type ExportMeta, findExport, type PyTorchReference, readF32 } from './peers/exports';
import { createOrtNodeSession, loadOrtNode } from './peers/ort-node';
import { copySharedMemoryWrites, createOrtWebSession, loadOrtWeb } from './peers/ort-web';
import { type OursResult, runOurs } from './peers/ours';
import { relL2, type Timed, timeRuns } from './peers/timing';
import { fmt, fmtRange, markdownTable, parseSize } from './report';
import { writeJson } from './write-json';
import type { Summary } from './stats';

const USAGE = `
  /usr/bin/python3 tools/torch/export_onnx.py [--networks dncnn,unet] [--sizes 50x70]   # once: bench/.onnx/
  node dist/bench/peers.js [--networks dncnn,unet [--size WxH] | --cases dncnn@256x256,unet@80x64] [--runs 3]
                           [--warmup 1] [--json out.json] [--runtimes ours,ort-web,ort-node] [--ort-layout NHWC|NCHW]
                           [--onnx-dir bench/.onnx]
`;

/** Networks and their default W×H (the same defaults as tools/torch/export_onnx.py). */
const NETWORKS: Record<string, { width: number; height: number }> = {
  dncnn: { width: 50, height: 70 },
  scunet: { width: 100, height: 72 },
  unet: { width: 80, height: 64 },
  'resnet34-unet': { width: 128, height: 96 },
  rrdbnet: { width: 32, height: 32 },
  msrresnet: { width: 32, height: 32 },
};
const RUNTIMES = ['ours', 'ort-web', 'ort-node'] as const;
type Runtime = (typeof RUNTIMES)[number];

const { values } = parseBenchArgs(USAGE, {
  networks: { type: 'string', default: 'dncnn' },
  cases: { type: 'string' },
  size: { type: 'string' },
  runs: { type: 'string', default: '3' },
  warmup: { type: 'string', default: '1' },
  json: { type: 'string' },
  runtimes: { type: 'string', default: RUNTIMES.join(',') },
  'ort-layout': { type: 'string' },
  'onnx-dir': { type: 'string', default: DEFAULT_ONNX_DIR },
});
function usage(message: string): never {
  console.error(`bench/peers: ${message}`);
  process.exit(2);
}
const runs = Number(values.runs);
const warmup = Number(values.warmup);
if (!(Number.isInteger(runs) && runs >= 1 && Number.isInteger(warmup) && warmup >= 0))
  usage('--runs must be ≥ 1 and --warmup ≥ 0 (integers)');
// Each case: a network and, when given (`key@WxH`), its size.
const cases = (values.cases ?? values.networks).split(',').map((t) => {
  const [key, size] = t.trim().split('@');
  if (!(key in NETWORKS)) usage(`unknown network '${key}' (known: ${Object.keys(NETWORKS).join(', ')})`);
  try {
    return { network: key, size: size ? parseSize(size) : undefined };
  } catch (e) {
    usage((e as Error).message);
  }
});
const runtimes = values.runtimes.split(',').map((r) => r.trim()) as Runtime[];
for (const r of runtimes) if (!RUNTIMES.includes(r)) usage(`unknown runtime '${r}' (known: ${RUNTIMES.join(', ')})`);
const layout = values['ort-layout'];
if (layout !== undefined && layout !== 'NCHW' && layout !== 'NHWC') usage('--ort-layout must be NCHW or NHWC');
let fixedSize: { width: number; height: number } | undefined;
try {
  fixedSize = values.size ? parseSize(values.size) : undefined;
} catch (e) {
  usage((e as Error).message);
}
const onnxDir = values['onnx-dir'];

interface RuntimeResult {
  status: 'ok' | 'failed' | 'skipped';
  reason?: string;
  /** Ours: plan compilation; ort: InferenceSession.create (graph optimisation, weight upload). */
  setupMs?: number;
  firstRunMs?: number;
  wallMs?: Summary;
  /** Ours only: GPU time of the dispatches from timestamp queries. */
  gpuMs?: Summary;
  dispatches?: number;
  /** The adapter ort-web's own device came from (must be ours). */
  adapterName?: string;
  threads?: number;
  /** Relative L2 distance of the output to PyTorch's, when the export has a reference at this size. */
  relL2VsPyTorch?: number;
}

interface NetworkResult {
  network: string;
  description?: string;
  status: 'ok' | 'missing-export';
  reason?: string;
  input: { width: number; height: number; channels: number };
  onnx?: { file: string; opset: number; dynamicAxes: boolean; seed: number };
  pytorch?: Pick<PyTorchReference, 'sensitivity' | 'residualRelNorm' | 'float32VsFloat64RelL2'>;
  runtimes: Partial<Record<Runtime, RuntimeResult>>;
  /** Relative L2 distances between the runtimes' outputs (the second named is the reference). */
  agreement: { oursVsOrtWeb?: number; oursVsOrtNode?: number; ortWebVsOrtNode?: number };
  /** ort-web median wall time / ours. */
  ortWebOverOurs?: number;
}

/** bench/models.ts's deterministic input (export_onnx.py writes PyTorch's output for the same values). */
function pattern(width: number, height: number, channels: number): FloatImage {
  const data = new Float32Array(width * height * channels);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 7919) % 256) / 255;
  return { width, height, channels, data };
}

const errorText = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

function fromTimed(t: Timed, setupMs: number, reference: Float32Array | undefined): RuntimeResult {
  return {
    status: 'ok',
    setupMs,
    firstRunMs: t.firstRunMs,
    wallMs: t.wallMs,
    gpuMs: t.gpuMs,
    relL2VsPyTorch: reference ? relL2(t.output, reference) : undefined,
  };
}

async function benchOurs(
  meta: ExportMeta,
  image: FloatImage,
  reference: Float32Array | undefined,
): Promise<{ r: RuntimeResult; out?: Float32Array }> {
  let ctx: GPUContext | undefined;
  try {
    ctx = await createNodeContext();
    const o: OursResult = await runOurs(ctx, meta, image, warmup, runs);
    return { r: { ...fromTimed(o, o.compileMs, reference), dispatches: o.dispatches }, out: o.output };
  } catch (e) {
    return { r: { status: 'failed', reason: errorText(e) } };
  } finally {
    ctx?.dispose(); // its buffers are gone before ort allocates its own
  }
}

async function benchOrtWeb(model: Uint8Array, image: FloatImage, dims: number[], reference: Float32Array | undefined) {
  const restore = copySharedMemoryWrites();
  try {
    const ort = await loadOrtWeb(await nodeGPU());
    const t0 = performance.now();
    const session = await createOrtWebSession(ort, model, { preferredLayout: layout as 'NCHW' | 'NHWC' | undefined });
    const setupMs = performance.now() - t0;
    try {
      const t = await timeRuns(warmup, runs, async () => ({ output: await session.run(image.data, dims) }));
      return { r: { ...fromTimed(t, setupMs, reference), adapterName: session.adapterName }, out: t.output };
    } finally {
      await session.release();
    }
  } catch (e) {
    return { r: { status: 'failed', reason: errorText(e) } as RuntimeResult };
  } finally {
    restore();
  }
}

async function benchOrtNode(model: Uint8Array, image: FloatImage, dims: number[], reference: Float32Array | undefined) {
  try {
    const ort = await loadOrtNode();
    const t0 = performance.now();
    const session = await createOrtNodeSession(ort, model);
    const setupMs = performance.now() - t0;
    try {
      const t = await timeRuns(warmup, runs, async () => ({ output: await session.run(image.data, dims) }));
      return { r: { ...fromTimed(t, setupMs, reference), threads: session.threads }, out: t.output };
    } finally {
      await session.release();
    }
  } catch (e) {
    return { r: { status: 'failed', reason: errorText(e) } as RuntimeResult };
  }
}

async function bench(network: string, caseSize?: { width: number; height: number }): Promise<NetworkResult> {
  const { width, height } = caseSize ?? fixedSize ?? NETWORKS[network];
  const size = `${width}x${height}`;
  const found = findExport(onnxDir, network, size);
  if (!found.ok)
    return { network, status: 'missing-export', reason: found.reason, input: { width, height, channels: 0 }, runtimes: {}, agreement: {} };
  const { meta, modelPath, reference: ref, referencePath } = found;
  const channels = (meta.config as { inChannels: number }).inChannels;
  const image = pattern(width, height, channels);
  const dims = [1, channels, height, width];
  const reference = referencePath ? readF32(referencePath) : undefined;
  const model = new Uint8Array(readFileSync(modelPath));
  const result: NetworkResult = {
    network,
    description: meta.description,
    status: 'ok',
    input: { width, height, channels },
    onnx: { file: modelPath, opset: meta.opset, dynamicAxes: meta.dynamicAxes, seed: meta.seed },
    pytorch: ref
      ? { sensitivity: ref.sensitivity, residualRelNorm: ref.residualRelNorm, float32VsFloat64RelL2: ref.float32VsFloat64RelL2 }
      : undefined,
    runtimes: {},
    agreement: {},
  };
  if (!reference) console.error(`${network} ${size}: no PyTorch output at this size (export with --sizes ${size} to add one)`);
  const outputs: Partial<Record<Runtime, Float32Array>> = {};
  for (const runtime of runtimes) {
    console.error(`${network} ${size}: ${runtime} …`);
    const { r, out } =
      runtime === 'ours'
        ? await benchOurs(meta, image, reference)
        : runtime === 'ort-web'
          ? await benchOrtWeb(model, image, dims, reference)
          : await benchOrtNode(model, image, dims, reference);
    result.runtimes[runtime] = r;
    if (out) outputs[runtime] = out;
    console.error(
      r.status === 'ok'
        ? `${network} ${size}: ${runtime} ${fmt(r.wallMs!.median)} ms (setup ${fmt(r.setupMs)} ms, first run ${fmt(r.firstRunMs)} ms)`
        : `${network} ${size}: ${runtime} ${r.status}: ${r.reason}`,
    );
  }
  const pair = (a: Runtime, b: Runtime) => (outputs[a] && outputs[b] ? relL2(outputs[a], outputs[b]) : undefined);
  result.agreement = {
    oursVsOrtWeb: pair('ours', 'ort-web'),
    oursVsOrtNode: pair('ours', 'ort-node'),
    ortWebVsOrtNode: pair('ort-web', 'ort-node'),
  };
  const ours = result.runtimes.ours?.wallMs?.median;
  const web = result.runtimes['ort-web']?.wallMs?.median;
  if (ours !== undefined && web !== undefined) result.ortWebOverOurs = web / ours;
  return result;
}

// The adapter, from a context of its own (each network's context is disposed after our runs).
let adapterName: string;
let device: ReturnType<GPUContext['describe']>;
{
  const ctx = await createNodeContext();
  adapterName = ctx.adapterName;
  device = ctx.describe();
  console.log(`adapter: ${adapterName}; timestamps: ${ctx.hasTimestamps ? 'yes' : 'no'}`);
  ctx.dispose();
}

const results: NetworkResult[] = [];
for (const c of cases) results.push(await bench(c.network, c.size));

const sci = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '–' : x.toExponential(1));
const cell = (r: RuntimeResult | undefined, pick: (r: RuntimeResult) => string) =>
  r === undefined ? '–' : r.status === 'ok' ? pick(r) : r.status;
const median = (s: Summary | undefined) => (s ? `${fmt(s.median)} (${fmtRange(s.p10, s.p90)})` : '–');
const name = (r: NetworkResult) => `${r.network} ${r.input.width}×${r.input.height}`;

const timeRows = results.map((r) => {
  if (r.status !== 'ok') return [name(r), `missing: ${r.reason}`];
  const { ours, 'ort-web': web, 'ort-node': cpu } = r.runtimes;
  return [
    name(r),
    cell(ours, (o) => median(o.wallMs)),
    cell(ours, (o) => median(o.gpuMs)),
    cell(web, (w) => median(w.wallMs)),
    r.ortWebOverOurs === undefined ? '–' : `${fmt(r.ortWebOverOurs)}×`,
    cell(cpu, (c) => median(c.wallMs)),
    `${cell(ours, (o) => fmt(o.setupMs! + o.firstRunMs!))} / ${cell(web, (w) => fmt(w.setupMs! + w.firstRunMs!))}`,
  ];
});
const agreeRows = results
  .filter((r) => r.status === 'ok')
  .map((r) => {
    const vsTorch = (rt: Runtime) => cell(r.runtimes[rt], (x) => sci(x.relL2VsPyTorch));
    return [
      name(r),
      sci(r.agreement.oursVsOrtWeb),
      sci(r.agreement.oursVsOrtNode),
      sci(r.agreement.ortWebVsOrtNode),
      `${vsTorch('ours')} / ${vsTorch('ort-web')} / ${vsTorch('ort-node')}`,
      sci(r.pytorch?.float32VsFloat64RelL2),
      r.pytorch ? fmt(r.pytorch.sensitivity) : '–',
    ];
  });
console.log();
console.log(
  markdownTable(
    [
      'network',
      'ours ms (p10–p90)',
      'ours GPU ms',
      'ort-web WebGPU ms (p10–p90)',
      'ort-web / ours',
      'ort-node CPU ms (p10–p90)',
      'first run ms ours / ort-web',
    ],
    timeRows,
  ),
);
console.log();
console.log(
  markdownTable(
    [
      'network',
      'rel. L2 ours vs ort-web',
      'ours vs ort-node',
      'ort-web vs ort-node',
      'vs PyTorch: ours / ort-web / ort-node',
      'PyTorch f32 vs f64',
      'sensitivity',
    ],
    agreeRows,
  ),
);
const ortAdapters = [...new Set(results.map((r) => r.runtimes['ort-web']?.adapterName).filter((a) => a !== undefined))];
console.log();
console.log(
  `adapter: ${adapterName}${ortAdapters.length ? ` (ort-web's device: ${ortAdapters.join(', ')})` : ''} · runs: ${runs} after ${warmup} warm-up · ` +
    'ms = median wall time of a whole call, output read back · first run = setup (our plan compile / ort session create) + first run.',
);

const report = {
  schema: 1,
  benchmark: 'peers',
  date: new Date().toISOString(),
  adapterName,
  device,
  runs,
  warmup,
  versions: { node: process.versions.node, ...(await peerVersions()) },
  settings: { ortWebLayout: layout ?? "ort's default", ortWebWasmThreads: 1, onnxDir },
  notes: {
    weights: 'seeded (tools/torch/seeded_weights.py), identical in every runtime; the ONNX files carry them, ours regenerates them',
    input: 'bench/models.ts pattern: NCHW element i = ((i * 7919) % 256) / 255',
    wallMs: 'wall time of a whole call: input upload, the network, output read back to the CPU',
    gpuMs: 'ours only: GPU time of the dispatches from timestamp queries',
    agreement: 'relative L2 distance ||a - b|| / ||b||, float64 accumulation',
    sensitivity: "PyTorch's ||f(x') - f(x)|| / ||f(x)|| for an unrelated input x': the output really depends on the input",
  },
  results,
};
console.log(JSON.stringify(report));
if (values.json) writeJson(values.json, report);

async function peerVersions(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const pkg of ['onnxruntime-web', 'onnxruntime-node']) {
    try {
      const url = new URL(`../node_modules/${pkg}/package.json`, `file://${process.cwd()}/bench/`);
      out[pkg] = (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
    } catch {
      out[pkg] = 'not installed';
    }
  }
  return out;
}

releaseNodeGPU();
process.exit(0);
