import { InvalidInputError } from '../../errors';
import type { Rng } from '../../io/noise';
import { poisson } from './poisson';

/**
 * Synthetic noise for training on clean images, in [0, 1] image units:
 * - `gaussian`: x + (σ/255)·n, σ on the 8-bit scale as the papers quote it ("σ 25"), unclipped (KAIR);
 * - `gaussian-range`: σ drawn uniformly from [σmin, σmax] once per patch (DnCNN-B's blind training, 0–55);
 * - `poisson-gaussian`: α·Poisson(x/α) + N(0, σ²) (Foi et al. 2008; microscopy), α and σ in image units,
 *   Var(y | x) = αx + σ². Negative x counts as 0 photons.
 */
export type NoiseModel =
  | { kind: 'gaussian'; sigma: number }
  | { kind: 'gaussian-range'; sigmaMin: number; sigmaMax: number }
  | { kind: 'poisson-gaussian'; alpha: number; sigma: number };

export function checkNoiseModel(m: NoiseModel): void {
  const finite = (v: number, what: string, positive = false) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (positive && v === 0)) {
      throw new InvalidInputError(`noise ${m.kind}: ${what} must be a finite number ${positive ? '> 0' : '≥ 0'}, got ${String(v)}`);
    }
  };
  switch (m.kind) {
    case 'gaussian':
      return finite(m.sigma, 'sigma');
    case 'gaussian-range':
      finite(m.sigmaMin, 'the lowest sigma');
      finite(m.sigmaMax, 'the highest sigma');
      if (m.sigmaMin > m.sigmaMax) throw new InvalidInputError(`noise gaussian-range: ${m.sigmaMin} > ${m.sigmaMax}`);
      return;
    case 'poisson-gaussian':
      finite(m.alpha, 'alpha', true);
      return finite(m.sigma, 'sigma');
    default:
      throw new InvalidInputError(`unknown noise model '${String((m as { kind: unknown }).kind)}'`);
  }
}

/**
 * Parses the CLI's spelling: `gaussian:25`, `gaussian:0-55` (σ on the 8-bit scale) or `poisson-gaussian:A,SIGMA`
 * (image units, e.g. `poisson-gaussian:0.01,0.02`).
 */
export function parseNoiseModel(text: string): NoiseModel {
  const [kind, args = ''] = text.split(':', 2);
  const num = (s: string) => (s.trim() === '' ? Number.NaN : Number(s));
  let m: NoiseModel;
  if (kind === 'gaussian' && args.includes('-')) {
    const [lo, hi] = args.split('-').map(num);
    m = { kind: 'gaussian-range', sigmaMin: lo, sigmaMax: hi };
  } else if (kind === 'gaussian') {
    m = { kind: 'gaussian', sigma: num(args) };
  } else if (kind === 'poisson-gaussian') {
    const [alpha, sigma] = args.split(',').map(num);
    m = { kind: 'poisson-gaussian', alpha, sigma };
  } else {
    throw new InvalidInputError(`--noise '${text}': expected gaussian:SIGMA, gaussian:MIN-MAX or poisson-gaussian:ALPHA,SIGMA`);
  }
  try {
    checkNoiseModel(m);
  } catch (e) {
    throw new InvalidInputError(`--noise '${text}': ${(e as Error).message}`);
  }
  return m;
}

/** A noisy copy of `clean` (one patch), drawing from `rng` in index order. */
export function addNoise(clean: Float32Array, model: NoiseModel, rng: Rng): Float32Array {
  const out = new Float32Array(clean.length);
  switch (model.kind) {
    case 'gaussian':
    case 'gaussian-range': {
      const sigma = model.kind === 'gaussian' ? model.sigma : model.sigmaMin + (model.sigmaMax - model.sigmaMin) * rng.next();
      const s = sigma / 255;
      for (let i = 0; i < clean.length; i++) out[i] = clean[i] + s * rng.normal();
      return out;
    }
    case 'poisson-gaussian': {
      const { alpha, sigma } = model;
      for (let i = 0; i < clean.length; i++) out[i] = alpha * poisson(rng, Math.max(clean[i], 0) / alpha) + sigma * rng.normal();
      return out;
    }
  }
}
