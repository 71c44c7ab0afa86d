/**
 * Deterministic random weights for benchmarking networks that have no public checkpoint at hand. The timings do
 * not depend on the values, but the values must stay tame: no NaN, no overflow, no denormals (which slow a CPU
 * adapter down), so each tensor is scaled by its fan-in and BatchNorm gets a positive running variance.
 */
import { foldBatchNorms, type Module, namedParameters } from '../src/layers/module';

/** mulberry32: a small 32-bit PRNG, uniform in [0, 1); the same seed always gives the same stream. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Fills every parameter of `module` (in state_dict order), folds its BatchNorms, and returns the module. Tensors of rank ≥ 2
 * (convolution, linear, relative-position tables) are uniform with variance 2 / fan-in (He), fan-in being the
 * product of all dimensions after the first, as PyTorch counts it; rank-1 tensors depend on their name.
 */
export function fillRandomWeights<M extends Module>(module: M, seed = 1): M {
  const random = seededRandom(seed);
  const uniform = (lo: number, hi: number) => lo + (hi - lo) * random();
  for (const [key, p] of namedParameters(module)) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const name = key.slice(key.lastIndexOf('.') + 1);
    let draw: () => number;
    if (name === 'running_var') draw = () => uniform(0.5, 1.5);
    else if (name === 'running_mean' || name === 'bias') draw = () => uniform(-0.05, 0.05);
    // BatchNorm / LayerNorm scales and PReLU slopes: near 1 (a slope of 1 is as good as any for timing).
    else if (p.shape.length === 1) draw = () => uniform(0.9, 1.1);
    else {
      const fanIn = n / p.shape[0];
      const bound = Math.sqrt(6 / fanIn);
      draw = () => uniform(-bound, bound);
    }
    const data = new Float64Array(n);
    for (let i = 0; i < n; i++) data[i] = draw();
    p.data = data;
  }
  module.release(); // the weights changed, and BatchNorms fold as loadStateDict would fold them
  foldBatchNorms(module);
  return module;
}

/** Number of values in the module's state_dict (learned parameters and BatchNorm statistics). */
export function parameterCount(module: Module): number {
  return namedParameters(module).reduce((s, [, p]) => s + p.shape.reduce((a, b) => a * b, 1), 0);
}
