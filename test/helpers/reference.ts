import { type Activation, applyActivation64 } from '../../src/kernels/activation';

/**
 * Plain float64 CPU references in PyTorch's NCHW layout, written for clarity, not speed. The GPU kernels are
 * checked against these.
 */
export function conv2dRef(
  x: Float64Array,
  [n, cin, h, w]: [number, number, number, number],
  weight: Float64Array,
  bias: Float64Array | undefined,
  cout: number,
  [kh, kw]: [number, number],
  stride: number,
  [ph, pw]: [number, number],
  dilation: number,
  activation: Activation,
): { y: Float64Array; ho: number; wo: number } {
  const ho = Math.floor((h + 2 * ph - dilation * (kh - 1) - 1) / stride) + 1;
  const wo = Math.floor((w + 2 * pw - dilation * (kw - 1) - 1) / stride) + 1;
  const y = new Float64Array(n * cout * ho * wo);
  for (let b = 0; b < n; b++)
    for (let co = 0; co < cout; co++)
      for (let oy = 0; oy < ho; oy++)
        for (let ox = 0; ox < wo; ox++) {
          let s = bias ? bias[co] : 0;
          for (let ci = 0; ci < cin; ci++)
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * stride + ky * dilation - ph;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * stride + kx * dilation - pw;
                if (ix < 0 || ix >= w) continue;
                s += x[((b * cin + ci) * h + iy) * w + ix] * weight[((co * cin + ci) * kh + ky) * kw + kx];
              }
            }
          y[((b * cout + co) * ho + oy) * wo + ox] = applyActivation64(activation, s);
        }
  return { y, ho, wo };
}
