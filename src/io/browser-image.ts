/**
 * Images from and to what a web page has: `ImageData`, canvases, `ImageBitmap`s and `File`s / `Blob`s.
 *
 * The browser only ever gives 8-bit RGBA, so everything that comes through a canvas becomes an 8-bit
 * {@link RasterImage}: gray (1 channel) when R = G = B in every pixel, otherwise RGB, and an `alpha` plane only
 * when some pixel is not fully opaque. Files go the other way round: PNG and TIFF bytes are decoded by the
 * library itself (so 16-bit, float and multi-page files keep their precision and pages); only the formats the
 * library does not read (JPEG, WebP, GIF, BMP, AVIF …) are handed to the browser's decoder.
 *
 * This module is exported by every entry, Node's included: DOM globals (`ImageData`, `OffscreenCanvas`,
 * `createImageBitmap`, `document`) are looked up only inside the functions, so importing it never fails, and
 * the parts that need no DOM (ImageData-like objects in, PNG/TIFF blobs in and out) work in Node as well.
 */
import { ImageFormatError, InvalidInputError } from '../errors';
import {
  type DecodedImageFile,
  type ImageFormat,
  type ImagePage,
  type ReadImageOptions,
  readImage,
  sniffFormat,
  writeImage,
} from './formats';
import { type AnyRasterImage, type RasterImage, convertAlpha, validateAnyRaster, withoutAlpha } from './image';
import { describeImageBytes } from './png';

/** What to do with the alpha channel of browser pixels or a file. */
export interface BrowserImageOptions {
  /**
   * `'keep'` (the default) puts transparency into the image's `alpha` plane, but only when some pixel is not
   * fully opaque; `'drop'` never returns an alpha plane.
   */
  alpha?: 'keep' | 'drop';
}

/** Options of {@link imageFromFile} and {@link imagesFromFile}. */
export interface ImageFromFileOptions extends BrowserImageOptions, ReadImageOptions {}

/**
 * A decoded file as {@link imagesFromFile} returns it: `format` is `'png'` or `'tiff'` when the library decoded
 * it (pages at their own bit depth, TIFF metadata), `'browser'` when the browser's decoder did (one 8-bit page).
 */
export interface BrowserDecodedImageFile {
  format: ImageFormat | 'browser';
  pages: ImagePage[];
}

/**
 * The pixels of an `ImageData` (RGBA, 4 bytes per pixel, row-major); a structural type, so a plain
 * `{ width, height, data }` object works too, also in Node.
 */
export interface ImageDataLike {
  width: number;
  height: number;
  data: Uint8ClampedArray | Uint8Array;
  colorSpace?: string;
}

/** Source of a 2D drawing: what `drawImage` accepts among the inputs of this module. */
type Drawable = HTMLCanvasElement | OffscreenCanvas | ImageBitmap;

// ---------------------------------------------------------------------------------------------------
// Browser pixels in
// ---------------------------------------------------------------------------------------------------

/**
 * An 8-bit {@link RasterImage} from RGBA pixels: 1 channel when R = G = B in every pixel, else 3; the alpha
 * plane is kept (unless `alpha: 'drop'`) only when some alpha is below 255. The samples are copied unchanged.
 *
 * @throws InvalidInputError for data that is not 8-bit sRGB RGBA (a `'display-p3'` ImageData, a float16
 *   one, or a `data` whose length is not `width * height * 4`).
 */
