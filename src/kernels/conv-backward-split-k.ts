import { InvalidInputError } from '../errors';
import { logicalBytes } from '../gpu/cost';
import type { Binding, Graph, TensorValue } from '../gpu/graph';
import { paddedChannels } from '../gpu/tensor';
import {
  channelSumPartialsWgsl,
  SPLIT_K_WORKGROUP,
  splitKDepthwisePartialsWgsl,
  type SplitKTile,
  splitKPartialsWgsl,
  splitKReduceWgsl,
} from './conv-backward-split-k.wgsl';
import { kernelShader } from './kernel-source';
import { checkBindingHolds } from './weight-pack-gpu';

/*
 * The weight (and bias) gradient of a convolution as a split-K reduction (conv-backward-split-k.wgsl.ts): the
 * GEMM [A channels × pixels]·[pixels × taps·B channels] has a reduction as long as the image batch, so pass 1
 * cuts the pixels into chunks that run in parallel, writing partial sums into a graph tensor, and pass 2 adds
 * the partials in chunk order. The chunking depends only on the shapes, so two runs add the same numbers in the
 * same order (bitwise reproducible, no atomics).
 */

/** What the weight gradient multiplies: A walked pixel by pixel, B read at A's pixel·stride − padding + tap·dilation. */
export interface SplitKWeightGradSpec {
  /** The anchor tensor (Conv2d: gy; ConvTranspose2d: x). */
  a: TensorValue;
  /** The shifted tensor (Conv2d: x; ConvTranspose2d: gy). */
  b: TensorValue;
  /** B channels each A channel meets (B's channels / groups). */
  bChannelsPerGroup: number;
  groups: number;
  /** groups = A channels = B channels: one B channel per A channel, the weight [C, 1, kH, kW]. */
  depthwise: boolean;
  kernel: readonly [number, number];
  stride: number;
  padding: readonly [number, number];
  dilation: number;
}

/** Pass-1 invocations the chunking aims for: enough workgroups to fill a large GPU, whatever the channel blocks. */
const TARGET_INVOCATIONS = 1 << 16;
/** Fewest pixels a chunk sums, so each partial written (and read again by pass 2) is paid for by real work. */
const MIN_CHUNK_PIXELS = 64;
/** Most pixels a chunk sums: however many channel blocks there are, no invocation walks a whole batch. */
const MAX_CHUNK_PIXELS = 4096;
/** Most bytes of partial sums (pass 2 reads them all once) that the aim for more workgroups may add. */
const MAX_PARTIAL_BYTES = 64 << 20;

export interface SplitKChunking {
  chunks: number;
  chunkPixels: number;
}

/**
 * How pass 1 splits `pixels`: chunks enough that `blocks` (invocations per chunk) × chunks reaches the target,
 * none smaller than MIN_CHUNK_PIXELS, partials within MAX_PARTIAL_BYTES; but always chunks of at most
 * MAX_CHUNK_PIXELS (then the partials may exceed that budget). `forcedPixels` (tests) fixes the size.
 */
export function splitKChunking(pixels: number, blocks: number, partialVec4PerChunk: number, forcedPixels?: number): SplitKChunking {
  if (forcedPixels !== undefined) {
    if (!Number.isInteger(forcedPixels) || forcedPixels < 1)
      throw new InvalidInputError(`pixelsPerChunk ${forcedPixels} must be a positive integer`);
    const chunkPixels = Math.min(forcedPixels, pixels);
    return { chunks: Math.ceil(pixels / chunkPixels), chunkPixels };
  }
  let chunks = Math.ceil(TARGET_INVOCATIONS / blocks);
  chunks = Math.min(chunks, Math.ceil(pixels / MIN_CHUNK_PIXELS), Math.floor(MAX_PARTIAL_BYTES / (partialVec4PerChunk * 16)));
  chunks = Math.max(1, chunks, Math.ceil(pixels / MAX_CHUNK_PIXELS));
  const chunkPixels = Math.ceil(pixels / chunks);
  return { chunks: Math.ceil(pixels / chunkPixels), chunkPixels };
}

/** Pass 2: sums `chunks` partial tensors of `count` vec4s in chunk order into the flat PyTorch gradient `out`. */
function reducePartials(
  graph: Graph,
  part: TensorValue,
  out: Binding,
  layout: { count: number; chunks: number; taps: number; l4: number; lc: number },
  label: string,
): void {
  graph.add({
    label,
    kernel: kernelShader('splitKReduce', { family: 'split_k_reduce' }, (io) => splitKReduceWgsl(io)),
    uniforms: layout,
    bindings: { part, out },
    workgroups: Math.ceil(layout.count / SPLIT_K_WORKGROUP),
    cost: { flops: layout.chunks * layout.count * 4, bytes: layout.chunks * layout.count * 16 + layout.count * 16 },
  });
}

/**
 * Writes (overwrites) the flat PyTorch weight gradient [A channels, B channels / groups, kH, kW] into `dWeight`:
 * dW[a, b', ky, kx] = Σ_{n, y, x} A[n, y, x, a]·B[n, y·s − p + ky·d, x·s − p + kx·d, grp(a)·bg + b'].
 */
