/**
 * Plain image containers used by the public API, and conversions between them.
 *
 * - {@link RasterImage}: integer pixels as stored in image files (interleaved, row-major, 8 or 16 bits).
 * - {@link Float32RasterImage}: the same layout with 32-bit float samples (float TIFFs).
 * - {@link FloatImage}: planar CHW float32 data (PyTorch NCHW with N = 1), values nominally in [0, 1];
 *   this is what the networks consume and produce.
 *
 * Alpha is never one of the channels a network sees: files with transparency keep it in a separate
 * `alpha` plane (same sample type as `data`) so that it can be passed through untouched.
 *
 * Everything here is browser-safe (no Node APIs).
 */
import { InvalidInputError } from '../errors';

/** Integer image, interleaved (`[r, g, b, r, g, b, ...]` for RGB), row-major, top row first. */
export interface RasterImage {
  width: number;
  height: number;
  channels: 1 | 3;
  bitDepth: 8 | 16;
  /** `Uint8Array` when `bitDepth` is 8, `Uint16Array` when it is 16; length `width * height * channels`. */
  data: Uint8Array | Uint16Array;
  /**
   * Optional alpha plane, one sample per pixel (length `width * height`), same array type as `data`. It is
   * not part of the channels a network processes; readers fill it in and writers write it back.
   */
  alpha?: Uint8Array | Uint16Array;
}

/** Interleaved 32-bit float samples as stored in float TIFFs (values as stored, not rescaled). */
export interface Float32RasterImage {
  width: number;
  height: number;
  channels: 1 | 3;
  bitDepth: 32;
  /** Length `width * height * channels`. */
  data: Float32Array;
  /** Optional alpha plane, one float per pixel. */
  alpha?: Float32Array;
}

/** Any interleaved image as read from or written to a file: 8/16-bit integer or 32-bit float samples. */
export type AnyRasterImage = RasterImage | Float32RasterImage;

/** Sample depth of an {@link AnyRasterImage}: 8 and 16 are unsigned integers, 32 is IEEE float. */
export type BitDepth = AnyRasterImage['bitDepth'];

/** Planar float image: channel 0 plane first, each plane row-major (CHW). Values nominally in [0, 1]. */
export interface FloatImage {
  width: number;
  height: number;
  channels: number;
  /** Length `channels * height * width`; element `(c, y, x)` lives at `(c * height + y) * width + x`. */
  data: Float32Array;
}

/** Largest code value for a bit depth: 255 or 65535. */
export function maxValue(bitDepth: 8 | 16): number {
  return bitDepth === 16 ? 65535 : 255;
}

function describeArray(data: unknown): string {
  if (data === null) return 'null';
  if (typeof data !== 'object') return typeof data;
  const ctor = (data as { constructor?: { name?: string } }).constructor;
  return ctor?.name ?? 'object';
}

function checkSize(what: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new InvalidInputError(`${what} must be a positive integer, got ${String(value)}`);
  }
}

const ARRAY_FOR_DEPTH = { 8: Uint8Array, 16: Uint16Array, 32: Float32Array } as const;

function checkSamples(img: AnyRasterImage, name: string): void {
  const Expected = ARRAY_FOR_DEPTH[img.bitDepth];
  if (!(img.data instanceof Expected)) {
    throw new InvalidInputError(`${name}.data must be a ${Expected.name} for bitDepth ${img.bitDepth}, got ${describeArray(img.data)}`);
  }
  const expected = img.width * img.height * img.channels;
  if (img.data.length !== expected) {
    throw new InvalidInputError(
      `${name}.data has length ${img.data.length}, but width*height*channels = ` +
        `${img.width}*${img.height}*${img.channels} = ${expected}`,
    );
  }
  if (img.alpha !== undefined) {
    if (!(img.alpha instanceof Expected)) {
      throw new InvalidInputError(
        `${name}.alpha must be a ${Expected.name} like its data (bitDepth ${img.bitDepth}), got ${describeArray(img.alpha)}`,
      );
    }
    if (img.alpha.length !== img.width * img.height) {
      throw new InvalidInputError(
        `${name}.alpha has length ${img.alpha.length}, but width*height = ${img.width}*${img.height} = ${img.width * img.height}`,
      );
    }
  }
}