export function imageFromImageData(image: ImageDataLike, options: BrowserImageOptions = {}): RasterImage {
  const keepAlpha = alphaPolicy(options) === 'keep';
  if (image === null || typeof image !== 'object') {
    throw new InvalidInputError(`imageFromImageData: expected an ImageData, got ${image === null ? 'null' : typeof image}`);
  }
  const { width, height, data } = image;
  // A colour-managed canvas can hand out Display P3 values; the networks were trained on sRGB and we have no
  // colour conversion here, so refuse rather than silently treat P3 numbers as sRGB.
  if (image.colorSpace !== undefined && image.colorSpace !== 'srgb') {
    throw new InvalidInputError(
      `imageFromImageData: the ImageData is in the '${image.colorSpace}' colour space; read it with ` +
        "getImageData(x, y, w, h, { colorSpace: 'srgb' }) or pass the canvas to imageFromCanvas()",
    );
  }
  // Checked at run time too: Chromium can hand out float16 ImageData ({ pixelFormat: 'rgba-float16' }).
  const samples: unknown = data;
  if (!(samples instanceof Uint8ClampedArray) && !(samples instanceof Uint8Array)) {
    const kind = (samples as { constructor?: { name?: string } } | null)?.constructor?.name ?? typeof samples;
    throw new InvalidInputError(`imageFromImageData: data must be 8-bit RGBA (a Uint8ClampedArray), got ${kind}`);
  }
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new InvalidInputError(`imageFromImageData: width and height must be positive integers, got ${width}x${height}`);
  }
  const n = width * height;
  if (data.length !== n * 4) {
    throw new InvalidInputError(`imageFromImageData: data has length ${data.length}, but width*height*4 = ${n * 4}`);
  }
  let gray = true;
  let opaque = true;
  for (let i = 0; i < n * 4; i += 4) {
    if (data[i] !== data[i + 1] || data[i] !== data[i + 2]) gray = false;
    if (data[i + 3] !== 255) opaque = false;
    if (!gray && !opaque) break;
  }
  const channels = gray ? 1 : 3;
  const out = new Uint8Array(n * channels);
  if (gray) {
    for (let i = 0; i < n; i++) out[i] = data[4 * i];
  } else {
    for (let i = 0, j = 0; i < n; i++, j += 3) {
      out[j] = data[4 * i];
      out[j + 1] = data[4 * i + 1];
      out[j + 2] = data[4 * i + 2];
    }
  }
  const result: RasterImage = { width, height, channels, bitDepth: 8, data: out };
  if (keepAlpha && !opaque) {
    const alpha = new Uint8Array(n);
    for (let i = 0; i < n; i++) alpha[i] = data[4 * i + 3];
    result.alpha = alpha;
  }
  return result;
}

/**
 * The pixels of a canvas (any context type: 2d, webgl, webgpu, bitmaprenderer) as an 8-bit image, see
 * {@link imageFromImageData}. The canvas is drawn onto a scratch 2D canvas and read back as sRGB, so the
 * caller's canvas keeps its context and a Display P3 canvas is converted to sRGB by the browser.
 *
 * Canvases store premultiplied alpha: the colour of a fully transparent pixel is lost (it reads as 0), and a
 * partly transparent one can be off by a little; opaque pixels and all alpha values come back exactly.
 */
export function imageFromCanvas(canvas: HTMLCanvasElement | OffscreenCanvas, options: BrowserImageOptions = {}): RasterImage {
  return imageFromImageData(readPixels(canvas, 'imageFromCanvas'), options);
}

/**
 * The pixels of an `ImageBitmap` as an 8-bit image, see {@link imageFromImageData}. For exact colours create
 * the bitmap with `{ premultiplyAlpha: 'none', colorSpaceConversion: 'none' }` (as {@link imageFromFile} does).
 * The bitmap is not closed.
 */
export function imageFromBitmap(bitmap: ImageBitmap, options: BrowserImageOptions = {}): RasterImage {
  return imageFromImageData(readPixels(bitmap, 'imageFromBitmap'), options);
}

function readPixels(source: Drawable, what: string): ImageData {
  if (source === null || typeof source !== 'object' || !('width' in source) || !('height' in source)) {
    throw new InvalidInputError(`${what}: expected a canvas or an ImageBitmap`);
  }
  const { width, height } = source;
  // A closed ImageBitmap reports 0x0; drawImage would throw a DOMException that does not say why.
  if (!(width > 0 && height > 0)) {
    throw new InvalidInputError(`${what}: the source is ${width}x${height} (an empty canvas or a closed ImageBitmap)`);
  }
  const g = scratchContext(width, height, what);
  // 'copy' writes the source's pixels as they are, alpha included, instead of blending them over the
  // (transparent) scratch canvas.
  g.globalCompositeOperation = 'copy';
  g.drawImage(source, 0, 0);
  return g.getImageData(0, 0, width, height, { colorSpace: 'srgb' });
}

