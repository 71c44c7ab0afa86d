/**
 * The model benchmark suite in headless Chromium (WebGPU on SwiftShader here; whatever adapter Chromium gets
 * elsewhere): serves the repository root on 127.0.0.1, opens bench/browser/index.html, runs the same suite as
 * bench/models.ts inside the page (bench/browser/suite.ts, bundled as dist/bench/browser-suite.js), and prints
 * the same table and JSON.
 *
 *   npm run build && node dist/bench/browser.js [--suite quick|full] [--cases dncnn@64x64] [--runs 3]
 *     [--warmup 1] [--roofline quick|full|none] [--json out.json]
 */
import { parseBenchArgs } from './args';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openPage } from '../test/browser/chromium';
import { serveStatic } from '../test/browser/server';
import type { BrowserSuiteOptions } from './browser/suite';
import { writeJson } from './write-json';

const USAGE = `
  npm run build && node dist/bench/browser.js [--suite quick|full] [--cases dncnn@64x64] [--runs 3]
    [--warmup 1] [--roofline quick|full|none] [--json out.json]
`;

const { values } = parseBenchArgs(USAGE, {
  suite: { type: 'string', default: 'quick' },
  cases: { type: 'string' },
  runs: { type: 'string' },
  warmup: { type: 'string' },
  roofline: { type: 'string' },
  json: { type: 'string' },
});

const root = fileURLToPath(new URL('../../', import.meta.url));
if (!existsSync(`${root}dist/bench/browser-suite.js`)) {
  console.error('bench/browser: dist/bench/browser-suite.js is missing; run `npm run build` first');
  process.exit(2);
}
const options: BrowserSuiteOptions = {
  suite: values.suite,
  ...(values.cases ? { cases: values.cases } : {}),
  ...(values.runs ? { runs: Number(values.runs) } : {}),
  ...(values.warmup ? { warmup: Number(values.warmup) } : {}),
  ...(values.roofline ? { roofline: values.roofline as BrowserSuiteOptions['roofline'] } : {}),
};

const server = await serveStatic({ root });
let status = 0;
try {
  // No time limit inside the page: a full suite on a software adapter takes many minutes.
  const page = await openPage(server.origin, '/bench/browser/index.html', { timeoutMs: 0 });
  try {
    await page.page.waitForFunction(() => document.body.dataset.ready === 'true');
    await page.page.exposeFunction('benchLog', (line: string) => console.error(`[chromium] ${line}`));
    const { report, table } = await page.evaluate(
      (o) => window.runBenchSuite(o, (line) => (window as unknown as { benchLog(l: string): void }).benchLog(line)),
      options,
    );
    console.log();
    console.log(table);
    console.log();
    console.log(`adapter: ${report.adapterName} (Chromium, ${report.userAgent}) · runs: ${report.runs} after ${report.warmup} warm-up`);
    console.log(JSON.stringify(report));
    if (values.json) writeJson(values.json, report);
    if (report.results.some((r) => r.status === 'failed')) status = 1;
  } finally {
    await page.close();
  }
} finally {
  await server.close();
}
process.exit(status);
