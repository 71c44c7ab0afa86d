import { InvalidInputError } from '../../errors';
import type { Rng } from '../../io/noise';

/**
 * Blind-spot pixel manipulation for Noise2Void (Krull et al. 2019), N2V2 (Höck et al. 2022) and structN2V
 * (Broaddus et al. 2020), training.md §4.2–4.4, following CAREamics
 * (src/careamics/lightning/modules/n2v_utils/pixel_manipulation.py and n2v_manipulate.py, read at commit
 * fe083dfb). What was checked there, and where this file departs from it on purpose:
 *
 * - Coordinates: `_get_stratified_coords` covers the patch with a grid of square cells of side
 *   g = (100 / percentage)^(1/2) px, kept as a float; ceil(H/g) × ceil(W/g) cells (every cell that starts inside
 *   the patch), one point per cell at the cell's corner + U[0, 1)·g on each axis, floored to a pixel, and points
 *   that fall outside the patch dropped. The expected number of points inside an H × W patch is H·W·percentage/100.
 * - Channels: `N2VManipulate.__call__` loops over the channels and calls the manipulation once per channel with
 *   the same generator, so every channel gets its own coordinates and the mask has the batch's shape (B, C, H, W).
 *   That is the default here ('independent'); 'shared' draws one set per patch for all channels and gives a
 *   one-channel mask (B, 1, H, W), which the masked loss applies to every channel.
 * - 'uniform' (`uniform_manipulate`): the source is the centre plus an offset drawn from [−r, r] \ {0} on every
 *   axis (r = roi_size // 2), so it is never in the centre's row or column, read from the unmanipulated patch.
 *   CAREamics then clamps the source to the patch, which at a border can land it on the centre's row, column or on
 *   the centre itself (that spot then drops out of its mask, which is `manipulated != original`); it also indexes
 *   the non-zero offsets with randint(−r, r + 1), which makes +1 twice as likely as the others. Here the offset is
 *   uniform over the non-zero offsets that stay inside the patch: the ROI clipped to the patch, minus the centre's
 *   row and column.
 * - 'median' (`median_manipulate`): the median of the roi_size² window without its centre (and without the
 *   structN2V pixels, `_create_struct_exclusion_mask`), the lower middle value for an even count as torch.median
 *   returns. CAREamics clamps the window's coordinates at the border, which repeats edge pixels, the centre among
 *   them; here the window is cropped to the patch instead, so the centre's value never takes part.
 * - structN2V (`_apply_struct_mask`, applied after the blind spots): the pixels along the axis within span // 2
 *   of each blind spot (centre excluded, those outside the patch dropped) get a value uniform in [min, max] of
 *   the patch's channel plane. CAREamics takes min and max of the already manipulated plane; here of the original
 *   (the replacements come from the plane, so the range can only differ when an extreme pixel was a blind spot).
 *   A struct pixel that lands on another blind spot overwrites it (CAREamics' order) and that spot stays in the mask.
 * - The mask is 1 at every blind spot (CAREamics: wherever the value changed, which also drops spots whose
 *   replacement happens to equal the original) and 0 elsewhere, struct pixels included: the loss is on the
 *   centres only. The original batch is the target.
 *
 * The random numbers come from the caller's seeded `Rng` in a fixed order of our own, so a seed gives the same
 * batch in every engine; they are not PyTorch's streams.
 */

export type BlindSpotStrategy = 'uniform' | 'median';

/** structN2V: hide `span` pixels (odd, 3–15, centre included) along `axis` around every blind spot. */
export interface StructMask {
  axis: 'horizontal' | 'vertical';
  span: number;
}

export interface BlindSpotOptions {
  /** Expected percentage of blind-spot pixels, 0.05–10 (CAREamics `masked_pixel_percentage`, default 0.2). */
  percentage?: number;
  /** 'uniform' (N2V, default) or 'median' (N2V2). */
  strategy?: BlindSpotStrategy;
  /** Side of the replacement window, odd, 3–21 (CAREamics `roi_size`, default 11). */
  roiSize?: number;
  struct?: StructMask;
  /** 'independent' (CAREamics, default): coordinates per channel; 'shared': the same for all channels of a patch. */
  channels?: 'independent' | 'shared';
}

export type ResolvedBlindSpotOptions = Required<Omit<BlindSpotOptions, 'struct'>> & { struct?: StructMask };

export const BLIND_SPOT_DEFAULTS: Readonly<ResolvedBlindSpotOptions> = {
  percentage: 0.2,
  strategy: 'uniform',
  roiSize: 11,
  channels: 'independent',
};

