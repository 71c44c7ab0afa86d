/** File-system helpers for outputs: never replacing an input, refusing existing files, atomic writes. */
import { existsSync, realpathSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CliError } from './errors';

/** The canonical path of a file (symlinks resolved when it exists), for "is this the same file?" checks. */
export function canonicalPath(path: string): string {
  const abs = resolve(path);
  try {
    return realpathSync(abs);
  } catch {
    return abs;
  }
}

export function samePath(a: string, b: string): boolean {
  return canonicalPath(a) === canonicalPath(b);
}

/** Throws unless `path` may be written: it is not `input`, and it does not exist unless `force`. */
export function checkWritable(path: string, input: string, force: boolean): void {
  if (samePath(path, input)) throw new CliError(`${path} is the input file; choose another output name`);
  refuseExisting(path, force);
}

/** An existing file is replaced only when asked (--force): an output name can be mistyped as another file's. */
export function refuseExisting(path: string, force: boolean): void {
  if (!force && existsSync(path)) throw new CliError(`${path} exists; use --force to replace it`);
}

/**
 * Writes through a temporary file in the same folder and a rename, so a failure (disk full, interrupted run)
 * never leaves a half-written file under the final name.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (cause) {
    await rm(tmp, { force: true });
    throw new CliError(`cannot write ${path}: ${(cause as Error).message}`);
  }
}
