import { InvalidInputError } from '../errors';
import type { AdapterDescription } from '../gpu/adapter-info';
import { logicalBytes } from '../gpu/cost';
import { type Graph, type TensorValue, workgroupGrid } from '../gpu/graph';
import { compactTile } from './tile-shape';
import { paddedChannels, type Shape4 } from '../gpu/tensor';
import { type Activation, activationAlpha, NO_ACTIVATION } from './activation';
import { type ConvTranspose2dVariant, convTranspose2dLabel, convTranspose2dWgsl } from './conv-transpose2d.wgsl';
import { packBias } from './conv2d';
import { packTapMajorWeights } from './weight-layout';

export type { ConvTranspose2dVariant } from './conv-transpose2d.wgsl';

/** nn.ConvTranspose2d's constructor arguments (dilation 1, groups 1); sizes as [h, w] pairs. */
export interface ConvTranspose2dGeometry {
  inChannels: number;
  outChannels: number;
  kernelSize: readonly [number, number];
  stride: number;
  padding: readonly [number, number];
  outputPadding: readonly [number, number];
}

export interface ConvTranspose2dEpilogue {
  activation?: Activation;
  /** Write into channels [offset, offset + outChannels) of `output` (concatenation without a copy). */
  outChannelOffset?: number;
}

/** PyTorch's output size (dilation 1): (in − 1)·s − 2p + k + output_padding. */
export function convTranspose2dOutputSize(inSize: number, kernel: number, stride: number, pad: number, outputPadding: number): number {
  return (inSize - 1) * stride - 2 * pad + kernel + outputPadding;
}

export function checkConvTranspose2dGeometry(g: ConvTranspose2dGeometry): void {
  const ints = [g.inChannels, g.outChannels, ...g.kernelSize, g.stride];
  if (!ints.every((v) => Number.isInteger(v) && v >= 1)) {
    throw new InvalidInputError(`ConvTranspose2d: channels, kernel size and stride must be positive integers`);
  }
  for (const v of [...g.padding, ...g.outputPadding]) {
    if (!Number.isInteger(v) || v < 0) throw new InvalidInputError(`ConvTranspose2d: padding must be non-negative integers`);
  }
  if (g.outputPadding.some((v) => v >= g.stride)) {
    // PyTorch: output padding must be smaller than either stride or dilation (dilation is 1 here).
    throw new InvalidInputError(`ConvTranspose2d: output_padding ${g.outputPadding.join('x')} must be smaller than stride ${g.stride}`);
  }
}

export function convTranspose2dOutputShape(input: Shape4, g: ConvTranspose2dGeometry): Shape4 {
  const [n, h, w, c] = input;
  if (c !== g.inChannels) {
    throw new InvalidInputError(`ConvTranspose2d expects ${g.inChannels} input channels, got ${c}`);
  }
  const ho = convTranspose2dOutputSize(h, g.kernelSize[0], g.stride, g.padding[0], g.outputPadding[0]);
  const wo = convTranspose2dOutputSize(w, g.kernelSize[1], g.stride, g.padding[1], g.outputPadding[1]);
  if (ho < 1 || wo < 1) {
    throw new InvalidInputError(`ConvTranspose2d with kernel ${g.kernelSize.join('x')} on a ${h}x${w} input leaves no output`);
  }
  return [n, ho, wo, g.outChannels];
}

/**
 * Whether the layer is kH·kW disjoint sub-pixel GEMMs (kernel = stride, padding 0, output_padding 0): every
 * output pixel then receives exactly one tap of one input pixel.
 */
export function isSubpixelConvTranspose2d(g: ConvTranspose2dGeometry): boolean {
  return (
    g.kernelSize[0] === g.stride &&
    g.kernelSize[1] === g.stride &&
    g.padding[0] === 0 &&
    g.padding[1] === 0 &&
    g.outputPadding[0] === 0 &&
    g.outputPadding[1] === 0
  );
}

