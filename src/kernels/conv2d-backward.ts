import { InvalidInputError } from '../errors';
import type { GPUContext } from '../gpu/context';
import { logicalBytes } from '../gpu/cost';
import type { Binding, Graph, TensorValue } from '../gpu/graph';
import { formatShape, paddedChannels, type Shape4 } from '../gpu/tensor';
import { channelSumGrad, splitKWeightGrad } from './conv-backward-split-k';
import { convTranspose2d } from './conv-transpose2d';
import type { ConvTranspose2dGeometry } from './conv-transpose2d-geometry';
import { selectConvTranspose2dVariant } from './conv-transpose2d-variants';
import { conv2d } from './conv2d';
import { INPUT_GRAD_GATHER_WORKGROUP, conv2dInputGradGatherWgsl } from './conv2d-backward.wgsl';
import { checkConv2dGroups, type Conv2dGeometry, conv2dOutputShape, isDepthwiseConv2d } from './conv2d-geometry';
import { selectConv2dVariant } from './conv2d-variants';
import { kernelShader } from './kernel-source';
import { checkBindingHolds, conv2dTransposedWeightPack, packConvTranspose2dWeightOnGpu, packWeightOnGpu } from './weight-pack-gpu';

/*
 * Backward of nn.Conv2d (training.md §1.1): the input gradient on the forward kernels where they can take it,
 * the weight and bias gradients as a split-K reduction (conv-backward-split-k.ts).
 */

/**
 * Which kernel runs a Conv2d's input gradient:
 * - 'conv2d': stride 1 and d(K−1) − p ≥ 0 on both axes: the forward conv2d kernel (dense, grouped or depthwise)
 *   on gy with the flipped, in/out-swapped weight and padding d(K−1) − p (PyTorch's identity for stride 1);
 * - 'convTranspose2d': dilation 1 and groups 1 otherwise (strided, or padding past the kernel's reach): the
 *   forward transposed-convolution kernel with the weight read as a ConvTranspose2d weight [Cout, Cin, kH, kW],
 *   the same stride and padding, output_padding (H + 2p − K) mod s;
 * - 'gather': the rest (strided or over-padded with dilation > 1 or groups > 1, depthwise included), which the
 *   transposed-convolution kernels cannot take: conv2d-backward.wgsl.ts.
 */
export type Conv2dInputGradPath = 'conv2d' | 'convTranspose2d' | 'gather';

export function conv2dInputGradPath(g: Conv2dGeometry): Conv2dInputGradPath {
  const reach = (k: number) => g.dilation * (k - 1);
  if (g.stride === 1 && reach(g.kernelSize[0]) >= g.padding[0] && reach(g.kernelSize[1]) >= g.padding[1]) return 'conv2d';
  if (g.dilation === 1 && (g.groups ?? 1) === 1) return 'convTranspose2d';
  return 'gather';
}

/** Checks that `gy` has the shape Conv2d gives an input of `inputShape`, naming whichever is off. */
function checkGradShapes(label: string, inputShape: Shape4, gy: TensorValue, g: Conv2dGeometry): Shape4 {
  if (inputShape[3] !== g.inChannels) {
    throw new InvalidInputError(`${label}: input ${formatShape(inputShape)} has ${inputShape[3]} channels, the conv takes ${g.inChannels}`);
  }
  const out = conv2dOutputShape(inputShape, g);
  if (gy.shape.some((d, i) => d !== out[i])) {
    throw new InvalidInputError(
      `${label}: gy ${formatShape(gy.shape)} does not match the conv output ${formatShape(out)} of input ${formatShape(inputShape)}`,
    );
  }
  return out;
}

/**
 * dx [n, H, W, Cin] of y = conv2d(x, W) (PyTorch semantics: stride, padding per axis, dilation, groups incl.
 * depthwise) from gy [n, Ho, Wo, Cout] and the flat PyTorch weight [Cout, Cin/groups, kH, kW] (e.g. an arena
 * range), packed on the GPU for the kernel `conv2dInputGradPath` picks. Padded channels of dx are 0.
 */
