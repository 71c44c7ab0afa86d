/**
 * Values no trained network holds, for formats without a checksum (the legacy torch.save format). A flipped
 * bit there loads silently, and the flips that matter are easy to tell from real weights:
 *
 * For a float32 weight |w| < 2 the exponent's top bit is clear. Flipping any other exponent bit keeps
 * |w| < 2; flipping the top bit multiplies w by 2^128, giving NaN/Infinity (for 1 <= |w| < 2) or at least
 * |w| * 3.4e38 (for the rest) - the "weights near 1e37" that turn a network's output into a constant image.
 * So the bound can sit far above any real weight and still catch every such flip of a weight above
 * ~3e-8: values at or beyond MAX_PLAUSIBLE_MAGNITUDE, or not finite, are refused.
 *
 * Only floating-point tensors are checked: integer tensors hold counters (BatchNorm's num_batches_tracked)
 * and indices, which may be large. BatchNorm's running_var is a float, but a variance: the square of
 * activations, which would have to be ~3e15 to reach the bound.
 */
import type { CpuTensor } from './tensor';
import { isFloatDType } from './tensor';

/**
 * 1e31: above every value the test fixtures hold on purpose (a bfloat16 of 1.0e30 checks decoding of large
 * exponents) and ~30 orders of magnitude above real weights, yet below the ~1e37 a top-exponent-bit flip of
 * a typical weight (|w| ~ 0.01-1) produces.
 */
export const MAX_PLAUSIBLE_MAGNITUDE = 1e31;

export interface ImplausibleValue {
  index: number;
  value: number;
}

/** The first element of a floating-point tensor that is NaN, infinite, or |v| >= MAX_PLAUSIBLE_MAGNITUDE. */
export function findImplausibleValue(t: CpuTensor): ImplausibleValue | undefined {
  if (!isFloatDType(t.dtype)) return undefined;
  const data = t.data as Float32Array | Float64Array;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    // Written so that NaN fails the comparison and is caught too.
    if (!(Math.abs(v) < MAX_PLAUSIBLE_MAGNITUDE)) return { index: i, value: v };
  }
  return undefined;
}

/** "NaN", "+Infinity" or the value in exponent notation, for messages. */
export function describeValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Infinity' : '-Infinity';
  return v.toExponential(3);
}