function checkHeader(img: AnyRasterImage, name: string, depths: readonly number[]): void {
  if (img === null || typeof img !== 'object') {
    throw new InvalidInputError(`${name} must be a RasterImage object, got ${describeArray(img)}`);
  }
  checkSize(`${name}.width`, img.width);
  checkSize(`${name}.height`, img.height);
  if (img.channels !== 1 && img.channels !== 3) {
    throw new InvalidInputError(`${name}.channels must be 1 or 3, got ${String(img.channels)}`);
  }
  if (!depths.includes(img.bitDepth)) {
    const list = depths.length === 2 ? '8 or 16' : '8, 16 or 32';
    throw new InvalidInputError(`${name}.bitDepth must be ${list}, got ${String(img.bitDepth)}`);
  }
}

/**
 * Checks that `img` is a well-formed {@link RasterImage}: positive integer sizes, 1 or 3 channels,
 * bit depth 8 or 16, a `Uint8Array` for 8-bit and a `Uint16Array` for 16-bit data, and
 * `data.length === width * height * channels` (and a matching `alpha` plane when there is one).
 * Throws {@link InvalidInputError} naming the mismatch.
 */
export function validateRaster(img: RasterImage, name = 'image'): void {
  checkHeader(img, name, [8, 16]);
  checkSamples(img, name);
}

/** Like {@link validateRaster}, also accepting {@link Float32RasterImage} (bit depth 32, `Float32Array`). */
export function validateAnyRaster(img: AnyRasterImage, name = 'image'): void {
  checkHeader(img, name, [8, 16, 32]);
  checkSamples(img, name);
}

/**
 * Checks that `img` is a well-formed {@link FloatImage}: positive integer sizes and channel count, a
 * `Float32Array` of length `channels * height * width`. Throws {@link InvalidInputError} naming the mismatch.
 */
export function validateFloat(img: FloatImage, name = 'image'): void {
  if (img === null || typeof img !== 'object') {
    throw new InvalidInputError(`${name} must be a FloatImage object, got ${describeArray(img)}`);
  }
  checkSize(`${name}.width`, img.width);
  checkSize(`${name}.height`, img.height);
  checkSize(`${name}.channels`, img.channels);
  if (!(img.data instanceof Float32Array)) {
    throw new InvalidInputError(`${name}.data must be a Float32Array, got ${describeArray(img.data)}`);
  }
  const expected = img.width * img.height * img.channels;
  if (img.data.length !== expected) {
    throw new InvalidInputError(
      `${name}.data has length ${img.data.length}, but channels*height*width = ` +
        `${img.channels}*${img.height}*${img.width} = ${expected}`,
    );
  }
}

/** True for the interleaved file-sample types ({@link RasterImage}, {@link Float32RasterImage}). */
export function isAnyRaster(img: AnyRasterImage | FloatImage): img is AnyRasterImage {
  return typeof (img as AnyRasterImage).bitDepth === 'number';
}

/**
 * Interleaved pixels to planar float: 8-bit values are divided by 255, 16-bit ones by 65535, and float32
 * samples are copied as they are (no rescaling: a float TIFF's range is whatever its producer chose; see
 * `percentileNormalize` for data that is not in [0, 1]). The HWC layout becomes CHW. The quotient is
 * computed in float64 and then stored as float32, which gives the same float32 as a float32 division
 * (`uint8 / 255.` in NumPy or `.float().div(255)` in PyTorch). The alpha plane is not included.
 */
