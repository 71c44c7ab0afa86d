import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CONV2D_CASES, conv2dVariantsFor } from '../helpers/conv2d-cases';
import { type HarnessSession, openHarness } from './harness';
import type { KernelHarness } from './kernels-entry';

/**
 * The conv2d kernel cases of test/kernels/conv2d.test.ts, run inside headless Chromium (WebGPU on SwiftShader)
 * against the same float64 reference. The kernel internals are not in the library bundle, so this file bundles
 * test/browser/kernels-entry.ts (src/gpu, src/kernels, the reference) with esbuild into a temp folder that the
 * local server mounts at /__kernels__/. It does not need `npm run build`.
 */

type KernelWindow = Window & { harness: KernelHarness };

let outDir: string;
let session: HarnessSession;

beforeAll(async () => {
  outDir = mkdtempSync(join(tmpdir(), 'webgpu-restore-kernels-'));
  await build({
    entryPoints: [fileURLToPath(new URL('./kernels-entry.ts', import.meta.url))],
    outdir: outDir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: 'inline',
    logLevel: 'error',
  });
  session = await openHarness('/test/browser/kernels.html', { '/__kernels__/': outDir });
  const adapter = await session.page.evaluate(() => (window as unknown as KernelWindow).harness.adapterName(), undefined);
  console.log(`[browser kernels] adapter: ${adapter}`);
}, 120_000);

afterEach(() => {
  if (!session) return;
  const problems = session.page.takeNewProblems();
  if (problems.length > 0) throw new Error(`the page reported problems:\n${problems.join('\n')}`);
});

afterAll(async () => {
  await session?.close();
  if (outDir) rmSync(outDir, { recursive: true, force: true });
}, 30_000);

describe('conv2d in Chromium against a float64 reference', () => {
  CONV2D_CASES.forEach(([name, c], i) => {
    for (const variant of conv2dVariantsFor(c)) {
      it(`${name} [px${variant.px} cb${variant.cb} wg${variant.workgroupSize}]`, async () => {
        const r = await session.page.evaluate(
          ([cs, v, seed]) => (window as unknown as KernelWindow).harness.runConv2dCase(cs, v, seed),
          [c, variant, 100 + i] as const,
        );
        expect(r.shape).toEqual(r.expectedShape);
        expect(r.paddingError).toBeUndefined();
        expect(r.relL2).toBeLessThanOrEqual(1e-5);
      }, 120_000);
    }
  });
});
