/**
 * TIFF strip/tile codecs: PackBits, LZW and Deflate decoding, and the horizontal (2) and floating-point (3)
 * predictors in both directions. Browser-safe.
 *
 * Each decoder fills a buffer of the size the strip or tile may have and never writes or produces more:
 * data that would decode past the end of the buffer is refused with {@link CodecOverrunError} (a
 * decompression bomb, or garbage after the real data), and a short stream is reported by returning how many
 * bytes it produced; the caller turns either into an error naming the strip.
 */
import { MAX_DEFLATE_RATIO, inflateInto, isZlibHeader, zlibDeflateData } from './bounded-inflate';

/** Thrown inside a codec; the TIFF reader adds the file, page and strip to the message. */
export class CodecError extends Error {}

/** The compressed data decodes to more bytes than the strip or tile holds. */
export class CodecOverrunError extends CodecError {
  constructor(capacity: number) {
    super(`the data decodes to more than the ${capacity} byte${capacity === 1 ? '' : 's'} the header implies; trailing data`);
  }
}

/**
 * The most bytes `compressedBytes` of data can decode to with each codec, used to refuse a header whose
 * image could not possibly be in the file before allocating it. PackBits: a 2-byte run gives at most 128
 * bytes. LZW: every code takes at least 9 bits and stands for at most 4096 bytes (the longest string a
 * 4096-entry table can hold). Deflate: see {@link MAX_DEFLATE_RATIO}.
 */
export function maxDecodedBytes(compression: 'packbits' | 'lzw' | 'deflate', compressedBytes: number): number {
  switch (compression) {
    case 'packbits':
      return Math.ceil(compressedBytes / 2) * 128;
    case 'lzw':
      return Math.ceil((compressedBytes * 8) / 9) * 4096;
    case 'deflate':
      return compressedBytes * MAX_DEFLATE_RATIO;
  }
}

/**
 * PackBits (Apple Macintosh RLE, TIFF compression 32773): a header byte n in 0..127 copies the next n + 1
 * bytes, n in -127..-1 repeats the next byte 1 - n times, and -128 is a no-op. Returns the bytes written;
 * a stream cut short inside a literal run keeps the bytes that are there.
 *
 * @throws CodecOverrunError when a run would go past the end of `dst`, or data follows once it is full
 *   (no-op bytes after the end are allowed: they produce nothing).
 */
export function unpackBits(src: Uint8Array, dst: Uint8Array): number {
  let i = 0;
  let o = 0;
  const n = src.length;
  const end = dst.length;
  while (i < n) {
    const h = src[i++];
    if (h === 128) continue;
    if (o === end) throw new CodecOverrunError(end);
    if (h < 128) {
      const count = h + 1;
      const available = Math.min(count, n - i);
      if (o + available > end) throw new CodecOverrunError(end);
      dst.set(src.subarray(i, i + available), o);
      i += count;
      o += available;
    } else {
      if (i >= n) break;
      const count = 257 - h;
      if (o + count > end) throw new CodecOverrunError(end);
      dst.fill(src[i++], o, o + count);
      o += count;
    }
  }
  return o;
}

/**
 * A Deflate-compressed strip or tile (TIFF compression 8 or 32946): a zlib stream, or for a few writers raw
 * Deflate data. Inflates into `dst` without producing more than fits; returns the bytes written.
 *
 * @throws CodecOverrunError when the data holds more than `dst.length` bytes.
 * @throws InflateError when the data is not valid Deflate or is cut off inside the stream.
 */
export function inflateChunk(src: Uint8Array, dst: Uint8Array): number {
  const data = isZlibHeader(src) ? zlibDeflateData(src) : src;
  const { produced, overrun } = inflateInto(data, dst);
  if (overrun) throw new CodecOverrunError(dst.length);
  return produced;
}

const LZW_CLEAR = 256;
const LZW_EOI = 257;

/** True when every bit of `src` from `bitPos` on is zero (padding some writers leave after the last code). */
function onlyZeroBitsFrom(src: Uint8Array, bitPos: number): boolean {
  let byte = bitPos >>> 3;
  if (byte >= src.length) return true;
  if (src[byte] & (0xff >>> (bitPos & 7))) return false;
  for (byte++; byte < src.length; byte++) if (src[byte] !== 0) return false;
  return true;
}

/**
 * TIFF LZW (compression 5): 9- to 12-bit codes, most significant bit first, with the "early change" of
 * code width that TIFF writers use (the width grows when the next free code reaches 2^width − 1).
 * Returns the bytes written into `dst`: it stops at the end-of-information code or when the data runs out
 * (a short result means a truncated strip, which the caller reports).
 *
 * Once `dst` is full the stream may only end: with an end-of-information code, clear codes (libtiff writes
 * a clear code before the end code when the table has just filled up), or padding bits (fewer than one
 * code, or all zero). Any other code is data beyond what the strip holds.
 *
 * @throws CodecOverrunError when the data decodes to more than `dst.length` bytes.
 * @throws CodecError on a code that is neither in the table nor the next free one, and for the pre-TIFF-6
 *   "old-style" LZW (least significant bit first), which no current writer produces.
 */
