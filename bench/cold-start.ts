/**
 * Cold start: the first run of each network in a fresh process whose Mesa shader cache is empty — what CI and
 * every new user meet first. On software adapters (lavapipe) compiling the pipelines dominates a first run, so
 * each case reports, besides the cold first run (weights upload, plan compile, run) and the warm second run, how
 * many distinct pipelines the network creates for that input size and how long the shader stages took.
 *
 *   node dist/bench/cold-start.js [--cases dncnn@70x50,resnet34-unet@128x96,...] [--serial] [--json out.json]
 *
 * Every case runs in a child process with MESA_SHADER_CACHE_DIR pointing at a new empty folder (the user's own
 * cache is neither read nor cleared). `--serial` also compiles the pipelines one at a time before the run and
 * lists the slowest, to see where the time goes (the first run is then warm for those, so read its time from a
 * run without `--serial`).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBenchArgs } from './args';
import { Graph } from '../src/gpu/graph';
import { type KernelSource, materializeSource, reflectShader, sourceCacheKey } from '../src/gpu/shader';
import { createNodeContext, loadBuiltinModel, releaseNodeGPU } from '../src/node';
import { architectureByName } from '../src/models/registry';
import type { BenchEnvironment } from './networks';
import { networkByKey, pattern } from './networks';
import { fmt } from './report';
import { writeJson } from './write-json';
import { ForwardBuilder } from '../src/layers/forward-builder';

/** The sizes of the cold-start measurements in issue 15, and the demo's 256². */
export const COLD_CASES =
  'dncnn@70x50,dncnn@256x256,resnet34-unet@128x96,scunet@64x64,unet@64x64,rrdbnet@24x20,msrresnet@24x20,srresnet@24x20,sinsr@24x20';

const USAGE = `
  node dist/bench/cold-start.js [--cases net@WxH,...] [--serial] [--json out.json]
  default cases: ${COLD_CASES}
`;

interface ColdResult {
  case: string;
  adapter: string;
  pipelines: number;
  /** Plan compile (pipelines, buffers, bind groups) of the first run, ms. */
  compileMs: number;
  /** Whole first run: weights upload + compile + run + readback, ms. */
  firstRunMs: number;
  /** The same size again (pipelines and plan cached), ms. */
  warmRunMs: number;
  /** WGSL generation and reflection (JavaScript parsing) of every distinct shader, ms. */
  reflectMs: number;
  /** With --serial: the slowest pipelines compiled one at a time. */
  slowest?: { label: string; ms: number }[];
  serialTotalMs?: number;
}

async function child(spec: string, serial: boolean): Promise<void> {
  const [key, size] = spec.split('@');
  const [width, height] = size.split('x').map(Number);
  const net = networkByKey(key);
  if (!net || !(width > 0 && height > 0)) throw new Error(`bad case '${spec}'`);
  const t0 = performance.now();
  const ctx = await createNodeContext();
  const env: BenchEnvironment = { loadBuiltin: (name, c) => loadBuiltinModel(name, { context: c }) };
  const model = await net.load(ctx, env);
  const graph = new Graph();
  graph.output(model.network.forward(new ForwardBuilder(ctx, graph), graph.input([1, height, width, model.network.inChannels], 'image')));
  const distinct = new Map<string, KernelSource>();
  for (const n of graph.nodes) distinct.set(sourceCacheKey(n.kernel), n.kernel);
  // WGSL generation (kernels generate on a pipeline-cache miss) and reflection of every distinct shader.
  const r0 = performance.now();
  for (const s of distinct.values()) reflectShader(materializeSource(s));
  const reflectMs = performance.now() - r0;
  let slowest: ColdResult['slowest'];
  let serialTotalMs: number | undefined;
  if (serial) {
    const times: { label: string; ms: number }[] = [];
    for (const s of distinct.values()) {
      const s0 = performance.now();
      await ctx.pipelines.get(s);
      times.push({ label: s.label, ms: performance.now() - s0 });
    }
    serialTotalMs = times.reduce((a, t) => a + t.ms, 0);
    slowest = times.sort((a, b) => b.ms - a.ms).slice(0, 12);
  }
  const image = pattern(width, height, model.network.inChannels, architectureByName(net.architecture).valueRange === 'symmetric');
  const c0 = performance.now();
  await model.warmup(height, width);
  const compileMs = performance.now() - c0;
  await model.runFloat(image, { tileSize: 0 });
  const firstRunMs = performance.now() - t0;
  const w0 = performance.now();
  await model.runFloat(image, { tileSize: 0 });
  const warmRunMs = performance.now() - w0;
  const result: ColdResult = {
    case: spec,
    adapter: ctx.adapterName,
    pipelines: ctx.pipelines.size,
    compileMs,
    firstRunMs,
    warmRunMs,
    reflectMs,
    slowest,
    serialTotalMs,
  };
  await model.dispose();
  ctx.dispose();
  releaseNodeGPU();
  console.log(`RESULT ${JSON.stringify(result)}`);
}

function parent(cases: string[], serial: boolean, json: string | undefined): void {
  const script = fileURLToPath(import.meta.url);
  const results: ColdResult[] = [];
  console.log('| case | distinct pipelines | cold first run | of which plan compile | warm run | WGSL reflection |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const spec of cases) {
    const cache = mkdtempSync(join(tmpdir(), 'cold-mesa-cache-'));
    try {
      const out = spawnSync(process.execPath, [script, '--child', spec, ...(serial ? ['--serial'] : [])], {
        env: { ...process.env, MESA_SHADER_CACHE_DIR: cache },
        encoding: 'utf8',
        maxBuffer: 64 << 20,
      });
      const line = out.stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (!line) {
        console.log(`| ${spec} | failed: ${(out.stderr || out.stdout).trim().split('\n').slice(-3).join(' ')} |`);
        continue;
      }
      const r = JSON.parse(line.slice(7)) as ColdResult;
      results.push(r);
      const s = (ms: number) => `${fmt(ms / 1000)} s`;
      if (results.length === 1) console.log(`(adapter: ${r.adapter})`);
      console.log(`| ${r.case} | ${r.pipelines} | ${s(r.firstRunMs)} | ${s(r.compileMs)} | ${s(r.warmRunMs)} | ${s(r.reflectMs)} |`);
      if (r.slowest)
        console.log(`|  serial compile ${s(r.serialTotalMs!)}; slowest: ${r.slowest.map((t) => `${t.label} ${s(t.ms)}`).join(', ')} |`);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  }
  if (json) writeJson(json, { benchmark: 'cold-start', date: new Date().toISOString(), results });
}

const { values } = parseBenchArgs(USAGE, {
  cases: { type: 'string', default: COLD_CASES },
  serial: { type: 'boolean', default: false },
  child: { type: 'string' },
  json: { type: 'string' },
});
if (values.child) await child(values.child, values.serial);
else parent(values.cases.split(','), values.serial, values.json);
