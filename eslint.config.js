// ESLint flat config: typescript-eslint's recommended rules, the architecture of src/ (its floors, below), no
// import cycles in src/, and eslint-config-prettier last so that no rule argues with the formatter.
// `npm run lint` runs it together with `prettier --check`.
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const ROOT = dirname(fileURLToPath(import.meta.url));

/**
 * The architecture of src/, bottom floor first. A floor may import the floors below it, never one above it, plus
 * the side libraries it names. Everything may import the SHARED files (src/errors.ts, src/check-args.ts, src/format-shape.ts). bench/, test/ and tools/ may
 * import anything.
 *
 *   cli      src/cli/, src/cli.ts           the command line
 *   worker   src/worker/                    the training Web Worker for pages, and its message protocol
 *   api      the files directly in src/     the public API (index.ts, node.ts, api.ts, the argument checks, …)
 *   training src/training/                  trainers, training plans, schedules, data (losses and optimizers: kernels)
 *   runtime  src/runtime/                   sessions, tiling, tile blending
 *   models   src/models/                    the networks, their configs and checkpoint loading
 *   layers   src/layers/                    modules with parameters (Conv2d, Swin blocks, …)
 *   kernels  src/kernels/                   WGSL kernels and their dispatch
 *   gpu      src/gpu/                       device, buffers, graph, plan; imports nothing but errors.ts
 *
 * Side libraries, beside the floors (LIBRARIES below): the floors that name them may import them.
 *
 *   weights      src/weights/               checkpoint readers and writers (.pth, safetensors); uses compression
 *   io           src/io/                    image codecs, normalisation, metrics; uses compression
 *   compression  src/compression/           inflate
 */
/**
 * Files directly in src/ that every floor and library may import: they import nothing else of src/ but errors.ts.
 * (The argument checks serve the public entry points on every floor, `createContext` in src/gpu among them.)
 */
const SHARED = ['errors.ts', 'check-args.ts', 'format-shape.ts'];
const API_FILES = readdirSync(`${ROOT}/src`)
  .filter((f) => f.endsWith('.ts') && !SHARED.includes(f) && f !== 'cli.ts')
  .map((f) => `src/${f}`);

/** [name, paths, side libraries it may use], bottom first. */
const FLOORS = [
  ['gpu', ['src/gpu'], []],
  ['kernels', ['src/kernels'], []],
  ['layers', ['src/layers'], ['weights']],
  ['models', ['src/models'], ['weights']],
  ['runtime', ['src/runtime'], ['weights', 'io']],
  ['training', ['src/training'], ['weights', 'io']],
  ['api', API_FILES, ['weights', 'io', 'compression']],
  ['worker', ['src/worker'], ['weights', 'io', 'compression']],
  ['cli', ['src/cli', 'src/cli.ts'], ['weights', 'io', 'compression']],
];

/**
 * Side libraries: not floors (they know nothing of the GPU or the networks). Each may import errors.ts and the
 * libraries it names, nothing else in src/.
 */
const LIBRARIES = [
  ['compression', ['src/compression'], []],
  ['io', ['src/io'], ['compression']],
  ['weights', ['src/weights'], ['compression']],
];

/** One no-restricted-paths zone per (importer, forbidden group), so that each message names the rule broken. */
function architectureZones() {
  const groups = [...FLOORS, ...LIBRARIES];
  const paths = new Map(groups.map(([name, p]) => [name, p]));
  const zones = [];
  FLOORS.forEach(([name, target, libraries], level) => {
    const below = FLOORS.slice(0, level).map(([n]) => n);
    for (const [other] of groups) {
      if (other === name || below.includes(other) || libraries.includes(other)) continue;
      const isFloor = FLOORS.some(([n]) => n === other);
      const why = isFloor ? `${other} is a floor above ${name}` : `${name} does not use the ${other} library`;
      zones.push({ target, from: paths.get(other), message: `src/${name} may not import ${other}: ${why} (see eslint.config.js).` });
    }
  });
  for (const [name, target, libraries] of LIBRARIES) {
    for (const [other] of groups) {
      if (other === name || libraries.includes(other)) continue;
      zones.push({
        target,
        from: paths.get(other),
        message: `src/${name} (a side library) may not import ${other}; it imports only errors.ts${libraries.length ? ` and ${libraries.join(', ')}` : ''} (see eslint.config.js).`,
      });
    }
  }
  return zones;
}

export default defineConfig(
  {
    ignores: [
      'dist/**',
      'dist-dev/**',
      'node_modules/**',
      'test/fixtures/**',
      'bench/results/**',
      'bench/.onnx/**',
      'coverage/**',
      'test-results/**',
    ],
  },
  js.configs.recommended,
  // Type-aware: the rules that need the TypeScript program (floating promises, unsafe any, needless assertions)
  // cost about 10 s more on two cores than the syntax-only set, well inside the minute `npm run lint` may take.
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: ROOT },
    },
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.d.ts', '.js', '.mjs', '.json'] })],
    },
    rules: {
      // Tuned to the code's deliberate style (everything else is typescript-eslint's recommended set as is):
      // - `_name` marks a parameter or binding kept for its position (callbacks, interfaces) but unused.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // - `any` appears as a type argument meaning "of any kind" (`Module<any, any>`, `Architecture<any>`) where
      //   `unknown` does not type-check (the type parameters are used contravariantly). tsc's strict mode
      //   already rejects implicit any.
      '@typescript-eslint/no-explicit-any': 'off',
      // - `async` functions without `await` are how the API turns argument errors into rejections and how
      //   callbacks satisfy a Promise-returning signature.
      '@typescript-eslint/require-await': 'off',
      // - RestorationModel.dispose() returns a promise for callers that want to wait for the memory to be
      //   released; calling it without waiting is the normal use.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'file', name: 'dispose', path: 'src/runtime/restoration-model.ts' }] },
      ],
    },
  },
  {
    // Not in tsconfig.json's program: the root config files and the plain JavaScript of the demo.
    files: ['*.config.{js,ts}', '**/*.{js,mjs,cjs}'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // Tests read JSON fixtures and reference outputs as `any`, and destructure helpers' methods.
    files: ['test/**'],
    rules: {
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    // The browser side: the demo page, the in-page benchmark suite and the browser tests' page scripts.
    files: ['demo/**/*.js', 'bench/browser/**', 'test/browser/**'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-restricted-paths': ['error', { basePath: ROOT, zones: architectureZones() }],
    },
  },
  prettier,
);
