/**
 * Where one network's GPU time goes: every dispatch timed on its own (a compute pass per dispatch between two
 * timestamps, Plan.profile), with its counted FLOPs and minimum bytes (src/gpu/cost.ts), grouped by kernel family
 * and by shader variant, plus the slowest single dispatches. Markdown tables; the whole profile as JSON.
 *
 *   node dist/bench/profile.js --network dncnn [--size 256x256] [--runs 3] [--top 15] [--json out.json | --json -]
 *
 * Networks as in bench/models.ts (bench/networks.ts). Each dispatch's time is its median over --runs profiled
 * runs, after one plain run (shader JIT). The first line compares the plain run's GPU time (one pass per command
 * buffer) with the profiled sum: the difference is what the extra pass boundaries cost. Timestamps are asked for
 * without Dawn's quantization, which would otherwise round every interval to tens of microseconds.
 */
import { parseBenchArgs } from './args';
import { Graph } from '../src/gpu/graph';
import { Plan } from '../src/gpu/plan';
import type { DispatchProfile, KernelSummary } from '../src/gpu/profile';
import { summarizeByKernel } from '../src/gpu/profile';
import { nchwToNhwcPadded } from '../src/gpu/tensor';
import { createNodeContext, loadBuiltinModel, releaseNodeGPU } from '../src/node';
import { architectureByName } from '../src/models/registry';
import { defaultInputSize, NETWORKS, networkByKey, pattern } from './networks';
import { fmt, markdownTable, parseSize } from './report';
import { writeJson } from './write-json';
import { median } from './stats';
import { ForwardBuilder } from '../src/layers/forward-builder';

const USAGE = `
  node dist/bench/profile.js --network dncnn [--size 256x256] [--runs 3] [--top 15] [--json out.json | --json -]
  networks: ${NETWORKS.map((n) => n.key).join(', ')}
`;

const { values } = parseBenchArgs(USAGE, {
  network: { type: 'string', default: 'dncnn' },
  size: { type: 'string' },
  runs: { type: 'string', default: '3' },
  top: { type: 'string', default: '15' },
  json: { type: 'string' },
});
function usage(message: string): never {
  console.error(`bench/profile: ${message}`);
  process.exit(2);
}
const spec = networkByKey(values.network) ?? usage(`unknown network '${values.network}' (known: ${NETWORKS.map((n) => n.key).join(', ')})`);
const runs = Number(values.runs);
const top = Number(values.top);
if (!(Number.isInteger(runs) && runs >= 1 && Number.isInteger(top) && top >= 0)) usage('--runs must be ≥ 1 and --top ≥ 0 (integers)');
let size: { width: number; height: number };
try {
  size = values.size ? parseSize(values.size) : defaultInputSize(spec);
} catch (e) {
  usage((e as Error).message);
}
// Tables go to stderr when the JSON goes to stdout, so `--json -` pipes cleanly.
const log = values.json === '-' ? console.error : console.log;

const ctx = await createNodeContext({ dawnFlags: ['disable-dawn-features=timestamp_quantization'] });
if (!ctx.hasTimestamps) usage(`${ctx.adapterName} has no 'timestamp-query': per-dispatch times need it`);
const model = await spec.load(ctx, { loadBuiltin: (name, c) => loadBuiltinModel(name, { context: c }) });
const graph = new Graph();
const x = graph.input([1, size.height, size.width, model.network.inChannels], 'image');
graph.output(model.network.forward(new ForwardBuilder(ctx, graph), x));
const t0 = performance.now();
const plan = await Plan.compile(ctx, graph);
const compileMs = performance.now() - t0;
const image = pattern(size.width, size.height, model.network.inChannels, architectureByName(spec.architecture).valueRange === 'symmetric');
const input = nchwToNhwcPadded(image.data, x.shape);

const plain = await plan.run([input], { timing: true });
const profiles: DispatchProfile[][] = [];
for (let r = 0; r < runs; r++) profiles.push(await plan.profile([input]));
const dispatches: DispatchProfile[] = profiles[0].map((p, i) => ({ ...p, ms: median(profiles.map((run) => run[i].ms)) }));
const cost = plan.cost;
plan.dispose();
model.dispose();

