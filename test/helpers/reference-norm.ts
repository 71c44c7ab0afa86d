import { type Activation, applyActivation64 } from '../../src/kernels/activation';

/** Float64 references (NCHW, PyTorch semantics) for the normalisation and gate kernels. */

/** nn.LayerNorm(C) applied channels-last: per pixel over the C channels, biased variance. */
export function layerNormRef(
  x: ArrayLike<number>,
  shape: readonly [number, number, number, number],
  weight: ArrayLike<number> | undefined,
  bias: ArrayLike<number> | undefined,
  eps: number,
): Float64Array {
  const [n, c, h, w] = shape;
  const plane = h * w;
  const y = new Float64Array(n * c * plane);
  for (let b = 0; b < n; b++) {
    for (let p = 0; p < plane; p++) {
      let mean = 0;
      for (let ch = 0; ch < c; ch++) mean += x[(b * c + ch) * plane + p];
      mean /= c;
      let v = 0;
      for (let ch = 0; ch < c; ch++) {
        const d = x[(b * c + ch) * plane + p] - mean;
        v += d * d;
      }
      v /= c;
      const r = 1 / Math.sqrt(v + eps);
      for (let ch = 0; ch < c; ch++) {
        const i = (b * c + ch) * plane + p;
        y[i] = (x[i] - mean) * r * (weight ? weight[ch] : 1) + (bias ? bias[ch] : 0);
      }
    }
  }
  return y;
}

/** Eval-mode BatchNorm2d straight from the statistics (no folding), then an activation. */
export function batchNormRef(
  x: ArrayLike<number>,
  shape: readonly [number, number, number, number],
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
  mean: ArrayLike<number>,
  variance: ArrayLike<number>,
  eps: number,
  act: Activation,
): Float64Array {
  const [n, c, h, w] = shape;
  const plane = h * w;
  const y = new Float64Array(n * c * plane);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      for (let p = 0; p < plane; p++) {
        const i = (b * c + ch) * plane + p;
        const v = ((x[i] - mean[ch]) / Math.sqrt(variance[ch] + eps)) * weight[ch] + bias[ch];
        y[i] = applyActivation64(act, v);
      }
    }
  }
  return y;
}

const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));

/**
 * smp SCSEModule: x·cSE(x) + x·sSE(x), or x·cSE(x) when `sse` is absent. w1 [hidden, C], w2 [C, hidden],
 * ws [C] (1×1 conv weights flattened, PyTorch order).
 */
export function scseRef(
  x: ArrayLike<number>,
  shape: readonly [number, number, number, number],
  w1: ArrayLike<number>,
  b1: ArrayLike<number>,
  w2: ArrayLike<number>,
  b2: ArrayLike<number>,
  sse?: { weight: ArrayLike<number>; bias: number },
): Float64Array {
  const [n, c, h, w] = shape;
  const plane = h * w;
  const hidden = b1.length;
  const y = new Float64Array(n * c * plane);
  for (let b = 0; b < n; b++) {
    const pooled = new Float64Array(c);
    for (let ch = 0; ch < c; ch++) {
      let s = 0;
      for (let p = 0; p < plane; p++) s += x[(b * c + ch) * plane + p];
      pooled[ch] = s / plane;
    }
    const hid = new Float64Array(hidden);
    for (let j = 0; j < hidden; j++) {
      let s = b1[j];
      for (let ch = 0; ch < c; ch++) s += w1[j * c + ch] * pooled[ch];
      hid[j] = Math.max(s, 0);
    }
    const gate = new Float64Array(c);
    for (let ch = 0; ch < c; ch++) {
      let s = b2[ch];
      for (let j = 0; j < hidden; j++) s += w2[ch * hidden + j] * hid[j];
      gate[ch] = sigmoid(s);
    }
    for (let p = 0; p < plane; p++) {
      let sg = 0;
      if (sse) {
        let s = sse.bias;
        for (let ch = 0; ch < c; ch++) s += sse.weight[ch] * x[(b * c + ch) * plane + p];
        sg = sigmoid(s);
      }
      for (let ch = 0; ch < c; ch++) {
        const i = (b * c + ch) * plane + p;
        y[i] = sse ? x[i] * gate[ch] + x[i] * sg : x[i] * gate[ch];
      }
    }
  }
  return y;
}

/** Rounds to float32 (what the GPU actually receives), so references see the same inputs. */
export function toF32(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(Float32Array.from(a));
}