type Context2D = CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D;

function scratchContext(width: number, height: number, what: string): Context2D {
  const settings: CanvasRenderingContext2DSettings = { colorSpace: 'srgb', willReadFrequently: true };
  let g: Context2D | null;
  if (typeof OffscreenCanvas === 'function') {
    g = new OffscreenCanvas(width, height).getContext('2d', settings);
  } else if (typeof document !== 'undefined') {
    // Safari before 16.4 has no OffscreenCanvas.
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    g = canvas.getContext('2d', settings);
  } else {
    throw new InvalidInputError(`${what} needs a browser (or a worker): there is no OffscreenCanvas here`);
  }
  if (!g) throw new InvalidInputError(`${what}: the browser did not give a 2D canvas context`);
  return g;
}

// ---------------------------------------------------------------------------------------------------
// Files in
// ---------------------------------------------------------------------------------------------------

/**
 * Decodes an image file (a `File` from an `<input type=file>` or a drop, or any `Blob`): PNG and TIFF
 * (recognised by their bytes) through the library's decoders, every page at the file's own bit depth
 * (8/16-bit, 32-bit float) with TIFF metadata; anything else through the browser's `createImageBitmap`
 * (JPEG, WebP, GIF, BMP, AVIF …: one 8-bit page, see {@link imageFromImageData}).
 *
 * @throws ImageFormatError for corrupt PNG/TIFF files and for bytes neither the library nor the browser can
 *   decode (the message says what the bytes look like).
 */
export async function imagesFromFile(file: Blob, options: ImageFromFileOptions = {}): Promise<BrowserDecodedImageFile> {
  alphaPolicy(options);
  if (file === null || typeof file !== 'object' || typeof file.arrayBuffer !== 'function') {
    throw new InvalidInputError('imagesFromFile: expected a File or Blob');
  }
  const name = options.name ?? fileName(file);
  const bytes = new Uint8Array(await file.arrayBuffer());
  let decoded: BrowserDecodedImageFile;
  if (sniffFormat(bytes)) {
    decoded = readImage(bytes, { ...options, name }) satisfies DecodedImageFile;
  } else {
    if (options.page !== undefined && options.page !== 0) {
      throw new ImageFormatError(`${name}: page ${options.page} does not exist (only PNG and TIFF files have pages here)`);
    }
    decoded = { format: 'browser', pages: [{ image: await decodeWithBrowser(file, bytes, name) }] };
  }
  if (options.alpha === 'drop') decoded.pages = decoded.pages.map((p) => ({ ...p, image: withoutAlpha(p.image) }));
  return decoded;
}

/**
 * One page (`options.page`, default the first) of an image file; see {@link imagesFromFile}. The result keeps
 * the file's bit depth: 8 or 16-bit integer, or 32-bit float for float TIFFs.
 */
export async function imageFromFile(file: Blob, options: ImageFromFileOptions = {}): Promise<AnyRasterImage> {
  const { pages } = await imagesFromFile(file, { ...options, page: options.page ?? 0 });
  return pages[0].image;
}

