import { paddedChannels } from '../gpu/tensor';

/**
 * The weight layout of the register-tiled convolution kernels (conv2d with groups = 1 or per group, and both
 * transposed-convolution algorithms): for each kernel tap, input-channel vec4 and output-channel vec4, four
 * vec4s — one per input channel of the group, each holding 4 output channels. Element (tap, ci, co) lives at
 * (((tap·cin4 + ci/4)·cout4 + co/4)·4 + ci%4)·4 + co%4. Padded channels are 0.
 * `value(ci, co, ky, kx)` reads the PyTorch tensor, whatever its own order.
 */
export function packTapMajorWeights(
  kernel: readonly [number, number],
  cin: number,
  cout: number,
  value: (ci: number, co: number, ky: number, kx: number) => number,
): Float32Array {
  const [kh, kw] = kernel;
  const cin4 = paddedChannels(cin) / 4;
  const cout4 = paddedChannels(cout) / 4;
  const out = new Float32Array(kh * kw * cin4 * cout4 * 16);
  for (let ky = 0; ky < kh; ky++) {
    for (let kx = 0; kx < kw; kx++) {
      for (let ci = 0; ci < cin; ci++) {
        for (let co = 0; co < cout; co++) {
          out[((((ky * kw + kx) * cin4 + (ci >> 2)) * cout4 + (co >> 2)) * 4 + (ci & 3)) * 4 + (co & 3)] = value(ci, co, ky, kx);
        }
      }
    }
  }
  return out;
}
