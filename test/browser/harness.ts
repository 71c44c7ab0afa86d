import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserPage, findChromium, openPage } from './chromium';
import { CHROMIUM_ARGS } from './chromium-args';
import { type StaticServer, serveStatic } from './server';

/** What test/browser/page.html puts on `window.harness` (plain data crosses page.evaluate). */
export interface PlainImage {
  width: number;
  height: number;
  channels: number;
  data: number[];
}

export interface PageError {
  threw: boolean;
  name?: string;
  code?: string;
  message?: string;
  isRestoreError?: boolean;
  isInvalidInputError?: boolean;
  isError?: boolean;
}

/** What every harness page offers: whether navigator.gpu gives an adapter. */
export interface ProbeResult {
  gpu: boolean;
  secure?: boolean;
  adapter?: Record<string, string> | null;
}

export interface Harness {
  restore: typeof import('../../src/index');
  probe(): Promise<ProbeResult>;
  describeContext(): Promise<{
    adapterName: string;
    describe: { adapter: Record<string, unknown>; limits: Record<string, number>; features: string[] };
    hasTimestamps: boolean;
    userAgent: string;
  }>;
  runFixture(name: string): Promise<{
    architecture: string;
    config: unknown;
    info: { name: string; architecture: string; inChannels: number; outChannels: number; scale: number };
    output: PlainImage;
    stats: { gpuMs?: number; wallMs: number; dispatches: number; activationBytes: number };
    ms: number;
  }>;
  runBuiltin(
    fixture: string,
    builtin: string,
  ): Promise<{
    info: { name: string; architecture: string; inChannels: number; outChannels: number; scale: number };
    cached: boolean;
    model: PlainImage;
    denoise: PlainImage;
    modelMs: number;
    denoiseMs: number;
    defaultAdapterName: string;
    defaultIsHarnessContext: boolean;
  }>;
  catchError(fn: () => unknown): Promise<PageError>;
  runNetwork(
    folder: string,
    name: string,
    weightsUrl?: string,
  ): Promise<{
    info: { name: string; architecture: string; inChannels: number; outChannels: number; scale: number };
    output: PlainImage;
    ms: number;
  }>;
}

/** `window` inside the page, as the page.evaluate callbacks see it. */
export type HarnessWindow = Window & { harness: Harness; harnessReady: Promise<Harness> };
type ProbeWindow = Window & { harness: { probe(): Promise<ProbeResult> }; harnessReady: Promise<unknown> };

export const REPO_ROOT = new URL('../../', import.meta.url);
export const BUNDLE = new URL('dist/webgpu-restore.browser.js', REPO_ROOT);

/** Fails (never skips) when the bundle is missing; warns when src/ has changed since it was built. */
export function checkBundle(): void {
  const bundle = fileURLToPath(BUNDLE);
  if (!existsSync(bundle)) {
    throw new Error(
      `${bundle} is missing: the browser tests run the built bundle, so run \`npm run build\` first ` +
        '(`npm run test:browser` does both)',
    );
  }
  const built = statSync(bundle).mtimeMs;
  const newest = newestMtime(fileURLToPath(new URL('src/', REPO_ROOT)));
  if (newest.mtime > built) {
    console.warn(`[browser] warning: ${newest.file} is newer than ${bundle}; the page runs the old build (npm run build)`);
  }
}

function newestMtime(dir: string): { file: string; mtime: number } {
  let best = { file: '', mtime: 0 };
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    const cand = e.isDirectory() ? newestMtime(p) : { file: p, mtime: statSync(p).mtimeMs };
    if (cand.mtime > best.mtime) best = cand;
  }
  return best;
}

export interface HarnessSession {
  server: StaticServer;
  page: BrowserPage;
  close(): Promise<void>;
}

/**
 * Serves the repository on 127.0.0.1 (plus `mounts`), opens `path` in Chromium, waits for the page's
 * `window.harnessReady`, and checks that the page has a WebGPU adapter (failing with the reason when it has none).
 */
export async function openHarness(path: string, mounts?: Record<string, string>): Promise<HarnessSession> {
  const server = await serveStatic({ root: REPO_ROOT, mounts });
  let page: BrowserPage | undefined;
  try {
    page = await openPage(server.origin, path);
    await page.evaluate(async () => {
      await (window as unknown as ProbeWindow).harnessReady;
    }, undefined);
    const probe = await page.evaluate(() => (window as unknown as ProbeWindow).harness.probe(), undefined);
    if (!probe.gpu || !probe.adapter) {
      const why = !probe.gpu
        ? `navigator.gpu is undefined (secure context: ${probe.secure})`
        : 'navigator.gpu.requestAdapter() returned null';
      throw new Error(
        `Chromium has no WebGPU adapter: ${why}. Browser: ${findChromium()}, flags: ${CHROMIUM_ARGS.join(' ')}. ` +
          'The browser tests need WebGPU (SwiftShader is enough); they fail rather than skip.',
      );
    }
    const p = page;
    return {
      server,
      page,
      async close() {
        await p.close().catch(() => undefined);
        await server.close();
      },
    };
  } catch (e) {
    await page?.close().catch(() => undefined);
    await server.close();
    throw e;
  }
}
