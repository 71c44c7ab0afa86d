/**
 * Turning the command line's inputs into image files: plain files as given, folders as the PNG/TIFF files
 * directly inside them, and `*`/`?` patterns expanded (see glob.ts). Inputs that yield nothing are reported
 * as problems, not thrown: a batch goes on with what it has.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalPath } from './files';
import { expandGlob, hasGlob } from './glob';

/** Names a folder or pattern expansion picks up. An explicitly named file is taken whatever its name. */
export const IMAGE_NAME = /\.(png|tiff?)$/i;

export interface InputProblem {
  input: string;
  message: string;
}

export interface CollectedInputs {
  files: string[];
  problems: InputProblem[];
  /** Files left out of folders and patterns because they look like earlier outputs of this command. */
  skipped: string[];
}

/**
 * @param isEarlierOutput names to leave out of folders and patterns (e.g. `*.denoised.png` when denoising),
 *   so running a command twice on a folder does not process its own outputs.
 */
export function collectInputs(args: readonly string[], isEarlierOutput: (name: string) => boolean): CollectedInputs {
  const files: string[] = [];
  const problems: InputProblem[] = [];
  const skipped: string[] = [];
  const seen = new Set<string>();
  const add = (path: string) => {
    const key = canonicalPath(path);
    if (seen.has(key)) return;
    seen.add(key);
    files.push(path);
  };
  /** Adds the image files among `candidates`; returns what to say when none was added (else undefined). */
  const addImages = (candidates: string[], where: 'pattern' | 'folder'): string | undefined => {
    let added = 0;
    let earlier = 0;
    for (const path of candidates) {
      const name = path.split(/[\\/]/).pop()!;
      if (!IMAGE_NAME.test(name) || !isFile(path)) continue;
      if (isEarlierOutput(name)) {
        skipped.push(path);
        earlier++;
        continue;
      }
      add(path);
      added++;
    }
    if (added > 0) return undefined;
    if (earlier > 0) return `only earlier outputs of this command (${earlier}) in this ${where}; name them to process them again`;
    return where === 'pattern' ? 'no PNG or TIFF file matches this pattern' : 'no PNG or TIFF file in this folder';
  };

  for (const arg of args) {
    let problem: string | undefined;
    if (hasGlob(arg) && !exists(arg)) {
      problem = addImages(expandGlob(arg), 'pattern');
    } else if (isDirectory(arg)) {
      const names = readdirSync(arg)
        .filter((n) => !n.startsWith('.'))
        .sort();
      problem = addImages(
        names.map((n) => join(arg, n)),
        'folder',
      );
    } else {
      add(arg); // missing or unreadable files fail when read, with the reader's message
    }
    if (problem !== undefined) problems.push({ input: arg, message: problem });
  }
  return { files, problems, skipped };
}

function stat(path: string) {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function exists(path: string): boolean {
  return stat(path) !== undefined;
}

function isFile(path: string): boolean {
  return stat(path)?.isFile() ?? false;
}

function isDirectory(path: string): boolean {
  return stat(path)?.isDirectory() ?? false;
}
