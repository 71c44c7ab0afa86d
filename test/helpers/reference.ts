import { type Activation, applyActivation64, applyPrelu64 } from '../../src/kernels/activation';

/** Optional extras of `conv2dRef`, in the kernel's epilogue order (see Conv2dEpilogue in src/kernels/conv2d.ts). */
export interface Conv2dRefOptions {
  /** PyTorch groups; the weight is [Cout, Cin/groups, kH, kW]. */
  groups?: number;
  /** PReLU slopes (1 shared, or one per output channel), used instead of `activation`. */
  prelu?: ArrayLike<number>;
  scale?: number;
  /** NCHW tensor with the output's shape. */
  residual?: { y: ArrayLike<number>; mode: 'beforeActivation' | 'afterActivation' };
}

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
  options: Conv2dRefOptions = {},
): { y: Float64Array; ho: number; wo: number } {
  const groups = options.groups ?? 1;
  const cing = cin / groups;
  const coutg = cout / groups;
  const scale = options.scale ?? 1;
  const prelu = options.prelu;
  const res = options.residual;
  const ho = Math.floor((h + 2 * ph - dilation * (kh - 1) - 1) / stride) + 1;
  const wo = Math.floor((w + 2 * pw - dilation * (kw - 1) - 1) / stride) + 1;
  const y = new Float64Array(n * cout * ho * wo);
  for (let b = 0; b < n; b++)
    for (let co = 0; co < cout; co++)
      for (let oy = 0; oy < ho; oy++)
        for (let ox = 0; ox < wo; ox++) {
          let s = bias ? bias[co] : 0;
          const grp = Math.floor(co / coutg);
          for (let cl = 0; cl < cing; cl++)
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * stride + ky * dilation - ph;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * stride + kx * dilation - pw;
                if (ix < 0 || ix >= w) continue;
                const ci = grp * cing + cl;
                s += x[((b * cin + ci) * h + iy) * w + ix] * weight[((co * cing + cl) * kh + ky) * kw + kx];
              }
            }
          const o = ((b * cout + co) * ho + oy) * wo + ox;
          if (res?.mode === 'beforeActivation') s += res.y[o];
          s = prelu ? applyPrelu64(s, prelu.length === 1 ? prelu[0] : prelu[co]) : applyActivation64(activation, s);
          s *= scale;
          if (res?.mode === 'afterActivation') s += res.y[o];
          y[o] = s;
        }
  return { y, ho, wo };
}
