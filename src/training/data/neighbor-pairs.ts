import { InvalidInputError } from '../../errors';
import type { Rng } from '../../io/noise';
import { NEIGHBOR_PAIR_TABLE } from '../../kernels/neighbor-subsample';

/**
 * Neighbor2Neighbor's random neighbour sub-sampler (Huang et al., CVPR 2021; TaoHuang2018/Neighbor2Neighbor
 * train.py `generate_mask_pair` / `generate_subimages`, training.md §4.5). The image is cut into 2×2 cells, their
 * pixels numbered as `space_to_depth` (F.unfold with a 2×2 kernel, stride 2) orders them: 0 top-left, 1 top-right,
 * 2 bottom-left, 3 bottom-right. For every (image, cell) one of the 8 ordered pairs of 4-neighbours (the table the GPU
 * sampler in kernels/neighbor-subsample.ts uses too) is
 * drawn uniformly; the first sub-image takes the pair's first pixel of every cell, the second its second pixel,
 * for all channels alike. An odd last row or column belongs to no cell and is left out (unfold with stride 2
 * drops it; the reference only ever trains on even 256² crops).
 */
export const NEIGHBOR_PAIRS = NEIGHBOR_PAIR_TABLE;

/**
 * One pair index (0–7, into NEIGHBOR_PAIRS) per cell of n images of h2 × w2 cells, in (image, cell row, cell
 * column) order as the reference's `rd_idx`: choices[(b·h2 + i)·w2 + j] is cell (i, j) of image b.
 */
export function drawNeighborChoices(rng: Rng, n: number, h2: number, w2: number): Uint8Array {
  for (const [v, what] of [
    [n, 'n'],
    [h2, 'h2'],
    [w2, 'w2'],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new InvalidInputError(`neighbour choices: ${what} must be a positive integer, got ${v}`);
  }
  const choices = new Uint8Array(n * h2 * w2);
  for (let i = 0; i < choices.length; i++) choices[i] = Math.floor(rng.next() * NEIGHBOR_PAIRS.length);
  return choices;
}

export interface NeighborSubimages {
  /** g₁(y): NCHW, n × c × floor(h/2) × floor(w/2). */
  first: Float32Array;
  /** g₂(y): same shape. */
  second: Float32Array;
}

/**
 * The two sub-images of `data` (NCHW, `shape`) for the given per-cell `choices` (from drawNeighborChoices, for
 * n × floor(h/2) × floor(w/2) cells). The same choices applied to the network's output f(y) give g₁(f(y)) and
 * g₂(f(y)) for the regulariser.
 */
export function neighborSubimages(
  data: Float32Array,
  shape: readonly [n: number, c: number, h: number, w: number],
  choices: Uint8Array,
): NeighborSubimages {
  if (!Array.isArray(shape) || shape.length !== 4 || !shape.every((v) => Number.isInteger(v) && v >= 1)) {
    throw new InvalidInputError(`neighbour sub-images: shape must be four positive integers [n, c, h, w], got [${String(shape)}]`);
  }
  const [n, c, h, w] = shape;
  if (h < 2 || w < 2) throw new InvalidInputError(`neighbour sub-images: images must be at least 2×2, got ${h}×${w}`);
  if (data.length !== n * c * h * w) throw new InvalidInputError(`neighbour sub-images: ${data.length} values are not ${n}×${c}×${h}×${w}`);
  const h2 = h >> 1;
  const w2 = w >> 1;
  if (choices.length !== n * h2 * w2) {
    throw new InvalidInputError(`neighbour sub-images: ${choices.length} choices for ${n}×${h2}×${w2} cells`);
  }
  const first = new Float32Array(n * c * h2 * w2);
  const second = new Float32Array(n * c * h2 * w2);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < h2; i++) {
      for (let j = 0; j < w2; j++) {
        const choice = choices[(b * h2 + i) * w2 + j];
        if (choice >= NEIGHBOR_PAIRS.length) throw new InvalidInputError(`neighbour sub-images: choice ${choice} is not 0–7`);
        const [p, q] = NEIGHBOR_PAIRS[choice];
        // Cell pixel k sits at row 2i + (k >> 1), column 2j + (k & 1).
        const from1 = (2 * i + (p >> 1)) * w + 2 * j + (p & 1);
        const from2 = (2 * i + (q >> 1)) * w + 2 * j + (q & 1);
        for (let ch = 0; ch < c; ch++) {
          const src = (b * c + ch) * h * w;
          const dst = ((b * c + ch) * h2 + i) * w2 + j;
          first[dst] = data[src + from1];
          second[dst] = data[src + from2];
        }
      }
    }
  }
  return { first, second };
}
