/**
 * The caller's images ↔ the padded NHWC activations a plan reads and writes (gpu/tensor.ts), one pass each way.
 *
 * In: an interleaved integer raster (HWC) or a planar float image (CHW, PyTorch's layout) goes straight into
 * [1, rows, cols, channels padded to 4] for any window of it (a tile, or the whole image), its values mapped on
 * the way: integer codes to [0, 1], [-1, 1] for symmetric networks, percentile normalisation. Out: a plan's
 * output (a tile's core, or all of it) goes straight into the caller's layout, mapped back (normalisation
 * undone, symmetric values to [0, 1], and for rasters clamped and rounded to integer codes).
 *
 * Every step rounds to float32, exactly as the float arrays of the two-step path did (io/image.ts
 * `rasterToFloat`/`floatToRaster`, io/normalize.ts, gpu/tensor.ts `nchwToNhwcPadded`/`nhwcPaddedToNchw`), so
 * the results are bit-identical to it (test/runtime/layout.test.ts).
 */
import { InvalidInputError } from '../errors';
import { paddedChannels } from '../gpu/tensor';
import { type FloatImage, maxValue, type RasterImage, roundHalfEven } from '../io/image';
import { type ChannelAffine, percentiles, percentilesOfSorted } from '../io/normalize';

const f32 = Math.fround;

/** A run's percentile normalisation (io/normalize.ts `runNormalization`). */
export interface Normalization {
  input: ChannelAffine;
  output: ChannelAffine;
  symmetric: boolean;
}

/** An image a plan's input is packed from: the whole of it or a window. */
export interface InputSource {
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  /** Rows [y0, y1) × columns [x0, x1) as NHWC [1, y1 − y0, x1 − x0, channels padded to 4], padding zero. */
  pack(y0: number, y1: number, x0: number, x1: number): Float32Array;
}

/** Where a plan's outputs go: pasted whole or by tile core, or blended (tile-blend.ts). */
export interface OutputSink<T> {
  /**
   * Copies `rows` × `cols` pixels at (sy, sx) of a plan's output (NHWC [1, height, tw, channels padded to 4])
   * to (dy, dx) of the image.
   */
  paste(src: Float32Array, tw: number, sy: number, sx: number, dy: number, dx: number, rows: number, cols: number): void;
  /** Zeros, channels × height × width, for blended tiles' weighted sums (planar). */
  blendSums(): Float32Array;
  /** Takes the whole image from blended tiles: planar (CHW) weighted sums and the weight of each pixel. */
  fromBlend(sums: Float32Array, weights: Float32Array): void;
  /** The image (or, for rasters, the error for a NaN in it). */
  finish(): T;
}

/** The network's input value of a sample already in [0, 1] (or as the caller gave it, for float images). */
function normalizeIn(v: number, c: number, norm: Normalization | undefined): number {
  if (!norm) return v;
  v = f32((v - norm.input.low[c]) / norm.input.scale[c]);
  return norm.symmetric ? f32(2 * v - 1) : v;
}

/** A network output mapped back through the normalisation, if any. */
function denormalizeOut(v: number, c: number, norm: Normalization | undefined): number {
  if (!norm) return v;
  if (norm.symmetric) v = f32((v + 1) / 2);
  return f32(v * norm.output.scale[c] + norm.output.low[c]);
}

/** What an integer code of a raster is to the network (before any normalisation): [0, 1], or [-1, 1]. */
function codeValue(code: number, max: number, symmetric: boolean): number {
  const v = f32(code / max);
  return symmetric ? f32(2 * v - 1) : v;
}

/**
 * Percentiles of a raster's values as the network sees them before normalisation (`codeValue`), from a histogram
 * of its codes: the map is monotonic, so the k-th smallest value is that of the k-th smallest code. Equal to
 * sorting the float values (io/normalize.ts `percentiles`), without making them.
 */
export function rasterPercentiles(image: RasterImage, symmetric: boolean): (channel: number | 'all', ps: readonly number[]) => number[] {
  const max = maxValue(image.bitDepth);
  const { channels, data } = image;
  return (channel, ps) => {
    const counts = new Float64Array(max + 1);
    const first = channel === 'all' ? 0 : channel;
    const step = channel === 'all' ? 1 : channels;
    for (let i = first; i < data.length; i += step) counts[data[i]]++;
    const n = channel === 'all' ? data.length : data.length / channels;
    // Cumulative counts; each rank is looked up once per percentile, by a binary search.
    for (let k = 1; k <= max; k++) counts[k] += counts[k - 1];
    const codeAt = (rank: number) => {
      let lo = 0;
      let hi = max;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (counts[mid] > rank) hi = mid;
        else lo = mid + 1;
      }
      return lo;
    };
    return percentilesOfSorted(n, (rank) => codeValue(codeAt(rank), max, symmetric), ps);
  };
}

