/**
 * Strip and tile geometry of a TIFF page, and the checks that keep decoding within what the header implies:
 * a bound on the tile size, and a check, before the page is allocated, that every strip or tile lies in the
 * file and that its compressed bytes could decode to the data it must hold. Together with codecs that never
 * produce more than a strip or tile holds (tiff-codecs.ts), a small file cannot make the reader allocate or
 * produce much more than the pixels its header declares. Browser-safe.
 */
import { maxDecodedBytes } from './tiff-codecs';
import { COMPRESSION, COMPRESSION_NAMES } from './tiff-tags';

export interface Layout {
  width: number;
  height: number;
  /** Samples per pixel in the file, extra samples included. */
  spp: number;
  bits: number;
  float: boolean;
  planar: boolean;
  compression: number;
  predictor: number;
  /** Chunk geometry: strips are tiles as wide as the image. */
  chunkWidth: number;
  chunkHeight: number;
  chunksAcross: number;
  chunksDown: number;
  offsets: number[];
  byteCounts: number[] | undefined;
  tiled: boolean;
}

/** Refuse images whose decoded size would not fit comfortably in typed arrays. */
export const MAX_SAMPLES = 2 ** 30;

/**
 * A tile side may exceed the image side (tiles are whole, usually 256 or 512 pixels, so small images have
 * padded tiles), but not by more than this or twice the image side, whichever is more: each tile is
 * decoded into a buffer of the full tile size, and a crafted header must not make a 1×1 image allocate
 * gigabytes for one tile.
 */
export const MAX_TILE_SIDE_FOR_SMALL_IMAGES = 2048;

/** Why the tile size of a `width`×`height` image with `samplesPerTilePixel` samples is refused, or undefined. */
export function tileSizeProblem(
  tileWidth: number,
  tileHeight: number,
  width: number,
  height: number,
  samplesPerTilePixel: number,
): string | undefined {
  const maxWidth = Math.max(2 * width, MAX_TILE_SIDE_FOR_SMALL_IMAGES);
  const maxHeight = Math.max(2 * height, MAX_TILE_SIDE_FOR_SMALL_IMAGES);
  if (tileWidth > maxWidth || tileHeight > maxHeight) {
    return (
      `tile size ${tileWidth}x${tileHeight} is too large for a ${width}x${height} image ` +
      `(limit ${maxWidth}x${maxHeight}: twice the image or ${MAX_TILE_SIDE_FOR_SMALL_IMAGES}, whichever is more)`
    );
  }
  if (tileWidth * tileHeight * samplesPerTilePixel > MAX_SAMPLES) {
    return `tile size ${tileWidth}x${tileHeight}x${samplesPerTilePixel} samples is too large (limit ${MAX_SAMPLES})`;
  }
  return undefined;
}

/** Bytes in one row of a strip or tile (of one sample plane when the layout is planar). */
export function chunkRowBytes(L: Layout): number {
  const samplesInChunk = L.planar ? 1 : L.spp;
  return Math.ceil((L.chunkWidth * samplesInChunk * L.bits) / 8);
}

/** Rows that strip or tile `index` must hold: tiles are always whole, the last strip of a plane may be shorter. */
export function chunkRows(L: Layout, index: number): number {
  if (L.tiled) return L.chunkHeight;
  const stripInPlane = index % (L.chunksAcross * L.chunksDown);
  return Math.min(L.chunkHeight, L.height - stripInPlane * L.chunkHeight);
}

/** 'strip' or 'tile', for messages. */
export function chunkLabel(L: Layout): string {
  return L.tiled ? 'tile' : 'strip';
}

function codecOf(compression: number): 'packbits' | 'lzw' | 'deflate' {
  if (compression === COMPRESSION.PACKBITS) return 'packbits';
  if (compression === COMPRESSION.LZW) return 'lzw';
  return 'deflate';
}

/**
 * Checks, before the page is allocated, that each of the first `chunkCount` strips or tiles lies in the
 * file and that its compressed bytes could decode to the bytes it must hold (see `maxDecodedBytes`).
 *
 * @param fail throws an ImageFormatError naming the page.
 */
export function checkChunksFit(bytes: Uint8Array, L: Layout, chunkCount: number, fail: (msg: string) => never): void {
  const rowBytes = chunkRowBytes(L);
  const label = chunkLabel(L);
  for (let index = 0; index < chunkCount; index++) {
    const where = `${label} ${index}`;
    const needed = chunkRows(L, index) * rowBytes;
    const offset = L.offsets[index];
    if (offset > bytes.length) {
      fail(`TIFF file is truncated: ${where} starts at byte ${offset}, beyond the end of the file (${bytes.length} bytes)`);
    }
    if (L.compression === COMPRESSION.NONE) {
      // Some writers store a byte count larger or smaller than needed; what matters is the data being there.
      if (offset + needed > bytes.length) {
        fail(`TIFF file is truncated: ${where} needs ${needed} bytes at byte ${offset}, the file ends at byte ${bytes.length}`);
      }
      continue;
    }
    const count = Math.max(0, L.byteCounts ? L.byteCounts[index] : needed);
    if (offset + count > bytes.length) {
      fail(`TIFF file is truncated: ${where} has ${count} compressed bytes at byte ${offset}, the file ends at byte ${bytes.length}`);
    }
    const most = maxDecodedBytes(codecOf(L.compression), count);
    if (most < needed) {
      fail(
        `${where} is truncated or corrupt: ${count} bytes of ${COMPRESSION_NAMES[L.compression]} data decode to at most ` +
          `${most} bytes, ${needed} needed`,
      );
    }
  }
}
