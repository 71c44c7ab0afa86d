import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { GPUContext } from '../../src/gpu/context';
import { floatToRaster, type FloatImage, rasterToFloat, type RasterImage } from '../../src/io/image';
import { maxAbsDiff } from '../../src/io/metrics';
import { addGaussianNoise } from '../../src/io/noise';
import { decodePng, encodePng } from '../../src/io/png';
import { networkFromCheckpoint } from '../../src/models/load';
import { namedParameters } from '../../src/layers/module';
import { N2VUNet, n2vUNetConfig } from '../../src/models/n2v-unet';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { initializeParameters } from '../../src/training/init';
import { readCheckpoint } from '../../src/weights/checkpoint';
import type { FromTrainWorker } from '../../src/worker/train-protocol';
import { getTestContext } from '../helpers/gpu';
import { type BrowserPage, openPage } from './chromium';
import { checkBundle, REPO_ROOT } from './harness';
import { type StaticServer, serveStatic } from './server';

/**
 * The demo's "Train on my images" panel (demo/train-panel.js) and the training worker it runs
 * (dist/train-worker.js, src/worker/) in headless Chromium, WebGPU on SwiftShader in the worker: two small noisy
 * images in through the file input, a few steps of N2V2 on a narrow U-Net, and then what the user gets. The page
 * keeps drawing frames and answering clicks while the worker trains; the loss curve and the preview follow the
 * steps; the downloaded .pth is a PyTorch zip that this library loads back in Node (Dawn), where it gives the
 * page's last preview and, through "Denoise with it", the page's denoised image; Cancel stops a long run and
 * still hands over the weights; bad requests come back as typed errors. Needs `npm run build` first.
 */

/** SwiftShader compiles the training kernels and runs the steps on the CPU: minutes when the machine is busy. */
const SLOW = 600_000;
const SIDE = 48;
const ARTEFACTS = new URL('test-results/', REPO_ROOT);
const BUILTIN_WEIGHTS = new URL('assets/dncnn_25.pth', REPO_ROOT);
const WORKER = new URL('dist/train-worker.js', REPO_ROOT);

let server: StaticServer;
let demo: BrowserPage;
let tmp: string;
let ctx: GPUContext;
/** The two training images as written to disk, and their paths. */
const images: { path: string; raster: RasterImage }[] = [];

const page = () => demo.page;

async function text(selector: string): Promise<string> {
  return (await page().textContent(selector)) ?? '';
}

/** A smooth 8-bit gray pattern with Gaussian noise (σ = 0.1), different for each seed. */
function noisyImage(seed: number): RasterImage {
  const clean = new Float32Array(SIDE * SIDE);
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) clean[y * SIDE + x] = 0.5 + 0.3 * Math.sin((x + 3 * seed) / 5) * Math.cos((y - seed) / 7);
  }
  const noisy: FloatImage = { width: SIDE, height: SIDE, channels: 1, data: addGaussianNoise(clean, 0.1, seed) };
  return floatToRaster(noisy, 8);
}