/** Options with the defaults filled in, or InvalidInputError naming what is wrong. */
export function resolveBlindSpotOptions(options: BlindSpotOptions = {}): ResolvedBlindSpotOptions {
  const d = BLIND_SPOT_DEFAULTS;
  const percentage = options.percentage ?? d.percentage;
  const strategy = options.strategy ?? d.strategy;
  const roiSize = options.roiSize ?? d.roiSize;
  const channels = options.channels ?? d.channels;
  const struct = options.struct;
  if (typeof percentage !== 'number' || !Number.isFinite(percentage) || percentage < 0.05 || percentage > 10) {
    throw new InvalidInputError(`blind spots: percentage must be a number in [0.05, 10], got ${String(percentage)}`);
  }
  if (strategy !== 'uniform' && strategy !== 'median') {
    throw new InvalidInputError(`blind spots: strategy must be 'uniform' or 'median', got '${String(strategy)}'`);
  }
  if (!isOddInRange(roiSize, 3, 21))
    throw new InvalidInputError(`blind spots: roiSize must be an odd integer in [3, 21], got ${String(roiSize)}`);
  if (channels !== 'independent' && channels !== 'shared') {
    throw new InvalidInputError(`blind spots: channels must be 'independent' or 'shared', got '${String(channels)}'`);
  }
  if (struct !== undefined) {
    if (struct === null || typeof struct !== 'object') throw new InvalidInputError('blind spots: struct must be { axis, span }');
    if (struct.axis !== 'horizontal' && struct.axis !== 'vertical') {
      throw new InvalidInputError(`blind spots: struct axis must be 'horizontal' or 'vertical', got '${String(struct.axis)}'`);
    }
    if (!isOddInRange(struct.span, 3, 15)) {
      throw new InvalidInputError(`blind spots: struct span must be an odd integer in [3, 15], got ${String(struct.span)}`);
    }
  }
  return { percentage, strategy, roiSize, channels, ...(struct ? { struct: { axis: struct.axis, span: struct.span } } : {}) };
}

function isOddInRange(v: unknown, lo: number, hi: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v % 2 === 1 && v >= lo && v <= hi;
}

/** Blind-spot pixels of one plane, in the order of their grid cells (row-major). */
export interface BlindSpots {
  y: Int32Array;
  x: Int32Array;
  /** Row-major index, in a grid `gridColumns` cells wide, of the cell each point was drawn in. */
  cell: Int32Array;
  /** The cells' side in pixels (not an integer in general). */
  cellSide: number;
  gridColumns: number;
}

/** The side of the stratification cells: one blind spot per cell gives `percentage` % of the pixels. */
export function blindSpotCellSide(percentage: number): number {
  return Math.sqrt(100 / percentage);
}

/**
 * One uniformly random pixel per cell of the stratification grid over an h × w plane, those outside dropped. Draws
 * two numbers (y, then x) per cell, row-major, whether or not the point is kept. Two points of neighbouring cells
 * can, rarely, be the same pixel (a cell edge inside a pixel), as in CAREamics.
 */
export function stratifiedBlindSpots(rng: Rng, h: number, w: number, percentage: number): BlindSpots {
  const side = blindSpotCellSide(percentage);
  const rows = Math.ceil(h / side);
  const cols = Math.ceil(w / side);
  const ys: number[] = [];
  const xs: number[] = [];
  const cells: number[] = [];
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const y = Math.floor(i * side + rng.next() * side);
      const x = Math.floor(j * side + rng.next() * side);
      if (y < h && x < w) {
        ys.push(y);
        xs.push(x);
        cells.push(i * cols + j);
      }
    }
  }
  return { y: Int32Array.from(ys), x: Int32Array.from(xs), cell: Int32Array.from(cells), cellSide: side, gridColumns: cols };
}

export interface BlindSpotBatch {
  /** The manipulated copy of the batch: the network's input. */
  input: Float32Array;
  /** 1 at the blind spots, 0 elsewhere: (n, maskChannels, h, w). */
  mask: Float32Array;
  /** c for 'independent' coordinates, 1 for 'shared'. */
  maskChannels: number;
}

/**
 * Noise2Void's input and loss mask for a batch of noisy patches `data`, NCHW float32 of `shape` (the batch itself
 * is the target). See the top of this file for the sampling rules.
 */
