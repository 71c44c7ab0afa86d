import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readImage, writeImage } from '../../src/io/formats';
import type { AnyRasterImage, RasterImage } from '../../src/io/image';
import { cropRows, detectInfoBar } from '../../src/io/info-bar';
import { maxAbsDiff, psnr } from '../../src/io/metrics';
import { decodePng, encodePng } from '../../src/io/png';
import { decodeTiff } from '../../src/io/tiff';
import { networkFromCheckpoint } from '../../src/models/load';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { getTestContext } from '../helpers/gpu';
import { type BrowserPage, openPage } from './chromium';
import { checkBundle, REPO_ROOT } from './harness';
import { type StaticServer, serveStatic } from './server';

/**
 * The web demo (demo/index.html + demo.js on the built bundle dist/webgpu-restore.browser.js) in headless
 * Chromium, WebGPU on SwiftShader, driven like a user: set the file inputs, press Run (and Cancel), read the
 * downloadable result. The results are checked against the same library run in Node from src/ (Dawn), within one
 * grey level (the two GPUs round floats differently, which may flip a rounding). A screenshot of the page after
 * processing is written to test-results/demo.png. Needs `npm run build` first.
 */

/** SwiftShader runs the 17-layer DnCNN on the CPU: seconds per run, minutes when the machine is busy. */
const SLOW = 300_000;
const SHARED = new URL('../shared/', REPO_ROOT);
const NANOMEMBRANE = new URL('data/sem/nanomembranes/6410_NMonSi_MOVPE_w1_01.png', SHARED);
const ZEISS = new URL('data/sem/zeiss-with-databar/125nm_03.tif', SHARED);
const BUILTIN_WEIGHTS = new URL('assets/dncnn_25.pth', REPO_ROOT);
const TINY_COLOUR_WEIGHTS = new URL('test/fixtures/dncnn/tiny_r_color.pth', REPO_ROOT);
const ARTEFACTS = new URL('test-results/', REPO_ROOT);

let server: StaticServer;
let demo: BrowserPage;
let tmp: string;
let nodeModel: RestorationModel | undefined;

const page = () => demo.page;

/** Columns [x0, x1) and rows [y0, y1) of an interleaved image (alpha-free). */
function crop<T extends AnyRasterImage>(img: T, x0: number, y0: number, x1: number, y1: number): T {
  const rows = cropRows(img, y0, y1);
  const c = img.channels;
  const w = x1 - x0;
  const data = new (img.data.constructor as Uint8ArrayConstructor)(w * (y1 - y0) * c);
  for (let y = 0; y < y1 - y0; y++) {
    data.set(rows.data.subarray((y * img.width + x0) * c, (y * img.width + x1) * c), y * w * c);
  }
  return { ...rows, width: w, data };
}

/** The built-in DnCNN σ=25 in Node (Dawn), loaded from the same file the page fetches. */
async function runInNode(image: RasterImage): Promise<RasterImage> {
  if (!nodeModel) {
    const ctx = await getTestContext();
    const weights = new Uint8Array(readFileSync(BUILTIN_WEIGHTS));
    nodeModel = new RestorationModel(ctx, networkFromCheckpoint(weights, { name: 'dncnn_25' }), 'dncnn_25');
  }
  return nodeModel.run(image);
}

async function text(selector: string): Promise<string> {
  return (await page().textContent(selector)) ?? '';
}

/** Waits until the page leaves 'running' for one of `states`; fails with the page's error box otherwise. */
async function waitForOutcome(states: string[]): Promise<string> {
  await page().waitForFunction((wanted) => wanted.includes(document.body.dataset.state ?? ''), [...states, 'error'], {
    timeout: SLOW,
    polling: 100,
  });
  const state = (await page().getAttribute('body', 'data-state')) ?? '';
  if (!states.includes(state)) {
    throw new Error(`the demo ended in state '${state}': ${await text('#error')} (progress: ${await text('#progress-text')})`);
  }
  return state;
}

/** The bytes behind a download link of the page (a blob: URL). */
async function downloadBytes(selector: string): Promise<{ bytes: Uint8Array; fileName: string }> {
  const r = await demo.evaluate(async (sel) => {
    const a = document.querySelector(sel) as HTMLAnchorElement;
    if (a.hidden || !a.href) throw new Error(`${sel} offers no download`);
    const res = await fetch(a.href);
    return { bytes: Array.from(new Uint8Array(await res.arrayBuffer())), fileName: a.download };
  }, selector);
  return { bytes: Uint8Array.from(r.bytes), fileName: r.fileName };
}

async function openImageFile(path: string, expectInfo: string): Promise<void> {
  await page().setInputFiles('#image-input', path);
  await page().waitForFunction(
    (want) => (document.getElementById('image-info')?.textContent ?? '').includes(want) || document.body.dataset.state === 'error',
    expectInfo,
  );
  expect(await text('#error'), 'error box after opening the image').toBe('');
  expect(await text('#image-info')).toContain(expectInfo);
}

async function runAndWait(): Promise<void> {
  await page().click('#run');
  await waitForOutcome(['done']);
}