export function lzwDecode(src: Uint8Array, dst: Uint8Array): number {
  if (src.length >= 2 && src[0] === 0 && (src[1] & 1) === 1) {
    throw new CodecError('old-style (LSB-first, pre-TIFF 6.0) LZW data is not supported');
  }
  // Table entry k: its string is string(prefix[k]) + suffix[k]; length[k] and first[k] cached.
  const prefix = new Int32Array(4096);
  const suffix = new Uint8Array(4096);
  const length = new Int32Array(4096);
  const first = new Uint8Array(4096);
  for (let k = 0; k < 256; k++) {
    prefix[k] = -1;
    suffix[k] = k;
    length[k] = 1;
    first[k] = k;
  }
  const end = dst.length;
  const nbits = src.length * 8;
  let bitPos = 0;
  let width = 9;
  let next = 258;
  let prev = -1;
  let o = 0;

  /** Writes the string of `code` at `o`, back to front, refusing to go past the end of `dst`. */
  const writeString = (code: number, extra: number): void => {
    const len = length[code];
    if (o + len + extra > end) throw new CodecOverrunError(end);
    let k = code;
    for (let p = o + len - 1; p >= o; p--) {
      dst[p] = suffix[k];
      k = prefix[k];
    }
    o += len;
  };

  for (;;) {
    if (bitPos + width > nbits) break; // ran out of data without EOI: the caller checks the length
    // Read `width` bits MSB-first from a 24-bit window.
    const byte = bitPos >>> 3;
    const window = (src[byte] << 16) | ((src[byte + 1] ?? 0) << 8) | (src[byte + 2] ?? 0);
    const code = (window >>> (24 - (bitPos & 7) - width)) & ((1 << width) - 1);
    const codeStart = bitPos;
    bitPos += width;

    if (code === LZW_EOI) break;
    if (code === LZW_CLEAR) {
      width = 9;
      next = 258;
      prev = -1;
      continue;
    }
    if (o === end) {
      if (onlyZeroBitsFrom(src, codeStart)) break;
      throw new CodecOverrunError(end);
    }
    if (prev === -1) {
      if (code > 255) throw new CodecError(`LZW data is corrupt: code ${code} right after a clear code`);
      dst[o++] = code;
      prev = code;
      continue;
    }
    let firstByte: number;
    if (code < next) {
      firstByte = first[code];
      writeString(code, 0);
    } else if (code === next) {
      // The KwKwK case: the string is string(prev) + its own first byte.
      firstByte = first[prev];
      writeString(prev, 1);
      dst[o++] = firstByte;
    } else {
      throw new CodecError(`LZW data is corrupt: code ${code} is beyond the table (next free code ${next})`);
    }
    if (next < 4096) {
      prefix[next] = prev;
      suffix[next] = firstByte;
      length[next] = length[prev] + 1;
      first[next] = first[prev];
      next++;
      if (next >= (1 << width) - 1 && width < 12) width++;
    }
    prev = code;
  }
  return o;
}

/**
 * Undoes horizontal differencing (predictor 2) in place on one row of samples: `row[i] += row[i - stride]`
 * modulo 2^bits, where `stride` is the number of samples per pixel in the chunk.
 */
export function undoHorizontalPredictor(
  values: Uint8Array | Uint16Array | Uint32Array,
  start: number,
  count: number,
  stride: number,
): void {
  // The typed array wraps modulo 2^bits on assignment.
  for (let i = start + stride, e = start + count; i < e; i++) values[i] += values[i - stride];
}

/** Applies horizontal differencing (predictor 2) in place on one row, back to front. */
export function applyHorizontalPredictor(
  values: Uint8Array | Uint16Array | Uint32Array,
  start: number,
  count: number,
  stride: number,
): void {
  for (let i = start + count - 1; i >= start + stride; i--) values[i] -= values[i - stride];
}

/** True on little-endian hosts (every current browser and Node platform, but checked rather than assumed). */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Position of the byte of significance `k` (0 = most significant) of a float32 in a host-order byte view. */
const hostByte = (k: number) => (HOST_LITTLE_ENDIAN ? 3 - k : k);
const HOST_BYTE = [hostByte(0), hostByte(1), hostByte(2), hostByte(3)] as const;

/**
 * Undoes the floating-point predictor (3, Adobe TIFF Technical Note 3) on one row of `count` float32
 * samples whose `4 * count` bytes start at `bytes[start]`: first the bytes are summed horizontally (each
 * byte plus the byte `stride` before it, where `stride` = samples per pixel), then they are read as byte
 * planes, most significant byte first, whatever the file's byte order (libtiff's `fpAcc`). Writes `count`
 * floats to `out` at `outStart`.
 */
export function undoFloatPredictor(
  bytes: Uint8Array,
  start: number,
  count: number,
  stride: number,
  out: Float32Array,
  outStart: number,
): void {
  const n = 4 * count;
  for (let i = start + stride, e = start + n; i < e; i++) bytes[i] = (bytes[i] + bytes[i - stride]) & 0xff;
  const dst = new Uint8Array(out.buffer, out.byteOffset + 4 * outStart, n);
  for (let k = 0; k < 4; k++) {
    const plane = start + k * count;
    const at = HOST_BYTE[k];
    for (let i = 0; i < count; i++) dst[4 * i + at] = bytes[plane + i];
  }
}

/**
 * The inverse of {@link undoFloatPredictor}: writes the `count` floats of `values` (from `valuesStart`) as
 * byte planes, most significant first, into `bytes` at `start` and differences them (back to front,
 * distance `stride`).
 */
export function applyFloatPredictor(
  values: Float32Array,
  valuesStart: number,
  count: number,
  stride: number,
  bytes: Uint8Array,
  start: number,
): void {
  const src = new Uint8Array(values.buffer, values.byteOffset + 4 * valuesStart, 4 * count);
  for (let k = 0; k < 4; k++) {
    const plane = start + k * count;
    const at = HOST_BYTE[k];
    for (let i = 0; i < count; i++) bytes[plane + i] = src[4 * i + at];
  }
  for (let i = start + 4 * count - 1; i >= start + stride; i--) bytes[i] = (bytes[i] - bytes[i - stride]) & 0xff;
}
