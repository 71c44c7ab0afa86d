/**
 * PNG reading and writing for {@link RasterImage}. Browser-safe (no Node APIs).
 *
 * Decoding is done here (chunk walk, CRC and Adler-32 checks, inflate (bounded-inflate.ts), unfiltering, Adam7,
 * sub-byte samples) so that every PNG colour type and bit depth is handled and corrupt or truncated
 * files are reported precisely. Encoding uses `fast-png`.
 *
 * Memory is bounded by the header: an image over 2^28 pixels is refused from IHDR, image data too
 * short to expand to the declared rows is refused before anything is allocated, and the IDAT stream is
 * inflated into exactly height × (1 + row bytes) bytes (summed over the Adam7 passes when interlaced),
 * stopping at the first byte beyond (an IMAGE_FORMAT error), so a small file cannot expand into gigabytes.
 * Compressed text and ICC chunks (zTXt, iTXt, iCCP) are skipped without being inflated.
 *
 * What {@link decodePng} returns for each PNG colour type:
 *
 * | PNG colour type         | bit depths   | result                                                       |
 * | ----------------------- | ------------ | ------------------------------------------------------------ |
 * | grayscale               | 1, 2, 4      | 1 channel, 8-bit, scaled to 0..255 (× 255, 85 or 17)         |
 * | grayscale               | 8, 16        | 1 channel, same bit depth                                    |
 * | gray + alpha            | 8, 16        | 1 channel + `alpha` plane, same bit depth                    |
 * | RGB                     | 8, 16        | 3 channels, same bit depth                                   |
 * | RGBA                    | 8, 16        | 3 channels + `alpha` plane, same bit depth                   |
 * | palette (indexed)       | 1, 2, 4, 8   | 8-bit; 1 channel when every PLTE entry is gray (R = G = B),  |
 * |                         |              | otherwise 3 channels (RGB); palette alpha (tRNS) becomes an  |
 * |                         |              | 8-bit `alpha` plane                                          |
 *
 * Alpha is kept apart from the colour channels (the `alpha` plane of {@link RasterImage}), never composited,
 * so that it passes through processing untouched and {@link encodePng} writes it back. A colour-key `tRNS`
 * on gray/RGB images, `gAMA`, `sBIT`, ICC profiles and other ancillary chunks are ignored (sample values are
 * returned as stored, like PIL does). For an animated PNG the default image is returned. 16-bit data is kept
 * as 16-bit (never silently reduced to 8 bits).
 */
import { encode as fastPngEncode } from 'fast-png';

import { InflateError } from '../compression/inflate';
import { ImageFormatError, InvalidInputError } from '../errors';
import { MAX_DEFLATE_RATIO, unzlibInto } from './bounded-inflate';
import { type RasterImage, validateRaster } from './image';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] as const;

/** True when `bytes` starts with the 8-byte PNG signature. */
export function isPng(bytes: Uint8Array): boolean {
  if (bytes.length < PNG_SIGNATURE.length) return false;
  for (let i = 0; i < PNG_SIGNATURE.length; i++) if (bytes[i] !== PNG_SIGNATURE[i]) return false;
  return true;
}

function hex(bytes: Uint8Array, n: number): string {
  const parts: string[] = [];
  for (let i = 0; i < Math.min(n, bytes.length); i++) parts.push(bytes[i].toString(16).padStart(2, '0'));
  return parts.join(' ');
}

function ascii(bytes: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < Math.min(end, bytes.length); i++) s += String.fromCharCode(bytes[i]);
  return s;
}

function startsWith(bytes: Uint8Array, prefix: readonly number[], at = 0): boolean {
  if (bytes.length < at + prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[at + i] !== prefix[i]) return false;
  return true;
}

function isMostlyText(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, 64);
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const b = bytes[i];
    if (!(b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127))) return false;
  }
  return true;
}

/**
 * A short human-readable description of what `bytes` look like (used in "not a PNG" messages):
 * "it is empty", "it looks like a JPEG file", ... always followed by the first bytes in hex.
 */