export function blindSpotBatch(
  data: Float32Array,
  shape: readonly [n: number, c: number, h: number, w: number],
  rng: Rng,
  options: BlindSpotOptions = {},
): BlindSpotBatch {
  const o = resolveBlindSpotOptions(options);
  const [n, c, h, w] = checkShape(data, shape);
  const plane = h * w;
  const r = o.roiSize >> 1;
  const shared = o.channels === 'shared';
  const maskChannels = shared ? 1 : c;
  const input = data.slice();
  const mask = new Float32Array(n * maskChannels * plane);
  const scratch = new Float32Array(o.roiSize * o.roiSize);
  for (let b = 0; b < n; b++) {
    for (let g = 0; g < maskChannels; g++) {
      // The channel planes (offsets into data) that this set of coordinates applies to.
      const planes = shared ? Array.from({ length: c }, (_, ch) => (b * c + ch) * plane) : [(b * c + g) * plane];
      const spots = stratifiedBlindSpots(rng, h, w, o.percentage);
      const maskBase = (b * maskChannels + g) * plane;
      for (let k = 0; k < spots.y.length; k++) {
        const y = spots.y[k];
        const x = spots.x[k];
        mask[maskBase + y * w + x] = 1;
        if (o.strategy === 'uniform') {
          const source = (y + nonZeroOffset(rng, y, h, r)) * w + x + nonZeroOffset(rng, x, w, r);
          for (const p of planes) input[p + y * w + x] = data[p + source];
        } else {
          for (const p of planes) input[p + y * w + x] = windowMedian(data, p, h, w, y, x, r, o.struct, scratch);
        }
      }
      if (o.struct) for (const p of planes) hideStructPixels(data, input, p, h, w, spots, o.struct, rng);
    }
  }
  return { input, mask, maskChannels };
}

function checkShape(data: Float32Array, shape: readonly [number, number, number, number]): [number, number, number, number] {
  if (!(data instanceof Float32Array)) throw new InvalidInputError('blind spots: data must be a Float32Array');
  if (!Array.isArray(shape) || shape.length !== 4 || !shape.every((v) => Number.isInteger(v) && v >= 1)) {
    throw new InvalidInputError(`blind spots: shape must be four positive integers [n, c, h, w], got [${String(shape)}]`);
  }
  const [n, c, h, w] = shape;
  // A 1-pixel side leaves no neighbour off the centre's row or column to take a value from.
  if (h < 2 || w < 2) throw new InvalidInputError(`blind spots: patches must be at least 2×2, got ${h}×${w}`);
  if (data.length !== n * c * h * w) throw new InvalidInputError(`blind spots: ${data.length} values are not ${n}×${c}×${h}×${w}`);
  return [n, c, h, w];
}

/** A uniform d in [−r, r] \ {0} with 0 ≤ at + d < size (size ≥ 2, so there is at least one). */
function nonZeroOffset(rng: Rng, at: number, size: number, r: number): number {
  const lo = Math.max(-r, -at);
  const hi = Math.min(r, size - 1 - at);
  const d = lo + Math.floor(rng.next() * (hi - lo));
  return d >= 0 ? d + 1 : d;
}

/** Whether (dy, dx) from a blind spot is one of its structN2V pixels (the centre is not). */
function inStruct(dy: number, dx: number, struct: StructMask | undefined): boolean {
  if (!struct) return false;
  const half = struct.span >> 1;
  return struct.axis === 'horizontal' ? dy === 0 && dx !== 0 && Math.abs(dx) <= half : dx === 0 && dy !== 0 && Math.abs(dy) <= half;
}

/**
 * The lower median of the (2r+1)² window around (y, x) of the plane at `base`, cropped to the plane, without the
 * centre and the struct pixels.
 */
function windowMedian(
  data: Float32Array,
  base: number,
  h: number,
  w: number,
  y: number,
  x: number,
  r: number,
  struct: StructMask | undefined,
  scratch: Float32Array,
): number {
  let count = 0;
  for (let yy = Math.max(0, y - r); yy <= Math.min(h - 1, y + r); yy++) {
    for (let xx = Math.max(0, x - r); xx <= Math.min(w - 1, x + r); xx++) {
      const dy = yy - y;
      const dx = xx - x;
      if ((dy === 0 && dx === 0) || inStruct(dy, dx, struct)) continue;
      scratch[count++] = data[base + yy * w + xx];
    }
  }
  const values = scratch.subarray(0, count).sort();
  return values[(count - 1) >> 1];
}

/** structN2V: the struct pixels of every spot ← uniform in [min, max) of the original plane at `base`. */
function hideStructPixels(
  data: Float32Array,
  input: Float32Array,
  base: number,
  h: number,
  w: number,
  spots: BlindSpots,
  struct: StructMask,
  rng: Rng,
): void {
  let min = Infinity;
  let max = -Infinity;
  for (let i = base; i < base + h * w; i++) {
    min = Math.min(min, data[i]);
    max = Math.max(max, data[i]);
  }
  const half = struct.span >> 1;
  const horizontal = struct.axis === 'horizontal';
  for (let k = 0; k < spots.y.length; k++) {
    for (let d = -half; d <= half; d++) {
      if (d === 0) continue;
      const y = horizontal ? spots.y[k] : spots.y[k] + d;
      const x = horizontal ? spots.x[k] + d : spots.x[k];
      if (y < 0 || y >= h || x < 0 || x >= w) continue;
      input[base + y * w + x] = min + (max - min) * rng.next();
    }
  }
}
