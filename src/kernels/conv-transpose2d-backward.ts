import { InvalidInputError } from '../errors';
import type { GPUContext } from '../gpu/context';
import type { Binding, Graph, TensorValue } from '../gpu/graph';
import { formatShape, type Shape4 } from '../gpu/tensor';
import { channelSumGrad, splitKWeightGrad } from './conv-backward-split-k';
import { checkConvTranspose2dGeometry, type ConvTranspose2dGeometry, convTranspose2dOutputShape } from './conv-transpose2d-geometry';
import { conv2d } from './conv2d';
import type { Conv2dGeometry } from './conv2d-geometry';
import { selectConv2dVariant } from './conv2d-variants';
import { checkBindingHolds, packConv2dWeightOnGpu } from './weight-pack-gpu';

/*
 * Backward of nn.ConvTranspose2d (training.md §1.2). Its forward is the input gradient of a convolution with the
 * same parameters, so its input gradient is that convolution itself: dx = conv2d(gy, W, stride s, padding p),
 * with W [Cin, Cout, kH, kW] read as a Conv2d weight [out = Cin, in = Cout, kH, kW] (no flip).
 */

/** Checks that `gy` has the shape ConvTranspose2d gives an input of `inputShape`, naming whichever is off. */
function checkGradShapes(label: string, inputShape: Shape4, gy: TensorValue, g: ConvTranspose2dGeometry): void {
  checkConvTranspose2dGeometry(g);
  if (inputShape[3] !== g.inChannels) {
    throw new InvalidInputError(
      `${label}: input ${formatShape(inputShape)} has ${inputShape[3]} channels, the transposed conv takes ${g.inChannels}`,
    );
  }
  const out = convTranspose2dOutputShape(inputShape, g);
  if (gy.shape.some((d, i) => d !== out[i])) {
    throw new InvalidInputError(
      `${label}: gy ${formatShape(gy.shape)} does not match the transposed conv output ${formatShape(out)} ` +
        `of input ${formatShape(inputShape)}`,
    );
  }
}

/** The Conv2d whose forward is this transposed convolution's input gradient (and whose input gradient is its forward). */
export function convTranspose2dAdjointConv(g: ConvTranspose2dGeometry): Conv2dGeometry {
  return {
    inChannels: g.outChannels,
    outChannels: g.inChannels,
    kernelSize: g.kernelSize,
    stride: g.stride,
    padding: g.padding,
    dilation: 1,
    groups: 1,
  };
}

/**
 * dx [n, H, W, Cin] of y = conv_transpose2d(x, W) from gy [n, Ho, Wo, Cout] and the flat PyTorch weight
 * [Cin, Cout, kH, kW]: the forward conv2d kernel on gy, the weight packed on the GPU. Padded channels are 0.
 */
export function convTranspose2dInputGrad(
  graph: Graph,
  ctx: GPUContext,
  gy: TensorValue,
  weight: Binding,
  geometry: ConvTranspose2dGeometry,
  inputShape: Shape4,
  label: string,
): TensorValue {
  checkGradShapes(label, inputShape, gy, geometry);
  const conv = convTranspose2dAdjointConv(geometry);
  const packed = packConv2dWeightOnGpu(graph, weight, conv, `${label} weight (as conv)`);
  return conv2d(graph, gy, {
    weight: packed,
    geometry: conv,
    variant: selectConv2dVariant(ctx, conv, inputShape[2]),
    label,
    bindingLimits: { maxBytes: ctx.storageBindingLimit, align: ctx.limits.minStorageBufferOffsetAlignment },
  });
}

export interface ConvTranspose2dWeightGradOptions {
  /** Also write (overwrite) the bias gradient db[co] = Σ_{n, oy, ox} gy here (flat f32, Cout values). */
  dBias?: Binding;
  /** Tests: the pixels each split-K chunk sums (default: chosen from the shapes, conv-backward-split-k.ts). */
  pixelsPerChunk?: number;
}

/**
 * Writes (overwrites) the weight gradient of y = conv_transpose2d(x, W) into `dWeight` in PyTorch's layout
 * [Cin, Cout, kH, kW] (flat f32): dW[ci, co, ky, kx] = Σ_{n, iy, ix} x[n, iy, ix, ci]·gy[n, iy·s − p + ky,
 * ix·s − p + kx, co], as a split-K reduction over x's pixels; and db with `options.dBias`.
 */
export function convTranspose2dWeightGrad(
  graph: Graph,
  x: TensorValue,
  gy: TensorValue,
  geometry: ConvTranspose2dGeometry,
  dWeight: Binding,
  label: string,
  options: ConvTranspose2dWeightGradOptions = {},
): void {
  const g = geometry;
  checkGradShapes(label, x.shape, gy, g);
  // Every check before the first node, so a refused call leaves the graph as it was.
  checkBindingHolds(dWeight, g.inChannels * g.outChannels * g.kernelSize[0] * g.kernelSize[1], `${label}: dWeight`);
  if (options.dBias) checkBindingHolds(options.dBias, g.outChannels, `${label}: dBias`);
  splitKWeightGrad(
    graph,
    {
      a: x,
      b: gy,
      bChannelsPerGroup: g.outChannels,
      groups: 1,
      depthwise: false,
      kernel: g.kernelSize,
      stride: g.stride,
      padding: g.padding,
      dilation: 1,
    },
    dWeight,
    label,
    options.pixelsPerChunk,
  );
  if (options.dBias) channelSumGrad(graph, gy, options.dBias, `${label} db`, options.pixelsPerChunk);
}
