/**
 * Where each input of a denoise/upscale batch is written, and whether it may be: never over an input or an
 * existing file unless --force, and never twice in one run (two inputs named alike into one folder).
 */
import { basename, dirname, extname, join } from 'node:path';
import type { ImageFormat } from '../io/formats';
import { CliError } from './errors';
import { canonicalPath, refuseExisting } from './files';
import { IMAGE_NAME } from './inputs';

const EXTENSION: Record<ImageFormat, string> = { png: '.png', tiff: '.tif' };

export interface OutputNaming {
  /** `-o`: the one output. */
  output?: string;
  /** `--out-dir`; otherwise outputs go next to their inputs. */
  outDir?: string;
  /** Added to the input's name: `.denoised`, `.x4`. */
  suffix: string;
  force: boolean;
}

export class OutputPlan {
  private readonly inputs: Set<string>;
  /** Canonical output path → the input it was written for. */
  private readonly written = new Map<string, string>();

  constructor(
    private readonly naming: OutputNaming,
    inputs: readonly string[],
  ) {
    this.inputs = new Set(inputs.map(canonicalPath));
  }

  /**
   * The output of `input`. Its extension is the input's when that names an image format, else the format's
   * as read from the file: undefined when that is needed and not yet known.
   */
  targetFor(input: string, format?: ImageFormat): string | undefined {
    const { output, outDir, suffix } = this.naming;
    if (output !== undefined) return output;
    const ext = IMAGE_NAME.test(input) ? extname(input) : format && EXTENSION[format];
    if (ext === undefined) return undefined;
    return join(outDir ?? dirname(input), `${basename(input, extname(input))}${suffix}${ext}`);
  }

  /** Throws a CliError naming `target` when `input`'s output may not be written there. */
  check(target: string, input: string): void {
    const key = canonicalPath(target);
    const earlier = this.written.get(key);
    if (earlier !== undefined) throw new CliError(`${input}: ${target} was already written for ${earlier} in this run`);
    if (this.inputs.has(key) && !this.naming.force) {
      throw new CliError(`${target} is an input file; choose another output (or --force to replace it)`);
    }
    refuseExisting(target, this.naming.force);
  }

  /** Records that `target` now holds `input`'s output. */
  wrote(target: string, input: string): void {
    this.written.set(canonicalPath(target), input);
  }
}
