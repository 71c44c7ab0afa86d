import { InvalidInputError } from '../errors';
import { type Shape4 } from '../gpu/tensor';
import { packBias } from './conv2d-geometry';
import { packTapMajorWeights } from './weight-layout';

/*
 * A transposed convolution's geometry: PyTorch's constructor arguments and their checks, the output shape, which
 * algorithm applies, and the packing of its weights and bias into the layout the kernels read.
 */

/** nn.ConvTranspose2d's constructor arguments (dilation 1, groups 1); sizes as [h, w] pairs. */
export interface ConvTranspose2dGeometry {
  inChannels: number;
  outChannels: number;
  kernelSize: readonly [number, number];
  stride: number;
  padding: readonly [number, number];
  outputPadding: readonly [number, number];
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
