/**
 * One entry point for image files: the format is recognised from the first bytes (PNG or TIFF), and the
 * result keeps the file's bit depth, every page and the TIFF metadata needed to write it back. JPEG, BMP,
 * WebP, GIF and the like are refused with a message that names them and says to convert to PNG or TIFF
 * (their 8-bit lossy or palette data is not what restoration networks should be measured on, and decoding
 * them is the browser's or sharp's job). Browser-safe.
 */
import { ImageFormatError, InvalidInputError } from '../errors';
import type { AnyRasterImage } from './image';
import { decodePng, describeImageBytes, encodePng, isPng } from './png';
import { type DecodeTiffOptions, type TiffMetadata, decodeTiff, isTiff } from './tiff';
import { type EncodeTiffOptions, encodeTiff } from './tiff-write';

export type ImageFormat = 'png' | 'tiff';

/** One page of a decoded file; `metadata` is present for TIFF pages. */
export interface ImagePage {
  image: AnyRasterImage;
  metadata?: TiffMetadata;
}

export interface DecodedImageFile {
  format: ImageFormat;
  /** Every page (PNG files have one). */
  pages: ImagePage[];
}

export type ReadImageOptions = DecodeTiffOptions;

export interface WriteImageOptions extends EncodeTiffOptions {
  format: ImageFormat;
}

/** The format of `bytes` by magic number, or undefined when it is neither PNG nor TIFF. */
export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (isPng(bytes)) return 'png';
  if (isTiff(bytes)) return 'tiff';
  return undefined;
}

/** The format a file name asks for by its extension (.png, .tif, .tiff), or undefined. */
export function formatFromFileName(name: string): ImageFormat | undefined {
  if (/\.png$/i.test(name)) return 'png';
  if (/\.tiff?$/i.test(name)) return 'tiff';
  return undefined;
}

/**
 * Decodes a PNG or TIFF file (recognised by its first bytes, not its name): every page, at the file's own
 * bit depth, alpha in a separate plane, with TIFF metadata.
 *
 * @throws ImageFormatError for other formats (naming what the bytes look like and suggesting PNG/TIFF),
 *   and for corrupt or unsupported files.
 */
export function readImage(bytes: Uint8Array, options: ReadImageOptions = {}): DecodedImageFile {
  const name = options.name ?? 'input';
  if (!(bytes instanceof Uint8Array)) throw new InvalidInputError(`readImage: ${name} must be a Uint8Array of file bytes`);
  const format = sniffFormat(bytes);
  if (format === 'png') {
    if (options.page !== undefined && options.page !== 0) {
      throw new ImageFormatError(`${name}: page ${options.page} does not exist (a PNG file has 1 page)`);
    }
    return { format, pages: [{ image: decodePng(bytes, name) }] };
  }
  if (format === 'tiff') return { format, pages: decodeTiff(bytes, options) };
  throw new ImageFormatError(
    `${name}: unsupported image format (${describeImageBytes(bytes)}); convert it to PNG or TIFF ` +
      '(8/16-bit integer or 32-bit float TIFF keeps the most precision)',
  );
}

/** Decodes one page (`options.page`, default the first) of a PNG or TIFF file. See {@link readImage}. */
export function decodeImage(bytes: Uint8Array, options: ReadImageOptions = {}): AnyRasterImage {
  const { pages } = readImage(bytes, { ...options, page: options.page ?? 0 });
  return pages[0].image;
}

/**
 * Encodes an image (or the pages of a multi-page file) as PNG or TIFF at each image's own bit depth, with
 * its alpha plane. TIFF also takes the options of `encodeTiff` (compression, predictor) and writes back the
 * metadata of pages given as {@link ImagePage}.
 *
 * @throws ImageFormatError for what the format cannot hold: float samples or several pages in a PNG.
 */
export function writeImage(
  image: AnyRasterImage | ImagePage | readonly (AnyRasterImage | ImagePage)[],
  options: WriteImageOptions,
): Uint8Array {
  const format = options?.format;
  if (format === 'tiff') return encodeTiff(image, options);
  if (format !== 'png') throw new InvalidInputError(`writeImage: format must be 'png' or 'tiff', got ${String(format)}`);
  const list = Array.isArray(image) ? image : [image];
  if (list.length !== 1) {
    throw new ImageFormatError(`a PNG file holds one image, got ${list.length} pages; write a TIFF or one PNG per page`);
  }
  const only = list[0] as AnyRasterImage | ImagePage;
  const img = 'image' in only ? only.image : only;
  if (img.bitDepth === 32) {
    throw new ImageFormatError('PNG cannot store 32-bit float samples: write a TIFF, or convert with floatToRaster(…, 16)');
  }
  return encodePng(img);
}