async function decodeWithBrowser(file: Blob, bytes: Uint8Array, name: string): Promise<RasterImage> {
  const unsupported = (reason: string, cause?: unknown) =>
    new ImageFormatError(
      `${name}: ${reason} (${describeImageBytes(bytes)}); PNG and TIFF are read by the library, other formats ` +
        '(JPEG, WebP, GIF, BMP, AVIF) only where the browser can decode them',
      cause === undefined ? undefined : { cause },
    );
  if (typeof createImageBitmap !== 'function') {
    throw unsupported('not PNG or TIFF, and there is no browser image decoder (createImageBitmap) here');
  }
  if (bytes.length === 0) throw unsupported('the file is empty');
  let bitmap: ImageBitmap;
  try {
    // No premultiplication and no colour management: the samples as stored in the file.
    bitmap = await createImageBitmap(file, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  } catch (cause) {
    throw unsupported('unsupported image format or corrupt file, the browser could not decode it', cause);
  }
  try {
    return imageFromBitmap(bitmap);
  } finally {
    bitmap.close();
  }
}

function fileName(file: Blob): string {
  const name = (file as Partial<File>).name;
  return typeof name === 'string' && name !== '' ? name : 'input';
}

function alphaPolicy(options: BrowserImageOptions): 'keep' | 'drop' {
  const alpha = options?.alpha ?? 'keep';
  if (alpha !== 'keep' && alpha !== 'drop') {
    throw new InvalidInputError(`alpha must be 'keep' or 'drop', got ${String(alpha)}`);
  }
  return alpha;
}

// ---------------------------------------------------------------------------------------------------
// Out
// ---------------------------------------------------------------------------------------------------

/** Options of {@link imageToImageData}. */
export interface ImageToImageDataOptions {
  /**
   * For 32-bit float images: the sample values shown as black and white, default `[0, 1]` (values outside
   * are clamped). Integer images always use their full range (0..255, 0..65535).
   */
  range?: readonly [number, number];
}

/**
 * An `ImageData` for showing `image` on a canvas (`putImageData`): 16-bit samples scaled to 8 bits with
 * rounding (`round(v * 255 / 65535)`), gray replicated into R, G and B, alpha from the alpha plane (scaled the
 * same way) or 255. Float images are mapped from `options.range` (default [0, 1]) to 0..255; NaN shows as 0.
 *
 * @throws InvalidInputError for a malformed image, or where there is no `ImageData` (outside a browser).
 */
export function imageToImageData(image: AnyRasterImage, options: ImageToImageDataOptions = {}): ImageData {
  validateAnyRaster(image);
  if (typeof ImageData !== 'function') {
    throw new InvalidInputError('imageToImageData needs a browser (or a worker): there is no ImageData here');
  }
  const { width, height, channels, data } = image;
  const n = width * height;
  const to8 = sampleTo8Bit(image, options.range);
  const px = new Uint8ClampedArray(n * 4);
  for (let i = 0, j = 0; i < n; i++, j += channels) {
    const r = to8(data[j]);
    px[4 * i] = r;
    px[4 * i + 1] = channels === 3 ? to8(data[j + 1]) : r;
    px[4 * i + 2] = channels === 3 ? to8(data[j + 2]) : r;
    px[4 * i + 3] = 255;
  }
  if (image.alpha !== undefined) {
    const alpha = convertAlpha(image.alpha, image.bitDepth, 8);
    for (let i = 0; i < n; i++) px[4 * i + 3] = alpha[i];
  }
  return new ImageData(px, width, height);
}

function sampleTo8Bit(image: AnyRasterImage, range: readonly [number, number] | undefined): (v: number) => number {
  if (image.bitDepth === 8) return (v) => v;
  // v / 257 is never exactly halfway between two integers, so the rounding direction never matters.
  if (image.bitDepth === 16) return (v) => Math.round(v / 257);
  const [lo, hi] = range ?? [0, 1];
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && hi > lo)) {
    throw new InvalidInputError(`imageToImageData: range must be two finite numbers [lo, hi] with lo < hi, got [${lo}, ${hi}]`);
  }
  const k = 255 / (hi - lo);
  return (v) => {
    const x = (v - lo) * k;
    return x > 0 ? (x < 255 ? Math.round(x) : 255) : 0; // NaN fails both comparisons → 0
  };
}

/** Options of {@link imageToBlob}: those of `writeImage` (format, TIFF compression and predictor). */
export type ImageToBlobOptions = Parameters<typeof writeImage>[1];

const MIME_TYPES: Record<ImageFormat, string> = { png: 'image/png', tiff: 'image/tiff' };

/**
 * A PNG or TIFF file as a `Blob` (for a download link or an upload), written by the library's encoders at the
 * image's own bit depth with its alpha plane; TIFF also takes several pages and their metadata. See
 * `writeImage` for what each format can hold.
 */
export function imageToBlob(
  image: AnyRasterImage | ImagePage | readonly (AnyRasterImage | ImagePage)[],
  options: ImageToBlobOptions,
): Blob {
  const bytes = writeImage(image, options);
  return new Blob([bytes as Uint8Array<ArrayBuffer>], { type: MIME_TYPES[options.format] });
}
