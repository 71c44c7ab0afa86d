/**
 * Image-quality and numerical-comparison metrics. All sums are accumulated in float64 whatever the input
 * array type, so results on float32 data are as accurate as NumPy's `float64` reductions.
 */
import { InvalidInputError } from '../errors';

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

/**
 * Peak signal-to-noise ratio in dB: `10 * log10(peak^2 / mse(a, b))`.
 *
 * `peak` is the largest possible value: 1 for float images in [0, 1] (the default), 255 for 8-bit data.
 * Returns `Infinity` for identical arrays. NaN in the inputs gives NaN. No clipping or rounding is applied;
 * quantize first (e.g. with `floatToRaster`) to reproduce papers that measure PSNR on 8-bit outputs.
 *
 * @throws InvalidInputError on a length mismatch, empty arrays, or a non-positive / non-finite peak.
 */
export function psnr(a: ArrayLike<number>, b: ArrayLike<number>, peak = 1): number {
  checkPair('psnr', a, b, 'a', 'b');
  if (!(peak > 0) || !Number.isFinite(peak)) {
    throw new InvalidInputError(`psnr: peak must be a positive finite number, got ${peak}`);
  }
  const m = mse(a, b);
  if (m === 0) return Infinity;
  return 10 * Math.log10((peak * peak) / m);
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
