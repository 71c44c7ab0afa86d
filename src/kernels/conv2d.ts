import { InvalidInputError } from '../errors';
import type { AdapterDescription } from '../gpu/adapter-info';
import { type Graph, type TensorValue, workgroupGrid } from '../gpu/graph';
import { paddedChannels, type Shape4 } from '../gpu/tensor';
import { type Activation, activationAlpha, NO_ACTIVATION } from './activation';
import { type Conv2dVariant, conv2dLabel, conv2dWgsl } from './conv2d.wgsl';

export type { Conv2dVariant } from './conv2d.wgsl';

/** The geometry of a Conv2d, as PyTorch's constructor arguments (square or [h, w] pairs). */
export interface Conv2dGeometry {
  inChannels: number;
  outChannels: number;
  kernelSize: readonly [number, number];
  stride: number;
  padding: readonly [number, number];
  dilation: number;
}

export interface Conv2dEpilogue {
  activation?: Activation;
  /** Write into channels [offset, offset + outChannels) of `output` (concatenation without a copy). */
  outChannelOffset?: number;
}

export function conv2dOutputSize(inSize: number, kernel: number, stride: number, pad: number, dilation: number): number {
  return Math.floor((inSize + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1;
}

export function conv2dOutputShape(input: Shape4, g: Conv2dGeometry): Shape4 {
  const [n, h, w, c] = input;
  if (c !== g.inChannels) {
    throw new InvalidInputError(`Conv2d expects ${g.inChannels} input channels, got ${c}`);
  }
  const ho = conv2dOutputSize(h, g.kernelSize[0], g.stride, g.padding[0], g.dilation);
  const wo = conv2dOutputSize(w, g.kernelSize[1], g.stride, g.padding[1], g.dilation);
  if (ho < 1 || wo < 1) {
    throw new InvalidInputError(`Conv2d with kernel ${g.kernelSize.join('x')} on a ${h}x${w} input leaves no output`);
  }
  return [n, ho, wo, g.outChannels];
}

/**
 * PyTorch weight [Cout, Cin, kH, kW] → the kernel's layout: for each (ky, kx, ci4, co4) four vec4s, one per
 * input channel of the group, each holding 4 output channels. Padded channels are 0.
 */
export function packConv2dWeight(weight: ArrayLike<number>, g: Conv2dGeometry): Float32Array {
  const [kh, kw] = g.kernelSize;
  const cin = g.inChannels;
  const cout = g.outChannels;
  const cin4 = paddedChannels(cin) / 4;
  const cout4 = paddedChannels(cout) / 4;
  if (weight.length !== cout * cin * kh * kw) {
    throw new InvalidInputError(`conv weight has ${weight.length} values, expected ${cout}x${cin}x${kh}x${kw}`);
  }
  const out = new Float32Array(kh * kw * cin4 * cout4 * 16);
  for (let co = 0; co < cout; co++) {
    for (let ci = 0; ci < cin; ci++) {
      for (let ky = 0; ky < kh; ky++) {
        for (let kx = 0; kx < kw; kx++) {
          const src = ((co * cin + ci) * kh + ky) * kw + kx;
          const dst = ((((ky * kw + kx) * cin4 + (ci >> 2)) * cout4 + (co >> 2)) * 4 + (ci & 3)) * 4 + (co & 3);
          out[dst] = weight[src];
        }
      }
    }
  }
  return out;
}

/** Bias [Cout] → vec4-padded. */
export function packBias(bias: ArrayLike<number>, channels: number): Float32Array {
  const out = new Float32Array(paddedChannels(channels));
  for (let i = 0; i < channels; i++) out[i] = bias[i];
  return out;
}

/**
 * The variant table. CPU adapters (lavapipe, SwiftShader) run invocations 8-wide on SIMD lanes with no real
 * workgroup memory, and gain most from large register tiles; GPUs want more, smaller invocations for occupancy.
 * The numbers come from bench/conv-variants (see README).
 */
export function selectConv2dVariant(adapter: AdapterDescription, g: Conv2dGeometry): Conv2dVariant {
  const cout4 = paddedChannels(g.outChannels) / 4;
  if (variantOverride) return { ...variantOverride, cb: Math.min(variantOverride.cb, cout4) };
  // lavapipe, 2 cores, 3×3 64→64 at 128², GPU timestamps (npm run bench:conv2d-variants): px1 cb1 1.5 GFLOP/s,
  // px4 cb4 3.3, px8 cb4 3.6, px16 cb4 4.3, and with workgroup-uniform weights px16 cb4 5.8 (px16 cb2 5.3,
  // px32 cb2 5.3, px4 cb16 2.7). Hardware GPUs are untuned so far: a moderate tile that keeps occupancy.
  if (adapter.isSoftware) return { px: 16, cb: Math.min(4, cout4), workgroupSize: 64, uniformWeights: true };
  return { px: 4, cb: Math.min(2, cout4), workgroupSize: 64 };
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
    const m = /^(px|cb|wg)(\d+)$/.exec(part.trim());
    if (m) {
      const n = Number(m[2]);
      if (m[1] === 'px') v.px = n;
      else if (m[1] === 'cb') v.cb = n;
      else v.workgroupSize = n;
    } else if (part.trim() === 'uw') v.uniformWeights = true;
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
 * Adds one convolution dispatch to `graph`: `output` (or a new tensor) = act(conv(input) + bias).
 * `weight` and `bias` are GPU buffers in the packed layouts above.
 */
export function conv2d(
  graph: Graph,
  input: TensorValue,
  params: { weight: GPUBuffer; bias?: GPUBuffer; geometry: Conv2dGeometry; variant: Conv2dVariant; label: string },
  epilogue: Conv2dEpilogue = {},
  output?: TensorValue,
  maxWorkgroupsPerDimension = 65535,
): TensorValue {
  const g = params.geometry;
  const v = params.variant;
  const outShape = conv2dOutputShape(input.shape, g);
  const offset = epilogue.outChannelOffset ?? 0;
  const out = output ?? graph.tensor(outShape, params.label);
  if (out.shape[0] !== outShape[0] || out.shape[1] !== outShape[1] || out.shape[2] !== outShape[2]) {
    throw new InvalidInputError(`${params.label}: output tensor ${out.shape.join('x')} does not match ${outShape.join('x')}`);
  }
  if (offset % 4 !== 0 || offset + g.outChannels > out.shape[3]) {
    throw new InvalidInputError(`${params.label}: channel offset ${offset} (+${g.outChannels}) must be a multiple of 4 inside ${out.shape[3]} channels`);
  }
  const [n, , , cin] = input.shape;
  const [, ho, wo] = outShape;
  const activation = epilogue.activation ?? NO_ACTIVATION;
  const cout4 = paddedChannels(g.outChannels) / 4;
  const coBlocks = Math.ceil(cout4 / v.cb);
  const tilesX = Math.ceil(wo / v.px);
  // `total` counts what the linear invocation index runs over: (pixel tile, channel block) pairs, or only
  // pixel tiles when the channel block comes from the workgroup index.
  const tiles = n * ho * tilesX;
  const total = v.uniformWeights ? tiles : tiles * coBlocks;
  const workgroups = v.uniformWeights ? coBlocks * Math.ceil(tiles / v.workgroupSize) : Math.ceil(total / v.workgroupSize);
  const key = {
    kernelH: g.kernelSize[0],
    kernelW: g.kernelSize[1],
    hasBias: params.bias !== undefined,
    activation,
    maskChannels: g.outChannels % 4 !== 0,
  };
  graph.add({
    label: params.label,
    kernel: { label: conv2dLabel(key, v), code: conv2dWgsl(key, v) },
    uniforms: {
      n,
      h: input.shape[1],
      w: input.shape[2],
      cin4: paddedChannels(cin) / 4,
      ho,
      wo,
      cout4,
      cout: g.outChannels,
      stride: g.stride,
      dilation: g.dilation,
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
  });
  return out;
}
