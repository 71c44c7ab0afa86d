import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

/**
 * What `npm publish` would ship (`npm pack --dry-run`): the library entries, their chunks and declarations, the
 * browser bundle, assets/, the README and package.json. Not the builds of bench/ and tools/ (dist/bench,
 * dist/tools and their dev-* chunks) and no source maps (the browser bundle's alone is 2.4 MB). Runs on the
 * built dist/ (`npm test` builds first).
 */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Measured 4.65 MB (DnCNN weights 2.2 MB, browser bundle 1.24 MB, library 0.89 MB): training — every backward
 * kernel, the trainers, losses and data pipeline, which pages use too — added 0.86 MB to 3.79; headroom for growth.
 */
const MAX_UNPACKED_BYTES = 5_200_000;

const LIBRARY_ENTRIES = ['dist/index.js', 'dist/index.d.ts', 'dist/node.js', 'dist/node.d.ts', 'dist/cli.js'];
const BROWSER_BUNDLE = 'dist/webgpu-restore.browser.js';

interface PackResult {
  size: number;
  unpackedSize: number;
  files: { path: string; size: number }[];
}

let pack: PackResult;
let paths: Set<string>;

beforeAll(() => {
  expect(existsSync(join(ROOT, 'dist', 'index.js')), 'dist/ is built by npm test before vitest').toBe(true);
  const out = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(out.status, out.stderr).toBe(0);
  [pack] = JSON.parse(out.stdout) as PackResult[];
  paths = new Set(pack.files.map((f) => f.path));
});

describe('npm package contents', () => {
  it('holds the library entries, the browser bundle, assets/, README.md and package.json', () => {
    for (const p of [...LIBRARY_ENTRIES, BROWSER_BUNDLE, 'README.md', 'package.json']) expect(paths, p).toContain(p);
    for (const asset of readdirSync(join(ROOT, 'assets'))) expect(paths, `assets/${asset}`).toContain(`assets/${asset}`);
  });

  it('holds every file that package.json exports and bin name', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: unknown; bin: Record<string, string> };
    const targets: string[] = [];
    const walk = (v: unknown): void => {
      if (typeof v === 'string') targets.push(v);
      else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    };
    walk(pkg.exports);
    walk(pkg.bin);
    for (const t of targets) expect(paths, t).toContain(posix.normalize(t));
  });

  it('holds every chunk that the library entries import, transitively', () => {
    const seen = new Set<string>();
    const queue = LIBRARY_ENTRIES.filter((p) => p.endsWith('.js'));
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      expect(paths, `${file} (imported by the library)`).toContain(file);
      const code = readFileSync(join(ROOT, file), 'utf8');
      for (const m of code.matchAll(/(?:from\s*|import\s*\(\s*)["'](\.\.?\/[^"']+)["']/g)) {
        queue.push(posix.normalize(posix.join(posix.dirname(file), m[1])));
      }
    }
    // The entries share their code through chunks: had the pattern above matched nothing, this would fail.
    expect(seen.size).toBeGreaterThan(3);
  });

  it('leaves out the bench and tools builds, their chunks and every source map', () => {
    const unwanted = [...paths].filter(
      (p) => p.startsWith('dist/bench/') || p.startsWith('dist/tools/') || p.startsWith('dist/dev-') || p.endsWith('.map'),
    );
    expect(unwanted).toEqual([]);
    expect(paths).not.toContain(`${BROWSER_BUNDLE}.map`);
  });

  it('holds nothing outside dist/, assets/, the README, the licence and package.json', () => {
    const stray = [...paths].filter((p) => !/^(dist\/|assets\/|README\.md$|LICEN[CS]E(\.\w+)?$|package\.json$)/.test(p));
    expect(stray).toEqual([]);
  });

  it(`unpacks to at most ${(MAX_UNPACKED_BYTES / 1e6).toFixed(1)} MB`, () => {
    expect(pack.unpackedSize).toBeLessThanOrEqual(MAX_UNPACKED_BYTES);
  });
});
