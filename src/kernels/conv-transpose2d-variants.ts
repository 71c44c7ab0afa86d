import { paddedChannels } from '../gpu/tensor';
import { type ConvTranspose2dGeometry, isSubpixelConvTranspose2d } from './conv-transpose2d-geometry';
import { compactTile } from './tile-shape';
import { type VariantSourceArg, variantSource } from './variant-source';

/**
 * Tiling parameters of the transposed convolution.
 *
 * - `subpixel` (kernel = stride, padding 0, output_padding 0, e.g. the 2×2 stride-2 up-sampling): every input
 *   pixel feeds a disjoint kH×kW block of output pixels, so the layer is kH·kW independent GEMMs (one per
 *   tap (dy, dx)): y[s·iy+dy, s·ix+dx, co] = Σ_ci x[iy, ix, ci]·W[ci, co, dy, dx]. No multiply-add is wasted.
 *   Each invocation takes `px` consecutive input pixels of one row times `cb` groups of 4 output channels, and
 *   either one tap (`allTaps` false: the tap comes from the invocation index) or all of them (`allTaps`: every
 *   input vec4 it loads is used kH·kW·4·cb times).
 * - `gather` (any kernel, stride, padding, output_padding): each output pixel sums over the input pixels that
 *   map to it, (oy + p − ky) divisible by s. An invocation takes `px` output pixels of one row that share the
 *   column phase ox mod s (ox = phase + s·j for consecutive j), so they all use the same taps and no tap is
 *   tried in vain per pixel.
 */
export interface ConvTranspose2dVariant {
  algorithm: 'subpixel' | 'gather';
  px: number;
  cb: number;
  workgroupSize: number;
  /** subpixel only: each invocation computes all taps of its pixels instead of one. */
  allTaps?: boolean;
  /**
   * subpixel only: each workgroup owns one (channel block, tap) pair and spreads pixel tiles over its
   * invocations, so weight loads have one address in the whole workgroup (broadcast on CPU adapters).
   */
  uniformWeights?: boolean;
}

declare module '../gpu/context' {
  interface VariantOverrides {
    /** Forces this variant on every transposed convolution (channel block capped per layer): benchmarks. */
    convTranspose2d?: ConvTranspose2dVariant;
  }
}

/**
 * The variant table: the sub-pixel GEMMs where they apply, the gather otherwise. CPU adapters get conv2d's
 * compact tiles (the sub-pixel GEMM per tap is a 1×1 convolution) with workgroup-uniform weight loads; hardware
 * GPUs get a moderate tile that keeps occupancy (untuned so far). A variant forced on the context
 * (`ctx.variantOverrides.convTranspose2d`) wins, its channel block capped at the output's channel vec4s.
 */
export function selectConvTranspose2dVariant(source: VariantSourceArg, g: ConvTranspose2dGeometry, inWidth = 256): ConvTranspose2dVariant {
  const { adapter, overrides } = variantSource(source);
  const cout4 = paddedChannels(g.outChannels) / 4;
  const forced = overrides.convTranspose2d;
  if (forced) return { ...forced, cb: Math.min(forced.cb, cout4) };
  if (isSubpixelConvTranspose2d(g)) {
    // Few tile shapes with small bodies, as for conv2d's 1×1 case (each shape is a pipeline that software
    // adapters JIT-compile for seconds on first use: tile-shape.ts).
    if (adapter.isSoftware) {
      return { algorithm: 'subpixel', px: compactTile(inWidth), cb: Math.min(2, cout4), workgroupSize: 64, uniformWeights: true };
    }
    return { algorithm: 'subpixel', px: 4, cb: Math.min(2, cout4), workgroupSize: 64 };
  }
  if (adapter.isSoftware) return { algorithm: 'gather', px: 8, cb: Math.min(2, cout4), workgroupSize: 64 };
  return { algorithm: 'gather', px: 4, cb: Math.min(2, cout4), workgroupSize: 64 };
}
