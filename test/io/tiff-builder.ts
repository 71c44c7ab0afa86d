/**
 * Test-only: a minimal little-endian TIFF writer that stores the strip or tile bytes it is given as they
 * are, so that tests can hand the reader any compressed data (bombs, overruns) behind any header.
 * One gray page (one sample per pixel).
 */

export interface RawTiffPage {
  width: number;
  height: number;
  /** TIFF Compression: 1 none, 5 LZW, 8 Deflate, 32773 PackBits. */
  compression: number;
  /** Strips of this many rows (default: one strip for the whole image); ignored with `tile`. */
  rowsPerStrip?: number;
  /** Tile size; when given, `chunks` are tiles, left to right, top to bottom. */
  tile?: { width: number; height: number };
  /** The stored bytes of each strip or tile. */
  chunks: Uint8Array[];
  bitsPerSample?: number;
}

const SHORT = 3;
const LONG = 4;

interface Entry {
  tag: number;
  type: typeof SHORT | typeof LONG;
  values: number[];
}

/** The whole file: header, strip/tile data, then the IFD and the values that do not fit in it. */
export function buildRawTiff(page: RawTiffPage): Uint8Array {
  const dataStart = 8;
  const offsets: number[] = [];
  let pos = dataStart;
  for (const c of page.chunks) {
    offsets.push(pos);
    pos += c.length;
  }
  const counts = page.chunks.map((c) => c.length);
  const entries: Entry[] = [
    { tag: 256, type: LONG, values: [page.width] },
    { tag: 257, type: LONG, values: [page.height] },
    { tag: 258, type: SHORT, values: [page.bitsPerSample ?? 8] },
    { tag: 259, type: SHORT, values: [page.compression] },
    { tag: 262, type: SHORT, values: [1] }, // BlackIsZero
    { tag: 277, type: SHORT, values: [1] },
  ];
  if (page.tile) {
    entries.push(
      { tag: 322, type: LONG, values: [page.tile.width] },
      { tag: 323, type: LONG, values: [page.tile.height] },
      { tag: 324, type: LONG, values: offsets },
      { tag: 325, type: LONG, values: counts },
    );
  } else {
    entries.push(
      { tag: 273, type: LONG, values: offsets },
      { tag: 278, type: LONG, values: [page.rowsPerStrip ?? page.height] },
      { tag: 279, type: LONG, values: counts },
    );
  }
  entries.sort((a, b) => a.tag - b.tag);

  const ifdStart = pos + (pos & 1); // IFDs start on a word boundary
  const ifdSize = 2 + 12 * entries.length + 4;
  let overflow = ifdStart + ifdSize;
  const total = overflow + entries.reduce((n, e) => n + (valueBytes(e) > 4 ? valueBytes(e) : 0), 0);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  out.set(Uint8Array.of(0x49, 0x49, 42, 0));
  dv.setUint32(4, ifdStart, true);
  page.chunks.forEach((c, i) => out.set(c, offsets[i]));
  dv.setUint16(ifdStart, entries.length, true);
  entries.forEach((e, k) => {
    const at = ifdStart + 2 + 12 * k;
    dv.setUint16(at, e.tag, true);
    dv.setUint16(at + 2, e.type, true);
    dv.setUint32(at + 4, e.values.length, true);
    let valueAt = at + 8;
    if (valueBytes(e) > 4) {
      dv.setUint32(at + 8, overflow, true);
      valueAt = overflow;
      overflow += valueBytes(e);
    }
    e.values.forEach((v, i) => {
      if (e.type === SHORT) dv.setUint16(valueAt + 2 * i, v, true);
      else dv.setUint32(valueAt + 4 * i, v, true);
    });
  });
  dv.setUint32(ifdStart + 2 + 12 * entries.length, 0, true); // no next IFD
  return out;
}

function valueBytes(e: Entry): number {
  return e.values.length * (e.type === SHORT ? 2 : 4);
}
