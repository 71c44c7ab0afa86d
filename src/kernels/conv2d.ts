import { InvalidInputError } from '../errors';
import { type BindingLimits, convRowBands } from './conv2d-bands';
import type { AdapterDescription } from '../gpu/adapter-info';
import { shareOf } from '../gpu/cost';
import { type Graph, type TensorValue, workgroupGrid } from '../gpu/graph';
import { paddedChannels, type Shape4 } from '../gpu/tensor';
import { type Activation, activationAlpha, NO_ACTIVATION } from './activation';
import { conv2dCost } from './conv2d-cost';
import { compactTile } from './tile-shape';
import { conv2dLanesLabel, conv2dLanesWgsl } from './conv2d-lanes.wgsl';
import {
  type Conv2dEpilogueKey,
  type Conv2dVariant,
  conv2dLabel,
  conv2dWgsl,
  depthwiseConv2dLabel,
  depthwiseConv2dWgsl,
  type ResidualMode,
} from './conv2d.wgsl';
import { packTapMajorWeights } from './weight-layout';

export type { Conv2dVariant, ResidualMode } from './conv2d.wgsl';

/** The geometry of a Conv2d, as PyTorch's constructor arguments (square or [h, w] pairs). */
export interface Conv2dGeometry {
  inChannels: number;
  outChannels: number;
  kernelSize: readonly [number, number];
  stride: number;
  padding: readonly [number, number];
  dilation: number;
  /**
   * PyTorch `groups` (default 1); the weight is [Cout, Cin/groups, kH, kW]. groups = Cin = Cout (depthwise,
   * any C) runs a dedicated kernel; other groupings need Cin/groups and Cout/groups to be multiples of 4.
   */
  groups?: number;
}

/**
 * What is fused after the convolution, in this order: conv → + bias → (+ residual, 'beforeActivation') →
 * activation or PReLU → × scale → (+ residual, 'afterActivation') → padded channels zeroed.
 * ResNet BasicBlock's second conv is `{ activation: relu, residual: { tensor: identity, mode: 'beforeActivation' } }`;
 * ESRGAN's `x5 * 0.2 + x` is `{ scale: 0.2, residual: { tensor: x, mode: 'afterActivation' } }`.
 */
export interface Conv2dEpilogue {
  activation?: Activation;
  /** PReLU slopes (a buffer from `packPreluSlopes`); replaces `activation`, which must then be none. */
  prelu?: GPUBuffer;
  /** Multiplies the activated value (default 1). */
  scale?: number;
  /**
   * A tensor with the convolution's output shape [n, ho, wo, Cout], added before or after the activation. With
   * `prefix`, the tensor may have more channels and its first Cout are added (a dense block's concatenation
   * buffer, whose first piece is the block input).
   */
  residual?: { tensor: TensorValue; mode: ResidualMode; prefix?: boolean };
  /** Write into channels [offset, offset + outChannels) of `output` (concatenation without a copy). */
  outChannelOffset?: number;
}