/**
 * PyTorch weight [Cin, Cout, kH, kW] → the kernels' layout (float64 in, f32 out): for each (ky, kx, ci4, co4)
 * four vec4s, one per input channel of the group, each holding 4 output channels. Padded channels are 0. Both
 * algorithms use it: tap (ky, kx) of the sub-pixel kernel is the GEMM for output offset (dy, dx) = (ky, kx).
 */
export function packConvTranspose2dWeight(weight: ArrayLike<number>, g: ConvTranspose2dGeometry): Float32Array {
  const [kh, kw] = g.kernelSize;
  const cin = g.inChannels;
  const cout = g.outChannels;
  if (weight.length !== cin * cout * kh * kw) {
    throw new InvalidInputError(`convTranspose weight has ${weight.length} values, expected ${cin}x${cout}x${kh}x${kw}`);
  }
  return packTapMajorWeights([kh, kw], cin, cout, (ci, co, ky, kx) => weight[((ci * cout + co) * kh + ky) * kw + kx]);
}

/** Bias [Cout] → vec4-padded f32 (the same layout as a convolution's bias). */
export function packConvTranspose2dBias(bias: ArrayLike<number>, channels: number): Float32Array {
  return packBias(bias, channels);
}

/**
 * The variant table: the sub-pixel GEMMs where they apply, the gather otherwise. CPU adapters get conv2d's
 * compact tiles (the sub-pixel GEMM per tap is a 1×1 convolution) with workgroup-uniform weight loads; hardware
 * GPUs get a moderate tile that keeps occupancy (untuned so far).
 */
