/**
 * Splitting an image into tiles a device can hold, so that stitching the tiles' outputs gives the untiled result.
 *
 * A tile's output is exact wherever every input pixel it depends on lies inside the tile: the tile's own border
 * effects (zero padding where the whole image has real pixels) reach inward only as far as the receptive field.
 * So each tile keeps a *core* (the output region it is responsible for) and reads a *window* = core + halo on
 * each side, clipped to the image. Window origins are multiples of the network's total stride (`alignment`), so
 * pooling and strided layers see the same grid as in the whole image; window ends are free, except that a core
 * ending at the image border makes its window end there too (the network then sees the real border).
 *
 * For purely convolutional networks (DnCNN, the U-Nets, the SR generators) a halo ≥ the receptive-field radius
 * makes tiling exact. SCUNet's shifted windows and its padding to multiples of 64 make it depend on the tile
 * grid, so its tiles are only approximately equal to the whole image: they overlap by the halo and are blended
 * with feathered weights (tile-blend.ts) instead of pasted.
 */
import { InvalidInputError } from '../errors';
import type { Network } from '../models/network';

export interface TilingSpec {
  /** Window origins are multiples of this (in input pixels): the network's total stride. */
  alignment: number;
  /** Input pixels of context on each side of a core. */
  halo: number;
  /** Whether stitched tiles equal the untiled output (up to float rounding). */
  exact: boolean;
  /** Smallest window side the network accepts. */
  minSize: number;
}

export interface Tile {
  /** Core (output responsibility) in input pixels: [x0, x1) × [y0, y1). */
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  /** Window read from the input: [wx0, wx1) × [wy0, wy1). */
  wx0: number;
  wx1: number;
  wy0: number;
  wy1: number;
}

const roundUp = (v: number, m: number) => Math.ceil(v / m) * m;

/** Cores of `coreSize` (a multiple of the alignment) along one axis, with their windows. */
function axisTiles(size: number, coreSize: number, spec: TilingSpec): [number, number, number, number][] {
  const halo = roundUp(spec.halo, spec.alignment);
  const out: [number, number, number, number][] = [];
  for (let c0 = 0; c0 < size; c0 += coreSize) {
    const c1 = Math.min(size, c0 + coreSize);
    let w0 = Math.max(0, c0 - halo);
    let w1 = Math.min(size, c1 + spec.halo);
    // Windows smaller than the network allows (a thin last core at a small image) grow towards the inside.
    if (w1 - w0 < spec.minSize) {
      w0 = Math.max(0, Math.floor((w1 - spec.minSize) / spec.alignment) * spec.alignment);
      w1 = Math.min(size, w0 + Math.max(spec.minSize, w1 - w0));
    }
    out.push([c0, c1, w0, w1]);
  }
  return out;
}

/** The tiles covering a width × height image with cores of about `coreSize` pixels. */
export function planTiles(width: number, height: number, coreSize: number, spec: TilingSpec): Tile[] {
  if (!Number.isInteger(coreSize) || coreSize < 1) throw new InvalidInputError(`tile size ${coreSize} must be a positive integer`);
  const core = Math.max(spec.alignment, Math.floor(coreSize / spec.alignment) * spec.alignment);
  const tiles: Tile[] = [];
  for (const [y0, y1, wy0, wy1] of axisTiles(height, core, spec)) {
    for (const [x0, x1, wx0, wx1] of axisTiles(width, core, spec)) tiles.push({ x0, x1, y0, y1, wx0, wx1, wy0, wy1 });
  }
  return tiles;
}

interface Configured {
  config?: Record<string, number>;
}

/**
 * Receptive-field radius (rounded up generously) and stride of each architecture, from its config. The radius
 * sums, over the layers on the longest path, (kernel − 1)/2 · dilation · the layer's stride relative to the input.
 */
export function tilingFor(network: Network): TilingSpec {
  const c = (network as Network & Configured).config ?? {};
  switch (network.architecture) {
    case 'DnCNN':
      return { alignment: 1, halo: c.nb + 1, exact: true, minSize: 1 };
    case 'DnCNN-cszn':
    case 'DnCNN-SaoYan':
    case 'DnCNNVariant':
      return { alignment: 1, halo: c.depth + 1, exact: true, minSize: 1 };
    case 'UNet':
      // Per level l (stride 2^l): two 3×3 convs down and two up (4·2^l), a pool and an upsampling (~3·2^l).
      return { alignment: 16, halo: 7 * (1 + 2 + 4 + 8) + 2 * 16 + 16, exact: true, minSize: 16 };
    case 'N2VUNet': {
      // As the U-Net: per level l two 3×3 convs down and two up plus a pool (N2V2: max 2×2 then a 3×3 blur) and
      // an upsampling; the bottleneck at stride 2^depth. Doubled for margin, in whole strides.
      const stride = 2 ** c.depth;
      const radius = 8 * (stride - 1) + 3 * stride;
      return { alignment: stride, halo: Math.ceil((2 * radius) / stride) * stride, exact: true, minSize: stride };
    }
    case 'ResNet34UNet':
      // ResNet34's receptive field is ~900 px wide; the decoder adds ~130 px.
      return { alignment: 32, halo: 608, exact: true, minSize: 32 };
    case 'MSRResNet':
      return { alignment: 1, halo: 2 * c.blocks + 6, exact: true, minSize: 1 };
    case 'SRResNet':
      return { alignment: 1, halo: 2 * c.blocks + 12, exact: true, minSize: 1 };
    case 'RRDBNet': {
      // 15 convolutions per RRDB at the trunk's resolution, which is 4/scale times coarser than the input.
      const f = 4 / c.scale;
      return { alignment: f, halo: (15 * c.numBlock + 6) * f, exact: true, minSize: f };
    }
    case 'SCUNet':
      return { alignment: 64, halo: 64, exact: false, minSize: 1 };
    default:
      return { alignment: 8, halo: 64, exact: false, minSize: 8 };
  }
}