/** Percentiles of a planar float image, per channel or over all of them (as io/normalize.ts computes them). */
export function floatPercentiles(image: FloatImage): (channel: number | 'all', ps: readonly number[]) => number[] {
  const plane = image.width * image.height;
  return (channel, ps) =>
    channel === 'all' ? percentiles(image.data, ps) : percentiles(image.data.subarray(channel * plane, (channel + 1) * plane), ps);
}

/** An integer raster (HWC) as the network's input: codes mapped through a table when the image is large. */
export class RasterInput implements InputSource {
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  /** Per channel, the network value of each code: `table[c * (max + 1) + code]`. */
  private readonly table: Float32Array | undefined;
  private readonly max: number;

  constructor(
    private readonly image: RasterImage,
    private readonly symmetric: boolean,
    private readonly norm: Normalization | undefined,
  ) {
    this.width = image.width;
    this.height = image.height;
    this.channels = image.channels;
    this.max = maxValue(image.bitDepth);
    // A table pays off once the image has more samples per channel than there are codes.
    if (this.width * this.height > this.max + 1) {
      const n = this.max + 1;
      this.table = new Float32Array(n * this.channels);
      for (let c = 0; c < this.channels; c++) {
        for (let code = 0; code < n; code++) this.table[c * n + code] = this.value(code, c);
      }
    }
  }

  private value(code: number, c: number): number {
    return normalizeIn(codeValue(code, this.max, this.symmetric), c, this.norm);
  }

  pack(y0: number, y1: number, x0: number, x1: number): Float32Array {
    const { channels: ch, width, table } = this;
    const data = this.image.data;
    const cols = x1 - x0;
    const cp = paddedChannels(ch);
    const out = new Float32Array((y1 - y0) * cols * cp);
    const n = this.max + 1;
    for (let y = y0; y < y1; y++) {
      let src = (y * width + x0) * ch;
      let dst = (y - y0) * cols * cp;
      if (table && ch === 1) {
        for (let x = 0; x < cols; x++, dst += cp) out[dst] = table[data[src++]];
      } else if (table && ch === 3) {
        for (let x = 0; x < cols; x++, src += 3, dst += cp) {
          out[dst] = table[data[src]];
          out[dst + 1] = table[n + data[src + 1]];
          out[dst + 2] = table[2 * n + data[src + 2]];
        }
      } else {
        for (let x = 0; x < cols; x++, src += ch, dst += cp) {
          for (let c = 0; c < ch; c++) out[dst + c] = table ? table[c * n + data[src + c]] : this.value(data[src + c], c);
        }
      }
    }
    return out;
  }
}

/** A planar float image (CHW) as the network's input, normalised on the way when asked. */
export class FloatInput implements InputSource {
  readonly width: number;
  readonly height: number;
  readonly channels: number;

  constructor(
    private readonly image: FloatImage,
    private readonly norm: Normalization | undefined,
  ) {
    this.width = image.width;
    this.height = image.height;
    this.channels = image.channels;
  }

  pack(y0: number, y1: number, x0: number, x1: number): Float32Array {
    const { channels: ch, width, height, norm } = this;
    const data = this.image.data;
    const cols = x1 - x0;
    const cp = paddedChannels(ch);
    const out = new Float32Array((y1 - y0) * cols * cp);
    for (let y = y0; y < y1; y++) {
      const row = (y - y0) * cols * cp;
      for (let c = 0; c < ch; c++) {
        const src = (c * height + y) * width + x0;
        let dst = row + c;
        if (norm) {
          const low = norm.input.low[c];
          const scale = norm.input.scale[c];
          const symmetric = norm.symmetric;
          for (let x = 0; x < cols; x++, dst += cp) {
            const v = f32((data[src + x] - low) / scale);
            out[dst] = symmetric ? 2 * v - 1 : v;
          }
        } else {
          for (let x = 0; x < cols; x++, dst += cp) out[dst] = data[src + x];
        }
      }
    }
    return out;
  }
}

/** The network's output as a planar float image (CHW), the normalisation undone when there was one. */
export class FloatOutput implements OutputSink<FloatImage> {
  readonly data: Float32Array;

  constructor(
    readonly width: number,
    readonly height: number,
    readonly channels: number,
    private readonly norm: Normalization | undefined,
  ) {
    this.data = new Float32Array(channels * height * width);
  }