export function selectConvTranspose2dVariant(
  adapter: AdapterDescription,
  g: ConvTranspose2dGeometry,
  inWidth = 256,
): ConvTranspose2dVariant {
  const cout4 = paddedChannels(g.outChannels) / 4;
  if (variantOverride) return { ...variantOverride, cb: Math.min(variantOverride.cb, cout4) };
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

let variantOverride: ConvTranspose2dVariant | undefined;

/** Forces one variant for every transposed convolution (benchmarks); `undefined` restores the table. */
export function overrideConvTranspose2dVariant(v: ConvTranspose2dVariant | undefined): void {
  variantOverride = v;
}

/**
 * Variants the tests check besides the selector's picks: small and odd tiles of both algorithms (the sub-pixel
 * ones only apply to sub-pixel geometries).
 */
export const CONV_TRANSPOSE2D_TEST_VARIANTS: ConvTranspose2dVariant[] = [
  { algorithm: 'subpixel', px: 1, cb: 1, workgroupSize: 64 },
  { algorithm: 'subpixel', px: 2, cb: 1, workgroupSize: 16, allTaps: true },
  { algorithm: 'subpixel', px: 3, cb: 2, workgroupSize: 32, uniformWeights: true },
  { algorithm: 'gather', px: 1, cb: 1, workgroupSize: 64 },
  { algorithm: 'gather', px: 3, cb: 2, workgroupSize: 32 },
];

/**
 * Adds one transposed-convolution dispatch to `graph`: `output` (or a new tensor) = act(convT(input) + bias).
 * `weight` and `bias` are GPU buffers packed by `packConvTranspose2dWeight` / `packConvTranspose2dBias`.
 */
export function convTranspose2d(
  graph: Graph,
  input: TensorValue,
  params: {
    weight: GPUBuffer;
    bias?: GPUBuffer;
    geometry: ConvTranspose2dGeometry;
    variant: ConvTranspose2dVariant;
    label: string;
  },
  epilogue: ConvTranspose2dEpilogue = {},
  output?: TensorValue,
  maxWorkgroupsPerDimension = 65535,
): TensorValue {
  const g = params.geometry;
  checkConvTranspose2dGeometry(g);
  const v = params.variant;
  if (v.algorithm === 'subpixel' && !isSubpixelConvTranspose2d(g)) {
    throw new InvalidInputError(`${params.label}: the sub-pixel variant needs kernel = stride, padding 0, output_padding 0`);
  }
  if (!(v.px >= 1 && v.cb >= 1 && v.workgroupSize >= 1)) {
    throw new InvalidInputError(`${params.label}: bad variant ${JSON.stringify(v)}`);
  }
  const outShape = convTranspose2dOutputShape(input.shape, g);
  const offset = epilogue.outChannelOffset ?? 0;
  const out = output ?? graph.tensor(outShape, params.label);
  if (out.shape[0] !== outShape[0] || out.shape[1] !== outShape[1] || out.shape[2] !== outShape[2]) {
    throw new InvalidInputError(`${params.label}: output tensor ${out.shape.join('x')} does not match ${outShape.join('x')}`);
  }
  if (offset % 4 !== 0 || offset < 0 || offset + g.outChannels > out.shape[3]) {
    throw new InvalidInputError(
      `${params.label}: channel offset ${offset} (+${g.outChannels}) must be a multiple of 4 inside ${out.shape[3]} channels`,
    );
  }
  const [n, h, w, cin] = input.shape;
  const [, ho, wo] = outShape;
  const activation = epilogue.activation ?? NO_ACTIVATION;
  const cout4 = paddedChannels(g.outChannels) / 4;
  const coBlocks = Math.ceil(cout4 / v.cb);
  const taps = g.kernelSize[0] * g.kernelSize[1];
  let tilesX: number;
  let total: number;
  let workgroups: number;
  if (v.algorithm === 'subpixel') {
    tilesX = Math.ceil(w / v.px);
    const tiles = n * h * tilesX;
    const tapFactor = v.allTaps ? 1 : taps;
    if (v.uniformWeights) {
      total = tiles;
      workgroups = coBlocks * tapFactor * Math.ceil(tiles / v.workgroupSize);
    } else {
      total = tiles * tapFactor * coBlocks;
      workgroups = Math.ceil(total / v.workgroupSize);
    }
  } else {
    tilesX = Math.ceil(Math.ceil(wo / g.stride) / v.px);
    total = n * ho * g.stride * tilesX * coBlocks;
    workgroups = Math.ceil(total / v.workgroupSize);
  }
  const key = {
    kernelH: g.kernelSize[0],
    kernelW: g.kernelSize[1],
    hasBias: params.bias !== undefined,
    activation,
    maskChannels: g.outChannels % 4 !== 0,
  };
  // Cost: every input pixel meets every tap, 2·Cin·Cout·kH·kW FLOPs per input pixel (taps that padding crops
  // off the output included; bias and activation not counted); input, weights, bias and Cout output channels once.
  const outBytes = logicalBytes(outShape);
  const constants = cin * g.outChannels * taps + (params.bias ? g.outChannels : 0);
  const cost = { flops: 2 * n * h * w * cin * g.outChannels * taps, bytes: logicalBytes(input.shape) + constants * 4 + outBytes };
  graph.add({
    label: params.label,
    kernel: { label: convTranspose2dLabel(key, v), code: convTranspose2dWgsl(key, v) },
    uniforms: {
      n,
      h,
      w,
      cin4: paddedChannels(cin) / 4,
      ho,
      wo,
      cout4,
      cout: g.outChannels,
      stride: g.stride,
      pad_y: g.padding[0],
      pad_x: g.padding[1],
      co_blocks: coBlocks,
      tiles_x: tilesX,
      total,
      out_c4_offset: offset / 4,
      out_c4_total: paddedChannels(out.shape[3]) / 4,
      alpha: activationAlpha(activation),
    },
    bindings: { x: input, weight: params.weight, ...(params.bias ? { bias: params.bias } : {}), y: out },
    workgroups: workgroupGrid(workgroups, maxWorkgroupsPerDimension),
    cost,
  });
  return out;
}
