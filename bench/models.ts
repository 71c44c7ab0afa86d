/**
 * Every network at its full-size configuration (bench/suite-core.ts does the measuring): first-run time, GPU
 * time (median, p10–p90 of repeated runs after warm-up; timestamp queries where the adapter has them, wall time
 * otherwise), dispatches, counted GFLOP with the achieved GFLOP/s and GB/s and their fraction of the adapter's
 * roofline, and GPU memory. Markdown table + JSON (schema in suite-core.ts). The same suite runs in Chromium:
 * bench/browser.ts.
 *
 *   node dist/bench/models.js [--suite full|quick | --cases dncnn@256x256,unet@128x128 | --networks dncnn,scunet
 *     [--size 1024x768]] [--runs N] [--warmup 1] [--roofline quick|full|none] [--json out.json]
 *
 * Suites (suite-core.ts): `full` (`npm run bench`) is every network of issue 8 at its size, 3 runs, the full
 * roofline; `quick` (`npm run bench:quick`) four smaller cases with the quick roofline, a few minutes on a
 * 2-core software adapter. Explicit options override a suite's.
 */
import { parseBenchArgs } from './args';
import type { GPUContext } from '../src/gpu/context';
import { createNodeContext, loadBuiltinModel, releaseNodeGPU } from '../src/node';
import type { BenchEnvironment } from './networks';
import { NETWORKS } from './networks';
import { fmt, parseSize } from './report';
import { measureRoofline, type RooflineResult } from './roofline-lib';
import {
  type BenchCase,
  benchCase,
  FLOPS_NOTE,
  modelsReport,
  modelsTable,
  type NetworkResult,
  parseCases,
  rooflineLine,
  SUITES,
  withRoofline,
} from './suite-core';
import { writeJson } from './write-json';

const USAGE = `
  node dist/bench/models.js [--suite full|quick | --cases dncnn@256x256,unet@128x128 | --networks dncnn,scunet
    [--size 1024x768]] [--runs N] [--warmup 1] [--roofline quick|full|none] [--json out.json]
  networks: ${NETWORKS.map((n) => n.key).join(', ')}; suites: ${Object.keys(SUITES).join(', ')}
`;

const { values } = parseBenchArgs(USAGE, {
  suite: { type: 'string' },
  cases: { type: 'string' },
  networks: { type: 'string', default: NETWORKS.map((n) => n.key).join(',') },
  size: { type: 'string' },
  runs: { type: 'string' },
  warmup: { type: 'string', default: '1' },
  roofline: { type: 'string' },
  json: { type: 'string' },
});
function usage(message: string): never {
  console.error(`bench/models: ${message}`);
  process.exit(2);
}
const suite = values.suite === undefined ? undefined : SUITES[values.suite];
if (values.suite !== undefined && !suite) usage(`unknown suite '${values.suite}' (known: ${Object.keys(SUITES).join(', ')})`);
const runs = Number(values.runs ?? suite?.runs ?? 5);
const warmup = Number(values.warmup);
if (!(Number.isInteger(runs) && runs >= 1 && Number.isInteger(warmup) && warmup >= 0))
  usage('--runs must be ≥ 1 and --warmup ≥ 0 (integers)');
const rooflineMode = values.roofline ?? suite?.roofline ?? 'quick';
if (!['quick', 'full', 'none'].includes(rooflineMode)) usage(`--roofline must be quick, full or none, got '${rooflineMode}'`);
let cases: BenchCase[];
try {
  cases = parseCases(values.cases ?? suite?.cases ?? values.networks, values.size ? parseSize(values.size) : undefined);
} catch (e) {
  usage((e as Error).message);
}

const env: BenchEnvironment = { loadBuiltin: (name, ctx) => loadBuiltinModel(name, { context: ctx }) };

// The adapter and its roofline, from a context of their own (each case gets a fresh context, disposed after).
let device: ReturnType<GPUContext['describe']>;
let adapterName: string;
let roofline: RooflineResult | undefined;
{
  const ctx = await createNodeContext();
  device = ctx.describe();
  adapterName = ctx.adapterName;
  console.log(`adapter: ${adapterName}; timestamps: ${ctx.hasTimestamps ? 'yes' : 'no (wall time: upload + dispatches + readback)'}`);
  if (rooflineMode !== 'none') {
    console.error(`roofline (${rooflineMode}) …`);
    roofline = await measureRoofline(ctx, { quick: rooflineMode === 'quick' });
    console.error(rooflineLine(roofline));
  }
  ctx.dispose();
}

const results: NetworkResult[] = [];
for (const c of cases) {
  const ctx = await createNodeContext();
  let r: NetworkResult;
  try {
    r = withRoofline(await benchCase(ctx, c, { runs, warmup, env }), roofline);
  } finally {
    ctx.dispose();
  }
  results.push(r);
  const what = `${c.spec.key} ${c.width}x${c.height}`;
  if (r.status === 'ok') console.error(`${what}: ${fmt(r.ms!.median)} ms (${r.timing}), first run ${fmt(r.compileMs! + r.firstRunMs!)} ms`);
  else console.error(`${what}: ${r.status}: ${r.reason}`);
  if (r.nonFiniteOutputs) console.error(`${what}: warning: ${r.nonFiniteOutputs} non-finite output values`);
}

console.log();
console.log(modelsTable(results));
console.log();
console.log(
  `adapter: ${adapterName} (Node, Dawn) · ${rooflineLine(roofline)} · runs: ${runs} after ${warmup} warm-up · first run = plan compile ` +
    `(pipelines, buffers, weight upload) + the first run's wall time · activations: peak, after liveness sharing; weights: packed. ` +
    `${FLOPS_NOTE}`,
);

const report = modelsReport({ host: 'node', adapterName, device, runs, warmup, roofline, results });
console.log(JSON.stringify(report));
if (values.json) writeJson(values.json, report);
releaseNodeGPU();
process.exit(0);
