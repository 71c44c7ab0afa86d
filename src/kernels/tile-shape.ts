/**
 * Tile-grid arithmetic shared by the kernels' variant tables (conv2d, conv_transpose2d): on CPU adapters a tile
 * that overhangs the row, or a workgroup that the tiles do not fill, costs real SIMD lanes.
 */

/**
 * The pixel tile for rows of `width` pixels, at most `max`: from a fixed set (each size is a shader of its own
 * to compile), the one that wastes the fewest columns past the row's end, the larger on a tie.
 */
export function evenTile(width: number, max: number): number {
  if (width <= max && width <= 8) return width;
  const candidates = [32, 28, 25, 24, 20, 16, 14, 12, 10, 8].filter((c) => c <= max);
  let best = candidates[0];
  let bestWaste = Infinity;
  for (const c of candidates) {
    const waste = Math.ceil(width / c) * c - width;
    if (waste < bestWaste) [best, bestWaste] = [c, waste];
  }
  return best;
}

/**
 * The largest workgroup (64, 32, 16 or 8 invocations) that `tiles` pixel tiles fill about as well as the
 * smallest: idle invocations past the last tile still cost their SIMD lanes.
 */
export function fillingWorkgroup(tiles: number): number {
  const idle = (wg: number) => Math.ceil(tiles / wg) * wg - tiles;
  const floor = idle(8);
  return [64, 32, 16, 8].find((wg) => idle(wg) <= floor + tiles / 16) ?? 8;
}
