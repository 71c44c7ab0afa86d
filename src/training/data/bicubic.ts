import { InvalidInputError } from '../../errors';
import type { FloatImage } from '../../io/image';

/**
 * Low-resolution images made from high-resolution ones as the SR literature's "bicubic degradation" does: MATLAB's
 * `imresize(img, 1/s, 'bicubic')` (Keys' cubic, a = −0.5, the kernel widened s times to antialias, mirrored
 * borders), computed per axis (rows first, as imresize does for equal scales) in float64. How it differs from
 * MATLAB's: MATLAB gets uint8 images and rounds its result back to uint8; here images stay floats in [0, 1] and
 * nothing is rounded, which is what BasicSR's Python port (`matlab_functions.imresize`) does on float tensors.
 */

/** Keys' cubic convolution kernel with a = −0.5 (MATLAB's `cubic`). */
function cubic(x: number): number {
  const a = Math.abs(x);
  if (a <= 1) return 1.5 * a ** 3 - 2.5 * a ** 2 + 1;
  if (a <= 2) return -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2;
  return 0;
}

/** For each output index along an axis of `length` pixels shrunk s times: its source indices and weights. */
function contributions(length: number, s: number): { index: number[]; weight: number[] }[] {
  const out: { index: number[]; weight: number[] }[] = [];
  const width = 4 * s;
  for (let i = 1; i <= length / s; i++) {
    // imresize's 1-based coordinates: the centre of output pixel i in input pixels.
    const u = i * s + 0.5 * (1 - s);
    const left = Math.floor(u - width / 2);
    const index: number[] = [];
    const weight: number[] = [];
    let sum = 0;
    for (let p = 0; p < width + 2; p++) {
      const j = left + p;
      const w = cubic((u - j) / s) / s;
      if (w === 0) continue;
      // Symmetric (mirrored, edge repeated) borders, as imresize's `[1:n, n:-1:1]` lookup.
      const m = (((j - 1) % (2 * length)) + 2 * length) % (2 * length);
      index.push(m < length ? m : 2 * length - 1 - m);
      weight.push(w);
      sum += w;
    }
    out.push({ index, weight: weight.map((w) => w / sum) });
  }
  return out;
}

/** The image cropped at the bottom and right to whole multiples of s (BasicSR's mod_crop), so s divides it. */
export function modCrop(img: FloatImage, s: number): FloatImage {
  const width = img.width - (img.width % s);
  const height = img.height - (img.height % s);
  if (width === img.width && height === img.height) return img;
  if (width === 0 || height === 0) throw new InvalidInputError(`a ${img.width}×${img.height} image is smaller than the scale ${s}`);
  const data = new Float32Array(img.channels * width * height);
  for (let c = 0; c < img.channels; c++) {
    for (let y = 0; y < height; y++) {
      const src = (c * img.height + y) * img.width;
      data.set(img.data.subarray(src, src + width), (c * height + y) * width);
    }
  }
  return { width, height, channels: img.channels, data };
}

/** `imresize(img, 1/s, 'bicubic')` of a planar image whose sides are multiples of the integer s. */
export function bicubicDownscale(img: FloatImage, s: number): FloatImage {
  if (!Number.isInteger(s) || s < 1) throw new InvalidInputError(`scale must be a positive integer, got ${s}`);
  if (img.width % s !== 0 || img.height % s !== 0) {
    throw new InvalidInputError(`a ${img.width}×${img.height} image cannot shrink ${s}× to whole pixels (crop it with modCrop)`);
  }
  const { width: W, height: H, channels } = img;
  const w = W / s;
  const h = H / s;
  const rows = contributions(H, s);
  const cols = contributions(W, s);
  const data = new Float32Array(channels * w * h);
  const tall = new Float64Array(h * W);
  for (let c = 0; c < channels; c++) {
    const plane = c * H * W;
    for (let y = 0; y < h; y++) {
      const { index, weight } = rows[y];
      for (let x = 0; x < W; x++) {
        let v = 0;
        for (let k = 0; k < index.length; k++) v += weight[k] * img.data[plane + index[k] * W + x];
        tall[y * W + x] = v;
      }
    }
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const { index, weight } = cols[x];
        let v = 0;
        for (let k = 0; k < index.length; k++) v += weight[k] * tall[y * W + index[k]];
        data[(c * h + y) * w + x] = v;
      }
    }
  }
  return { width: w, height: h, channels, data };
}