export function rasterToFloat(img: AnyRasterImage): FloatImage {
  validateAnyRaster(img);
  const { width, height, channels, data } = img;
  const scale = img.bitDepth === 32 ? 1 : maxValue(img.bitDepth);
  const plane = width * height;
  const out = new Float32Array(plane * channels);
  for (let c = 0; c < channels; c++) {
    const base = c * plane;
    for (let i = 0, j = c; i < plane; i++, j += channels) {
      out[base + i] = data[j] / scale;
    }
  }
  return { width, height, channels, data: out };
}

/**
 * Rounds to the nearest integer, ties to even (like `numpy.round` / `torch.round`), for finite `x >= 0`.
 */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // ties go up (towards +Infinity)
  if (r - x === 0.5 && r % 2 !== 0) return r - 1;
  return r;
}

/**
 * Planar float to interleaved pixels: the inverse of {@link rasterToFloat}.
 *
 * For 8 and 16 bits each value is clamped to [0, 1], multiplied by 255 or 65535 **in float32**, and
 * rounded to the nearest integer with **ties to even**. This is bit-for-bit what the usual NumPy/PyTorch
 * pipelines do with float32 tensors, e.g. KAIR's `np.uint8((img.clip(0, 1) * 255.0).round())` (NumPy's
 * `round` is half-to-even, so 0.5/255 → 0 and 1.5/255 → 2). ±Infinity is clamped like any other
 * out-of-range value. NaN → {@link InvalidInputError} (with the position of the first NaN), since there is
 * no meaningful pixel value for it.
 *
 * For bit depth 32 the values are only interleaved (no clamping, rounding or NaN check), the inverse of
 * reading a float TIFF.
 *
 * Only 1- and 3-channel images can be converted.
 */
export function floatToRaster(img: FloatImage, bitDepth: 8 | 16): RasterImage;
export function floatToRaster(img: FloatImage, bitDepth: 32): Float32RasterImage;
export function floatToRaster(img: FloatImage, bitDepth: BitDepth): AnyRasterImage;
export function floatToRaster(img: FloatImage, bitDepth: BitDepth): AnyRasterImage {
  validateFloat(img);
  if (bitDepth !== 8 && bitDepth !== 16 && bitDepth !== 32) {
    throw new InvalidInputError(`bitDepth must be 8, 16 or 32, got ${String(bitDepth)}`);
  }
  const { width, height, channels, data } = img;
  if (channels !== 1 && channels !== 3) {
    throw new InvalidInputError(`floatToRaster needs a 1- or 3-channel image, got ${channels} channels`);
  }
  const plane = width * height;
  if (bitDepth === 32) {
    const out = new Float32Array(plane * channels);
    for (let c = 0; c < channels; c++) {
      const base = c * plane;
      for (let i = 0, j = c; i < plane; i++, j += channels) out[j] = data[base + i];
    }
    return { width, height, channels, bitDepth, data: out };
  }
  const scale = maxValue(bitDepth);
  const out = bitDepth === 16 ? new Uint16Array(plane * channels) : new Uint8Array(plane * channels);
  for (let c = 0; c < channels; c++) {
    const base = c * plane;
    for (let i = 0, j = c; i < plane; i++, j += channels) {
      const v = data[base + i];
      if (Number.isNaN(v)) {
        const y = Math.floor(i / width);
        throw new InvalidInputError(`floatToRaster: image contains NaN at channel ${c}, row ${y}, column ${i - y * width}`);
      }
      const clamped = v < 0 ? 0 : v > 1 ? 1 : v;
      // The float64 product of a float32 and 255/65535 is exact; fround gives the float32 product.
      out[j] = roundHalfEven(Math.fround(clamped * scale));
    }
  }
  return { width, height, channels, bitDepth, data: out };
}

/**
 * Converts an alpha plane from one bit depth to another (8 ↔ 16 by ×257 / ÷257 rounded, integer ↔ float32
 * through [0, 1] with clamping and half-to-even rounding). Returns the same array when the depths agree.
 */
