import { InvalidInputError } from '../errors';
import { paddedChannels, type Shape4 } from '../gpu/tensor';
import { packTapMajorWeights } from './weight-layout';

/*
 * A convolution's geometry: PyTorch's constructor arguments, the output shape, the groupings the kernels run, and
 * the packing of its weights, bias and PReLU slopes into the layouts the kernels read.
 */

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