/** Waits until the panel leaves 'training' for one of `states`; fails with the page's error box otherwise. */
async function waitForTraining(states: string[]): Promise<string> {
  await page().waitForFunction(
    (wanted) => wanted.includes(document.getElementById('train-panel')?.dataset.state ?? ''),
    [...states, 'error'],
    { timeout: SLOW, polling: 100 },
  );
  const state = (await page().getAttribute('#train-panel', 'data-state')) ?? '';
  if (!states.includes(state)) {
    throw new Error(`the training ended in state '${state}': ${await text('#error')} (status: ${await text('#train-status')})`);
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

async function setTrainingFields(fields: { steps: number; previewEvery: number; method?: string; init?: string }): Promise<void> {
  await page().selectOption('#train-method', fields.method ?? 'n2v2');
  await page().selectOption('#train-init', fields.init ?? 'n2v-unet');
  if ((fields.init ?? 'n2v-unet') === 'n2v-unet') await page().selectOption('#train-width', '8');
  await page().selectOption('#train-patch', '32');
  await page().fill('#train-batch', '4');
  await page().fill('#train-steps', String(fields.steps));
  await page().fill('#train-minutes', '');
  await page().fill('#train-preview-every', String(fields.previewEvery));
  await page().fill('#train-lr', '');
}

type PanelWindow = Window & {
  demo: {
    train: {
      history: { loss: [number, number][]; validation: [number, number][] };
      previews: number;
      lastPreview?: FloatImage;
    };
  };
  frameCount?: { ticks: number; maxGapMs: number; running: boolean };
};

beforeAll(async () => {
  checkBundle();
  if (!existsSync(fileURLToPath(WORKER))) throw new Error(`${fileURLToPath(WORKER)} is missing: run \`npm run build\` first`);
  tmp = mkdtempSync(join(tmpdir(), 'webgpu-restore-train-panel-'));
  for (const seed of [1, 2]) {
    const raster = noisyImage(seed);
    const path = join(tmp, `noisy-${seed}.png`);
    writeFileSync(path, encodePng(raster));
    images.push({ path, raster });
  }
  ctx = await getTestContext();
  server = await serveStatic({ root: REPO_ROOT });
  demo = await openPage(server.origin, '/demo/');
  await page().waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state ?? ''), undefined, { timeout: 120_000 });
  const state = await page().getAttribute('body', 'data-state');
  if (state !== 'ready') throw new Error(`the demo did not start: ${await text('#error')}\n${demo.problems.join('\n')}`);
}, 180_000);

afterEach(() => {
  // A test whose page logged errors (or tried to reach another host) fails, even when its checks passed.
  if (!demo) return;
  const problems = demo.takeNewProblems();
  if (problems.length > 0) throw new Error(`the page reported problems:\n${problems.join('\n')}`);
});

afterAll(async () => {
  await demo?.close();
  await server?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}, 30_000);