beforeAll(async () => {
  checkBundle();
  tmp = mkdtempSync(join(tmpdir(), 'webgpu-restore-demo-'));
  server = await serveStatic({ root: REPO_ROOT });
  demo = await openPage(server.origin, '/demo/');
  await page().waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state ?? ''), undefined, {
    timeout: 120_000,
  });
  const state = await page().getAttribute('body', 'data-state');
  if (state !== 'ready') throw new Error(`the demo did not start: ${await text('#error')}\n${demo.problems.join('\n')}`);
  console.log(`[demo] adapter shown by the page: ${await text('#adapter')}`);
}, 180_000);

afterEach(() => {
  // A test whose page logged errors (or tried to reach another host) fails, even when its checks passed.
  if (!demo) return;
  const problems = demo.takeNewProblems();
  if (problems.length > 0) throw new Error(`the page reported problems:\n${problems.join('\n')}`);
});

afterAll(async () => {
  await nodeModel?.dispose();
  await demo?.close();
  await server?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}, 30_000);

describe('web demo in Chromium', () => {
  it('starts with the adapter name and the built-in DnCNN described', async () => {
    const adapter = await text('#adapter');
    expect(adapter.length).toBeGreaterThan(0);
    expect(adapter).not.toMatch(/^(none|…)$/);
    const info = await text('#model-info');
    expect(info).toContain('dncnn_25');
    expect(info).toContain('DnCNN (denoise)');
    expect(info).toContain('1 → 1 (gray → gray)');
    expect(info).toMatch(/"nb":17/);
    expect(await page().isDisabled('#run')).toBe(true); // no image yet
  });

  it(
    'denoises an SEM crop with the built-in model like the library does in Node, and saves a screenshot',
    async () => {
      const full = decodePng(new Uint8Array(readFileSync(NANOMEMBRANE)), 'nanomembrane');
      const input = crop(full, 448, 336, 448 + 128, 336 + 96);
      expect(detectInfoBar(input)).toBeUndefined(); // so the page runs the whole crop, as Node does below
      const file = join(tmp, 'sem-crop.png');
      writeFileSync(file, encodePng(input));

      await openImageFile(file, 'sem-crop.png: 128×96, grayscale, 8-bit, PNG');
      expect(await text('#image-info')).toContain('no info bar');
      const t0 = performance.now();
      await runAndWait();
      const pageMs = performance.now() - t0;

      expect(await text('#progress-text')).toMatch(/^Done in .* \(whole image\)\.$/);
      const progress = await page().$eval('#progress', (p) => [(p as HTMLProgressElement).value, (p as HTMLProgressElement).max]);
      expect(progress).toEqual([1, 1]);
      expect(await text('#error')).toBe('');
      expect(await page().isVisible('#after-canvas')).toBe(true);

      const { bytes, fileName } = await downloadBytes('#download-png');
      expect(fileName).toBe('sem-crop.denoised.png');
      const out = decodePng(bytes, fileName);
      expect([out.width, out.height, out.channels, out.bitDepth]).toEqual([128, 96, 1, 8]);
      expect(out.alpha).toBeUndefined();

      // It changed the image (a denoiser on a noisy SEM crop moves most pixels) …
      let changed = 0;
      for (let i = 0; i < out.data.length; i++) if (out.data[i] !== input.data[i]) changed++;
      const vsInput = psnr(out, input);
      expect(changed / out.data.length).toBeGreaterThan(0.5);
      expect(vsInput).toBeLessThan(45);
      // … exactly as the library does in Node, up to one grey level where the GPUs round differently.
      const node = await runInNode(input);
      const diff = maxAbsDiff(out.data, node.data);
      let off = 0;
      for (let i = 0; i < out.data.length; i++) if (out.data[i] !== node.data[i]) off++;
      console.log(
        `[demo] 128×96 SEM crop: ${(pageMs / 1000).toFixed(1)} s in the page (${await text('#progress-text')}); ` +
          `${changed} of ${out.data.length} pixels changed (PSNR vs input ${vsInput.toFixed(2)} dB); ` +
          `vs Node: max |Δ| ${diff}, ${off} pixels differ`,
      );
      expect(diff).toBeLessThanOrEqual(1);

      // The before/after slider moves the split.
      await page().fill('#compare-slider', '30');
      expect(await page().$eval('#compare', (c) => (c as HTMLElement).style.getPropertyValue('--split'))).toBe('30%');

      mkdirSync(ARTEFACTS, { recursive: true });
      const shot = fileURLToPath(new URL('demo.png', ARTEFACTS));
      await page().screenshot({ path: shot, fullPage: true });
      console.log(`[demo] screenshot: ${shot}`);
    },
    SLOW,
  );

  it(
    'keeps the info bar of a Zeiss palette TIFF unchanged and writes the TIFF back as a palette file',
    async () => {
      const zeiss = readImage(new Uint8Array(readFileSync(ZEISS)), { name: 'zeiss' }).pages[0];
      expect(zeiss.metadata?.palette).toBe('index');
      // The bottom 200 rows (78 of them the info bar) of a 128-column strip, with the file's metadata.
      const input = crop(zeiss.image, 0, 568, 128, 768) as RasterImage;
      const bar = detectInfoBar(input);
      expect(bar).toMatchObject({ top: 122, rows: 78 });
      const file = join(tmp, 'zeiss-strip.tif');
      writeFileSync(file, writeImage({ image: input, metadata: zeiss.metadata }, { format: 'tiff' }));

      await openImageFile(file, 'zeiss-strip.tif: 128×200, grayscale, 8-bit, TIFF');
      expect(await text('#image-info')).toContain('palette TIFF');
      expect(await text('#image-info')).toContain('SEM info bar: bottom 78 rows');
      await runAndWait();
      expect(await text('#notes')).toContain('info bar (bottom 78 rows)');

      const { bytes, fileName } = await downloadBytes('#download-tiff');
      expect(fileName).toBe('zeiss-strip.denoised.tif');
      const [page0] = decodeTiff(bytes, { name: fileName });
      expect(page0.metadata.palette).toBe('index');
      expect(page0.metadata.extraTags.map((t) => t.tag)).toContain(34118); // Zeiss CZ_SEM kept
      const out = page0.image as RasterImage;
      expect([out.width, out.height, out.channels, out.bitDepth]).toEqual([128, 200, 1, 8]);
      const split = 122 * 128;
      expect(Buffer.from(out.data.subarray(split)).equals(Buffer.from(input.data.subarray(split)))).toBe(true);
      const node = await runInNode(cropRows(input, 0, 122));
      const diff = maxAbsDiff(out.data.subarray(0, split), node.data);
      console.log(`[demo] Zeiss strip: content 128×122 vs Node max |Δ| ${diff}; info bar byte-identical`);
      expect(diff).toBeLessThanOrEqual(1);
    },
    SLOW,
  );

  it(
    'cancels a tiled run between tiles',
    async () => {
      const full = decodePng(new Uint8Array(readFileSync(NANOMEMBRANE)), 'nanomembrane');
      const file = join(tmp, 'sem-256.png');
      writeFileSync(file, encodePng(crop(full, 256, 256, 512, 448)));
      await openImageFile(file, 'sem-256.png: 256×192');
      await page().selectOption('#tile-size', '128'); // 2 × 2 tiles
      await page().click('#run');
      await page().waitForFunction(() => /^Tile 1 of 4$/.test(document.getElementById('progress-text')?.textContent ?? ''), undefined, {
        timeout: SLOW,
        polling: 50,
      });
      await page().click('#cancel');
      await waitForOutcome(['cancelled']);
      const msg = await text('#progress-text');
      console.log(`[demo] cancel: ${msg}`);
      const m = /^Cancelled after (\d+) of 4 tiles \(ABORTED\)/.exec(msg);
      expect(m, msg).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThanOrEqual(1);
      expect(Number(m![1])).toBeLessThan(4);
      expect(await text('#error')).toBe('');
      expect(await page().isHidden('#download-png')).toBe(true);
      expect(await page().isEnabled('#run')).toBe(true);
      await page().selectOption('#tile-size', 'auto');
    },
    SLOW,
  );

  it(
    'loads a checkpoint file, shows its architecture, and converts gray input for a colour model',
    async () => {
      await page().setInputFiles('#weights-input', fileURLToPath(TINY_COLOUR_WEIGHTS));
      await page().waitForFunction(() => (document.getElementById('model-info')?.textContent ?? '').includes('tiny_r_color.pth'));
      const info = await text('#model-info');
      expect(info).toContain('DnCNN (denoise)');
      expect(info).toContain('3 → 3 (RGB → RGB)');
      expect(await page().inputValue('#model-source')).toBe('file');

      const full = decodePng(new Uint8Array(readFileSync(NANOMEMBRANE)), 'nanomembrane');
      const file = join(tmp, 'sem-small.png');
      writeFileSync(file, encodePng(crop(full, 0, 0, 40, 30)));
      await openImageFile(file, 'sem-small.png: 40×30, grayscale');
      await runAndWait();
      expect(await text('#notes')).toContain('colour model: the gray image was copied into three channels');
      const out = decodePng((await downloadBytes('#download-png')).bytes);
      expect([out.width, out.height, out.channels, out.bitDepth]).toEqual([40, 30, 3, 8]);

      // Back to the built-in model.
      await page().selectOption('#model-source', 'builtin:dncnn_25');
      await page().waitForFunction(() => (document.getElementById('model-info')?.textContent ?? '').includes('dncnn_25'));
    },
    SLOW,
  );

  it('reports an unreadable file with the library error code', async () => {
    await page().setInputFiles('#image-input', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not an image\n') });
    await page().waitForSelector('#error:not([hidden])');
    expect(await page().getAttribute('#error', 'data-code')).toBe('IMAGE_FORMAT');
    expect(await text('#error')).toMatch(/^IMAGE_FORMAT opening the image: notes\.txt: unsupported image format/);
    expect(await page().getAttribute('body', 'data-state')).toBe('error');
  });
});
