import { paddedChannels } from '../gpu/tensor';
import { checkConv2dGroups, type Conv2dGeometry, isDepthwiseConv2d } from './conv2d-geometry';
import { compactTile } from './tile-shape';
import { type VariantSourceArg, variantSource } from './variant-source';

/**
 * Tiling parameters of the direct/implicit-GEMM convolution. Each invocation computes `px` consecutive output
 * pixels of one row times `cb` groups of 4 output channels, so every input vec4 it loads is used `4·cb` times
 * and every weight vec4 `px` times (register tiling, no workgroup memory: barriers are costly on CPU adapters).
 * The depthwise kernel reads the same parameters: `px` pixels × `cb` channel vec4s per invocation.
 */
export interface Conv2dVariant {
  px: number;
  cb: number;
  workgroupSize: number;
  /**
   * Give each workgroup one block of output channels and spread pixel tiles over its invocations, so every
   * weight load has the same address in the whole workgroup. CPU adapters then load weights once and
   * broadcast them instead of gathering per lane.
   */
  uniformWeights?: boolean;
  /**
   * Load each input column a tile's pixels share once per kernel row and input-channel vec4, instead of once
   * per tap: a 16-pixel tile of a 3×3 stride-1 conv then loads 18 columns, not 48. Needs stride and dilation
   * baked into the shader.
   */
  rowReuse?: boolean;
  /**
   * Channel lanes (conv2d-lanes.wgsl.ts): a workgroup computes one tile of `rows` × `px` output pixels, its
   * invocations spread over output channels (`cb` channel vec4s each, `workgroupSize` apart). Every input load
   * then has the same address in the whole workgroup; weights differ per lane. For small feature maps with many
   * channels, where pixel tiles leave most lanes of a workgroup idle. groups = 1 only.
   */
  channelLanes?: boolean;
  /** Output rows of a channel-lanes tile (default 1). */
  rows?: number;
}

declare module '../gpu/context' {
  interface VariantOverrides {
    /** Forces this variant on every convolution (its channel block capped per layer): benchmarks, experiments. */
    conv2d?: Conv2dVariant;
  }
}

/**
 * The variant table. CPU adapters (lavapipe, SwiftShader) run a workgroup's invocations 8 at a time on SIMD
 * lanes, with no real workgroup memory; a load whose address is the same in every lane is one scalar load, a
 * per-lane address a gather; and they JIT-compile every distinct variant on its first dispatch, so they get a
 * few small tiles with workgroup-uniform weights (see below). GPUs want more, smaller invocations for
 * occupancy (untuned so far: a moderate tile). `outWidth` is the width of the output (or the row band) the
 * convolution writes. A variant forced on the context (`ctx.variantOverrides.conv2d`) wins, its channel block
 * capped at the output's channel vec4s.
 */
export function selectConv2dVariant(source: VariantSourceArg, g: Conv2dGeometry, outWidth = 256): Conv2dVariant {
  checkConv2dGroups(g);
  const { adapter, overrides } = variantSource(source);
  const cout4 = paddedChannels(g.outChannels) / 4;
  const forced = overrides.conv2d;
  if (forced) return { ...forced, cb: Math.min(forced.cb, cout4) };
  // Depthwise: nothing is shared between channels, so one channel vec4 per invocation; the pixels of a tile
  // share weights and overlapping input taps. Untuned so far (no benchmark yet).
  if (isDepthwiseConv2d(g)) {
    if (adapter.isSoftware) return { px: 8, cb: 1, workgroupSize: 64, uniformWeights: true };
    return { px: 4, cb: 1, workgroupSize: 64 };
  }
  // Grouped: a channel block never straddles two groups, so keep it within one group's channel vec4s.
  const coutg4 = cout4 / (g.groups ?? 1);
  if (!adapter.isSoftware) return { px: 4, cb: Math.min(2, coutg4), workgroupSize: 64 };
  // lavapipe, 2 cores, GPU timestamps (npm run bench:conv2d-variants; this VM swings ±40 % between runs).
  // Every variant is a shader that LLVM compiles on its first dispatch, for seconds (tile-shape.ts), so the
  // table uses few of them, with small bodies, shared by every layer and input size: pixel tiles of 8 (4 for
  // rows of at most 4), two channel vec4s, weights uniform per workgroup (uw), 64 invocations, the kernel taps
  // in loops — an unrolled body of 16 multiply-adds whatever the kernel size. Against the larger, shape-specialised variants
  // of earlier tables (row reuse `rr`, tiles dividing the row, channel lanes `cl` for maps under 8 rows), which
  // cost 3–10× the compile time: 3×3 64→64 at 256² px8 cb2 5.6–11 GFLOP/s, px32 cb2 rr 6.9–12, px8 cb1 rr 5.6;
  // at 64² 4.5–7.5 against 6.9 (px32 cb2 rr); 3×3 256→256 on 8×6 px8 cb2 wg8 5.5–7.3 against 3.5–6.0 (cl rows3
  // px8); 512→512 on 4×3 px4 cb2 wg8 3.7–3.9 against 3.2–3.6 (cl rows3 px4). Workgroups of 8 where 64 leave
  // lanes idle gained 0–15 % (20×16 128→128: 5.5 against 4.6–4.9) but double the variants.
  return { px: compactTile(outWidth), cb: Math.min(2, coutg4), workgroupSize: 64, uniformWeights: true };
}
