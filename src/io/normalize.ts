/**
 * Percentile normalisation as in CSBDeep/CARE (`csbdeep.utils.normalize`, `PercentileNormalizer`): the
 * `pLow` and `pHigh` percentiles of the input map to 0 and 1, `(x − lo) / (hi − lo + eps)`, and the network's
 * output is mapped back with the inverse so that the result has the input's intensity range. Browser-safe.
 *
 * Percentiles are NumPy's default (`np.percentile`, method 'linear'), computed in float64, per channel by
 * default (CSBDeep normalises each channel separately). Statistics can be restricted to a band of rows, so
 * that an SEM info bar does not skew them (see info-bar.ts).
 */
import { InvalidInputError } from '../errors';
import { type FloatImage, validateFloat } from './image';

/**
 * The `p`-th percentile (0..100) of `values`, like `np.percentile(values, p)` (linear interpolation between
 * the two nearest ranks, NumPy's formula and rounding). Does not modify `values`.
 *
 * @throws InvalidInputError for an empty array, NaN values or `p` outside [0, 100].
 */
export function percentile(values: ArrayLike<number>, p: number): number {
  return percentiles(values, [p])[0];
}

/** Several percentiles of the same values, sorting once. See {@link percentile}. */
export function percentiles(values: ArrayLike<number>, ps: readonly number[]): number[] {
  const n = values.length;
  if (n === 0) throw new InvalidInputError('percentile: no values');
  for (const p of ps) {
    if (typeof p !== 'number' || !(p >= 0 && p <= 100)) {
      throw new InvalidInputError(`percentile: p must be in [0, 100], got ${String(p)}`);
    }
  }
  const sorted = Float64Array.from(values);
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(sorted[i])) throw new InvalidInputError(`percentile: value ${i} is NaN`);
  }
  sorted.sort();
  return percentilesOfSorted(n, (rank) => sorted[rank], ps);
}

/**
 * The percentiles (0..100, already checked) of `n` values known in ascending order only through `at(rank)`:
 * {@link percentiles} after its sort, and a histogram's cumulative counts for integer images (runtime).
 */
export function percentilesOfSorted(n: number, at: (rank: number) => number, ps: readonly number[]): number[] {
  return ps.map((p) => {
    // NumPy ('linear'): virtual index (n - 1) * q with q = p / 100, then a lerp evaluated from the nearer end
    // (b - (b - a)(1 - t) when t >= 0.5), so the result is exact at both ends.
    const q = p / 100;
    const virtual = (n - 1) * q;
    const clamped = Math.min(Math.max(virtual, 0), n - 1);
    const lo = Math.floor(clamped);
    const hi = Math.min(lo + 1, n - 1);
    const t = clamped - lo;
    const a = at(lo);
    const b = at(hi);
    const d = b - a;
    return t >= 0.5 ? b - d * (1 - t) : a + d * t;
  });
}

export interface PercentileNormalizeOptions {
  /** Lower percentile, mapped to 0 (default 1). */
  pLow?: number;
  /** Upper percentile, mapped to 1 (default 99.8). */
  pHigh?: number;
  /** One range per channel (default, as CSBDeep) or one for all channels. */
  perChannel?: boolean;
  /** Added to the denominator, as in CSBDeep (default 1e-20). */
  eps?: number;
  /** Clip the normalised values to [0, 1] (default false, as in CSBDeep). */
  clip?: boolean;
  /**
   * Only rows `[rows[0], rows[1])` enter the statistics (e.g. `[0, bar.top]` to leave out an SEM info bar);
   * the whole image is normalised.
   */
  rows?: readonly [number, number];
}

/** The affine map of a normalisation, per channel: `normalised = (x − low) / (high − low + eps)`. */
export interface NormalizationRange {
  low: number[];
  high: number[];
  eps: number;
}

/**
 * Normalises a planar image by its percentiles (CSBDeep style). Returns the normalised image and the
 * range to pass to {@link percentileDenormalize} for the network's output.
 *
 * @throws InvalidInputError for bad percentiles or rows, or NaN values.
 */
export function percentileNormalize(
  image: FloatImage,
  options: PercentileNormalizeOptions = {},
): { image: FloatImage; range: NormalizationRange } {
  validateFloat(image);
  const pLow = options.pLow ?? 1;
  const pHigh = options.pHigh ?? 99.8;
  const eps = options.eps ?? 1e-20;
  if (!(pLow >= 0 && pLow < pHigh && pHigh <= 100)) {
    throw new InvalidInputError(`percentileNormalize: need 0 <= pLow < pHigh <= 100, got pLow=${pLow}, pHigh=${pHigh}`);
  }
  const { width, height, channels, data } = image;
  const [y0, y1] = options.rows ?? [0, height];
  if (!Number.isInteger(y0) || !Number.isInteger(y1) || y0 < 0 || y1 > height || y0 >= y1) {
    throw new InvalidInputError(`percentileNormalize: rows must be a non-empty range within [0, ${height}], got [${y0}, ${y1})`);
  }
  const plane = width * height;
  const statsPlane = (c: number) => data.subarray(c * plane + y0 * width, c * plane + y1 * width);
  const low: number[] = [];
  const high: number[] = [];
  if (options.perChannel ?? true) {
    for (let c = 0; c < channels; c++) {
      const [lo, hi] = percentiles(statsPlane(c), [pLow, pHigh]);
      low.push(lo);
      high.push(hi);
    }
  } else {
    const rowsPerPlane = (y1 - y0) * width;
    const all = new Float32Array(rowsPerPlane * channels);
    for (let c = 0; c < channels; c++) all.set(statsPlane(c), c * rowsPerPlane);
    const [lo, hi] = percentiles(all, [pLow, pHigh]);
    for (let c = 0; c < channels; c++) {
      low.push(lo);
      high.push(hi);
    }
  }
  const range: NormalizationRange = { low, high, eps };
  const out = new Float32Array(data.length);
  for (let c = 0; c < channels; c++) {
    const lo = low[c];
    const scale = high[c] - lo + eps;
    for (let i = c * plane, e = (c + 1) * plane; i < e; i++) {
      let v = (data[i] - lo) / scale;
      if (options.clip) v = v < 0 ? 0 : v > 1 ? 1 : v;
      out[i] = v;
    }
  }
  return { image: { width, height, channels, data: out }, range };
}

