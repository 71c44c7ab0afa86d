/**
 * Reads test fixtures from the repository, in Node and in the browser alike, so that one test file runs in both
 * projects of vitest.config.ts. Paths are relative to the repository root (e.g. `test/fixtures/norm/x.json`).
 * - In Node: node:fs, from the checkout.
 * - In the browser (vitest browser mode): fetch from the Vite server, which serves the repository root at `/`.
 * Nothing here imports node:* statically, so the browser bundle never sees Node modules.
 */

const inBrowser = typeof window !== 'undefined' && typeof document !== 'undefined';

/** The repository root as a file: URL (Node only). */
const REPO_ROOT = new URL('../../', import.meta.url);

function check(repoRelativePath: string): string {
  const p = repoRelativePath.replace(/^\/+/, '');
  if (p.split('/').some((s) => s === '..' || s === '')) throw new Error(`bad fixture path: ${repoRelativePath}`);
  return p;
}

export async function readFixtureBytes(repoRelativePath: string): Promise<Uint8Array> {
  const p = check(repoRelativePath);
  if (inBrowser) {
    const res = await fetch(`/${p}`, { cache: 'no-store' });
    if (!res.ok) throw new Error(`fetching fixture /${p}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }
  const fsModule = 'node:fs/promises';
  const { readFile } = (await import(/* @vite-ignore */ fsModule)) as typeof import('node:fs/promises');
  const b = await readFile(new URL(p, REPO_ROOT));
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export async function readFixtureText(repoRelativePath: string): Promise<string> {
  return new TextDecoder().decode(await readFixtureBytes(repoRelativePath));
}

export async function readFixtureJson<T = any>(repoRelativePath: string): Promise<T> {
  return JSON.parse(await readFixtureText(repoRelativePath)) as T;
}

/** A little-endian float32 file (as numpy's `tofile` writes on x86 and ARM). */
export async function readFixtureF32(repoRelativePath: string): Promise<Float32Array> {
  const b = await readFixtureBytes(repoRelativePath);
  if (b.byteLength % 4 !== 0) throw new Error(`${repoRelativePath}: ${b.byteLength} bytes is not a whole number of float32s`);
  // Copy: Node's Buffer may sit at an offset that is not 4-aligned in its pool.
  return new Float32Array(b.slice().buffer);
}
