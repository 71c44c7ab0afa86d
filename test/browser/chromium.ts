import { existsSync } from 'node:fs';
import { CHROMIUM_ARGS } from './chromium-args';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

/**
 * Launches headless Chromium with WebGPU on SwiftShader (no GPU needed) and opens a page served by the local
 * static server. The page's console errors, uncaught exceptions and failed requests are collected so that a
 * failing test can show what the page said.
 */

/** `CHROMIUM_PATH`, else Debian's chromium, else a browser installed by `npx playwright install`. */
export function findChromium(): string {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  try {
    candidates.push(chromium.executablePath());
  } catch {
    // playwright-core knows no bundled browser here
  }
  const found = candidates.find((p): p is string => !!p && existsSync(p));
  if (!found) {
    throw new Error(`no Chromium found (tried ${candidates.filter(Boolean).join(', ')}); install Chromium or set CHROMIUM_PATH`);
  }
  return found;
}

export interface BrowserPage {
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** Console errors, uncaught page exceptions, failed or blocked requests, in order. */
  problems: string[];
  /** Runs `fn` in the page; a rejection carries the page's collected problems in its message. */
  evaluate<R, A>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<Awaited<R>>;
  /** Problems recorded since the previous call (for asserting that a test left the console clean). */
  takeNewProblems(): string[];
  close(): Promise<void>;
}

export async function openPage(origin: string, path: string, options: { timeoutMs?: number } = {}): Promise<BrowserPage> {
  const executablePath = findChromium();
  const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS, headless: true, timeout: 60_000 });
  try {
    const context = await browser.newContext();
    const problems: string[] = [];
    // The page may only talk to our server: anything else is aborted and reported.
    await context.route(
      (url) => url.origin !== origin && url.protocol !== 'data:' && url.protocol !== 'blob:',
      (route) => {
        problems.push(`blocked request to ${route.request().url()}`);
        return route.abort('blockedbyclient');
      },
    );
    const page = await context.newPage();
    page.setDefaultTimeout(options.timeoutMs ?? 180_000);
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console.error: ${msg.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`uncaught in page: ${e.stack ?? e.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText ?? '?'})`));
    page.on('response', (r) => {
      if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`);
    });
    page.on('crash', () => problems.push('the page crashed'));

    const withProblems = (e: unknown): Error => {
      const msg = e instanceof Error ? e.message : String(e);
      const tail = problems.length > 0 ? `\n--- page problems (${problems.length}) ---\n${problems.join('\n')}` : '';
      const err = new Error(`${msg}${tail}`, { cause: e });
      return err;
    };

    await page.goto(`${origin}${path}`, { waitUntil: 'load' }).catch((e) => {
      throw withProblems(e);
    });
    let seen = 0;
    return {
      browser,
      context,
      page,
      problems,
      evaluate: <R, A>(fn: (arg: A) => R | Promise<R>, arg: A) =>
        page.evaluate(fn as never, arg as never).catch((e: unknown) => {
          throw withProblems(e);
        }) as Promise<Awaited<R>>,
      takeNewProblems() {
        const fresh = problems.slice(seen);
        seen = problems.length;
        return fresh;
      },
      close: () => browser.close(),
    };
  } catch (e) {
    await browser.close();
    throw e;
  }
}
