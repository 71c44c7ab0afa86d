import type { Shape4 } from './tensor';

/**
 * What one dispatch must do at the least, for roofline-style reports (achieved GFLOP/s and GB/s):
 * - `flops`: arithmetic operations counted the usual way. A multiply-add is 2 FLOPs; a convolution counts only its
 *   multiply-adds (2·Cin/groups·kH·kW·Cout per output pixel: the bias, activation, scale and residual of a fused
 *   epilogue are not counted, as in the common MAC-based tallies); elementwise work counts one FLOP per output
 *   element per operation (an activation, sigmoid and GELU included, is one operation); data movement (copies,
 *   padding, concatenation, pixel shuffles, nearest resampling) is 0.
 * - `bytes`: the minimum traffic: every input tensor read once, every weight read once, every output written
 *   once, f32, logical channels only (the NHWC padding to 4 channels is not counted), and only the part of an
 *   input the dispatch can use at all (a crop reads its window).
 * Each kernel's node-building code sets its node's cost (src/kernels/*.ts, whose comments give the formulas).
 */
export interface DispatchCost {
  flops: number;
  bytes: number;
}

/** Bytes of an f32 tensor of this shape with logical channels (no padding to 4). */
export function logicalBytes(shape: Shape4, channels = shape[3]): number {
  return shape[0] * shape[1] * shape[2] * channels * 4;
}

/** Elements of a tensor of this shape with logical channels. */
export function logicalElements(shape: Shape4, channels = shape[3]): number {
  return shape[0] * shape[1] * shape[2] * channels;
}

/**
 * The part of `total` that belongs to items [from, to) of `count` equal items, rounded so that the parts of any
 * split of [0, count) into ranges sum exactly to `total` (row bands of one convolution).
 */
export function shareOf(total: number, from: number, to: number, count: number): number {
  // Differences of one cumulative function that is exactly 0 at 0 and `total` at `count`: the parts telescope.
  const upTo = (i: number) => (i >= count ? total : Math.floor((total / count) * i));
  return upTo(to) - upTo(from);
}

/**
 * How many of `inSize` source rows (or columns) reach an output of `outSize` when source index s lands on output
 * indices [offset + s·scale, offset + (s + 1)·scale): the part of an input that a pad, crop or placed
 * concatenation reads at the least.
 */
export function placedExtent(inSize: number, outSize: number, offset: number, scale = 1): number {
  const first = Math.max(0, Math.floor(-offset / scale - 1) + 1);
  const end = Math.min(inSize, Math.ceil((outSize - offset) / scale));
  return Math.max(0, end - first);
}