/**
 * The inverse of {@link percentileNormalize}: `x · (high − low + eps) + low` per channel. The image may
 * have a different size than the normalised one (e.g. an upscaled output) but not a different channel count.
 */
export function percentileDenormalize(image: FloatImage, range: NormalizationRange): FloatImage {
  validateFloat(image);
  const { width, height, channels, data } = image;
  if (range.low.length !== channels || range.high.length !== channels) {
    throw new InvalidInputError(`percentileDenormalize: the range has ${range.low.length} channel(s) but the image has ${channels}`);
  }
  const plane = width * height;
  const out = new Float32Array(data.length);
  for (let c = 0; c < channels; c++) {
    const lo = range.low[c];
    const scale = range.high[c] - lo + range.eps;
    for (let i = c * plane, e = (c + 1) * plane; i < e; i++) out[i] = data[i] * scale + lo;
  }
  return { width, height, channels, data: out };
}

/** The percentiles of a run's normalisation (`RunOptions.normalize`): `low` maps to 0, `high` to 1. */
export interface PercentileRange {
  low: number;
  high: number;
}

/**
 * Checks a `{ low, high }` percentile option: numbers with 0 <= low < high <= 100.
 *
 * @throws InvalidInputError naming `option` otherwise (NaN, out of range, low >= high, not an object).
 */
export function checkPercentileRange(value: unknown, option = 'normalize'): PercentileRange {
  const v = value as Partial<PercentileRange> | null;
  const low = typeof v === 'object' && v !== null ? v.low : undefined;
  const high = typeof v === 'object' && v !== null ? v.high : undefined;
  if (typeof low !== 'number' || typeof high !== 'number' || !(low >= 0 && low < high && high <= 100)) {
    const got = typeof v === 'object' && v !== null ? `low=${String(low)}, high=${String(high)}` : String(value);
    throw new InvalidInputError(`${option}: needs percentiles { low, high } with 0 <= low < high <= 100, got ${got}`);
  }
  return { low, high };
}

/** The per-channel affine map `v ↦ (v − low) / scale` (normalising) or `v ↦ v · scale + low` (back). */
export interface ChannelAffine {
  low: number[];
  scale: number[];
}

/**
 * The normalisation of a model run (`RunOptions.normalize`), as per-channel maps that the runtime folds into
 * its conversion to and from the network's layout: the input's own percentiles map to [0, 1] (then to [-1, 1]
 * for `symmetric` networks, `v ↦ 2v − 1`) before the network; the output goes back through `(v + 1) / 2` (symmetric
 * networks) and `v · scale + low` to the input's intensities. Every step is rounded to float32, as the float arrays
 * of {@link percentileNormalize} and {@link percentileDenormalize} store it.
 *
 * Statistics cover the whole image given, which is the region the model processes (an SEM info bar is split off
 * before, so it never enters them); `percentilesOf(c, ps)` gives those of channel `c`, or of all channels together
 * for `c = 'all'`. Per channel when the network keeps the channel count, as CSBDeep does; otherwise one range over
 * all channels serves every output channel.
 *
 * @throws InvalidInputError when a channel's two percentiles are equal (a flat image: the map would blow the
 *   remaining values up by 1/eps).
 */
export function runNormalization(
  channels: number,
  option: PercentileRange,
  network: { outChannels: number; symmetric: boolean },
  percentilesOf: (channel: number | 'all', ps: readonly number[]) => number[],
): { input: ChannelAffine; output: ChannelAffine; symmetric: boolean } {
  const { low, high } = checkPercentileRange(option);
  const perChannel = network.outChannels === channels;
  const eps = 1e-20; // percentileNormalize's default
  const lows: number[] = [];
  const highs: number[] = [];
  const all = perChannel ? undefined : percentilesOf('all', [low, high]);
  for (let c = 0; c < channels; c++) {
    const [lo, hi] = all ?? percentilesOf(c, [low, high]);
    lows.push(lo);
    highs.push(hi);
  }
  lows.forEach((lo, c) => {
    if (!(highs[c] > lo)) {
      throw new InvalidInputError(
        `normalize: the ${low} and ${high} percentiles of ${perChannel ? `channel ${c}` : 'the image'} are both ${lo}; ` +
          'choose percentiles further apart (or leave normalisation off)',
      );
    }
  });
  const input = { low: lows, scale: lows.map((lo, c) => highs[c] - lo + eps) };
  const output = perChannel
    ? input
    : {
        low: new Array<number>(network.outChannels).fill(lows[0]),
        scale: new Array<number>(network.outChannels).fill(highs[0] - lows[0] + eps),
      };
  return { input, output, symmetric: network.symmetric };
}
