/**
 * Training images for `webgpu-restore train`: every PNG/TIFF directly inside the given folders, read at their own
 * bit depth into [0, 1] floats (first page), SEM info bars cut off (`--info-bar`), noisy/clean (or low/high-
 * resolution) pairs and masks matched by file name (extension aside). What does not match is an error naming the files.
 */
import { readdirSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { InvalidInputError } from '../errors';
import { type AnyRasterImage, type FloatImage, rasterToFloat, toGray } from '../io/image';
import { cropRows, detectInfoBar, infoBarFromRows } from '../io/info-bar';
import { readImageFilePages } from '../node-files';
import type { TrainingExample } from '../training/data/training-set';
import { IMAGE_NAME } from './inputs';

export interface TrainDataOptions {
  clean?: string;
  pairs?: { noisy: string; clean: string };
  masks?: string;
  infoBar?: 'auto' | number;
  /** Convert RGB images to grayscale (BT.601) for a 1-channel network. */
  gray?: boolean;
  /** What the two folders of `pairs` hold, for messages (default noisy and clean; low- and high-resolution for SR). */
  names?: { input: string; target: string };
}

/** The image files directly inside `dir`, by stem (name without extension), sorted by name. */
function imagesIn(dir: string, what: string): Map<string, string> {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => IMAGE_NAME.test(n));
  } catch (e) {
    throw new InvalidInputError(`${what} folder '${dir}' cannot be read (${(e as Error).message})`);
  }
  if (names.length === 0) throw new InvalidInputError(`${what} folder '${dir}' holds no PNG or TIFF images`);
  const byStem = new Map<string, string>();
  for (const name of names.sort()) {
    const stem = basename(name, extname(name));
    if (byStem.has(stem)) throw new InvalidInputError(`${what} folder '${dir}' has two images named '${stem}'`);
    byStem.set(stem, join(dir, name));
  }
  return byStem;
}

export async function readFloat(path: string, options: TrainDataOptions): Promise<FloatImage> {
  const { pages } = await readImageFilePages(path, { page: 0 });
  let image: AnyRasterImage = pages[0].image;
  if (options.infoBar !== undefined) {
    const bar = options.infoBar === 'auto' ? detectInfoBar(image) : infoBarFromRows(image, options.infoBar);
    if (bar) image = cropRows(image, 0, bar.top);
  }
  if (options.gray && image.channels === 3) image = toGray(image);
  return rasterToFloat(image);
}

function unmatched(names: string[], where: string): InvalidInputError {
  const shown = names.slice(0, 5).join(', ') + (names.length > 5 ? `, … (${names.length} in all)` : '');
  return new InvalidInputError(`no ${where} for ${shown}`);
}

/** Reads the examples the options name: clean images alone, or noisy/clean pairs, with masks if given. */
export async function readTrainingExamples(options: TrainDataOptions): Promise<TrainingExample[]> {
  const cleanDir = options.pairs?.clean ?? options.clean;
  if (cleanDir === undefined) throw new InvalidInputError('give --clean DIR or --pairs NOISY_DIR,CLEAN_DIR');
  const names = options.names ?? { input: 'noisy', target: 'clean' };
  const clean = imagesIn(cleanDir, names.target);
  const noisy = options.pairs ? imagesIn(options.pairs.noisy, names.input) : undefined;
  const masks = options.masks !== undefined ? imagesIn(options.masks, 'mask') : undefined;
  if (noisy) {
    const lonely = [...noisy.keys()].filter((k) => !clean.has(k));
    if (lonely.length > 0) throw unmatched(lonely, `${names.target} image in '${cleanDir}'`);
    const missing = [...clean.keys()].filter((k) => !noisy.has(k));
    if (missing.length > 0) throw unmatched(missing, `${names.input} image in '${options.pairs!.noisy}'`);
  }
  if (masks) {
    const missing = [...clean.keys()].filter((k) => !masks.has(k));
    if (missing.length > 0) throw unmatched(missing, `mask in '${options.masks}'`);
  }
  const examples: TrainingExample[] = [];
  for (const [stem, path] of clean) {
    const target = await readFloat(path, options);
    const input = noisy ? await readFloat(noisy.get(stem)!, options) : undefined;
    // Masks mark defects with any non-zero value.
    const mask = masks ? binary(await readFloat(masks.get(stem)!, { ...options, gray: true })) : undefined;
    examples.push({ name: basename(path), target, ...(input ? { input } : {}), ...(mask ? { mask } : {}) });
  }
  return examples;
}

function binary(img: FloatImage): FloatImage {
  return { ...img, data: img.data.map((v) => (v > 0 ? 1 : 0)) };
}
