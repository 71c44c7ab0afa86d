/**
 * Deflate / zlib decompression into a buffer whose size the image header fixes. Browser-safe.
 *
 * Why not fflate's `inflateSync` / `unzlibSync`: they expand the whole stream before returning, so a
 * megabyte of crafted input behind a header that claims a 1×1 image still becomes a gigabyte in memory
 * (a "decompression bomb"). Here the compressed bytes go to fflate's streaming `Inflate` in pieces small
 * enough that no piece can expand to more than max(16 MiB, the destination size), and decoding stops at the
 * first piece that produces more than fits.
 */
import { Inflate } from 'fflate';

/**
 * Deflate never expands one input byte into more than 1032 output bytes: the longest match (258 bytes)
 * costs at least two bits (a 1-bit length code and a 1-bit distance code). So `n` compressed bytes can
 * never hold more than `n * MAX_DEFLATE_RATIO` bytes, which lets a reader refuse an impossible header
 * before it allocates anything.
 */
export const MAX_DEFLATE_RATIO = 1032;

/**
 * Smallest piece handed to the inflater: a piece of `n` bytes can expand to `n * MAX_DEFLATE_RATIO` bytes
 * before we see its output, so this keeps the overshoot past a small destination to about 16 MiB. Much
 * smaller pieces would slow decoding down, because fflate allocates a fresh output buffer (at least 160 KiB)
 * and copies its 32 KiB window for every piece.
 */
const MIN_PIECE = 16 * 1024;
/**
 * A Deflate stream that is still going produces output at least once per this many input bytes: every
 * Huffman code but end-of-block is output, and fflate releases a stored block (5 header bytes + up to
 * 65,535 data bytes) once it has all of it. Inflating stops after this much input plus one piece without
 * output: the stream has ended (what follows is not data, but fflate would keep appending it to one
 * pending buffer, at a cost quadratic in its length) or it stalls on purpose with empty blocks.
 */
const LONGEST_SILENT_INPUT = 5 + 65_535;

export interface BoundedInflateResult {
  /** Bytes written to the destination (never more than its length). */
  produced: number;
  /** True when the stream holds more data than the destination takes; decoding stopped there. */
  overrun: boolean;
}

let inflatedTotal = 0;

/**
 * Total bytes the inflater has produced in this JavaScript realm, including those past the destination that
 * were seen before decoding stopped. Tests read it before and after decoding a bomb to check that the
 * decoder stopped early instead of expanding the whole stream.
 */
export function inflatedByteCount(): number {
  return inflatedTotal;
}

/**
 * How many compressed bytes to push at a time into a destination of `capacity` bytes: small enough that one
 * piece cannot expand to more than max(16 MiB, capacity), large enough that a stream no longer than its
 * output (any image worth compressing) is cut into at most about a thousand pieces.
 */
function pieceSize(capacity: number): number {
  return Math.max(MIN_PIECE, Math.ceil(capacity / MAX_DEFLATE_RATIO));
}

/**
 * Inflates the raw Deflate stream `src` (RFC 1951) into `dst`. Stops as soon as the stream produces more
 * than `dst.length` bytes (`overrun`): at most about `dst.length + max(16 MiB, dst.length)` bytes are ever
 * produced, and nothing beyond `dst` is kept. A stream that ends early returns `produced < dst.length`; the
 * caller decides whether that is an error. Bytes after the end of the stream are ignored (only about
 * 64 KiB and one piece of them are read).
 *
 * @throws Error (fflate's) when the data is not valid Deflate or ends inside a block.
 */
export function inflateInto(src: Uint8Array, dst: Uint8Array): BoundedInflateResult {
  let produced = 0;
  let overrun = false;
  const inflater = new Inflate((output) => {
    inflatedTotal += output.length;
    const room = dst.length - produced;
    if (output.length > room) {
      dst.set(output.subarray(0, room), produced);
      produced = dst.length;
      overrun = true;
      return;
    }
    dst.set(output, produced);
    produced += output.length;
  });
  const piece = pieceSize(dst.length);
  let pos = 0;
  let silentInput = 0;
  while (pos < src.length && !overrun && silentInput <= LONGEST_SILENT_INPUT + piece) {
    const end = Math.min(src.length, pos + piece);
    const producedBefore = produced;
    inflater.push(src.subarray(pos, end), end === src.length);
    silentInput = produced > producedBefore ? 0 : silentInput + (end - pos);
    pos = end;
  }
  return { produced, overrun };
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
