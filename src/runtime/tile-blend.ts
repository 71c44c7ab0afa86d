/**
 * Stitching tile outputs. Exact tilings (tiling.ts) paste each tile's core. Approximate ones (SCUNet, whose
 * output depends on the tile grid) blend instead: every tile contributes its whole window, weighted by a ramp that
 * rises from 0 at a window edge inside the image to 1 at `ramp` pixels from it (edges on the image border get
 * full weight), and the sum is normalised. Seams fade over the overlap instead of showing as steps.
 */
import { paddedChannels } from '../gpu/tensor';
import type { Tile } from './tiling';

/** Weight along one axis of a window of `size` output pixels, for local coordinate `u`. */
export function rampWeight(u: number, size: number, ramp: number, openStart: boolean, openEnd: boolean): number {
  const fromStart = openStart ? u + 0.5 : Number.POSITIVE_INFINITY;
  const fromEnd = openEnd ? size - u - 0.5 : Number.POSITIVE_INFINITY;
  return Math.min(1, Math.min(fromStart, fromEnd) / ramp);
}

/**
 * Accumulates weighted tile outputs into planar (CHW) sums and per-pixel weights; the output sink divides them
 * (layout.ts `fromBlend`).
 */
export class FeatherBlender {
  readonly weights: Float32Array;

  constructor(
    /** Zeros, channels × height × width: the weighted sums. */
    readonly sums: Float32Array,
    private readonly channels: number,
    private readonly height: number,
    private readonly width: number,
    /** Input size, to tell window edges on the image border (full weight) from inner ones. */
    private readonly input: { width: number; height: number },
    private readonly scale: number,
    private readonly ramp: number,
  ) {
    this.weights = new Float32Array(height * width);
  }

  /** Adds a tile's output, as the plan returns it: NHWC [1, tileHeight, tileWidth, channels padded to 4]. */
  add(tile: Tile, tileOut: Float32Array, tileHeight: number, tileWidth: number): void {
    const s = this.scale;
    const cp = paddedChannels(this.channels);
    const wy = Array.from({ length: tileHeight }, (_, v) =>
      rampWeight(v, tileHeight, this.ramp, tile.wy0 > 0, tile.wy1 < this.input.height),
    );
    const wx = Array.from({ length: tileWidth }, (_, u) => rampWeight(u, tileWidth, this.ramp, tile.wx0 > 0, tile.wx1 < this.input.width));
    const oy = tile.wy0 * s;
    const ox = tile.wx0 * s;
    for (let v = 0; v < tileHeight; v++) {
      for (let u = 0; u < tileWidth; u++) {
        const w = wy[v] * wx[u];
        if (w === 0) continue;
        const p = (oy + v) * this.width + ox + u;
        this.weights[p] += w;
        const from = (v * tileWidth + u) * cp;
        for (let c = 0; c < this.channels; c++) {
          this.sums[c * this.height * this.width + p] += w * tileOut[from + c];
        }
      }
    }
  }
}