export function convertAlpha(
  alpha: Uint8Array | Uint16Array | Float32Array,
  from: BitDepth,
  to: BitDepth,
): Uint8Array | Uint16Array | Float32Array {
  if (from === to) return alpha;
  const n = alpha.length;
  if (to === 32) {
    const s = maxValue(from as 8 | 16);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = alpha[i] / s;
    return out;
  }
  const max = maxValue(to);
  const out = to === 16 ? new Uint16Array(n) : new Uint8Array(n);
  const s = from === 32 ? max : max / maxValue(from);
  for (let i = 0; i < n; i++) {
    const v = alpha[i] * s;
    out[i] = Number.isNaN(v) ? 0 : v <= 0 ? 0 : v >= max ? max : roundHalfEven(v);
  }
  return out;
}

/**
 * Returns `target` with the alpha plane of `source` attached (converted to `target`'s bit depth), for
 * putting transparency back on a network's output. Returns `target` itself when `source` has no alpha.
 *
 * @throws InvalidInputError when the two images differ in size.
 */
export function copyAlpha<T extends AnyRasterImage>(source: AnyRasterImage, target: T): T {
  if (source.alpha === undefined) return target;
  if (source.width !== target.width || source.height !== target.height) {
    throw new InvalidInputError(
      `copyAlpha: the alpha plane is ${source.width}x${source.height} but the image is ${target.width}x${target.height}` +
        ' (an upscaled output needs its alpha resized first)',
    );
  }
  return { ...target, alpha: convertAlpha(source.alpha, source.bitDepth, target.bitDepth) };
}

/** Returns the image without its alpha plane (the same object when it has none). */
export function withoutAlpha<T extends AnyRasterImage>(img: T): T {
  if (img.alpha === undefined) return img;
  const { alpha: _dropped, ...rest } = img;
  return rest as T;
}

/** ITU-R BT.601 luma weights (the ones PIL uses for `convert('L')`). */
export const BT601_WEIGHTS = [0.299, 0.587, 0.114] as const;

/**
 * PIL's fixed-point version of the BT.601 weights (`Convert.c`: `L24`): `(19595 R + 38470 G + 7471 B +
 * 0x8000) >> 16`. They sum to 65536, so a gray pixel (R = G = B) maps to itself.
 */
const PIL_L24 = [19595, 38470, 7471] as const;

/**
 * Converts to one channel. A 1-channel image is returned as is (same object).
 *
 * RGB → gray uses ITU-R BT.601 luma, `Y = 0.299 R + 0.587 G + 0.114 B`, like PIL's `convert('L')`:
 * integer images use PIL's exact fixed-point formula (identical to PIL for 8-bit RGB; 16-bit uses the same
 * arithmetic, which PIL itself does not offer), float images (planar or float32 raster) the float weights
 * without rounding. A gray pixel (R = G = B) always maps to itself. The alpha plane is kept.
 */
export function toGray(img: RasterImage): RasterImage;
export function toGray(img: Float32RasterImage): Float32RasterImage;
export function toGray(img: FloatImage): FloatImage;
export function toGray<T extends AnyRasterImage | FloatImage>(img: T): T;
export function toGray(img: AnyRasterImage | FloatImage): AnyRasterImage | FloatImage {
  const [wr, wg, wb] = BT601_WEIGHTS;
  if (!isAnyRaster(img)) {
    validateFloat(img);
    if (img.channels === 1) return img;
    if (img.channels !== 3) throw new InvalidInputError(`toGray needs a 1- or 3-channel image, got ${img.channels}`);
    const plane = img.width * img.height;
    const out = new Float32Array(plane);
    const d = img.data;
    for (let i = 0; i < plane; i++) {
      out[i] = wr * d[i] + wg * d[plane + i] + wb * d[2 * plane + i];
    }
    return { width: img.width, height: img.height, channels: 1, data: out };
  }
  validateAnyRaster(img);
  if (img.channels === 1) return img;
  const plane = img.width * img.height;
  const d = img.data;
  const alpha = img.alpha === undefined ? {} : { alpha: img.alpha };
  if (img.bitDepth === 32) {
    const out = new Float32Array(plane);
    for (let i = 0, j = 0; i < plane; i++, j += 3) out[i] = wr * d[j] + wg * d[j + 1] + wb * d[j + 2];
    return { width: img.width, height: img.height, channels: 1, bitDepth: 32, data: out, ...alpha };
  }
  const [kr, kg, kb] = PIL_L24;
  const out = img.bitDepth === 16 ? new Uint16Array(plane) : new Uint8Array(plane);
  for (let i = 0, j = 0; i < plane; i++, j += 3) {
    // Exact in float64 (< 2^33), so Math.floor is the integer shift.
    out[i] = Math.floor((kr * d[j] + kg * d[j + 1] + kb * d[j + 2] + 0x8000) / 65536);
  }
  return { width: img.width, height: img.height, channels: 1, bitDepth: img.bitDepth, data: out, ...alpha } as RasterImage;
}