export function conv2dOutputSize(inSize: number, kernel: number, stride: number, pad: number, dilation: number): number {
  return Math.floor((inSize + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1;
}

/** groups = Cin = Cout: the depthwise kernel (also for 1→1 convolutions, where it wastes no lanes). */
export function isDepthwiseConv2d(g: Conv2dGeometry): boolean {
  return (g.groups ?? 1) === g.inChannels && g.inChannels === g.outChannels;
}

/** Throws an InvalidInputError unless the kernels can run this grouping. */
export function checkConv2dGroups(g: Conv2dGeometry): void {
  const groups = g.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new InvalidInputError(`Conv2d groups must be a positive integer, got ${groups}`);
  if (groups === 1 || isDepthwiseConv2d(g)) return;
  if (g.inChannels % groups !== 0 || g.outChannels % groups !== 0) {
    throw new InvalidInputError(`Conv2d groups ${groups} must divide both ${g.inChannels} input and ${g.outChannels} output channels`);
  }
  const cing = g.inChannels / groups;
  const coutg = g.outChannels / groups;
  if (cing % 4 !== 0 || coutg % 4 !== 0) {
    throw new InvalidInputError(
      `Conv2d with groups ${groups} (${g.inChannels}→${g.outChannels}) needs Cin/groups and Cout/groups to be multiples of 4 ` +
        `(got ${cing} and ${coutg}); only depthwise (groups = Cin = Cout) allows any channel count`,
    );
  }
}

export function conv2dOutputShape(input: Shape4, g: Conv2dGeometry): Shape4 {
  const [n, h, w, c] = input;
  if (c !== g.inChannels) {
    throw new InvalidInputError(`Conv2d expects ${g.inChannels} input channels, got ${c}`);
  }
  checkConv2dGroups(g);
  const ho = conv2dOutputSize(h, g.kernelSize[0], g.stride, g.padding[0], g.dilation);
  const wo = conv2dOutputSize(w, g.kernelSize[1], g.stride, g.padding[1], g.dilation);
  if (ho < 1 || wo < 1) {
    throw new InvalidInputError(`Conv2d with kernel ${g.kernelSize.join('x')} on a ${h}x${w} input leaves no output`);
  }
  return [n, ho, wo, g.outChannels];
}

/**
 * PyTorch weight [Cout, Cin/groups, kH, kW] → the kernel's layout. Direct kernel: for each (ky, kx, ci4, co4)
 * four vec4s, one per input channel of the vec4 (ci4 counts within the group), each holding 4 output channels.
 * Depthwise kernel: for each channel vec4, kH·kW vec4s (one per tap). Padded channels are 0.
 */
export function packConv2dWeight(weight: ArrayLike<number>, g: Conv2dGeometry): Float32Array {
  checkConv2dGroups(g);
  const [kh, kw] = g.kernelSize;
  const groups = g.groups ?? 1;
  const cin = g.inChannels / groups;
  const cout = g.outChannels;
  if (weight.length !== cout * cin * kh * kw) {
    throw new InvalidInputError(`conv weight has ${weight.length} values, expected ${cout}x${cin}x${kh}x${kw}`);
  }
  if (isDepthwiseConv2d(g)) {
    const out = new Float32Array(paddedChannels(cout) * kh * kw);
    for (let c = 0; c < cout; c++) {
      for (let t = 0; t < kh * kw; t++) out[((c >> 2) * kh * kw + t) * 4 + (c & 3)] = weight[c * kh * kw + t];
    }
    return out;
  }
  return packTapMajorWeights([kh, kw], cin, cout, (ci, co, ky, kx) => weight[((co * cin + ci) * kh + ky) * kw + kx]);
}

/**
 * PReLU weights → a vec4-padded slope buffer for `channels` channels. PyTorch's PReLU() has one shared slope
 * (num_parameters = 1), which is broadcast to every channel; PReLU(C) has one per channel. Padded lanes are 0.
 */
export function packPreluSlopes(slopes: ArrayLike<number>, channels: number): Float32Array {
  if (slopes.length !== 1 && slopes.length !== channels) {
    throw new InvalidInputError(`PReLU has ${slopes.length} slopes, expected 1 or ${channels}`);
  }
  const out = new Float32Array(paddedChannels(channels));
  for (let i = 0; i < channels; i++) out[i] = slopes.length === 1 ? slopes[0] : slopes[i];
  return out;
}

/** Bias [Cout] → vec4-padded. */
export function packBias(bias: ArrayLike<number>, channels: number): Float32Array {
  const out = new Float32Array(paddedChannels(channels));
  for (let i = 0; i < channels; i++) out[i] = bias[i];
  return out;
}

/**
 * The variant table. CPU adapters (lavapipe, SwiftShader) run a workgroup's invocations 8 at a time on SIMD
 * lanes, with no real workgroup memory; a load whose address is the same in every lane is one scalar load, a
 * per-lane address a gather; and they JIT-compile every distinct variant on its first dispatch, so they get a
 * few small tiles with workgroup-uniform weights (see below). GPUs want more, smaller invocations for
 * occupancy (untuned so far: a moderate tile). `outWidth` is the width of the output (or the row band) the
 * convolution writes.
 */
export function selectConv2dVariant(adapter: AdapterDescription, g: Conv2dGeometry, outWidth = 256): Conv2dVariant {
  checkConv2dGroups(g);
  const cout4 = paddedChannels(g.outChannels) / 4;
  if (variantOverride) return { ...variantOverride, cb: Math.min(variantOverride.cb, cout4) };
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

let variantOverride: Conv2dVariant | undefined;

/** Forces one variant for every convolution (benchmarks and experiments); `undefined` restores the table. */
export function overrideConv2dVariant(v: Conv2dVariant | undefined): void {
  variantOverride = v;
}

/** Parses `px16,cb4,wg64,uw` (the tags of a shader label) into a variant. */
export function parseConv2dVariant(text: string): Conv2dVariant {
  const v: Conv2dVariant = { px: 0, cb: 0, workgroupSize: 64 };
  for (const part of text.split(',')) {
    const m = /^(px|cb|wg|rows)(\d+)$/.exec(part.trim());
    if (m) {
      const n = Number(m[2]);
      if (m[1] === 'px') v.px = n;
      else if (m[1] === 'rows') v.rows = n;
      else if (m[1] === 'cb') v.cb = n;
      else v.workgroupSize = n;
    } else if (part.trim() === 'uw') v.uniformWeights = true;
    else if (part.trim() === 'rr') v.rowReuse = true;
    else if (part.trim() === 'cl') v.channelLanes = true;
    else throw new InvalidInputError(`bad conv2d variant tag '${part}' in '${text}' (expected e.g. px16,cb4,wg64,uw)`);
  }
  if (v.px < 1 || v.cb < 1 || v.workgroupSize < 1) throw new InvalidInputError(`conv2d variant '${text}' needs px and cb`);
  return v;
}

/**
 * Variants the tests check on every case, besides whatever the selector picks for that case on a software and
 * a hardware adapter (the tests add those): the smallest tile, and shapes that do not divide typical sizes.
 */
export const CONV2D_TEST_VARIANTS: Conv2dVariant[] = [
  { px: 1, cb: 1, workgroupSize: 64 },
  { px: 2, cb: 3, workgroupSize: 32 },
  { px: 3, cb: 2, workgroupSize: 16, uniformWeights: true },
];

/**
 * Adds one convolution dispatch to `graph`: `output` (or a new tensor) = the epilogue (see `Conv2dEpilogue`) of
 * conv(input). `weight`, `bias` and `epilogue.prelu` are GPU buffers in the packed layouts above. Depthwise
 * geometries (groups = Cin = Cout) run the depthwise kernel with the same tiling parameters.
 */
export function conv2d(
  graph: Graph,
  input: TensorValue,
  params: {
    weight: GPUBuffer;
    bias?: GPUBuffer;
    geometry: Conv2dGeometry;
    variant: Conv2dVariant;
    label: string;
    /**
     * Read only the first `geometry.inChannels` channels of a wider input (groups = 1): a dense block's layer
     * reads the prefix of the concatenation buffer that later layers keep writing into.
     */
    readInputPrefix?: boolean;
    /** With these, a convolution over tensors larger than one binding runs in row bands (conv2d-bands.ts). */
    bindingLimits?: BindingLimits;
  },
  epilogue: Conv2dEpilogue = {},
  output?: TensorValue,
  maxWorkgroupsPerDimension = 65535,
): TensorValue {
  const g = params.geometry;
  const v = params.variant;
  if (params.readInputPrefix) {
    if ((g.groups ?? 1) !== 1) throw new InvalidInputError(`${params.label}: reading an input channel prefix needs groups = 1`);
    if (input.shape[3] < g.inChannels) {
      throw new InvalidInputError(`${params.label}: input has ${input.shape[3]} channels, fewer than the ${g.inChannels} the convolution reads`);
    }
  }
  const [n, h, w, cin] = input.shape;
  const outShape = conv2dOutputShape(params.readInputPrefix ? [n, h, w, g.inChannels] : input.shape, g);
  const offset = epilogue.outChannelOffset ?? 0;
  const out = output ?? graph.tensor(outShape, params.label);
  if (out.shape[0] !== outShape[0] || out.shape[1] !== outShape[1] || out.shape[2] !== outShape[2]) {
    throw new InvalidInputError(`${params.label}: output tensor ${out.shape.join('x')} does not match ${outShape.join('x')}`);
  }
  if (offset % 4 !== 0 || offset + g.outChannels > out.shape[3]) {
    throw new InvalidInputError(`${params.label}: channel offset ${offset} (+${g.outChannels}) must be a multiple of 4 inside ${out.shape[3]} channels`);
  }
  const activation = epilogue.activation ?? NO_ACTIVATION;
  if (epilogue.prelu && activation.kind !== 'none') {
    throw new InvalidInputError(`${params.label}: PReLU replaces the activation, got both prelu and ${activation.kind}`);
  }
  const scale = epilogue.scale ?? 1;
  if (!Number.isFinite(scale)) throw new InvalidInputError(`${params.label}: scale ${scale} is not finite`);
  const residual = epilogue.residual;
  if (residual) {
    const r = residual.tensor.shape;
    const channelsOk = residual.prefix ? r[3] >= outShape[3] : r[3] === outShape[3];
    if (r.length !== 4 || r.some((d, i) => i < 3 && d !== outShape[i]) || !channelsOk) {
      throw new InvalidInputError(`${params.label}: residual ${r.join('x')} does not match the output ${outShape.join('x')}`);
    }
    if (residual.tensor.id === out.id) {
      throw new InvalidInputError(`${params.label}: the residual cannot be the output tensor itself (write to a new tensor)`);
    }
    if (residual.mode !== 'beforeActivation' && residual.mode !== 'afterActivation') {
      throw new InvalidInputError(`${params.label}: residual mode '${String(residual.mode)}' (expected beforeActivation or afterActivation)`);
    }
  }
  const [, ho, wo] = outShape;
  const cout4 = paddedChannels(g.outChannels) / 4;
  const groups = g.groups ?? 1;
  const depthwise = isDepthwiseConv2d(g);
  // Channel blocks: depthwise and groups = 1 tile all output vec4s; grouped convs tile within each group.
  const coutg4 = depthwise ? cout4 : cout4 / groups;
  const gblocks = Math.ceil(coutg4 / v.cb);
  const coBlocks = depthwise ? gblocks : groups * gblocks;
  const tilesX = Math.ceil(wo / v.px);
  // `total` counts what the linear invocation index runs over: (pixel tile, channel block) pairs, or only
  // pixel tiles when the channel block comes from the workgroup index.
  const tiles = n * ho * tilesX;
  const total = v.uniformWeights ? tiles : tiles * coBlocks;
  const epilogueKey: Conv2dEpilogueKey = {
    hasBias: params.bias !== undefined,
    activation,
    ...(epilogue.prelu ? { prelu: true } : {}),
    ...(residual ? { residual: residual.mode } : {}),
  };
  const common = {
    n,
    h,
    w,
    ho,
    wo,
    cout4,
    cout: g.outChannels,
    pad_y: g.padding[0],
    pad_x: g.padding[1],
    co_blocks: coBlocks,
    tiles_x: tilesX,
    total,
    out_c4_offset: offset / 4,
    out_c4_total: paddedChannels(out.shape[3]) / 4,
    alpha: activationAlpha(activation),
    scale,
    // Channel stride of the residual tensor (wider than the output when it is a prefix).
    res_c4_total: residual ? paddedChannels(residual.tensor.shape[3]) / 4 : cout4,
  };
  let kernel: { label: string; code: string };
  let uniforms: Record<string, number>;
  // Workgroups and the uniforms that follow the number of output rows (row bands run fewer).
  let grid = (rows: number): { workgroups: number; uniforms: Record<string, number> } => {
    const t = n * rows * tilesX;
    const tot = v.uniformWeights ? t : t * coBlocks;
    return { workgroups: v.uniformWeights ? coBlocks * Math.ceil(t / v.workgroupSize) : Math.ceil(tot / v.workgroupSize), uniforms: { total: tot } };
  };
  if (v.channelLanes && !depthwise) {
    if (groups !== 1) throw new InvalidInputError(`${params.label}: channel-lanes convolution needs groups = 1, got ${groups}`);
    const key = {
      ...epilogueKey,
      kernelH: g.kernelSize[0],
      kernelW: g.kernelSize[1],
      maskChannels: g.outChannels % 4 !== 0,
      stride: g.stride,
      dilation: g.dilation,
    };
    kernel = { label: conv2dLanesLabel(key, v), code: conv2dLanesWgsl(key, v) };
    const rowsPerTile = v.rows ?? 1;
    const chanWgs = Math.ceil(cout4 / (v.workgroupSize * v.cb));
    const { co_blocks: _c, total: _t, ...rest } = common;
    grid = (rows) => {
      const tilesY = Math.ceil(rows / rowsPerTile);
      return { workgroups: n * tilesY * tilesX * chanWgs, uniforms: { tiles_y: tilesY } };
    };
    uniforms = { ...rest, cin4: paddedChannels(cin) / 4, cing4: paddedChannels(g.inChannels) / 4, chan_wgs: chanWgs, ...grid(ho).uniforms };
  } else if (depthwise) {
    const key = { ...epilogueKey, kernelH: g.kernelSize[0], kernelW: g.kernelSize[1], stride: g.stride, dilation: g.dilation };
    kernel = { label: depthwiseConv2dLabel(key, v), code: depthwiseConv2dWgsl(key, v) };
    uniforms = { ...common, c4: cout4 };
  } else {
    const key = {
      ...epilogueKey,
      kernelH: g.kernelSize[0],
      kernelW: g.kernelSize[1],
      maskChannels: g.outChannels % 4 !== 0,
      ...(v.rowReuse ? { stride: g.stride, dilation: g.dilation } : {}),
    };
    kernel = { label: conv2dLabel(key, v), code: conv2dWgsl(key, v) };
    uniforms = {
      ...common,
      cin4: paddedChannels(cin) / 4,
      stride: g.stride,
      dilation: g.dilation,
      // cin4 is the input's channel stride; cing4 counts the channels read (fewer for a prefix read).
      cing4: paddedChannels(g.inChannels / groups) / 4,
      coutg4,
      gblocks,
    };
  }
  const constants = {
    weight: params.weight,
    ...(params.bias ? { bias: params.bias } : {}),
    ...(epilogue.prelu ? { slope: epilogue.prelu } : {}),
  };
  const bands =
    n === 1 && params.bindingLimits
      ? convRowBands(
          {
            h,
            ho,
            kernelH: g.kernelSize[0],
            stride: g.stride,
            dilation: g.dilation,
            padTop: g.padding[0],
            inRowBytes: w * paddedChannels(cin) * 4,
            outRowBytes: wo * paddedChannels(out.shape[3]) * 4,
            ...(residual ? { resRowBytes: wo * paddedChannels(residual.tensor.shape[3]) * 4 } : {}),
          },
          params.bindingLimits,
        )
      : null;
  const cost = conv2dCost(input.shape, outShape, g, { bias: !!params.bias, prelu: !!epilogue.prelu, residual: !!residual });
  if (!bands) {
    graph.add({
      label: params.label,
      kernel,
      uniforms,
      bindings: { x: input, ...constants, y: out, ...(residual ? { res: residual.tensor } : {}) },
      workgroups: workgroupGrid(grid(ho).workgroups, maxWorkgroupsPerDimension),
      cost,
    });
    return out;
  }
  const slice = (tensor: TensorValue, row0: number, rows: number) => {
    const rowBytes = tensor.shape[2] * paddedChannels(tensor.shape[3]) * 4;
    return { tensor, offset: row0 * rowBytes, size: rows * rowBytes };
  };
  for (const band of bands) {
    const bandRows = band.oy1 - band.oy0;
    const bandGrid = grid(bandRows);
    graph.add({
      label: `${params.label} rows ${band.oy0}-${band.oy1 - 1}`,
      kernel,
      uniforms: { ...uniforms, h: band.rows, ho: bandRows, pad_y: band.padY, ...bandGrid.uniforms },
      bindings: {
        x: slice(input, band.r0, band.rows),
        ...constants,
        y: slice(out, band.oy0, bandRows),
        ...(residual ? { res: slice(residual.tensor, band.oy0, bandRows) } : {}),
      },
      workgroups: workgroupGrid(bandGrid.workgroups, maxWorkgroupsPerDimension),
      // Each band its share by output rows, so the bands sum to the whole convolution.
      cost: { flops: shareOf(cost.flops, band.oy0, band.oy1, ho), bytes: shareOf(cost.bytes, band.oy0, band.oy1, ho) },
    });
  }
  return out;
}
