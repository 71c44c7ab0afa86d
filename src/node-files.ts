import { readFile, writeFile } from 'node:fs/promises';

import { ImageFormatError } from './errors';
import {
  type DecodedImageFile,
  type ImagePage,
  type ReadImageOptions,
  type WriteImageOptions,
  formatFromFileName,
  readImage,
  writeImage,
} from './io/formats';
import type { AnyRasterImage, RasterImage } from './io/image';

async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (cause) {
    throw new ImageFormatError(`cannot read ${path}: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Reads every page of a PNG or TIFF file (recognised by content, not by name) at its own bit depth, with
 * alpha planes and TIFF metadata. A missing or unreadable file is an ImageFormatError naming the path.
 */
export async function readImageFilePages(path: string, options: ReadImageOptions = {}): Promise<DecodedImageFile> {
  return readImage(await readBytes(path), { ...options, name: options.name ?? path });
}

/**
 * Reads one page (default the first) of a PNG or TIFF file as an 8/16-bit {@link RasterImage}. Float TIFFs
 * are refused here (use {@link readImageFilePages}, whose pages may hold float32 samples).
 */
export async function readImageFile(path: string, options: ReadImageOptions = {}): Promise<RasterImage> {
  const { pages } = await readImageFilePages(path, { ...options, page: options.page ?? 0 });
  const image = pages[0].image;
  if (image.bitDepth === 32) {
    throw new ImageFormatError(`${path}: 32-bit float samples; read it with readImageFilePages to keep them`);
  }
  return image;
}

/**
 * Writes an image (or several pages, TIFF only) as PNG or TIFF at its own bit depth. The format comes from
 * `options.format` or else the file name (.png, .tif, .tiff); TIFF options (compression, predictor) apply.
 */
export async function writeImageFile(
  path: string,
  image: AnyRasterImage | ImagePage | readonly (AnyRasterImage | ImagePage)[],
  options: Partial<WriteImageOptions> = {},
): Promise<void> {
  const format = options.format ?? formatFromFileName(path);
  if (format === undefined) {
    throw new ImageFormatError(`${path}: cannot tell the output format from the name; use .png, .tif or .tiff`);
  }
  const bytes = writeImage(image, { ...options, format });
  try {
    await writeFile(path, bytes);
  } catch (cause) {
    throw new ImageFormatError(`cannot write ${path}: ${(cause as Error).message}`, { cause });
  }
}
