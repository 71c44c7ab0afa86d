/**
 * TIFF strip/tile codecs: PackBits and LZW decoding, and the horizontal (2) and floating-point (3)
 * predictors in both directions. Deflate is `fflate`'s zlib. Browser-safe.
 *
 * Each decoder fills a buffer of the size the strip or tile must have and reports a short stream by
 * returning how many bytes it produced; the caller turns that into an error naming the strip.
 */

/** Thrown inside a codec; the TIFF reader adds the file, page and strip to the message. */
export class CodecError extends Error {}

/**
 * PackBits (Apple Macintosh RLE, TIFF compression 32773): a header byte n in 0..127 copies the next n + 1
 * bytes, n in -127..-1 repeats the next byte 1 - n times, and -128 is a no-op. Returns the bytes written.
 */
export function unpackBits(src: Uint8Array, dst: Uint8Array): number {
  let i = 0;
  let o = 0;
  const n = src.length;
  const end = dst.length;
  while (i < n && o < end) {
    const h = src[i++];
    if (h < 128) {
      const count = Math.min(h + 1, n - i, end - o);
      dst.set(src.subarray(i, i + count), o);
      i += h + 1;
      o += count;
    } else if (h > 128) {
      if (i >= n) break;
      const v = src[i++];
      const count = Math.min(257 - h, end - o);
      dst.fill(v, o, o + count);
      o += count;
    }
  }
  return o;
}

const LZW_CLEAR = 256;
const LZW_EOI = 257;

/**
 * TIFF LZW (compression 5): 9- to 12-bit codes, most significant bit first, with the "early change" of
 * code width that TIFF writers use (the width grows when the next free code reaches 2^width − 1).
 * Returns the bytes written into `dst` (it stops when `dst` is full or at the end-of-information code).
 *
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

  const writeString = (code: number): void => {
    const len = length[code];
    // Write back to front; clip at the end of the buffer.
    let k = code;
    for (let p = o + len - 1; p >= o; p--) {
      if (p < end) dst[p] = suffix[k];
      k = prefix[k];
    }
    o += len;
  };

  while (o < end) {
    if (bitPos + width > nbits) break; // ran out of data without EOI: the caller checks the length
    // Read `width` bits MSB-first from a 24-bit window.
    const byte = bitPos >>> 3;
    const window = (src[byte] << 16) | ((src[byte + 1] ?? 0) << 8) | (src[byte + 2] ?? 0);
    const code = (window >>> (24 - (bitPos & 7) - width)) & ((1 << width) - 1);
    bitPos += width;

    if (code === LZW_EOI) break;
    if (code === LZW_CLEAR) {
      width = 9;
      next = 258;
      prev = -1;
      continue;
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
      writeString(code);
    } else if (code === next) {
      // The KwKwK case: the string is string(prev) + its own first byte.
      firstByte = first[prev];
      writeString(prev);
      if (o < end) dst[o] = firstByte;
      o++;
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
  return Math.min(o, end);
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
