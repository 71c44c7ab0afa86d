import { InvalidInputError } from '../errors';
import { logicalBytes } from '../gpu/cost';
import { type Binding, type Graph, type TensorValue } from '../gpu/graph';
import { paddedChannels } from '../gpu/tensor';
import { type Activation, activationAlpha, NO_ACTIVATION } from './activation';
import {
  checkConvTranspose2dGeometry,
  type ConvTranspose2dGeometry,
  convTranspose2dOutputShape,
  isSubpixelConvTranspose2d,
} from './conv-transpose2d-geometry';
import type { ConvTranspose2dVariant } from './conv-transpose2d-variants';
import { convTranspose2dLabel, convTranspose2dWgsl } from './conv-transpose2d.wgsl';
import { kernelShader } from './kernel-source';

/*
 * Graph emission of a transposed convolution. The geometry and weight packing live in
 * conv-transpose2d-geometry.ts, the variant table in conv-transpose2d-variants.ts.
 */

export interface ConvTranspose2dEpilogue {
  activation?: Activation;
  /** Write into channels [offset, offset + outChannels) of `output` (concatenation without a copy). */
  outChannelOffset?: number;
}

/**
 * Adds one transposed-convolution dispatch to `graph`: `output` (or a new tensor) = act(convT(input) + bias).
 * `weight` and `bias` are GPU buffers packed by `packConvTranspose2dWeight` / `packConvTranspose2dBias`.
 */
export function convTranspose2d(
  graph: Graph,
  input: TensorValue,
  params: {
    weight: Binding;
    bias?: Binding;
    geometry: ConvTranspose2dGeometry;
    variant: ConvTranspose2dVariant;
    label: string;
  },
  epilogue: ConvTranspose2dEpilogue = {},
  output?: TensorValue,
): TensorValue {
  const g = params.geometry;
  checkConvTranspose2dGeometry(g);
  const v = { ...params.variant };
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
    // The activation's kind: LeakyReLU's slope is a uniform, so every slope shares one shader.
    kernel: kernelShader(
      convTranspose2dLabel(key, v),
      { family: 'conv_transpose2d', variant: v, epilogue: { ...key, activation: activation.kind } },
      (io) => convTranspose2dWgsl(key, v, io),
    ),
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
    workgroups,
    cost,
  });
  return out;
}
