/**
 * Deterministic random numbers for reproducible experiments (synthetic noisy inputs, tests).
 *
 * The generator is xoshiro128** (32-bit state words, period 2^128 − 1), seeded through a splitmix-style
 * 32-bit mixer. The streams are identical in every JavaScript engine, in Node and in browsers, but they are
 * NOT the same numbers as NumPy's or PyTorch's generators: to compare against a Python reference bit for bit,
 * export the noisy input from Python instead of regenerating it here.
 */
import { InvalidInputError } from '../errors';

/** A seeded pseudo-random generator. */
export interface Rng {
  /** Uniform float64 in [0, 1) with 53 random bits. */
  next(): number;
  /** Standard normal float64 (mean 0, standard deviation 1), Marsaglia polar method. */
  normal(): number;
  /** Uniform unsigned 32-bit integer. */
  nextUint32(): number;
}

const GOLDEN = 0x9e3779b9;

/** A bijective 32-bit mixer (xorshift-multiply rounds), used to spread the seed over the state. */
function mix32(x: number): number {
  let z = x | 0;
  z ^= z >>> 16;
  z = Math.imul(z, 0x7feb352d);
  z ^= z >>> 15;
  z = Math.imul(z, 0x846ca68b);
  z ^= z >>> 16;
  return z >>> 0;
}

function checkSeed(seed: number, fn: string): void {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) {
    throw new InvalidInputError(`${fn}: seed must be a safe integer, got ${String(seed)}`);
  }
}

/**
 * Creates a deterministic generator. The same seed always gives the same sequence; distinct seeds in
 * [0, 2^32) give distinct sequences. Any safe integer (also negative) is accepted.
 *
 * @throws InvalidInputError when `seed` is not a safe integer.
 */
export function createRng(seed: number): Rng {
  checkSeed(seed, 'createRng');
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) | 0;
  // splitmix-style seeding: a Weyl sequence passed through a bijective mixer gives four well-spread words.
  let weyl = hi === 0 ? lo : (lo ^ mix32(hi ^ 0x5bd1e995)) >>> 0;
  const split = (): number => {
    weyl = (weyl + GOLDEN) | 0;
    return mix32(weyl);
  };
  let s0 = split();
  let s1 = split();
  let s2 = split();
  let s3 = split();
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1; // the all-zero state is a fixed point

  const nextUint32 = (): number => {
    const x = Math.imul(s1, 5);
    const result = Math.imul((x << 7) | (x >>> 25), 9);
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
    return result >>> 0;
  };

  const next = (): number => {
    const a = nextUint32() >>> 5; // 27 bits
    const b = nextUint32() >>> 6; // 26 bits
    return (a * 67108864 + b) / 9007199254740992; // (a * 2^26 + b) / 2^53
  };

  let spare = 0;
  let hasSpare = false;
  const normal = (): number => {
    if (hasSpare) {
      hasSpare = false;
      return spare;
    }
    let u: number;
    let v: number;
    let s: number;
    do {
      u = 2 * next() - 1;
      v = 2 * next() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const m = Math.sqrt((-2 * Math.log(s)) / s);
    spare = v * m;
    hasSpare = true;
    return u * m;
  };

  return { next, normal, nextUint32 };
}

/**
 * Returns a new array `data[i] + sigma * n_i` with `n_i` i.i.d. standard normal from `createRng(seed)`
 * (one draw per element, in index order). No clipping and no quantization: this is the float-valued
 * additive white Gaussian noise used in DnCNN-style evaluation. `sigma` is in the units of `data`, e.g.
 * `25 / 255` for "σ = 25" on images scaled to [0, 1]. The sum is formed in float64 and stored as float32.
 *
 * @throws InvalidInputError when `data` is not a Float32Array, `sigma` is negative or not finite, or `seed`
 *   is not a safe integer.
 */
export function addGaussianNoise(data: Float32Array, sigma: number, seed: number): Float32Array {
  if (!(data instanceof Float32Array)) {
    throw new InvalidInputError('addGaussianNoise: data must be a Float32Array');
  }
  if (typeof sigma !== 'number' || !Number.isFinite(sigma) || sigma < 0) {
    throw new InvalidInputError(`addGaussianNoise: sigma must be a finite number >= 0, got ${String(sigma)}`);
  }
  checkSeed(seed, 'addGaussianNoise');
  const rng = createRng(seed);
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] + sigma * rng.normal();
  return out;
}