export function splitKWeightGrad(graph: Graph, spec: SplitKWeightGradSpec, dWeight: Binding, label: string, pixelsPerChunk?: number): void {
  const { a, b } = spec;
  const [kh, kw] = spec.kernel;
  const taps = kh * kw;
  const aCount = a.shape[3];
  const bg = spec.bChannelsPerGroup;
  checkBindingHolds(dWeight, aCount * bg * taps, `${label}: dWeight`);
  const pixels = a.shape[0] * a.shape[1] * a.shape[2];
  const aC4 = paddedChannels(aCount) / 4;
  const bC4 = paddedChannels(b.shape[3]) / 4;
  const shift = {
    a_h: a.shape[1],
    a_w: a.shape[2],
    a_c4: aC4,
    b_h: b.shape[1],
    b_w: b.shape[2],
    b_c4: bC4,
    stride: spec.stride,
    dilation: spec.dilation,
    pad_y: spec.padding[0],
    pad_x: spec.padding[1],
    kw,
    taps,
    pixels,
  };
  const macs = pixels * aCount * bg * taps;
  const readBytes = logicalBytes(a.shape) + logicalBytes(b.shape);
  if (spec.depthwise) {
    const perChunk = taps * aC4;
    const { chunks, chunkPixels } = splitKChunking(pixels, perChunk, perChunk, pixelsPerChunk);
    const part = graph.tensor([1, 1, chunks, perChunk * 4], `${label} partials`);
    const count = chunks * perChunk;
    graph.add({
      label: `${label} partials`,
      kernel: kernelShader('splitKPartials[depthwise]', { family: 'split_k_partials_dw' }, (io) => splitKDepthwisePartialsWgsl(io)),
      uniforms: { ...shift, chunk_pixels: chunkPixels, count },
      bindings: { a, b, part },
      workgroups: Math.ceil(count / SPLIT_K_WORKGROUP),
      cost: { flops: 2 * macs, bytes: readBytes + count * 16 },
    });
    reducePartials(graph, part, dWeight, { count: perChunk, chunks, taps, l4: aC4, lc: aCount }, label);
    return;
  }
  const groups = spec.groups;
  const ag4 = paddedChannels(aCount / groups) / 4;
  const bg4 = paddedChannels(bg) / 4;
  // 2×2 channel vec4s (64 products per pixel from 4 loads) where the group has them.
  const tile: SplitKTile = { ab: Math.min(2, ag4), bb: Math.min(2, bg4) };
  const aBlocks = Math.ceil(ag4 / tile.ab);
  const bBlocks = Math.ceil(bg4 / tile.bb);
  const perChunkPartials = aCount * taps * bg4;
  const blocks = taps * groups * aBlocks * bBlocks;
  const { chunks, chunkPixels } = splitKChunking(pixels, blocks, perChunkPartials, pixelsPerChunk);
  const part = graph.tensor([1, 1, chunks, perChunkPartials * 4], `${label} partials`);
  const count = chunks * blocks;
  graph.add({
    label: `${label} partials`,
    kernel: kernelShader(`splitKPartials[a${tile.ab},b${tile.bb}]`, { family: 'split_k_partials', variant: tile }, (io) =>
      splitKPartialsWgsl(tile, io),
    ),
    uniforms: {
      ...shift,
      chunk_pixels: chunkPixels,
      count,
      a_count: aCount,
      ag4,
      bg4,
      a_blocks: aBlocks,
      b_blocks: bBlocks,
      ab_total: groups * aBlocks,
    },
    bindings: { a, b, part },
    workgroups: Math.ceil(count / SPLIT_K_WORKGROUP),
    cost: { flops: 2 * macs, bytes: readBytes + chunks * perChunkPartials * 16 },
  });
  reducePartials(graph, part, dWeight, { count: perChunkPartials, chunks, taps, l4: bg4, lc: bg }, label);
}

/** Writes (overwrites) db[c] = Σ_{n, y, x} t[n, y, x, c] into the flat `dBias` (PyTorch's bias gradient). */
export function channelSumGrad(graph: Graph, t: TensorValue, dBias: Binding, label: string, pixelsPerChunk?: number): void {
  const channels = t.shape[3];
  checkBindingHolds(dBias, channels, `${label}: dBias`);
  const c4 = paddedChannels(channels) / 4;
  const pixels = t.shape[0] * t.shape[1] * t.shape[2];
  const { chunks, chunkPixels } = splitKChunking(pixels, c4, c4, pixelsPerChunk);
  const part = graph.tensor([1, 1, chunks, c4 * 4], `${label} partials`);
  graph.add({
    label: `${label} partials`,
    kernel: kernelShader('channelSumPartials', { family: 'channel_sum_partials' }, (io) => channelSumPartialsWgsl(io)),
    uniforms: { c4, chunk_pixels: chunkPixels, pixels, count: chunks * c4 },
    bindings: { t, part },
    workgroups: Math.ceil((chunks * c4) / SPLIT_K_WORKGROUP),
    cost: { flops: logicalBytes(t.shape) / 4, bytes: logicalBytes(t.shape) + chunks * c4 * 16 },
  });
  reducePartials(graph, part, dBias, { count: c4, chunks, taps: 1, l4: c4, lc: channels }, label);
}