export function describeImageBytes(bytes: Uint8Array): string {
  if (bytes.length === 0) return 'it is empty (0 bytes)';
  const first = `first bytes: ${hex(bytes, 8)}`;
  let kind: string | undefined;
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) kind = 'a JPEG file';
  else if (ascii(bytes, 0, 6) === 'GIF87a' || ascii(bytes, 0, 6) === 'GIF89a') kind = 'a GIF file';
  else if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) kind = 'a TIFF file';
  else if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') kind = 'a WebP file';
  else if (ascii(bytes, 0, 2) === 'BM') kind = 'a BMP file';
  else if (ascii(bytes, 4, 12) === 'ftypavif') kind = 'an AVIF file';
  else if (startsWith(bytes, [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20])) kind = 'a JPEG 2000 file';
  else if (startsWith(bytes, [0x50, 0x4b, 0x03, 0x04])) kind = 'a ZIP archive (e.g. a PyTorch checkpoint)';
  else if (startsWith(bytes, [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59])) kind = 'a NumPy .npy file';
  else if (startsWith(bytes, [0x1f, 0x8b])) kind = 'a gzip file';
  else if (ascii(bytes, 1, 4) === 'PNG')
    kind = 'a PNG file whose signature was altered (e.g. by a text-mode transfer that rewrote line endings)';
  else if (ascii(bytes, 0, 24) === 'version https://git-lfs.') kind = 'a Git LFS pointer file (run `git lfs pull` to fetch the real image)';
  else if (isMostlyText(bytes)) {
    const head = ascii(bytes, 0, 40).replace(/\s+/g, ' ').trim();
    kind = /^<(!doctype|html|\?xml|svg)/i.test(head) ? `an HTML/XML/SVG text file ("${head}")` : `text ("${head}")`;
  }
  const size = `${bytes.length} byte${bytes.length === 1 ? '' : 's'}`;
  return kind ? `it looks like ${kind}; ${size}, ${first}` : `${size}, ${first}`;
}

// ---------------------------------------------------------------------------------------------------
// Checksums
// ---------------------------------------------------------------------------------------------------

let crcTable: Uint32Array | undefined;

function getCrcTable(): Uint32Array {
  if (crcTable) return crcTable;
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  crcTable = t;
  return t;
}