/**
 * Converts to three channels by replicating the gray channel. A 3-channel image is returned as is
 * (same object). Works on interleaved rasters (any bit depth; alpha kept) and planar {@link FloatImage}s.
 */
export function toRgb(img: RasterImage): RasterImage;
export function toRgb(img: Float32RasterImage): Float32RasterImage;
export function toRgb(img: FloatImage): FloatImage;
export function toRgb<T extends AnyRasterImage | FloatImage>(img: T): T;
export function toRgb(img: AnyRasterImage | FloatImage): AnyRasterImage | FloatImage {
  if (!isAnyRaster(img)) {
    validateFloat(img);
    if (img.channels === 3) return img;
    if (img.channels !== 1) throw new InvalidInputError(`toRgb needs a 1- or 3-channel image, got ${img.channels}`);
    const plane = img.width * img.height;
    const out = new Float32Array(plane * 3);
    out.set(img.data, 0);
    out.set(img.data, plane);
    out.set(img.data, 2 * plane);
    return { width: img.width, height: img.height, channels: 3, data: out };
  }
  validateAnyRaster(img);
  if (img.channels === 3) return img;
  const plane = img.width * img.height;
  const Ctor = img.bitDepth === 32 ? Float32Array : img.bitDepth === 16 ? Uint16Array : Uint8Array;
  const out = new Ctor(plane * 3);
  const d = img.data;
  for (let i = 0, j = 0; i < plane; i++, j += 3) {
    const v = d[i];
    out[j] = v;
    out[j + 1] = v;
    out[j + 2] = v;
  }
  return { ...img, channels: 3, data: out } as AnyRasterImage;
}

/** What to do when an image's channel count differs from what a network expects. */
export type ChannelPolicy = 'error' | 'convert';

/**
 * Makes `img` have `channels` channels (1 = grayscale, 3 = RGB) for a network that expects that many.
 * With `policy: 'error'` (the default) a mismatch throws an {@link InvalidInputError} that says what was
 * expected, what was given and how to convert; with `'convert'` RGB → gray uses BT.601 luma
 * ({@link toGray}) and gray → RGB replicates the channel ({@link toRgb}). A match returns `img` itself.
 */
export function conformChannels<T extends AnyRasterImage | FloatImage>(
  img: T,
  channels: number,
  policy: ChannelPolicy = 'error',
  what = 'the network',
): T {
  if (img.channels === channels) return img;
  const name = (c: number) => (c === 1 ? '1 channel (grayscale)' : c === 3 ? '3 channels (RGB)' : `${c} channels`);
  const convertible = (img.channels === 1 || img.channels === 3) && (channels === 1 || channels === 3);
  if (policy === 'convert' && convertible) return channels === 1 ? toGray(img) : toRgb(img);
  const hint = !convertible
    ? 'no automatic conversion exists between these channel counts'
    : channels === 1
      ? 'convert it with toGray() (BT.601 luma) or pass the channel policy "convert"'
      : 'convert it with toRgb() (replicates the gray channel) or pass the channel policy "convert"';
  throw new InvalidInputError(`${what} expects ${name(channels)}, but the image has ${name(img.channels)}; ${hint}`);
}
