/**
 * Image-quality and numerical-comparison metrics. All sums are accumulated in float64 whatever the input
 * array type, so results on float32 data are as accurate as NumPy's `float64` reductions.
 */
import { InvalidInputError } from '../errors';
import { type AnyRasterImage, type FloatImage, isAnyRaster, maxValue, validateAnyRaster, validateFloat } from './image';

function checkPair(fn: string, a: ArrayLike<number>, b: ArrayLike<number>, an: string, bn: string): void {
  if (a == null || typeof a.length !== 'number' || b == null || typeof b.length !== 'number') {
    throw new InvalidInputError(`${fn}: ${an} and ${bn} must be arrays of numbers`);
  }
  if (a.length !== b.length) {
    throw new InvalidInputError(`${fn}: length mismatch, ${an} has ${a.length} elements but ${bn} has ${b.length}`);
  }
  if (a.length === 0) throw new InvalidInputError(`${fn}: arrays are empty`);
}

/** Mean squared error `mean((a - b)^2)`, accumulated in float64. */
export function mse(a: ArrayLike<number>, b: ArrayLike<number>): number {
  checkPair('mse', a, b, 'a', 'b');
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    sum += d * d;
  }
  return sum / a.length;
}

/** Images the metrics accept: interleaved rasters (integer or float32) or planar float images. */
export type MetricImage = AnyRasterImage | FloatImage;

export interface PsnrOptions {
  /**
   * The largest possible value minus the smallest (skimage's `data_range`). Default: 255 / 65535 for 8- and
   * 16-bit images, 1 for float images and plain arrays.
   */
  dataRange?: number;
}

function isImage(x: unknown): x is MetricImage {
  return x !== null && typeof x === 'object' && 'width' in x && 'height' in x && 'data' in x;
}

/**
 * Checks that two images can be compared (same size, channels and kind of samples) and returns the
 * default data range for them.
 */
export function checkImagePair(fn: string, a: MetricImage, b: MetricImage): number {
  const kind = (x: MetricImage) => (isAnyRaster(x) ? `${x.bitDepth}-bit raster` : 'planar float image');
  if (isAnyRaster(a)) validateAnyRaster(a, 'a');
  else validateFloat(a, 'a');
  if (isAnyRaster(b)) validateAnyRaster(b, 'b');
  else validateFloat(b, 'b');
  if (a.width !== b.width || a.height !== b.height || a.channels !== b.channels) {
    throw new InvalidInputError(
      `${fn}: image sizes differ, a is ${a.width}x${a.height}x${a.channels} and b is ${b.width}x${b.height}x${b.channels}`,
    );
  }
  if (kind(a) !== kind(b)) {
    throw new InvalidInputError(
      `${fn}: a is a ${kind(a)} and b is a ${kind(b)}; ` + 'convert one (rasterToFloat / floatToRaster) so both have the same value scale',
    );
  }
  return isAnyRaster(a) && a.bitDepth !== 32 ? maxValue(a.bitDepth) : 1;
}

/**
 * Peak signal-to-noise ratio in dB: `10 * log10(dataRange^2 / mse(a, b))`, as skimage's
 * `peak_signal_noise_ratio` and KAIR's `calculate_psnr` (which is this with dataRange 255).
 *
 * `a` and `b` are two images of the same kind (see {@link MetricImage}; alpha is ignored) or two arrays.
 * The third argument is `{ dataRange }` or, as before, the peak value as a number; the default data range
 * is 255 / 65535 for 8- / 16-bit images and 1 for float images and arrays. Returns `Infinity` for identical
 * inputs; NaN in the inputs gives NaN. No clipping or rounding is applied; quantize first (e.g. with
 * `floatToRaster`) to reproduce papers that measure PSNR on 8-bit outputs.
 *
 * @throws InvalidInputError on a size mismatch, empty arrays, images of different kinds, or a non-positive /
 *   non-finite data range.
 */
export function psnr(a: MetricImage, b: MetricImage, options?: number | PsnrOptions): number;
export function psnr(a: ArrayLike<number>, b: ArrayLike<number>, options?: number | PsnrOptions): number;
export function psnr(a: ArrayLike<number> | MetricImage, b: ArrayLike<number> | MetricImage, options?: number | PsnrOptions): number {
  let defaultRange = 1;
  let xa: ArrayLike<number>;
  let xb: ArrayLike<number>;
  if (isImage(a) || isImage(b)) {
    if (!isImage(a) || !isImage(b)) throw new InvalidInputError('psnr: compare two images or two arrays, not one of each');
    defaultRange = checkImagePair('psnr', a, b);
    xa = a.data;
    xb = b.data;
  } else {
    xa = a;
    xb = b;
  }
  checkPair('psnr', xa, xb, 'a', 'b');
  const range = typeof options === 'number' ? options : (options?.dataRange ?? defaultRange);
  if (!(range > 0) || !Number.isFinite(range)) {
    throw new InvalidInputError(`psnr: the peak (data range) must be a positive finite number, got ${range}`);
  }
  const m = mse(xa, xb);
  if (m === 0) return Infinity;
  return 10 * Math.log10((range * range) / m);
}

/**
 * Relative L2 error `‖y − ref‖₂ / ‖ref‖₂`, in float64. When `ref` is all zeros the absolute error `‖y‖₂` is
 * returned instead (so a zero reference matched exactly gives 0, not NaN).
 *
 * @throws InvalidInputError on a length mismatch or empty arrays.
 */
export function relativeL2(y: ArrayLike<number>, ref: ArrayLike<number>): number {
  checkPair('relativeL2', y, ref, 'y', 'ref');
  // Scale by the largest magnitude so that squares of tiny/huge values neither underflow nor overflow.
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    const r = Math.abs(ref[i]);
    const d = Math.abs(y[i] - ref[i]);
    if (r > scale) scale = r;
    if (d > scale) scale = d;
  }
  if (!(scale > 0) || !Number.isFinite(scale)) {
    // All zeros (or NaN/Infinity present): plain formula; NaN/Infinity propagate naturally.
    let num = 0;
    let den = 0;
    for (let i = 0; i < ref.length; i++) {
      const d = y[i] - ref[i];
      num += d * d;
      den += ref[i] * ref[i];
    }
    return den === 0 ? Math.sqrt(num) : Math.sqrt(num) / Math.sqrt(den);
  }
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = (y[i] - ref[i]) / scale;
    const r = ref[i] / scale;
    num += d * d;
    den += r * r;
  }
  return den === 0 ? Math.sqrt(num) * scale : Math.sqrt(num) / Math.sqrt(den);
}

/** Largest absolute elementwise difference `max |a − b|` (NaN if either array has NaN at the same place). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  checkPair('maxAbsDiff', a, b, 'a', 'b');
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return NaN;
    if (d > m) m = d;
  }
  return m;
}