export function conv2dInputGrad(
  graph: Graph,
  ctx: GPUContext,
  gy: TensorValue,
  weight: Binding,
  geometry: Conv2dGeometry,
  inputShape: Shape4,
  label: string,
): TensorValue {
  const g = geometry;
  checkConv2dGroups(g);
  checkGradShapes(label, inputShape, gy, g);
  const [n, h, w, cin] = inputShape;
  const [kh, kw] = g.kernelSize;
  const groups = g.groups ?? 1;
  const path = conv2dInputGradPath(g);
  if (path === 'conv2d') {
    const flipped: Conv2dGeometry = {
      inChannels: g.outChannels,
      outChannels: cin,
      kernelSize: g.kernelSize,
      stride: 1,
      padding: [g.dilation * (kh - 1) - g.padding[0], g.dilation * (kw - 1) - g.padding[1]],
      dilation: g.dilation,
      groups,
    };
    const packed = packWeightOnGpu(graph, weight, conv2dTransposedWeightPack(g, true), `${label} weight (flipped)`);
    return conv2d(graph, gy, {
      weight: packed,
      geometry: flipped,
      variant: selectConv2dVariant(ctx, flipped, w),
      label,
      bindingLimits: { maxBytes: ctx.storageBindingLimit, align: ctx.limits.minStorageBufferOffsetAlignment },
    });
  }
  if (path === 'convTranspose2d') {
    const outputPadding = (size: number, k: number, p: number) => (size + 2 * p - (k - 1) - 1) % g.stride;
    const transposed: ConvTranspose2dGeometry = {
      inChannels: g.outChannels,
      outChannels: cin,
      kernelSize: g.kernelSize,
      stride: g.stride,
      padding: g.padding,
      outputPadding: [outputPadding(h, kh, g.padding[0]), outputPadding(w, kw, g.padding[1])],
    };
    const packed = packConvTranspose2dWeightOnGpu(graph, weight, transposed, `${label} weight (as transposed)`);
    return convTranspose2d(graph, gy, {
      weight: packed,
      geometry: transposed,
      variant: selectConvTranspose2dVariant(ctx, transposed, gy.shape[2]),
      label,
    });
  }
  const depthwise = isDepthwiseConv2d(g);
  const packed = packWeightOnGpu(graph, weight, conv2dTransposedWeightPack(g, false), `${label} weight (transposed)`);
  const dx = graph.tensor(inputShape, label);
  const c4 = paddedChannels(cin) / 4;
  const count = n * h * w * c4;
  const [, ho, wo, cout] = gy.shape;
  graph.add({
    label,
    kernel: kernelShader(`conv2dInputGradGather[${depthwise ? 'depthwise' : 'dense'}]`, { family: 'conv2d_dx_gather', depthwise }, (io) =>
      conv2dInputGradGatherWgsl(depthwise, io),
    ),
    uniforms: {
      n,
      h,
      w,
      c4,
      ho,
      wo,
      gc4: paddedChannels(cout) / 4,
      cin,
      kh,
      kw,
      stride: g.stride,
      dilation: g.dilation,
      pad_y: g.padding[0],
      pad_x: g.padding[1],
      cing4: depthwise ? c4 : paddedChannels(cin / groups) / 4,
      coutg4: depthwise ? 1 : paddedChannels(cout / groups) / 4,
      count,
    },
    bindings: { gy, weight: packed, dx },
    workgroups: Math.ceil(count / INPUT_GRAD_GATHER_WORKGROUP),
    // The multiply-adds of the forward convolution, whose transpose this is; gy, the weight and dx once.
    cost: {
      flops: 2 * (cin / groups) * kh * kw * (logicalBytes(gy.shape) / 4),
      bytes: logicalBytes(gy.shape) + cout * (cin / groups) * kh * kw * 4 + logicalBytes(inputShape),
    },
  });
  return dx;
}

export interface Conv2dWeightGradOptions {
  /** Also write (overwrite) the bias gradient db[co] = Σ_{n, oy, ox} gy here (flat f32, Cout values). */
  dBias?: Binding;
  /** Tests: the pixels each split-K chunk sums (default: chosen from the shapes, conv-backward-split-k.ts). */
  pixelsPerChunk?: number;
}

/**
 * Writes (overwrites, does not accumulate) the weight gradient of y = conv2d(x, W) into `dWeight` in PyTorch's
 * layout [Cout, Cin/groups, kH, kW] (flat f32): dW[co, ci', ky, kx] = Σ_{n, oy, ox} gy[n, oy, ox, co]·x[n, oy·s −
 * p + ky·d, ox·s − p + kx·d, ci], as a split-K reduction over the pixels; and db with `options.dBias`.
 */
export function conv2dWeightGrad(
  graph: Graph,
  x: TensorValue,
  gy: TensorValue,
  geometry: Conv2dGeometry,
  dWeight: Binding,
  label: string,
  options: Conv2dWeightGradOptions = {},
): void {
  const g = geometry;
  checkConv2dGroups(g);
  checkGradShapes(label, x.shape, gy, g);
  const groups = g.groups ?? 1;
  // Every check before the first node, so a refused call leaves the graph as it was.
  checkBindingHolds(dWeight, (g.outChannels * g.inChannels * g.kernelSize[0] * g.kernelSize[1]) / groups, `${label}: dWeight`);
  if (options.dBias) checkBindingHolds(options.dBias, g.outChannels, `${label}: dBias`);
  splitKWeightGrad(
    graph,
    {
      a: gy,
      b: x,
      bChannelsPerGroup: g.inChannels / groups,
      groups,
      depthwise: isDepthwiseConv2d(g),
      kernel: g.kernelSize,
      stride: g.stride,
      padding: g.padding,
      dilation: g.dilation,
    },
    dWeight,
    label,
    options.pixelsPerChunk,
  );
  if (options.dBias) channelSumGrad(graph, gy, options.dBias, `${label} db`, options.pixelsPerChunk);
}
