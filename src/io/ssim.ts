/**
 * Structural similarity (SSIM, Wang et al. 2004) on the CPU in float64, matching scikit-image's
 * `structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
 * data_range=…)` and KAIR's `calculate_ssim` (`utils_image.py`). Browser-safe.
 *
 * Both references compute, per channel, local means, variances and covariance with an 11×11 Gaussian window
 * (σ = 1.5; skimage truncates at 3.5σ, radius 5; KAIR uses `cv2.getGaussianKernel(11, 1.5)`, the same
 * normalised weights), the SSIM map
 *
 *   S = ((2 μx μy + C1)(2 σxy + C2)) / ((μx² + μy² + C1)(σx² + σy² + C2)),  C1 = (K1 L)², C2 = (K2 L)²,
 *
 * and average it over the pixels whose window lies inside the image: skimage filters with 'reflect'
 * borders and then crops (win_size − 1) / 2 = 5 pixels from each side before the mean, KAIR keeps the
 * 'valid' part of `cv2.filter2D`; both leave exactly the (H − 10) × (W − 10) centre, where the border mode
 * plays no role. So this computes the valid part directly. Multi-channel images: the mean of the per-channel
 * SSIMs (skimage with `channel_axis`, KAIR for RGB).
 */
import { InvalidInputError } from '../errors';
import { isAnyRaster } from './image';
import { type MetricImage, checkImagePair } from './metrics';

export interface SsimOptions {
  /** Largest value minus smallest (skimage `data_range`). Default 255 / 65535 for 8/16-bit, 1 for float. */
  dataRange?: number;
  /** Gaussian σ (default 1.5). The window radius is `floor(3.5 σ + 0.5)`, as in skimage. */
  sigma?: number;
  /** Default 0.01. */
  k1?: number;
  /** Default 0.03. */
  k2?: number;
}

/** Normalised 1-D Gaussian weights of radius `floor(truncate·σ + 0.5)` (scipy's `gaussian_filter`). */
export function gaussianWeights(sigma: number, truncate = 3.5): Float64Array {
  const radius = Math.floor(truncate * sigma + 0.5);
  const w = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) {
    const v = Math.exp(-0.5 * (i / sigma) ** 2);
    w[i + radius] = v;
    sum += v;
  }
  for (let i = 0; i < w.length; i++) w[i] /= sum;
  return w;
}

/** Channel `c` of an image as a float64 plane (row-major). */
function channelPlane(img: MetricImage, c: number): Float64Array {
  const n = img.width * img.height;
  const out = new Float64Array(n);
  if (isAnyRaster(img)) {
    const { data, channels } = img;
    for (let i = 0, j = c; i < n; i++, j += channels) out[i] = data[j];
  } else {
    const { data } = img;
    for (let i = 0; i < n; i++) out[i] = data[c * n + i];
  }
  return out;
}

/**
 * 'Valid' separable correlation with `w`: rows first (width shrinks by 2r), then columns (height shrinks).
 * Output is (H − 2r) × (W − 2r).
 */
function filterValid(src: Float64Array, width: number, height: number, w: Float64Array, tmp: Float64Array, out: Float64Array): void {
  const k = w.length;
  const ow = width - k + 1;
  const oh = height - k + 1;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += w[t] * src[row + x + t];
      tmp[y * ow + x] = s;
    }
  }
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += w[t] * tmp[(y + t) * ow + x];
      out[y * ow + x] = s;
    }
  }
}

/** Mean SSIM of one channel pair. */
function ssimPlane(x: Float64Array, y: Float64Array, width: number, height: number, w: Float64Array, c1: number, c2: number): number {
  const k = w.length;
  const ow = width - k + 1;
  const oh = height - k + 1;
  const n = width * height;
  const m = ow * oh;
  const tmp = new Float64Array(height * ow);
  const ux = new Float64Array(m);
  const uy = new Float64Array(m);
  const uxx = new Float64Array(m);
  const uyy = new Float64Array(m);
  const uxy = new Float64Array(m);
  const prod = new Float64Array(n);
  filterValid(x, width, height, w, tmp, ux);
  filterValid(y, width, height, w, tmp, uy);
  for (let i = 0; i < n; i++) prod[i] = x[i] * x[i];
  filterValid(prod, width, height, w, tmp, uxx);
  for (let i = 0; i < n; i++) prod[i] = y[i] * y[i];
  filterValid(prod, width, height, w, tmp, uyy);
  for (let i = 0; i < n; i++) prod[i] = x[i] * y[i];
  filterValid(prod, width, height, w, tmp, uxy);
  let sum = 0;
  for (let i = 0; i < m; i++) {
    const mx = ux[i];
    const my = uy[i];
    const vx = uxx[i] - mx * mx;
    const vy = uyy[i] - my * my;
    const vxy = uxy[i] - mx * my;
    sum += ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
  }
  return sum / m;
}

/**
 * The checked parameters of an SSIM of `a` and `b`, shared by `ssim` and the GPU's `ssimGpu`: the Gaussian
 * window, its sigma, and the stabilising constants C1 = (K1·L)², C2 = (K2·L)² for data range L.
 */
export function ssimParameters(
  a: MetricImage,
  b: MetricImage,
  options: SsimOptions,
): { weights: Float64Array; sigma: number; c1: number; c2: number } {
  const defaultRange = checkImagePair('ssim', a, b);
  const dataRange = options.dataRange ?? defaultRange;
  if (!(dataRange > 0) || !Number.isFinite(dataRange)) {
    throw new InvalidInputError(`ssim: dataRange must be a positive finite number, got ${String(options.dataRange)}`);
  }
  const sigma = options.sigma ?? 1.5;
  if (!(sigma > 0) || !Number.isFinite(sigma)) throw new InvalidInputError(`ssim: sigma must be positive, got ${String(sigma)}`);
  const weights = gaussianWeights(sigma);
  const k = weights.length;
  if (a.width < k || a.height < k) {
    throw new InvalidInputError(`ssim: the images (${a.width}x${a.height}) must be at least as large as the ${k}x${k} Gaussian window`);
  }
  return { weights, sigma, c1: ((options.k1 ?? 0.01) * dataRange) ** 2, c2: ((options.k2 ?? 0.03) * dataRange) ** 2 };
}

/**
 * Mean structural similarity of two images of the same size, channels and kind (two 8-bit rasters, two
 * 16-bit rasters, two float32 rasters or two planar float images; alpha is ignored). See the module comment
 * for the exact definition. 1 for identical images.
 *
 * @throws InvalidInputError when the images differ in size, channels or kind, are smaller than the window
 *   (11×11 for σ = 1.5), or the options are out of range.
 */
export function ssim(a: MetricImage, b: MetricImage, options: SsimOptions = {}): number {
  const { weights: w, c1, c2 } = ssimParameters(a, b, options);
  let total = 0;
  for (let c = 0; c < a.channels; c++) {
    total += ssimPlane(channelPlane(a, c), channelPlane(b, c), a.width, a.height, w, c1, c2);
  }
  return total / a.channels;
}