describe('training panel of the web demo in Chromium', () => {
  it(
    'answers bad requests to the worker with typed errors, and shows one in the page',
    async () => {
      const answers = await demo.evaluate(async () => {
        const worker = new Worker('/dist/train-worker.js', { type: 'module' });
        // The run's last message: 'done', 'cancelled' or 'error' (a run that got as far as fineTune starts first).
        const ask = (msg: unknown) =>
          new Promise<FromTrainWorker>((resolve, reject) => {
            worker.onmessage = (e: MessageEvent<FromTrainWorker>) => {
              if (['done', 'cancelled', 'error'].includes(e.data.type)) resolve(e.data);
            };
            worker.onerror = (e) => reject(new Error(`worker: ${e.message}`));
            worker.postMessage(msg);
          });
        const unet = { kind: 'n2v-unet', width: 8 };
        const float = { width: 40, height: 40, channels: 1, data: new Float32Array(1600).fill(0.5) };
        try {
          return [
            await ask({ type: 'start', images: [], method: 'n2v2', init: unet }),
            await ask({ type: 'start', images: [{ name: 'a', image: float }], method: 'n2v3', init: unet }),
            await ask({ type: 'start', images: [{ name: 'a', image: float }], method: 'n2v2', init: { kind: 'scunet' } }),
            await ask({ type: 'start', images: [{ name: 'notes.txt', file: new Blob(['not an image\n']) }], method: 'n2v2', init: unet }),
            // Checked by fineTune itself, after the worker has its device and the network.
            await ask({ type: 'start', images: [{ name: 'a', image: float }], method: 'n2v2', init: unet, options: { patch: 0 } }),
            await ask({ type: 'start', images: [{ name: 'a', image: float }], method: 'n2v2', init: unet, options: { normalize: {} } }),
            await ask({ type: 'resume' }),
          ];
        } finally {
          worker.terminate();
        }
      }, undefined);
      const errors = answers.map((a) => (a.type === 'error' ? a.error : a));
      console.log(`[train-panel] worker errors:\n${errors.map((e) => JSON.stringify(e)).join('\n')}`);
      expect(errors[0]).toMatchObject({
        name: 'InvalidInputError',
        code: 'INVALID_INPUT',
        message: expect.stringMatching(/images must be a non-empty array/),
      });
      expect(errors[1]).toMatchObject({
        code: 'INVALID_INPUT',
        message: expect.stringMatching(/method must be one of n2v2, n2v, neighbor2neighbor, got 'n2v3'/),
      });
      expect(errors[2]).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/init.kind must be/) });
      expect(errors[3]).toMatchObject({ name: 'ImageFormatError', code: 'IMAGE_FORMAT', message: expect.stringMatching(/^notes\.txt: /) });
      expect(errors[4]).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/patch/) });
      expect(errors[5]).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/unknown option\(s\) normalize/) });
      expect(errors[6]).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/unknown message type resume/) });

      // The panel: nothing to train on yet, then a learning rate that is not a number.
      expect(await page().isDisabled('#train-start')).toBe(true);
      await page().setInputFiles('#train-images', [images[0].path]);
      expect(await page().isEnabled('#train-start')).toBe(true);
      await setTrainingFields({ steps: 2, previewEvery: 1 });
      await page().fill('#train-lr', 'fast');
      await page().click('#train-start');
      await waitForTraining(['error']).catch(() => undefined);
      expect(await page().getAttribute('#train-panel', 'data-state')).toBe('error');
      expect(await page().getAttribute('#error', 'data-code')).toBe('INVALID_INPUT');
      expect(await text('#error')).toMatch(/^INVALID_INPUT training: start: options\.lr must be a number > 0, got NaN/);
      expect(await page().isEnabled('#train-start')).toBe(true);
    },
    SLOW,
  );

  it(
    'trains a narrow N2V2 U-Net in the worker while the page keeps drawing; the curve, the preview and the .pth follow',
    async () => {
      await page().setInputFiles(
        '#train-images',
        images.map((i) => i.path),
      );
      expect(await text('#train-image-list')).toContain('noisy-2.png');
      await setTrainingFields({ steps: 10, previewEvery: 5 });

      // Frames of the page's main thread, counted while the worker trains.
      await demo.evaluate(() => {
        const w = window as unknown as PanelWindow;
        const frames = { ticks: 0, maxGapMs: 0, running: true };
        w.frameCount = frames;
        let last = performance.now();
        const tick = (t: number) => {
          frames.ticks++;
          frames.maxGapMs = Math.max(frames.maxGapMs, t - last);
          last = t;
          if (frames.running) requestAnimationFrame(tick);
        };
        requestAnimationFrame(tick);
      }, undefined);
      const t0 = performance.now();
      await page().click('#train-start');
      // While it trains, a click on the page is handled at once (the viewer's "Side by side" box).
      await page().waitForFunction(() => Number(document.getElementById('train-loss')?.dataset.points ?? 0) >= 1, undefined, {
        timeout: SLOW,
        polling: 100,
      });
      const sideBySide = await page().isChecked('#side-by-side');
      const c0 = performance.now();
      await page().click('#side-by-side');
      const clickMs = performance.now() - c0;
      expect(await page().isChecked('#side-by-side')).toBe(!sideBySide);
      expect(await page().getAttribute('#train-panel', 'data-state')).toBe('training');
      await page().click('#side-by-side');

      await waitForTraining(['done']);
      const seconds = (performance.now() - t0) / 1000;
      const frames = await demo.evaluate(() => {
        const f = (window as unknown as PanelWindow).frameCount!;
        f.running = false;
        return f;
      }, undefined);
      const status = await text('#train-status');
      console.log(
        `[train-panel] 10 steps in ${seconds.toFixed(1)} s (${status}); main thread: ${frames.ticks} frames, ` +
          `longest gap ${frames.maxGapMs.toFixed(0)} ms; a click while training took ${clickMs.toFixed(0)} ms`,
      );
      expect(status).toMatch(
        /^Done: 10 steps in .*last loss \d\.\d{3}e[-+]\d+; best validation loss .* at step (5|10)\. Validated on noisy-[12]\.png\.$/,
      );
      // The page drew frames all along: at least 5 a second on average, none of them held up for 3 s.
      expect(frames.ticks).toBeGreaterThan(5 * seconds);
      expect(frames.maxGapMs).toBeLessThan(3000);

      // The curve has every step's loss and the two validations; the preview followed them.
      const train = await demo.evaluate(() => {
        const t = (window as unknown as PanelWindow).demo.train;
        return {
          loss: t.history.loss,
          validation: t.history.validation,
          previews: t.previews,
          preview: t.lastPreview && { ...t.lastPreview, data: Array.from(t.lastPreview.data) },
        };
      }, undefined);
      expect(train.loss.map(([s]) => s)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      for (const [, v] of [...train.loss, ...train.validation]) expect(v).toBeGreaterThan(0);
      expect(train.validation.map(([s]) => s)).toEqual([5, 10]);
      expect(await page().getAttribute('#train-loss', 'data-points')).toBe('10');
      expect(train.previews).toBeGreaterThanOrEqual(1);
      expect(await text('#train-after-caption')).toBe('after 10 steps');
      expect(await page().$eval('#train-before', (c) => [(c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height])).toEqual([
        SIDE,
        SIDE,
      ]);

      mkdirSync(ARTEFACTS, { recursive: true });
      const shot = fileURLToPath(new URL('train-panel.png', ARTEFACTS));
      await page().locator('#train-panel').screenshot({ path: shot });
      console.log(`[train-panel] screenshot: ${shot}`);

      // The .pth: a PyTorch zip of the narrow N2V2 U-Net, with weights that training moved from their start.
      const { bytes, fileName } = await downloadBytes('#train-download');
      expect(fileName).toBe('n2v2-unet-w8.n2v2-10steps.pth');
      expect(String.fromCharCode(bytes[0], bytes[1])).toBe('PK');
      const sd = readCheckpoint(bytes, { name: fileName });
      expect(sd.get('encoder.encoder_blocks.0.conv1.weight')?.shape).toEqual([8, 1, 3, 3]);
      const network = networkFromCheckpoint(bytes, { name: fileName });
      expect(network.architecture).toBe('N2VUNet');
      expect((network as N2VUNet).config).toMatchObject({ n2v2: true, numChannelsInit: 8, depth: 2, inChannels: 1 });
      // The worker starts a fresh U-Net from seed 0, as this one.
      const fresh = new N2VUNet(n2vUNetConfig(1, 1, { n2v2: true, numChannelsInit: 8 }));
      initializeParameters(fresh, 0);
      const initial = new Map(namedParameters(fresh).map(([k, p]) => [k, p.data!]));
      expect([...sd.keys()].filter((k) => !k.endsWith('num_batches_tracked')).sort()).toEqual([...initial.keys()].sort());
      const trainedConv = sd.get('final_conv.weight')!.data as Float32Array;
      expect(maxAbsDiff(trainedConv, Float32Array.from(initial.get('final_conv.weight')!))).toBeGreaterThan(1e-4);

      // The last preview is the first image through these weights: the same in Node (Dawn), up to float rounding.
      const model = new RestorationModel(ctx, network, fileName);
      try {
        const first = rasterToFloat(images[0].raster);
        const node = (await model.runFloat(first)).image;
        expect(train.preview).toMatchObject({ width: SIDE, height: SIDE, channels: 1 });
        const diff = maxAbsDiff(Float32Array.from(train.preview!.data), node.data);
        const moved = maxAbsDiff(node.data, first.data);
        console.log(`[train-panel] last preview vs Node: max |Δ| ${diff.toExponential(2)}; output vs input max |Δ| ${moved.toFixed(3)}`);
        expect(diff).toBeLessThan(1e-3);

        // "Denoise with it": the demo's model is now the trained one, and denoises as Node does (±1 grey level).
        await page().click('#train-use');
        await page().waitForFunction((name) => (document.getElementById('model-info')?.textContent ?? '').includes(name), fileName);
        expect(await text('#model-info')).toContain('N2VUNet');
        await page().setInputFiles('#image-input', images[0].path);
        await page().waitForFunction(() => (document.getElementById('image-info')?.textContent ?? '').includes('noisy-1.png'));
        await page().click('#run');
        await page().waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state ?? ''), undefined, { timeout: SLOW });
        expect(await text('#error')).toBe('');
        const out = decodePng((await downloadBytes('#download-png')).bytes);
        const expected = await model.run(images[0].raster);
        expect([out.width, out.height, out.channels]).toEqual([SIDE, SIDE, 1]);
        expect(maxAbsDiff(out.data, expected.data)).toBeLessThanOrEqual(1);
      } finally {
        await model.dispose();
      }
    },
    SLOW,
  );

  it(
    'cancels a long run after a few steps and still offers the weights trained so far',
    async () => {
      await setTrainingFields({ steps: 5000, previewEvery: 1000 });
      await page().click('#train-start');
      await page().waitForFunction(() => Number(document.getElementById('train-loss')?.dataset.points ?? 0) >= 2, undefined, {
        timeout: SLOW,
        polling: 50,
      });
      await page().click('#train-cancel');
      await waitForTraining(['cancelled']);
      const status = await text('#train-status');
      console.log(`[train-panel] cancel: ${status}`);
      const m = /^Cancelled after (\d+) steps \(ABORTED\); the weights after it are offered below\.$/.exec(status);
      expect(m, status).not.toBeNull();
      const steps = Number(m![1]);
      expect(steps).toBeGreaterThanOrEqual(2);
      expect(steps).toBeLessThan(5000);
      expect(await text('#error')).toBe('');
      expect(await page().isEnabled('#train-start')).toBe(true);
      const { bytes, fileName } = await downloadBytes('#train-download');
      expect(fileName).toBe(`n2v2-unet-w8.n2v2-${steps}steps.pth`);
      expect(String.fromCharCode(bytes[0], bytes[1])).toBe('PK');
      expect(networkFromCheckpoint(bytes, { name: fileName }).architecture).toBe('N2VUNet');
    },
    SLOW,
  );
  it(
    'fine-tunes the built-in DnCNN σ=25 by Neighbor2Neighbor, the worker fetching the weights beside the bundle',
    async () => {
      await setTrainingFields({ steps: 2, previewEvery: 2, method: 'neighbor2neighbor', init: 'builtin:dncnn_25' });
      expect(await page().isHidden('#train-width-choice')).toBe(true);
      expect(await page().getAttribute('#train-lr', 'placeholder')).toBe('auto (5e-5)');
      await page().click('#train-start');
      await waitForTraining(['done']);
      const status = await text('#train-status');
      console.log(`[train-panel] DnCNN: ${status}`);
      expect(status).toMatch(/^Done: 2 steps in /);
      const { bytes, fileName } = await downloadBytes('#train-download');
      expect(fileName).toBe('dncnn_25.neighbor2neighbor-2steps.pth');
      expect(String.fromCharCode(bytes[0], bytes[1])).toBe('PK');
      const trained = readCheckpoint(bytes, { name: fileName });
      const builtin = readCheckpoint(new Uint8Array(readFileSync(BUILTIN_WEIGHTS)), { name: 'dncnn_25' });
      expect([...trained.keys()].sort()).toEqual([...builtin.keys()].sort());
      // Two Adam steps at the fine-tuning rate 5e-5: each moves a weight by at most about lr (bias-corrected Adam),
      // the first by exactly lr where the gradient is not 0.
      const w = trained.get('model.0.weight')!.data as Float32Array;
      const w0 = builtin.get('model.0.weight')!.data as Float32Array;
      const step = maxAbsDiff(w, w0);
      console.log(`[train-panel] DnCNN first conv moved by at most ${step.toExponential(2)}`);
      expect(step).toBeGreaterThan(1e-5);
      expect(step).toBeLessThanOrEqual(2.01 * 5e-5);
      expect(networkFromCheckpoint(bytes, { name: fileName }).architecture).toBe('DnCNN');
    },
    SLOW,
  );
});
