import { configDefaults, defineConfig } from 'vitest/config';
import { CHROMIUM_ARGS } from './test/browser/chromium-args';

/**
 * Two projects, one run:
 * - `node`: every test under test/ in Node, the GPU through Dawn (lavapipe). GPU tests run in child processes
 *   (dawn.node is a native addon; threads would share one instance badly) and one file at a time: lavapipe
 *   already uses every core, and parallel files only slow each other down.
 * - `chromium`: the kernel tests (test/kernels), the network parity tests and the training parity tests again, unchanged, inside headless
 *   Chromium through vitest's
 *   browser mode, the GPU through navigator.gpu (WebGPU on SwiftShader). It runs after the node project, for the
 *   same reason. Its servers listen on 127.0.0.1 only.
 *
 * `npx vitest run --project node` (or `--project chromium`) runs one of them.
 */

const HOST = '127.0.0.1';

/** Network parity tests written to run unchanged in the browser (fixtures fetched, no node:* imports). */
const BROWSER_MODEL_TESTS = [
  'test/models/dncnn-variants.test.ts',
  'test/models/msrresnet.test.ts',
  'test/models/srresnet.test.ts',
  'test/models/rrdbnet.test.ts',
  'test/models/sinsr.test.ts',
  'test/models/scunet.test.ts',
  'test/models/unet.test.ts',
  'test/models/resnet34-unet.test.ts',
  'test/models/n2v-unet.test.ts',
  // Whole training steps against PyTorch (the gradient kernels' own tests are in test/kernels).
  'test/training/dncnn-parity.test.ts',
  'test/training/unet-parity.test.ts',
  'test/training/msrresnet-parity.test.ts',
  'test/training/srresnet-parity.test.ts',
  'test/training/rrdbnet-parity.test.ts',
  'test/training/sinsr-parity.test.ts',
  'test/training/resunet-parity.test.ts',
  'test/training/scunet-parity.test.ts',
  'test/training/gan-parity.test.ts',
  'test/training/n2v-unet-parity.test.ts',
  'test/training/self-supervised-parity.test.ts',
];

const shared = {
  fileParallelism: false,
  testTimeout: 120_000,
  hookTimeout: 120_000,
  teardownTimeout: 10_000,
};

export default defineConfig({
  server: { host: HOST, strictPort: false },
  test: {
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          include: ['test/**/*.test.ts'],
          // DOM-only tests (canvas, ImageBitmap, File decoding) run in the chromium project alone.
          exclude: [...configDefaults.exclude, 'test/**/*.dom.test.ts'],
          pool: 'forks',
          sequence: { groupOrder: 0 },
          ...shared,
        },
      },
      {
        extends: true,
        server: { host: HOST },
        // Pre-bundle the runtime dependencies up front (the kernels' wgsl_reflect; the image codecs' fast-png and
        // fflate for the .dom tests), so that the page is not reloaded mid-run when Vite discovers them.
        optimizeDeps: { include: ['wgsl_reflect/wgsl_reflect.module.js', 'fast-png', 'fflate'] },
        test: {
          name: 'chromium',
          include: ['test/kernels/**/*.test.ts', ...BROWSER_MODEL_TESTS, 'test/**/*.dom.test.ts'],
          ...shared,
          sequence: { groupOrder: 1 },
          browser: {
            enabled: true,
            provider: 'playwright',
            headless: true,
            screenshotFailures: false,
            api: { host: HOST, strictPort: false },
            instances: [
              {
                browser: 'chromium',
                launch: { executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS },
              },
            ],
          },
        },
      },
    ],
  },
});
