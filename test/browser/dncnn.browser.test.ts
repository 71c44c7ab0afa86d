import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { networkFromCheckpoint } from '../../src/models/load';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { DNCNN_FIXTURES, loadDnCNNFixture } from '../helpers/fixtures';
import { getTestContext } from '../helpers/gpu';
import { relL2 } from '../helpers/random';
import { checkBundle, type HarnessSession, type HarnessWindow, openHarness } from './harness';

/**
 * The DnCNN fixtures run in headless Chromium (WebGPU on SwiftShader) through the self-contained bundle
 * dist/webgpu-restore.browser.js, and are compared with PyTorch's output and with the same network run in Node
 * (Dawn) from src/. Needs `npm run build` first.
 */

const TOL = 1e-4;
/** SwiftShader runs the 17-layer networks on the CPU: allow minutes, not seconds. */
const SLOW = 300_000;

let session: HarnessSession;
const results: { fixture: string; vsTorch: number; vsNode: number; browserMs: number }[] = [];

const harness = () => session.page;

beforeAll(async () => {
  checkBundle();
  session = await openHarness('/test/browser/page.html');
  const d = await harness().evaluate(() => (window as unknown as HarnessWindow).harness.describeContext(), undefined);
  console.log(`[browser] ${d.userAgent}`);
  console.log(`[browser] adapter: ${d.adapterName}${d.hasTimestamps ? ' (timestamp queries)' : ''}`);
  console.log(`[browser] describe(): ${JSON.stringify({ adapter: d.describe.adapter, features: d.describe.features })}`);
  console.log(`[browser] limits: ${JSON.stringify(d.describe.limits)}`);
  console.log(`[node] adapter (for the browser-vs-Node comparison): ${(await getTestContext()).adapterName}`);
}, 120_000);

afterEach(() => {
  // A test whose page logged errors fails, even when its numbers were right.
  if (!session) return;
  const problems = harness().takeNewProblems();
  if (problems.length > 0) throw new Error(`the page reported problems:\n${problems.join('\n')}`);
});

afterAll(async () => {
  if (results.length > 0) {
    console.log('[browser] relative L2 per fixture:');
    console.table(
      results.map((r) => ({
        fixture: r.fixture,
        'browser vs PyTorch': r.vsTorch.toExponential(2),
        'browser vs Node': r.vsNode.toExponential(2),
        'browser run ms': Math.round(r.browserMs),
      })),
    );
  }
  await session?.close();
}, 30_000);

/** The same fixture run in Node through src/, as test/models/dncnn.test.ts does. */
async function runInNode(name: string): Promise<Float32Array> {
  const ctx = await getTestContext();
  const f = loadDnCNNFixture(name);
  const model = new RestorationModel(ctx, networkFromCheckpoint(f.weights, { name }), name);
  try {
    const [, c, h, w] = f.inputShape;
    return (await model.runFloat({ width: w, height: h, channels: c, data: f.input })).image.data;
  } finally {
    model.dispose();
  }
}

describe('DnCNN in Chromium against PyTorch and Node', () => {
  for (const name of DNCNN_FIXTURES) {
    it(
      name,
      async () => {
        const f = loadDnCNNFixture(name);
        const [, c, h, w] = f.inputShape;
        const r = await harness().evaluate((n) => (window as unknown as HarnessWindow).harness.runFixture(n), name);
        expect(r.architecture).toBe('DnCNN');
        expect(r.config).toEqual(f.config);
        const out = r.output;
        expect([out.channels, out.height, out.width]).toEqual([c, h, w]);
        expect(out.data.length).toBe(f.output.length);
        expect(out.data.every(Number.isFinite)).toBe(true);

        const node = await runInNode(name);
        const vsTorch = relL2(out.data, f.output);
        const vsNode = relL2(out.data, node);
        results.push({ fixture: name, vsTorch, vsNode, browserMs: r.ms });
        console.log(
          `[browser] ${name} ${c}x${h}x${w}: browser vs PyTorch ${vsTorch.toExponential(2)}, ` +
            `browser vs Node ${vsNode.toExponential(2)}, Node vs PyTorch ${relL2(node, f.output).toExponential(2)}; ` +
            `browser runFloat ${r.ms.toFixed(0)} ms (${r.stats.dispatches} dispatches)`,
        );
        expect(vsTorch).toBeLessThanOrEqual(TOL);
        expect(vsNode).toBeLessThanOrEqual(TOL);
      },
      SLOW,
    );
  }
});

describe('built-in model in Chromium', () => {
  const FIXTURE = 'real_dncnn25_set12_01_crop';

  it(
    `loadBuiltinModel('dncnn_25') and denoise() on ${FIXTURE}`,
    async () => {
      const f = loadDnCNNFixture(FIXTURE);
      const [, c, h, w] = f.inputShape;
      const r = await harness().evaluate(
        ([fixture, builtin]) => (window as unknown as HarnessWindow).harness.runBuiltin(fixture, builtin),
        [FIXTURE, 'dncnn_25'] as [string, string],
      );
      expect(r.info).toMatchObject({ name: 'dncnn_25', architecture: 'DnCNN', inChannels: 1, outChannels: 1, scale: 1 });
      expect(r.cached).toBe(true);
      for (const img of [r.model, r.denoise]) {
        expect([img.channels, img.height, img.width]).toEqual([c, h, w]);
      }
      const vsTorchModel = relL2(r.model.data, f.output);
      const vsTorchDenoise = relL2(r.denoise.data, f.output);
      console.log(
        `[browser] built-in dncnn_25 on ${FIXTURE}: loadBuiltinModel+runFloat vs PyTorch ${vsTorchModel.toExponential(2)} ` +
          `(${r.modelMs.toFixed(0)} ms incl. fetch), denoise() vs PyTorch ${vsTorchDenoise.toExponential(2)} ` +
          `(${r.denoiseMs.toFixed(0)} ms, default context: ${r.defaultAdapterName})`,
      );
      expect(vsTorchModel).toBeLessThanOrEqual(TOL);
      expect(vsTorchDenoise).toBeLessThanOrEqual(TOL);
    },
    SLOW,
  );

  it('rejects an RGB image for the grayscale built-in model with a typed INVALID_INPUT error', async () => {
    const e = await harness().evaluate(
      () =>
        (window as unknown as HarnessWindow).harness.catchError(() =>
          (window as unknown as HarnessWindow).harness.restore.denoise({
            width: 4,
            height: 3,
            channels: 3,
            data: new Float32Array(36),
          }),
        ),
      undefined,
    );
    expect(e.threw).toBe(true);
    expect(e).toMatchObject({ name: 'InvalidInputError', code: 'INVALID_INPUT', isRestoreError: true, isInvalidInputError: true });
    expect(e.message).toMatch(/grayscale/);
    expect(e.message).toMatch(/RGB \(3 channels\)/);

    // Uncaught, the rejection reaches Node through page.evaluate with the class name and message intact.
    const rejected = harness().evaluate(
      () =>
        (window as unknown as HarnessWindow).harness.restore
          .loadBuiltinModel('dncnn_25')
          .then((m) => m.runFloat({ width: 2, height: 2, channels: 3, data: new Float32Array(12) })),
      undefined,
    );
    await expect(rejected).rejects.toThrow(/InvalidInputError.*grayscale/s);
  }, 120_000);
});
