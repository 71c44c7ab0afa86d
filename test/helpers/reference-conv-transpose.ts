import { type Activation, applyActivation64 } from '../../src/kernels/activation';

/**
 * Float64 nn.ConvTranspose2d (dilation 1, groups 1) in NCHW, written straight from the definition as a scatter:
 * y[co, iy·s − p + ky, ix·s − p + kx] += x[ci, iy, ix]·W[ci, co, ky, kx], then bias and activation. The weight
 * layout is PyTorch's [Cin, Cout, kH, kW].
 */
export function convTranspose2dRef(
  x: Float64Array,
  [n, cin, h, w]: [number, number, number, number],
  weight: Float64Array,
  bias: Float64Array | undefined,
  cout: number,
  [kh, kw]: [number, number],
  stride: number,
  [ph, pw]: [number, number],
  [oph, opw]: [number, number],
  activation: Activation,
): { y: Float64Array; ho: number; wo: number } {
  const ho = (h - 1) * stride - 2 * ph + kh + oph;
  const wo = (w - 1) * stride - 2 * pw + kw + opw;
  const y = new Float64Array(n * cout * ho * wo);
  for (let b = 0; b < n; b++)
    for (let ci = 0; ci < cin; ci++)
      for (let iy = 0; iy < h; iy++)
        for (let ix = 0; ix < w; ix++) {
          const xv = x[((b * cin + ci) * h + iy) * w + ix];
          for (let co = 0; co < cout; co++)
            for (let ky = 0; ky < kh; ky++) {
              const oy = iy * stride - ph + ky;
              if (oy < 0 || oy >= ho) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ox = ix * stride - pw + kx;
                if (ox < 0 || ox >= wo) continue;
                y[((b * cout + co) * ho + oy) * wo + ox] += xv * weight[((ci * cout + co) * kh + ky) * kw + kx];
              }
            }
        }
  for (let b = 0; b < n; b++)
    for (let co = 0; co < cout; co++)
      for (let i = 0; i < ho * wo; i++) {
        const k = (b * cout + co) * ho * wo + i;
        y[k] = applyActivation64(activation, y[k] + (bias ? bias[co] : 0));
      }
  return { y, ho, wo };
}
