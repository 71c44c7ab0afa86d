import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../src/node';
import { writeSafetensors } from '../../src/weights/safetensors';
import { readBytes, REPO, readF32 } from '../helpers/fixtures';
import { getTestContext } from '../helpers/gpu';
import { relL2 } from '../helpers/random';
import { seededStateDict } from '../helpers/seeded-weights';
import { checkBundle, type HarnessSession, type HarnessWindow, openHarness } from './harness';

/**
 * One fixture of every network family through the self-contained bundle dist/webgpu-restore.browser.js in
 * headless Chromium (checkpoint loaded as a Blob, or by URL as safetensors for seeded fixtures), compared with
 * PyTorch's output and with the same checkpoint run in Node. The full parity suites run in Chromium from src/
 * (the `chromium` vitest project); this proves the published bundle carries every network. Needs `npm run build`.
 */
const CASES: { folder: string; name: string; architecture: string }[] = [
  { folder: 'scunet', name: 'tiny_gray_single_window', architecture: 'SCUNet' },
  { folder: 'unet', name: 'unet_tiny_bilinear_gray_23x37', architecture: 'UNet' },
  { folder: 'unet', name: 'r34_scse_rgb_96x128', architecture: 'ResNet34UNet' },
  { folder: 'dncnn-variants', name: 'cszn_tiny_gray_module', architecture: 'DnCNN-cszn' },
  { folder: 'msrresnet', name: 'tiny_x4', architecture: 'MSRResNet' },
  { folder: 'srresnet', name: 'tiny_x4_shared', architecture: 'SRResNet' },
  { folder: 'rrdbnet', name: 'tiny_x4_old', architecture: 'RRDBNet' },
  { folder: 'sinsr', name: 'tiny_cbam', architecture: 'SINSR-CBAM' },
];
// Only fixtures whose whole configuration is visible in the keys (no sigmoid, clamp or padding choices).
const SLOW = 600_000;

let session: HarnessSession;
/** Safetensors files of the seeded fixtures, served to the page under /weights/. */
const weightsDir = mkdtempSync(join(tmpdir(), 'webgpu-restore-weights-'));
beforeAll(async () => {
  checkBundle();
  session = await openHarness('/test/browser/page.html', { '/weights/': weightsDir });
}, 120_000);
afterAll(async () => {
  await session?.close();
  rmSync(weightsDir, { recursive: true, force: true });
}, 30_000);

describe('every network family in Chromium through the browser bundle', () => {
  for (const c of CASES) {
    it(
      `${c.folder}/${c.name}`,
      async () => {
        const dir = new URL(`test/fixtures/${c.folder}/`, REPO);
        const meta = JSON.parse(new TextDecoder().decode(readBytes(new URL(`${c.name}.json`, dir))));
        const weights: Uint8Array = meta.checkpoint
          ? readBytes(new URL(meta.checkpoint, dir))
          : writeSafetensors(seededStateDict(meta.seed, meta.manifest));
        let url: string | null = null;
        if (!meta.checkpoint) {
          writeFileSync(join(weightsDir, `${c.name}.safetensors`), weights);
          url = `/weights/${c.name}.safetensors`;
        }
        const r = await session.page.evaluate(
          ([folder, name, u]) => (window as unknown as HarnessWindow).harness.runNetwork(folder, name, u ?? undefined),
          [c.folder, c.name, url] as [string, string, string | null],
        );
        expect(r.info.architecture).toBe(c.architecture);
        const expected = readF32(new URL(`${c.name}.output.f32`, dir));
        const [, ch, h, w] = meta.inputShape;
        const node = await loadModel(weights, { context: await getTestContext(), name: c.name });
        const nodeOut = (await node.runFloat({ width: w, height: h, channels: ch, data: readF32(new URL(`${c.name}.input.f32`, dir)) }))
          .image.data;
        node.dispose();
        const vsTorch = relL2(r.output.data, expected);
        const vsNode = relL2(r.output.data, nodeOut);
        console.log(
          `[browser bundle] ${c.folder}/${c.name}: vs PyTorch ${vsTorch.toExponential(2)}, vs Node ${vsNode.toExponential(2)}, ${r.ms.toFixed(0)} ms`,
        );
        expect(vsTorch).toBeLessThanOrEqual(1e-4);
        expect(vsNode).toBeLessThanOrEqual(1e-4);
      },
      SLOW,
    );
  }
});