/** CRC-32 (ISO 3309 / PNG) of `bytes[start, end)`. */
function crc32(bytes: Uint8Array, start: number, end: number): number {
  const t = getCrcTable();
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Adler-32 (zlib) of `bytes`. */
function adler32(bytes: Uint8Array): number {
  let a = 1;
  let b = 0;
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    // 3800 keeps b below 2^31 before the modulo (a, b < 65521 at block start).
    const end = Math.min(i + 3800, n);
    for (; i < end; i++) {
      a += bytes[i];
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;
}

// ---------------------------------------------------------------------------------------------------
// Chunk walk
// ---------------------------------------------------------------------------------------------------

const COLOR_GRAY = 0;
const COLOR_RGB = 2;
const COLOR_PALETTE = 3;
const COLOR_GRAY_ALPHA = 4;
const COLOR_RGBA = 6;

const ALLOWED_DEPTHS: Record<number, readonly number[]> = {
  [COLOR_GRAY]: [1, 2, 4, 8, 16],
  [COLOR_RGB]: [8, 16],
  [COLOR_PALETTE]: [1, 2, 4, 8],
  [COLOR_GRAY_ALPHA]: [8, 16],
  [COLOR_RGBA]: [8, 16],
};

const SAMPLES_PER_PIXEL: Record<number, number> = {
  [COLOR_GRAY]: 1,
  [COLOR_RGB]: 3,
  [COLOR_PALETTE]: 1,
  [COLOR_GRAY_ALPHA]: 2,
  [COLOR_RGBA]: 4,
};

/** Refuse images whose decoded size would not fit comfortably in one typed array. */
const MAX_PIXELS = 1 << 28;

interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlace: number;
}

interface PngChunks {
  header: PngHeader;
  /** RGB triplets, or undefined when there is no PLTE chunk. */
  palette?: Uint8Array;
  /** The tRNS payload (per-entry alpha for palette images), or undefined. */
  transparency?: Uint8Array;
  /** Concatenated IDAT payloads (the zlib stream). */
  idat: Uint8Array;
}

function isLetter(b: number): boolean {
  return (b >= 65 && b <= 90) || (b >= 97 && b <= 122);
}

function readChunks(bytes: Uint8Array, name: string): PngChunks {
  const fail = (msg: string): never => {
    throw new ImageFormatError(`${name}: ${msg}`);
  };
  let header: PngHeader | undefined;
  let palette: Uint8Array | undefined;
  let transparency: Uint8Array | undefined;
  const idatParts: Uint8Array[] = [];
  let idatLength = 0;
  let pos = PNG_SIGNATURE.length;
  let sawEnd = false;
  while (!sawEnd) {
    if (pos + 8 > bytes.length) {
      fail(
        `PNG file is truncated: it ends at byte ${bytes.length} ` +
          `${pos === bytes.length ? 'before' : 'inside the header of'} the next chunk, without an IEND chunk`,
      );
    }
    const length = readU32(bytes, pos);
    const type = ascii(bytes, pos + 4, pos + 8);
    if (![4, 5, 6, 7].every((k) => isLetter(bytes[pos + k]))) {
      fail(`PNG file is corrupt: invalid chunk type ${JSON.stringify(type)} at byte ${pos}`);
    }
    if (length > 0x7fffffff) fail(`PNG file is corrupt: chunk '${type}' at byte ${pos} has invalid length ${length}`);
    const dataStart = pos + 8;
    const dataEnd = dataStart + length;
    if (dataEnd + 4 > bytes.length) {
      fail(
        `PNG file is truncated: chunk '${type}' at byte ${pos} declares ${length} data bytes (+4 CRC), ` +
          `but the file ends after ${Math.max(0, bytes.length - dataStart)}`,
      );
    }
    const storedCrc = readU32(bytes, dataEnd);
    const actualCrc = crc32(bytes, pos + 4, dataEnd);
    if (storedCrc !== actualCrc) {
      fail(
        `PNG file is corrupt: CRC mismatch in chunk '${type}' at byte ${pos} ` +
          `(stored ${storedCrc.toString(16).padStart(8, '0')}, computed ${actualCrc.toString(16).padStart(8, '0')})`,
      );
    }
    if (header === undefined && type !== 'IHDR') fail(`PNG file is corrupt: first chunk is '${type}', expected 'IHDR'`);

    switch (type) {
      case 'IHDR': {
        if (header !== undefined) fail('PNG file is corrupt: more than one IHDR chunk');
        if (length !== 13) fail(`PNG file is corrupt: IHDR chunk has length ${length}, expected 13`);
        const h: PngHeader = {
          width: readU32(bytes, dataStart),
          height: readU32(bytes, dataStart + 4),
          bitDepth: bytes[dataStart + 8],
          colorType: bytes[dataStart + 9],
          interlace: bytes[dataStart + 12],
        };
        const compression = bytes[dataStart + 10];
        const filter = bytes[dataStart + 11];
        if (h.width === 0 || h.height === 0 || h.width > 0x7fffffff || h.height > 0x7fffffff) {
          fail(`PNG file is corrupt: invalid image size ${h.width}x${h.height}`);
        }
        const depths = ALLOWED_DEPTHS[h.colorType];
        if (depths === undefined) fail(`PNG file is corrupt: unknown colour type ${h.colorType}`);
        if (!depths.includes(h.bitDepth)) {
          fail(`PNG file is corrupt: bit depth ${h.bitDepth} is not allowed for colour type ${h.colorType}`);
        }
        if (compression !== 0) fail(`unsupported PNG compression method ${compression}`);
        if (filter !== 0) fail(`unsupported PNG filter method ${filter}`);
        if (h.interlace !== 0 && h.interlace !== 1) fail(`unsupported PNG interlace method ${h.interlace}`);
        if (h.width * h.height > MAX_PIXELS) {
          fail(`PNG image is too large to decode: ${h.width}x${h.height} pixels (limit ${MAX_PIXELS})`);
        }
        header = h;
        break;
      }
      case 'PLTE': {
        if (length % 3 !== 0 || length === 0 || length > 256 * 3) {
          fail(`PNG file is corrupt: PLTE chunk has length ${length} (must be 3, 6, ..., 768)`);
        }
        palette = bytes.subarray(dataStart, dataEnd);
        break;
      }
      case 'tRNS':
        transparency = bytes.subarray(dataStart, dataEnd);
        break;
      case 'IDAT':
        idatParts.push(bytes.subarray(dataStart, dataEnd));
        idatLength += length;
        break;
      case 'IEND':
        sawEnd = true;
        break;
      default:
        // Ancillary chunks (first letter lower case) are skipped; an unknown critical chunk means we cannot
        // read the image correctly.
        if (!(bytes[pos + 4] & 0x20)) fail(`unsupported critical PNG chunk '${type}' at byte ${pos}`);
    }
    pos = dataEnd + 4;
  }
  const hdr = header as PngHeader;
  if (idatParts.length === 0) fail('PNG file is corrupt: it has no IDAT (image data) chunk');
  if (hdr.colorType === COLOR_PALETTE && palette === undefined) {
    fail('PNG file is corrupt: indexed-colour image without a PLTE (palette) chunk');
  }
  let idat: Uint8Array;
  if (idatParts.length === 1) idat = idatParts[0];
  else {
    idat = new Uint8Array(idatLength);
    let o = 0;
    for (const p of idatParts) {
      idat.set(p, o);
      o += p.length;
    }
  }
  const chunks: PngChunks = { header: hdr, idat };
  if (palette !== undefined) chunks.palette = palette;
  if (transparency !== undefined) chunks.transparency = transparency;
  return chunks;
}

// ---------------------------------------------------------------------------------------------------
// Pixel data
// ---------------------------------------------------------------------------------------------------

interface Pass {
  x0: number;
  y0: number;
  dx: number;
  dy: number;
}

const NO_INTERLACE: readonly Pass[] = [{ x0: 0, y0: 0, dx: 1, dy: 1 }];
const ADAM7: readonly Pass[] = [
  { x0: 0, y0: 0, dx: 8, dy: 8 },
  { x0: 4, y0: 0, dx: 8, dy: 8 },
  { x0: 0, y0: 4, dx: 4, dy: 8 },
  { x0: 2, y0: 0, dx: 4, dy: 4 },
  { x0: 0, y0: 2, dx: 2, dy: 4 },
  { x0: 1, y0: 0, dx: 2, dy: 2 },
  { x0: 0, y0: 1, dx: 1, dy: 2 },
];

function passSize(p: Pass, width: number, height: number): [number, number] {
  const w = width > p.x0 ? Math.ceil((width - p.x0) / p.dx) : 0;
  const h = height > p.y0 ? Math.ceil((height - p.y0) / p.dy) : 0;
  return [w, h];
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  if (pb <= pc) return b;
  return c;
}

/**
 * Undoes the scanline filter of the row whose filter byte is at `raw[rowStart]` in place. `prevStart` is the
 * index of the previous (already unfiltered) row's first data byte, or -1 for the first row of a pass.
 */
function unfilterRow(
  raw: Uint8Array,
  rowStart: number,
  prevStart: number,
  rowBytes: number,
  bpp: number,
  fail: (msg: string) => never,
  rowLabel: () => string,
): void {
  const filter = raw[rowStart];
  const s = rowStart + 1;
  switch (filter) {
    case 0:
      return;
    case 1: // Sub
      for (let i = bpp; i < rowBytes; i++) raw[s + i] = (raw[s + i] + raw[s + i - bpp]) & 0xff;
      return;
    case 2: // Up
      if (prevStart < 0) return;
      for (let i = 0; i < rowBytes; i++) raw[s + i] = (raw[s + i] + raw[prevStart + i]) & 0xff;
      return;
    case 3: // Average
      if (prevStart < 0) {
        for (let i = bpp; i < rowBytes; i++) raw[s + i] = (raw[s + i] + (raw[s + i - bpp] >> 1)) & 0xff;
      } else {
        for (let i = 0; i < bpp && i < rowBytes; i++) raw[s + i] = (raw[s + i] + (raw[prevStart + i] >> 1)) & 0xff;
        for (let i = bpp; i < rowBytes; i++) {
          raw[s + i] = (raw[s + i] + ((raw[s + i - bpp] + raw[prevStart + i]) >> 1)) & 0xff;
        }
      }
      return;
    case 4: // Paeth
      if (prevStart < 0) {
        // With no row above, Paeth reduces to Sub.
        for (let i = bpp; i < rowBytes; i++) raw[s + i] = (raw[s + i] + raw[s + i - bpp]) & 0xff;
      } else {
        for (let i = 0; i < bpp && i < rowBytes; i++) raw[s + i] = (raw[s + i] + raw[prevStart + i]) & 0xff;
        for (let i = bpp; i < rowBytes; i++) {
          raw[s + i] = (raw[s + i] + paeth(raw[s + i - bpp], raw[prevStart + i], raw[prevStart + i - bpp])) & 0xff;
        }
      }
      return;
    default:
      fail(`PNG file is corrupt: invalid filter type ${filter} on ${rowLabel()}`);
  }
}

/**
 * Decodes PNG bytes into a {@link RasterImage} (see the module comment for how each colour type maps).
 *
 * @param bytes the whole file.
 * @param name  used in error messages (e.g. the file name); defaults to `'input'`.
 * @throws ImageFormatError when the bytes are not a PNG ("<name> is not a PNG file (...)", saying what they
 *   look like instead: JPEG, GIF, TIFF, empty, text, ...) or when the PNG is truncated or corrupt (the
 *   message names the chunk, byte offset or row, and the cause).
 * @throws InvalidInputError when `bytes` is not a `Uint8Array`.
 */
export function decodePng(bytes: Uint8Array, name = 'input'): RasterImage {
  if (!(bytes instanceof Uint8Array)) {
    throw new InvalidInputError(`decodePng: ${name} must be a Uint8Array of file bytes`);
  }
  if (!isPng(bytes)) {
    throw new ImageFormatError(`${name} is not a PNG file (${describeImageBytes(bytes)})`);
  }
  const fail = (msg: string): never => {
    throw new ImageFormatError(`${name}: ${msg}`);
  };

  const { header, palette, transparency, idat } = readChunks(bytes, name);
  const { width, height, bitDepth, colorType } = header;
  const samples = SAMPLES_PER_PIXEL[colorType];
  const bitsPerPixel = samples * bitDepth;
  const bpp = Math.max(1, bitsPerPixel >> 3);
  const passes = header.interlace === 1 ? ADAM7 : NO_INTERLACE;

  let expectedRaw = 0;
  for (const p of passes) {
    const [pw, ph] = passSize(p, width, height);
    if (pw > 0 && ph > 0) expectedRaw += ph * (1 + Math.ceil((pw * bitsPerPixel) / 8));
  }

  // Decompression is bounded by what the header implies (see bounded-inflate.ts): first refuse image data
  // too short to expand to the rows at all, before allocating them, then inflate into exactly that many bytes.
  const maxInflated = idat.length * MAX_DEFLATE_RATIO;
  if (maxInflated < expectedRaw) {
    fail(
      `PNG image data is truncated: ${idat.length} compressed bytes can expand to at most ${maxInflated}, ` +
        `${width}x${height} needs ${expectedRaw}`,
    );
  }
  const raw = new Uint8Array(expectedRaw);
  let inflated: { produced: number; overrun: boolean };
  try {
    inflated = unzlibInto(idat, raw);
  } catch (err) {
    // A stream cut off before the last row is missing rows, like one that ends early: say how many bytes came.
    if (err instanceof InflateError && err.failure === 'truncated' && err.produced < expectedRaw) {
      fail(`PNG image data is truncated: ${err.produced} bytes after decompression, ` + `${width}x${height} needs ${expectedRaw}`);
    }
    const why = err instanceof Error ? err.message : String(err);
    throw new ImageFormatError(`${name}: PNG image data is corrupt or truncated (inflate failed: ${why})`, {
      cause: err,
    });
  }
  if (inflated.overrun) {
    fail(
      `PNG image data is corrupt: it decompresses to more than the ${expectedRaw} bytes that ` +
        `${width}x${height} needs (trailing data after the last row; decoding stopped there)`,
    );
  }
  if (inflated.produced < expectedRaw) {
    fail(`PNG image data is truncated: ${inflated.produced} bytes after decompression, ` + `${width}x${height} needs ${expectedRaw}`);
  }
  if (idat.length >= 6) {
    const stored = readU32(idat, idat.length - 4);
    const actual = adler32(raw);
    if (stored !== actual) {
      fail(
        `PNG image data is corrupt: zlib checksum mismatch (stored ${stored.toString(16).padStart(8, '0')}, ` +
          `computed ${actual.toString(16).padStart(8, '0')})`,
      );
    }
  }

  // Output layout.
  let outChannels: 1 | 3;
  let outDepth: 8 | 16 = bitDepth === 16 ? 16 : 8;
  let lut: Uint8Array | undefined; // palette index (or sub-byte gray value) -> output values
  let paletteSize = 0;
  if (colorType === COLOR_PALETTE) {
    const pal = palette as Uint8Array;
    paletteSize = pal.length / 3;
    let allGray = true;
    for (let i = 0; i < paletteSize; i++) {
      if (pal[3 * i] !== pal[3 * i + 1] || pal[3 * i] !== pal[3 * i + 2]) {
        allGray = false;
        break;
      }
    }
    outChannels = allGray ? 1 : 3;
    outDepth = 8;
    if (allGray) {
      lut = new Uint8Array(paletteSize);
      for (let i = 0; i < paletteSize; i++) lut[i] = pal[3 * i];
    } else {
      lut = pal;
    }
  } else {
    outChannels = colorType === COLOR_RGB || colorType === COLOR_RGBA ? 3 : 1;
    if (bitDepth < 8) {
      const maxIn = (1 << bitDepth) - 1;
      lut = new Uint8Array(maxIn + 1);
      for (let v = 0; v <= maxIn; v++) lut[v] = (v * 255) / maxIn; // exact: 255 is divisible by 1, 3, 15
    }
  }

  const out = outDepth === 16 ? new Uint16Array(width * height * outChannels) : new Uint8Array(width * height * outChannels);
  // Alpha: the last sample of gray+alpha / RGBA pixels, or the palette's tRNS entries (missing ones are opaque).
  const alphaSample = colorType === COLOR_GRAY_ALPHA || colorType === COLOR_RGBA ? samples - 1 : -1;
  let paletteAlpha: Uint8Array | undefined;
  if (colorType === COLOR_PALETTE && transparency !== undefined && transparency.length > 0) {
    paletteAlpha = new Uint8Array(256).fill(255);
    paletteAlpha.set(transparency.subarray(0, Math.min(transparency.length, paletteSize)));
  }
  const hasAlpha = alphaSample >= 0 || paletteAlpha !== undefined;
  const alpha = !hasAlpha ? undefined : outDepth === 16 ? new Uint16Array(width * height) : new Uint8Array(width * height);
  const mask = (1 << bitDepth) - 1;

  let rowStart = 0;
  for (let pi = 0; pi < passes.length; pi++) {
    const p = passes[pi];
    const [pw, ph] = passSize(p, width, height);
    if (pw === 0 || ph === 0) continue;
    const rowBytes = Math.ceil((pw * bitsPerPixel) / 8);
    let prevStart = -1;
    for (let py = 0; py < ph; py++) {
      const rowLabel = () => (passes.length > 1 ? `row ${py} of Adam7 pass ${pi + 1}` : `row ${py}`);
      unfilterRow(raw, rowStart, prevStart, rowBytes, bpp, fail, rowLabel);
      const s = rowStart + 1;
      const y = p.y0 + py * p.dy;
      for (let px = 0; px < pw; px++) {
        const x = p.x0 + px * p.dx;
        const o = (y * width + x) * outChannels;
        if (bitDepth === 8) {
          const b = s + px * samples;
          if (colorType === COLOR_PALETTE) {
            const idx = raw[b];
            if (idx >= paletteSize) {
              fail(`PNG file is corrupt: pixel (${x}, ${y}) uses palette index ${idx}, but the palette has ${paletteSize} entries`);
            }
            if (outChannels === 1) out[o] = (lut as Uint8Array)[idx];
            else {
              out[o] = (lut as Uint8Array)[3 * idx];
              out[o + 1] = (lut as Uint8Array)[3 * idx + 1];
              out[o + 2] = (lut as Uint8Array)[3 * idx + 2];
            }
            if (paletteAlpha) (alpha as Uint8Array)[y * width + x] = paletteAlpha[idx];
          } else {
            for (let c = 0; c < outChannels; c++) out[o + c] = raw[b + c];
            if (alphaSample >= 0) (alpha as Uint8Array)[y * width + x] = raw[b + alphaSample];
          }
        } else if (bitDepth === 16) {
          const b = s + px * samples * 2;
          for (let c = 0; c < outChannels; c++) out[o + c] = (raw[b + 2 * c] << 8) | raw[b + 2 * c + 1];
          if (alphaSample >= 0) {
            (alpha as Uint16Array)[y * width + x] = (raw[b + 2 * alphaSample] << 8) | raw[b + 2 * alphaSample + 1];
          }
        } else {
          // 1, 2 or 4 bits, one sample per pixel (gray or palette index), most significant bits first.
          const bit = px * bitDepth;
          const v = (raw[s + (bit >> 3)] >> (8 - bitDepth - (bit & 7))) & mask;
          if (colorType === COLOR_PALETTE) {
            if (v >= paletteSize) {
              fail(`PNG file is corrupt: pixel (${x}, ${y}) uses palette index ${v}, but the palette has ${paletteSize} entries`);
            }
            if (outChannels === 1) out[o] = (lut as Uint8Array)[v];
            else {
              out[o] = (lut as Uint8Array)[3 * v];
              out[o + 1] = (lut as Uint8Array)[3 * v + 1];
              out[o + 2] = (lut as Uint8Array)[3 * v + 2];
            }
            if (paletteAlpha) (alpha as Uint8Array)[y * width + x] = paletteAlpha[v];
          } else {
            out[o] = (lut as Uint8Array)[v];
          }
        }
      }
      prevStart = s;
      rowStart = s + rowBytes;
    }
  }

  const image: RasterImage = { width, height, channels: outChannels, bitDepth: outDepth, data: out };
  if (alpha) image.alpha = alpha;
  return image;
}

/**
 * Encodes a {@link RasterImage} as a non-interlaced PNG at the image's own bit depth (8 or 16 bits per
 * sample): grayscale or RGB, or gray+alpha / RGBA when the image has an `alpha` plane.
 *
 * @throws InvalidInputError when the image is malformed (see `validateRaster`).
 * @throws ImageFormatError for float32 samples, which PNG cannot store (write a TIFF instead).
 */
export function encodePng(img: RasterImage): Uint8Array {
  if ((img as { bitDepth: number }).bitDepth === 32) {
    throw new ImageFormatError('PNG cannot store 32-bit float samples: write a TIFF, or convert with floatToRaster(…, 16)');
  }
  validateRaster(img);
  const { width, height, channels, alpha } = img;
  if (alpha === undefined) {
    return fastPngEncode({ width, height, channels, depth: img.bitDepth, data: img.data });
  }
  // fast-png takes interleaved samples: append alpha as the last sample of each pixel.
  const n = width * height;
  const k = channels + 1;
  const data = img.bitDepth === 16 ? new Uint16Array(n * k) : new Uint8Array(n * k);
  const src = img.data;
  for (let i = 0, j = 0, o = 0; i < n; i++, o += k) {
    for (let c = 0; c < channels; c++) data[o + c] = src[j++];
    data[o + channels] = alpha[i];
  }
  return fastPngEncode({ width, height, channels: k, depth: img.bitDepth, data });
}
