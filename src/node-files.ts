import { readFile, writeFile } from 'node:fs/promises';
import { ImageFormatError } from './errors';
import type { RasterImage } from './io/image';
import { decodePng, encodePng } from './io/png';

/** Reads a PNG file; a missing or unreadable file is an ImageFormatError naming the path. */
export async function readImageFile(path: string): Promise<RasterImage> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (cause) {
    throw new ImageFormatError(`cannot read ${path}: ${(cause as Error).message}`, { cause });
  }
  return decodePng(bytes, path);
}

export async function writeImageFile(path: string, image: RasterImage): Promise<void> {
  if (!/\.png$/i.test(path)) throw new ImageFormatError(`${path}: only PNG output is supported (use a .png name)`);
  const bytes = encodePng(image);
  try {
    await writeFile(path, bytes);
  } catch (cause) {
    throw new ImageFormatError(`cannot write ${path}: ${(cause as Error).message}`, { cause });
  }
}
