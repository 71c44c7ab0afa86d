/**
 * Plain image containers used by the public API, and conversions between them.
 *
 * - {@link RasterImage}: integer pixels as stored in image files (interleaved, row-major, 8 or 16 bits).
 * - {@link FloatImage}: planar CHW float32 data (PyTorch NCHW with N = 1), values nominally in [0, 1];
 *   this is what the networks consume and produce.
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
}

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

/**
 * Checks that `img` is a well-formed {@link RasterImage}: positive integer sizes, 1 or 3 channels,
 * bit depth 8 or 16, a `Uint8Array` for 8-bit and a `Uint16Array` for 16-bit data, and
 * `data.length === width * height * channels`. Throws {@link InvalidInputError} naming the mismatch.
 */
export function validateRaster(img: RasterImage, name = 'image'): void {
  if (img === null || typeof img !== 'object') {
    throw new InvalidInputError(`${name} must be a RasterImage object, got ${describeArray(img)}`);
  }
  checkSize(`${name}.width`, img.width);
  checkSize(`${name}.height`, img.height);
  if (img.channels !== 1 && img.channels !== 3) {
    throw new InvalidInputError(`${name}.channels must be 1 or 3, got ${String(img.channels)}`);
  }
  if (img.bitDepth !== 8 && img.bitDepth !== 16) {
    throw new InvalidInputError(`${name}.bitDepth must be 8 or 16, got ${String(img.bitDepth)}`);
  }
  if (img.bitDepth === 8 && !(img.data instanceof Uint8Array)) {
    throw new InvalidInputError(`${name}.data must be a Uint8Array for bitDepth 8, got ${describeArray(img.data)}`);
  }
  if (img.bitDepth === 16 && !(img.data instanceof Uint16Array)) {
    throw new InvalidInputError(`${name}.data must be a Uint16Array for bitDepth 16, got ${describeArray(img.data)}`);
  }
  const expected = img.width * img.height * img.channels;
  if (img.data.length !== expected) {
    throw new InvalidInputError(
      `${name}.data has length ${img.data.length}, but width*height*channels = ` +
        `${img.width}*${img.height}*${img.channels} = ${expected}`,
    );
  }
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

/**
 * Integer pixels to planar float: each value is divided by 255 (8-bit) or 65535 (16-bit) and the
 * interleaved HWC layout becomes CHW. The quotient is computed in float64 and then stored as float32,
 * which gives the same float32 as a float32 division (`uint8 / 255.` in NumPy or `.float().div(255)` in
 * PyTorch).
 */
export function rasterToFloat(img: RasterImage): FloatImage {
  validateRaster(img);
  const { width, height, channels, data } = img;
  const scale = maxValue(img.bitDepth);
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
 * Planar float to integer pixels: the inverse of {@link rasterToFloat}.
 *
 * Each value is clamped to [0, 1], multiplied by 255 (8-bit) or 65535 (16-bit) **in float32**, and rounded
 * to the nearest integer with **ties to even**. This is bit-for-bit what the usual NumPy/PyTorch pipelines
 * do with float32 tensors, e.g. KAIR's `np.uint8((img.clip(0, 1) * 255.0).round())` (NumPy's `round` is
 * half-to-even, so 0.5/255 → 0 and 1.5/255 → 2). ±Infinity is clamped like any other out-of-range value.
 *
 * Only 1- and 3-channel images can be converted. NaN anywhere → {@link InvalidInputError} (with the
 * position of the first NaN), since there is no meaningful pixel value for it.
 */
export function floatToRaster(img: FloatImage, bitDepth: 8 | 16): RasterImage {
  validateFloat(img);
  if (bitDepth !== 8 && bitDepth !== 16) {
    throw new InvalidInputError(`bitDepth must be 8 or 16, got ${String(bitDepth)}`);
  }
  const { width, height, channels, data } = img;
  if (channels !== 1 && channels !== 3) {
    throw new InvalidInputError(`floatToRaster needs a 1- or 3-channel image, got ${channels} channels`);
  }
  const scale = maxValue(bitDepth);
  const plane = width * height;
  const out = bitDepth === 16 ? new Uint16Array(plane * channels) : new Uint8Array(plane * channels);
  for (let c = 0; c < channels; c++) {
    const base = c * plane;
    for (let i = 0, j = c; i < plane; i++, j += channels) {
      const v = data[base + i];
      if (Number.isNaN(v)) {
        const y = Math.floor(i / width);
        throw new InvalidInputError(
          `floatToRaster: image contains NaN at channel ${c}, row ${y}, column ${i - y * width}`,
        );
      }
      const clamped = v < 0 ? 0 : v > 1 ? 1 : v;
      // The float64 product of a float32 and 255/65535 is exact; fround gives the float32 product.
      out[j] = roundHalfEven(Math.fround(clamped * scale));
    }
  }
  return { width, height, channels, bitDepth, data: out };
}

/** ITU-R BT.601 luma weights (the ones PIL uses for `convert('L')`). */
export const BT601_WEIGHTS = [0.299, 0.587, 0.114] as const;

/**
 * Converts to one channel. A 1-channel image is returned as is (same object).
 *
 * RGB → gray uses ITU-R BT.601 luma, `Y = 0.299 R + 0.587 G + 0.114 B`, like PIL's `convert('L')`.
 * For a {@link RasterImage} the result is rounded to nearest (ties to even) and keeps the bit depth; PIL
 * uses 16-bit fixed-point weights, so a rare pixel can differ from PIL by one code value. A gray pixel
 * (R = G = B) always maps to itself. For a {@link FloatImage} no rounding is done.
 */
export function toGray(img: RasterImage): RasterImage;
export function toGray(img: FloatImage): FloatImage;
export function toGray(img: RasterImage | FloatImage): RasterImage | FloatImage {
  const [wr, wg, wb] = BT601_WEIGHTS;
  if (img.data instanceof Float32Array) {
    const f = img as FloatImage;
    validateFloat(f);
    if (f.channels === 1) return f;
    if (f.channels !== 3) throw new InvalidInputError(`toGray needs a 1- or 3-channel image, got ${f.channels}`);
    const plane = f.width * f.height;
    const out = new Float32Array(plane);
    const d = f.data;
    for (let i = 0; i < plane; i++) {
      out[i] = wr * d[i] + wg * d[plane + i] + wb * d[2 * plane + i];
    }
    return { width: f.width, height: f.height, channels: 1, data: out };
  }
  const r = img as RasterImage;
  validateRaster(r);
  if (r.channels === 1) return r;
  const plane = r.width * r.height;
  const max = maxValue(r.bitDepth);
  const out = r.bitDepth === 16 ? new Uint16Array(plane) : new Uint8Array(plane);
  const d = r.data;
  for (let i = 0, j = 0; i < plane; i++, j += 3) {
    const y = roundHalfEven(wr * d[j] + wg * d[j + 1] + wb * d[j + 2]);
    out[i] = y > max ? max : y;
  }
  return { width: r.width, height: r.height, channels: 1, bitDepth: r.bitDepth, data: out };
}

/**
 * Converts to three channels by replicating the gray channel. A 3-channel image is returned as is
 * (same object). Works on both {@link RasterImage} (interleaved) and {@link FloatImage} (planar).
 */
export function toRgb(img: RasterImage): RasterImage;
export function toRgb(img: FloatImage): FloatImage;
export function toRgb(img: RasterImage | FloatImage): RasterImage | FloatImage {
  if (img.data instanceof Float32Array) {
    const f = img as FloatImage;
    validateFloat(f);
    if (f.channels === 3) return f;
    if (f.channels !== 1) throw new InvalidInputError(`toRgb needs a 1- or 3-channel image, got ${f.channels}`);
    const plane = f.width * f.height;
    const out = new Float32Array(plane * 3);
    out.set(f.data, 0);
    out.set(f.data, plane);
    out.set(f.data, 2 * plane);
    return { width: f.width, height: f.height, channels: 3, data: out };
  }
  const r = img as RasterImage;
  validateRaster(r);
  if (r.channels === 3) return r;
  const plane = r.width * r.height;
  const out = r.bitDepth === 16 ? new Uint16Array(plane * 3) : new Uint8Array(plane * 3);
  const d = r.data;
  for (let i = 0, j = 0; i < plane; i++, j += 3) {
    const v = d[i];
    out[j] = v;
    out[j + 1] = v;
    out[j + 2] = v;
  }
  return { width: r.width, height: r.height, channels: 3, bitDepth: r.bitDepth, data: out };
}
