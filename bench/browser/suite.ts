/**
 * The model benchmark suite in a browser page (bundled by tsup into dist/bench/browser-suite.js, loaded by
 * bench/browser/index.html): the same cases, measurements and report as bench/models.ts, on `navigator.gpu`
 * (in headless Chromium here: WebGPU on SwiftShader). `window.runBenchSuite(options)` returns the JSON report;
 * bench/browser.ts drives it from Node, and the page's Run button shows the table to a person.
 */
import { BUILTIN_MODELS, createApi } from '../../src/api';
import { requestContext } from '../../src/gpu/context';
import type { BenchEnvironment } from '../networks';
import { measureRoofline, type RooflineResult } from '../roofline-lib';
import { benchCase, modelsReport, modelsTable, type NetworkResult, parseCases, rooflineLine, SUITES, withRoofline } from '../suite-core';

export interface BrowserSuiteOptions {
  /** `full` or `quick` (bench/suite-core.ts), unless `cases` says otherwise. */
  suite?: string;
  cases?: string;
  runs?: number;
  warmup?: number;
  roofline?: 'quick' | 'full' | 'none';
}

const gpu = () => (typeof navigator === 'undefined' ? undefined : navigator.gpu);

// The built-in weights from the served repository's assets/ folder (the page is served from its root).
const api = createApi({
  createContext: () => requestContext(gpu()),
  async readBuiltinWeights(name) {
    const res = await fetch(new URL(`/assets/${BUILTIN_MODELS[name].file}`, location.href));
    if (!res.ok) throw new Error(`could not fetch built-in weights: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  },
});
const env: BenchEnvironment = { loadBuiltin: (name, ctx) => api.loadBuiltinModel(name, { context: ctx }) };

export async function runBenchSuite(options: BrowserSuiteOptions = {}, log: (line: string) => void = () => undefined) {
  const suite = SUITES[options.suite ?? 'quick'];
  if (!suite && !options.cases) throw new Error(`unknown suite '${options.suite}' (known: ${Object.keys(SUITES).join(', ')})`);
  const cases = parseCases(options.cases ?? suite.cases);
  const runs = options.runs ?? suite?.runs ?? 3;
  const warmup = options.warmup ?? 1;
  const rooflineMode = options.roofline ?? suite?.roofline ?? 'quick';
  let roofline: RooflineResult | undefined;
  let adapterName: string;
  let device: unknown;
  {
    const ctx = await requestContext(gpu());
    adapterName = ctx.adapterName;
    device = ctx.describe();
    log(`adapter: ${adapterName}; timestamps: ${ctx.hasTimestamps ? 'yes' : 'no'}`);
    if (rooflineMode !== 'none') {
      roofline = await measureRoofline(ctx, { quick: rooflineMode === 'quick' });
      log(rooflineLine(roofline));
    }
    ctx.dispose();
  }
  const results: NetworkResult[] = [];
  for (const c of cases) {
    const ctx = await requestContext(gpu());
    try {
      const r = withRoofline(await benchCase(ctx, c, { runs, warmup, env }), roofline);
      results.push(r);
      log(
        `${c.spec.key} ${c.width}x${c.height}: ${r.status === 'ok' ? `${r.ms!.median.toFixed(0)} ms (${r.timing})` : `${r.status}: ${r.reason}`}`,
      );
    } finally {
      ctx.dispose();
    }
  }
  const report = modelsReport({
    host: 'browser',
    adapterName,
    device,
    runs,
    warmup,
    roofline,
    results,
    userAgent: navigator.userAgent,
  });
  return { report, table: modelsTable(results) };
}

declare global {
  interface Window {
    runBenchSuite: typeof runBenchSuite;
  }
}
window.runBenchSuite = runBenchSuite;
