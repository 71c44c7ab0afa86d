import { InvalidInputError } from '../errors';
import { formatShape } from '../format-shape';

/**
 * Activations live on the GPU as f32 NHWC with the channel count padded to a multiple of 4, so kernels read
 * and write whole vec4s. Padded channels always hold zeros: every kernel writes 0 there, which keeps a
 * following convolution (whose padded weights are 0) from seeing garbage.
 */
export type Shape4 = readonly [n: number, h: number, w: number, c: number];

export function paddedChannels(c: number): number {
  return Math.ceil(c / 4) * 4;
}

export function tensorElements(shape: Shape4): number {
  const [n, h, w, c] = shape;
  return n * h * w * paddedChannels(c);
}

export function tensorBytes(shape: Shape4): number {
  return tensorElements(shape) * 4;
}

export { formatShape };

export function checkShape4(shape: Shape4, what: string): void {
  if (shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new InvalidInputError(`${what}: shape ${formatShape(shape)} must be four positive integers (NHWC)`);
  }
}

/** NCHW (PyTorch) float data → NHWC with channels padded to a multiple of 4. */
export function nchwToNhwcPadded(data: ArrayLike<number>, shape: Shape4): Float32Array {
  const [n, h, w, c] = shape;
  const cp = paddedChannels(c);
  if (data.length !== n * c * h * w) {
    throw new InvalidInputError(`expected ${n * c * h * w} values for NCHW ${formatShape([n, c, h, w])}, got ${data.length}`);
  }
  const out = new Float32Array(n * h * w * cp);
  const plane = h * w;
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const src = (b * c + ch) * plane;
      for (let p = 0; p < plane; p++) out[(b * plane + p) * cp + ch] = data[src + p];
    }
  }
  return out;
}

/** NHWC with padded channels → NCHW (drops the padding). */
export function nhwcPaddedToNchw(data: Float32Array, shape: Shape4): Float32Array {
  const [n, h, w, c] = shape;
  const cp = paddedChannels(c);
  const out = new Float32Array(n * c * h * w);
  const plane = h * w;
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const dst = (b * c + ch) * plane;
      for (let p = 0; p < plane; p++) out[dst + p] = data[(b * plane + p) * cp + ch];
    }
  }
  return out;
}