const totalMs = dispatches.reduce((s, p) => s + p.ms, 0);
const gflops = (flops: number, ms: number) => (ms > 0 ? flops / ms / 1e6 : undefined);
const gbs = (bytes: number, ms: number) => (ms > 0 ? bytes / ms / 1e6 : undefined);
const share = (ms: number) => `${fmt((100 * ms) / totalMs)} %`;

/** The kernel's family: its name and, for convolutions, its kernel size (`conv2d[k3x3]`). */
function familyOf(p: DispatchProfile): string {
  const m = /^([^[]+)(?:\[(k\d+x\d+)?)?/.exec(p.kernel);
  return m && m[2] ? `${m[1]}[${m[2]}]` : (m?.[1] ?? p.kernel);
}

const groupRow = (g: KernelSummary) => [
  g.kernel,
  String(g.dispatches),
  fmt(g.ms),
  share(g.ms),
  fmt(g.flops / 1e9),
  g.uncounted === g.dispatches ? '–' : fmt(gflops(g.flops, g.ms)),
  g.uncounted === g.dispatches ? '–' : fmt(gbs(g.bytes, g.ms)),
];
const groupHeaders = ['dispatches', 'total ms', 'share', 'GFLOP', 'GFLOP/s', 'GB/s'];
const families = summarizeByKernel(dispatches, familyOf);
const variants = summarizeByKernel(dispatches);
const slowest = dispatches
  .map((p, index) => ({ index, ...p }))
  .sort((a, b) => b.ms - a.ms)
  .slice(0, top);

log(
  `${spec.description}, ${size.width}×${size.height} on ${ctx.adapterName}: ${dispatches.length} dispatches, ` +
    `${fmt(cost.flops / 1e9)} GFLOP, ${fmt(cost.bytes / 2 ** 20)} MiB minimum traffic` +
    `${cost.uncountedDispatches ? ` (${cost.uncountedDispatches} dispatches uncounted)` : ''}; plan compile ${fmt(compileMs)} ms`,
);
log(
  `GPU time: plain run ${fmt(plain.gpuMs)} ms; profiled (a pass per dispatch, median of ${runs}) ${fmt(totalMs)} ms ` +
    `→ ${fmt(gflops(cost.flops, totalMs))} GFLOP/s, ${fmt(gbs(cost.bytes, totalMs))} GB/s overall`,
);
log();
log(markdownTable(['kernel family', ...groupHeaders], families.map(groupRow)));
log();
log(markdownTable(['shader variant', ...groupHeaders], variants.map(groupRow)));
log();
log(
  markdownTable(
    ['#', 'dispatch', 'shader variant', 'ms', 'share', 'GFLOP/s', 'GB/s'],
    slowest.map((p) => [
      String(p.index),
      p.label,
      p.kernel,
      fmt(p.ms),
      share(p.ms),
      p.flops === undefined ? '–' : fmt(gflops(p.flops, p.ms)),
      p.bytes === undefined ? '–' : fmt(gbs(p.bytes, p.ms)),
    ]),
  ),
);
log();
log(
  'FLOPs: 2 per multiply-add, conv epilogues (bias, activation, residual) not counted, elementwise ops 1 per element; ' +
    'bytes: inputs and weights read once, outputs written once, f32, logical channels (src/gpu/cost.ts).',
);

if (values.json) {
  const report = {
    schema: 1,
    benchmark: 'profile',
    date: new Date().toISOString(),
    adapterName: ctx.adapterName,
    network: spec.key,
    description: spec.description,
    input: { ...size, channels: x.shape[3] },
    runs,
    compileMs,
    plainRunGpuMs: plain.gpuMs,
    profiledGpuMs: totalMs,
    cost,
    families,
    variants,
    dispatches,
  };
  if (values.json === '-') console.log(JSON.stringify(report));
  else writeJson(values.json, report);
}
ctx.dispose();
releaseNodeGPU();
process.exit(0);