  paste(src: Float32Array, tw: number, sy: number, sx: number, dy: number, dx: number, rows: number, cols: number): void {
    const { channels: ch, width, height, norm, data } = this;
    const cp = paddedChannels(ch);
    for (let y = 0; y < rows; y++) {
      const row = ((sy + y) * tw + sx) * cp;
      for (let c = 0; c < ch; c++) {
        let from = row + c;
        const to = (c * height + dy + y) * width + dx;
        if (norm) {
          for (let x = 0; x < cols; x++, from += cp) data[to + x] = denormalizeOut(src[from], c, norm);
        } else {
          for (let x = 0; x < cols; x++, from += cp) data[to + x] = src[from];
        }
      }
    }
  }

  /** The output array itself: the sums are divided in place. */
  blendSums(): Float32Array {
    return this.data;
  }

  fromBlend(sums: Float32Array, weights: Float32Array): void {
    const plane = this.width * this.height;
    for (let c = 0; c < this.channels; c++) {
      for (let p = 0, i = c * plane; p < plane; p++, i++) this.data[i] = denormalizeOut(f32(sums[i] / weights[p]), c, this.norm);
    }
  }

  finish(): FloatImage {
    return { width: this.width, height: this.height, channels: this.channels, data: this.data };
  }
}

/**
 * The network's output as an interleaved integer raster (HWC): mapped back (normalisation, symmetric range),
 * clamped to [0, 1], scaled in float32 and rounded half to even, as io/image.ts `floatToRaster` does. A NaN is
 * reported by `finish` at the first position in planar order (channel, row, column), like `floatToRaster`.
 */
export class RasterOutput implements OutputSink<RasterImage> {
  readonly data: Uint8Array | Uint16Array;
  private readonly max: number;
  /** Per channel, the smallest pixel index holding a NaN (−1: none). */
  private readonly firstNaN: number[];

  constructor(
    readonly width: number,
    readonly height: number,
    readonly channels: number,
    readonly bitDepth: 8 | 16,
    private readonly symmetric: boolean,
    private readonly norm: Normalization | undefined,
  ) {
    const n = width * height * channels;
    this.data = bitDepth === 16 ? new Uint16Array(n) : new Uint8Array(n);
    this.max = maxValue(bitDepth);
    this.firstNaN = new Array<number>(channels).fill(-1);
  }

  /** The code of network value `v` of channel `c`, or −1 for NaN (recorded at pixel `p`). */
  private code(v: number, c: number, p: number): number {
    if (this.norm) v = denormalizeOut(v, c, this.norm);
    if (this.symmetric) v = f32((v + 1) / 2);
    if (v !== v) {
      if (this.firstNaN[c] < 0 || p < this.firstNaN[c]) this.firstNaN[c] = p;
      return -1;
    }
    // Clamped, scaled in float32 and rounded half to even, as io/image.ts `floatToRaster` does.
    return roundHalfEven(f32((v < 0 ? 0 : v > 1 ? 1 : v) * this.max));
  }

  paste(src: Float32Array, tw: number, sy: number, sx: number, dy: number, dx: number, rows: number, cols: number): void {
    const { channels: ch, width, data } = this;
    const cp = paddedChannels(ch);
    for (let y = 0; y < rows; y++) {
      let from = ((sy + y) * tw + sx) * cp;
      let p = (dy + y) * width + dx;
      let to = p * ch;
      for (let x = 0; x < cols; x++, from += cp, p++) {
        for (let c = 0; c < ch; c++, to++) {
          const code = this.code(src[from + c], c, p);
          if (code >= 0) data[to] = code;
        }
      }
    }
  }

  blendSums(): Float32Array {
    return new Float32Array(this.channels * this.height * this.width);
  }

  fromBlend(sums: Float32Array, weights: Float32Array): void {
    const plane = this.width * this.height;
    const ch = this.channels;
    for (let p = 0, to = 0; p < plane; p++) {
      for (let c = 0; c < ch; c++, to++) {
        const code = this.code(f32(sums[c * plane + p] / weights[p]), c, p);
        if (code >= 0) this.data[to] = code;
      }
    }
  }

  finish(): RasterImage {
    const { width, height, channels, bitDepth, data } = this;
    if (channels !== 1 && channels !== 3) {
      throw new InvalidInputError(`floatToRaster needs a 1- or 3-channel image, got ${channels} channels`);
    }
    const c = this.firstNaN.findIndex((p) => p >= 0);
    if (c >= 0) {
      const p = this.firstNaN[c];
      const y = Math.floor(p / width);
      throw new InvalidInputError(`floatToRaster: image contains NaN at channel ${c}, row ${y}, column ${p - y * width}`);
    }
    return { width, height, channels, bitDepth, data };
  }
}
