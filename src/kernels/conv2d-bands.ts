/**
 * Row bands for convolutions over tensors larger than one storage binding.
 *
 * The plan can always split an oversized tensor across several bindings (gpu/tensor-access.ts), but then
 * every load in the convolution's inner loop picks its window with a compare — measured 3× slower on lavapipe.
 * A convolution has a better option: output rows [oy0, oy1) only read input rows [oy0·s − p, (oy1−1)·s − p +
 * d·(k−1)], so it can run as one dispatch per band of output rows, each binding just the rows it touches. The
 * shader does not change: a band is an image of `rows` input rows whose top padding is shifted (`pad_y` may
 * go negative when the window starts above the band's first tap because of offset alignment), and rows past the
 * window are rows past the image (the window always includes every real row the band needs).
 */

export interface BindingLimits {
  /** Largest byte range of one storage binding (device limit, or a test override). */
  maxBytes: number;
  /** minStorageBufferOffsetAlignment. */
  align: number;
}

export interface ConvRowBand {
  /** Output rows [oy0, oy1). */
  oy0: number;
  oy1: number;
  /** First input row bound, and how many. */
  r0: number;
  rows: number;
  /** The top padding as the shader sees it for this band. */
  padY: number;
}

export interface ConvBandGeometry {
  h: number;
  ho: number;
  kernelH: number;
  stride: number;
  dilation: number;
  padTop: number;
  /** Bytes of one input row, one output row and (if any) one residual row. */
  inRowBytes: number;
  outRowBytes: number;
  resRowBytes?: number;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Rows whose byte size is a multiple of `align`: band starts at multiples of this stay aligned. */
function rowAlignment(rowBytes: number, align: number): number {
  return align / gcd(rowBytes % align, align);
}

/**
 * Bands covering all output rows, each binding at most `limits.maxBytes` of input, output and residual; null
 * when no banding is needed, or when even one output row (with its input rows) does not fit a binding — the
 * plan's chunked bindings handle that case.
 */
export function convRowBands(g: ConvBandGeometry, limits: BindingLimits): ConvRowBand[] | null {
  const { maxBytes, align } = limits;
  const outBytes = g.ho * g.outRowBytes;
  const resBytes = g.resRowBytes !== undefined ? g.ho * g.resRowBytes : 0;
  if (g.h * g.inRowBytes <= maxBytes && outBytes <= maxBytes && resBytes <= maxBytes) return null;
  const inAlign = rowAlignment(g.inRowBytes, align);
  const outAlign = rowAlignment(g.outRowBytes, align);
  const resAlign = g.resRowBytes !== undefined ? rowAlignment(g.resRowBytes, align) : 1;
  const step = (outAlign * resAlign) / gcd(outAlign, resAlign);
  const widestOut = Math.max(g.outRowBytes, g.resRowBytes ?? 0);
  const windowRows = (b: number) => (b - 1) * g.stride + g.dilation * (g.kernelH - 1) + 1 + (inAlign - 1);
  let b = Math.floor(Math.floor(maxBytes / widestOut) / step) * step;
  while (b > 0 && windowRows(b) * g.inRowBytes > maxBytes) b -= step;
  if (b <= 0) return null;
  const bands: ConvRowBand[] = [];
  for (let oy0 = 0; oy0 < g.ho; oy0 += b) {
    const oy1 = Math.min(g.ho, oy0 + b);
    const first = oy0 * g.stride - g.padTop;
    const last = (oy1 - 1) * g.stride - g.padTop + g.dilation * (g.kernelH - 1);
    const r0 = Math.min(Math.max(0, Math.floor(first / inAlign) * inAlign), Math.floor((g.h - 1) / inAlign) * inAlign);
    const end = Math.min(g.h, last + 1);
    const rows = Math.max(1, end - r0);
    bands.push({ oy0, oy1, r0, rows, padY: g.padTop - oy0 * g.stride + r0 });
  }
  return bands;
}
