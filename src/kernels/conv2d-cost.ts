import { type DispatchCost, logicalBytes } from '../gpu/cost';
import type { Shape4 } from '../gpu/tensor';

/**
 * Counted FLOPs and minimum bytes of one convolution dispatch (gpu/cost.ts): 2·(Cin/groups)·kH·kW per output
 * element (multiply-adds only; the fused bias, activation, scale and residual are not counted); the input's Cin
 * logical channels (a prefix read reads only those), the weights, bias and PReLU slopes read once, the output's
 * Cout channels written once, and a residual's Cout channels read once.
 */
export function conv2dCost(
  input: Shape4,
  output: Shape4,
  g: { inChannels: number; outChannels: number; kernelSize: readonly [number, number]; groups?: number },
  parts: { bias: boolean; prelu: boolean; residual: boolean },
): DispatchCost {
  const taps = (g.inChannels / (g.groups ?? 1)) * g.kernelSize[0] * g.kernelSize[1];
  const outBytes = logicalBytes(output, g.outChannels);
  const constants = g.outChannels * taps + (parts.bias ? g.outChannels : 0) + (parts.prelu ? g.outChannels : 0);
  return {
    flops: 2 * taps * (outBytes / 4),
    bytes: logicalBytes(input, g.inChannels) + constants * 4 + outBytes + (parts.residual ? outBytes : 0),
  };
}
