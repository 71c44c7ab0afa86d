/**
 * Deflate / zlib decompression into a buffer whose size the image header fixes. Browser-safe.
 *
 * Why not fflate's `inflateSync` / `unzlibSync`: they expand the whole stream before returning, so a
 * megabyte of crafted input behind a header that claims a 1×1 image still becomes a gigabyte in memory
 * (a "decompression bomb"). The decoder used here (src/compression, shared with the checkpoint reader)
 * writes straight into the destination and refuses the first byte that does not fit, so a bomb costs
 * exactly the bytes the header implies, and no time is spent on the rest of it.
 */
import { inflateRaw, InflateError } from '../compression/inflate';

/**
 * Deflate never expands one input byte into more than 1032 output bytes, so `n` compressed bytes can
 * never hold more than `n * MAX_DEFLATE_RATIO` bytes, which lets a reader refuse an impossible header
 * before it allocates anything.
 */
export { MAX_DEFLATE_RATIO } from '../compression/inflate';

export interface BoundedInflateResult {
  /** Bytes written to the destination (never more than its length). */
  produced: number;
  /** True when the stream holds more data than the destination takes; decoding stopped there. */
  overrun: boolean;
}

let inflatedTotal = 0;

/**
 * Total bytes the inflater has written into destinations in this JavaScript realm. Nothing is produced
 * beyond a destination, so a bomb adds at most the destination's size; tests read this before and after
 * decoding one to check that decoding stopped there instead of expanding the whole stream.
 */
export function inflatedByteCount(): number {
  return inflatedTotal;
}

/**
 * Inflates the raw Deflate stream `src` (RFC 1951) into `dst`. Stops at the first byte that does not fit
 * (`overrun`, with `dst` full). A stream that ends early returns `produced < dst.length`; the caller decides
 * whether that is an error. Bytes after the end of the stream are never read.
 *
 * @throws InflateError when the data is not valid Deflate ('corrupt') or is cut off inside the stream
 *   ('truncated'); its `produced` says how many bytes were written before that.
 */
export function inflateInto(src: Uint8Array, dst: Uint8Array): BoundedInflateResult {
  let produced = 0;
  try {
    produced = inflateRaw(src, dst, 'at-most');
    return { produced, overrun: false };
  } catch (err) {
    if (!(err instanceof InflateError)) throw err;
    produced = err.produced;
    if (err.failure === 'overrun') return { produced, overrun: true };
    throw err;
  } finally {
    inflatedTotal += produced;
  }
}

/**
 * The Deflate data of a zlib stream (RFC 1950): checks the two-byte header and leaves out the four-byte
 * Adler-32 trailer (which the caller may check against the output).
 *
 * @throws Error when the header is not a zlib header or asks for a preset dictionary.
 */
export function zlibDeflateData(src: Uint8Array): Uint8Array {
  if (!isZlibHeader(src)) throw new Error('invalid zlib header');
  if (src[1] & 0x20) throw new Error('the zlib stream needs a preset dictionary');
  return src.subarray(2, Math.max(2, src.length - 4));
}

/** True when `src` starts with a zlib header: method 8 (Deflate), window ≤ 32 KiB, valid check bits. */
export function isZlibHeader(src: Uint8Array): boolean {
  return src.length >= 2 && (src[0] & 0x0f) === 8 && src[0] >> 4 <= 7 && ((src[0] << 8) | src[1]) % 31 === 0;
}

/** {@link inflateInto} for a zlib stream (the Adler-32 trailer is not checked here). */
export function unzlibInto(src: Uint8Array, dst: Uint8Array): BoundedInflateResult {
  return inflateInto(zlibDeflateData(src), dst);
}
