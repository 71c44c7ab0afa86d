import type { Plugin } from 'esbuild';
import { defineConfig } from 'tsup';

/**
 * The training worker (src/worker/) imports the library through src/index.ts; built, it imports the browser
 * bundle that sits next to it instead, so that a page that already loaded the bundle loads no second copy.
 */
const LIBRARY_FROM_BROWSER_BUNDLE: Plugin = {
  name: 'library-from-browser-bundle',
  setup(build) {
    build.onResolve({ filter: /^\.\.\/index$/ }, (args) =>
      args.importer.includes('/src/worker/') ? { path: './webgpu-restore.browser.js', external: true } : undefined,
    );
  },
};

export default defineConfig([
  // The library: browser-safe default entry, Node entry and CLI. Dependencies stay external (consumers' bundlers
  // resolve them); `webgpu` is only ever imported dynamically by the Node entry. These, their chunks and the
  // browser bundle below are what the package ships (package.json `files`; test/package-contents.test.ts).
  {
    entry: { index: 'src/index.ts', node: 'src/node.ts', cli: 'src/cli.ts' },
    format: ['esm'],
    target: 'es2022',
    platform: 'node',
    splitting: true,
    sourcemap: true,
    clean: true,
    dts: { entry: { index: 'src/index.ts', node: 'src/node.ts' } },
    external: ['webgpu'],
  },
  // The scripts behind `npm run eval:set12` and `npm run bench*`: a build of their own, so that no chunk of theirs
  // lands among the library's. They keep the library's layout, because src/ finds assets/ and package.json one
  // folder above the module that holds the code: entries in dist/bench/ and dist/tools/, shared chunks in dist/
  // itself but named dev-chunk-*, and src/node.ts an entry (dist/dev-node.js) so that its code, which the scripts
  // all use, always sits in a chunk at that depth. package.json `files` leaves out dist/bench, dist/tools and
  // dist/dev-*.
  {
    entry: {
      'dev-node': 'src/node.ts',
      'tools/eval-set12': 'tools/eval-set12.ts',
      'tools/eval-self-supervised': 'tools/eval-self-supervised.ts',
      'bench/dncnn': 'bench/dncnn.ts',
      'bench/conv2d-variants': 'bench/conv2d-variants.ts',
      'bench/kernels': 'bench/kernels.ts',
      'bench/models': 'bench/models.ts',
      'bench/train': 'bench/train.ts',
      'bench/large-image': 'bench/large-image.ts',
      'bench/peers': 'bench/peers.ts',
      'bench/profile': 'bench/profile.ts',
      'bench/roofline': 'bench/roofline.ts',
      'bench/browser': 'bench/browser.ts',
      'bench/cold-start': 'bench/cold-start.ts',
    },
    format: ['esm'],
    target: 'es2022',
    platform: 'node',
    splitting: true,
    sourcemap: true,
    clean: false,
    esbuildOptions(options) {
      options.chunkNames = 'dev-[name]-[hash]';
    },
    // playwright-core is a dev dependency of the benchmark runners only (tsup would bundle dev dependencies).
    external: ['webgpu', 'playwright-core'],
  },
  // A self-contained ES module for pages without a bundler (and for the Chromium tests): every dependency
  // inlined. It sits next to index.js so the built-in weights resolve to ../assets as they do there. Its source
  // map (2.4 MB) is for the demo and the Chromium tests; package.json `files` leaves it out of the package.
  {
    entry: { 'webgpu-restore.browser': 'src/index.ts' },
    format: ['esm'],
    target: 'es2022',
    platform: 'browser',
    splitting: false,
    sourcemap: true,
    clean: false,
    noExternal: [/.*/],
  },
  // The training worker for pages (src/worker/train-worker.ts): a module worker of a few kB beside the bundle above,
  // which it imports (new Worker(url, { type: 'module' })). It ships with the package.
  {
    entry: { 'train-worker': 'src/worker/train-worker.ts' },
    format: ['esm'],
    target: 'es2022',
    platform: 'browser',
    splitting: false,
    sourcemap: true,
    clean: false,
    esbuildPlugins: [LIBRARY_FROM_BROWSER_BUNDLE],
  },
  // The model benchmark suite for a browser page (bench/browser/index.html), self-contained like the bundle above.
  {
    entry: { 'bench/browser-suite': 'bench/browser/suite.ts' },
    format: ['esm'],
    target: 'es2022',
    platform: 'browser',
    splitting: false,
    sourcemap: true,
    clean: false,
    noExternal: [/.*/],
  },
]);
