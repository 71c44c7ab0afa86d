/**
 * Raw DEFLATE (RFC 1951) decoding straight into a buffer the caller sized from what its container declares:
 * a zip entry's uncompressed size (src/weights), the rows a PNG or TIFF header implies (src/io).
 *
 * A leaf module: it imports nothing, and reports failures as a neutral InflateError that each caller turns into
 * its own error (CheckpointError, ImageFormatError) with its own wording.
 *
 * Why not fflate's inflate: its one-shot form, given an output buffer, silently drops what does not fit but
 * goes on decoding to the end of the stream (seconds of work for a bomb), and its streaming form hands back
 * everything one pushed chunk expands to (up to ~1032 times the chunk) before the caller can look. A reader
 * must refuse data at the first byte beyond the size it expects and must be able to stop once the bytes it
 * needs exist; both are one comparison here, and nothing is ever allocated but the caller's buffer.
 */

export type InflateFailure = 'overrun' | 'truncated' | 'corrupt';

/** Why a stream could not be decoded; callers turn it into their own error, naming what they were reading. */
export class InflateError extends Error {
  /**
   * Bytes written into the output before decoding stopped (set by inflateRaw). After an 'overrun' this is the
   * whole output: every byte that fits is written before the first one that does not is refused.
   */
  produced = 0;

  constructor(
    readonly failure: InflateFailure,
    message: string,
  ) {
    super(message);
    this.name = 'InflateError';
  }
}

/**
 * - 'exact': the stream must produce exactly `out.length` bytes. One more byte is an 'overrun' (nothing
 *   beyond `out` is ever produced), fewer is 'truncated'.
 * - 'at-most': like 'exact', except that a stream ending before `out` is full is not an error; the return value
 *   says how much it held (an image reader reports the missing rows itself).
 * - 'prefix': decoding stops as soon as `out` is full; the rest of the stream is never looked at.
 */
export type InflateMode = 'exact' | 'at-most' | 'prefix';

/** Deflate's maximum expansion: a 258-byte match coded in 2 bits, 1032:1 (plus block headers). */
export const MAX_DEFLATE_RATIO = 1032;

const MAX_CODE_BITS = 15;
const END_OF_BLOCK = 256;
/** Order in which the code-length code lengths are stored (RFC 1951, 3.2.7). */
const CODE_LENGTH_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/** Base lengths and extra bits of length symbols 257..285, derived from the RFC's rule rather than typed in. */
const LENGTH_BASE = new Uint16Array(29);
const LENGTH_EXTRA = new Uint8Array(29);
/** Base distances and extra bits of distance symbols 0..29. */
const DIST_BASE = new Uint16Array(30);
const DIST_EXTRA = new Uint8Array(30);
{
  let base = 3;
  for (let i = 0; i < 28; i++) {
    LENGTH_EXTRA[i] = i < 8 ? 0 : (i >> 2) - 1;
    LENGTH_BASE[i] = base;
    base += 1 << LENGTH_EXTRA[i];
  }
  LENGTH_BASE[28] = 258; // symbol 285 is 258 with no extra bits, not the next step of the series
  let dist = 1;
  for (let i = 0; i < 30; i++) {
    DIST_EXTRA[i] = i < 4 ? 0 : (i >> 1) - 1;
    DIST_BASE[i] = dist;
    dist += 1 << DIST_EXTRA[i];
  }
}

/**
 * A canonical Huffman code as a lookup table indexed by the next `bits` input bits (LSB first, as deflate
 * stores codes bit-reversed). Each entry is (symbol << 4) | code length; 0 marks a bit pattern no code has.
 */
interface HuffmanTable {
  entries: Uint16Array;
  bits: number;
}

function buildTable(lengths: Uint8Array, what: string): HuffmanTable {
  const countPerLength = new Uint16Array(MAX_CODE_BITS + 1);
  let bits = 1;
  for (const len of lengths) {
    countPerLength[len]++;
    if (len > bits) bits = len;
  }
  countPerLength[0] = 0;
  // More codes of some length than the shorter codes leave room for: not a prefix code.
  let room = 1;
  for (let len = 1; len <= MAX_CODE_BITS; len++) {
    room = room * 2 - countPerLength[len];
    if (room < 0) throw new InflateError('corrupt', `the ${what} code is over-subscribed`);
  }
  const nextCode = new Uint16Array(MAX_CODE_BITS + 2);
  for (let len = 1; len <= MAX_CODE_BITS; len++) nextCode[len + 1] = (nextCode[len] + countPerLength[len]) << 1;
  const entries = new Uint16Array(1 << bits);
  for (let symbol = 0; symbol < lengths.length; symbol++) {
    const len = lengths[symbol];
    if (len === 0) continue;
    const code = nextCode[len]++;
    let reversed = 0;
    for (let k = 0; k < len; k++) reversed |= ((code >> k) & 1) << (len - 1 - k);
    // Every index whose low `len` bits are this code decodes to it, whatever the bits above.
    for (let i = reversed; i < entries.length; i += 1 << len) entries[i] = (symbol << 4) | len;
  }
  return { entries, bits };
}

let fixedTables: { literal: HuffmanTable; distance: HuffmanTable } | undefined;

/** The fixed codes of block type 1 (RFC 1951, 3.2.6), built once. */
function fixedCodes(): { literal: HuffmanTable; distance: HuffmanTable } {
  if (!fixedTables) {
    const literal = new Uint8Array(288);
    literal.fill(8, 0, 144).fill(9, 144, 256).fill(7, 256, 280).fill(8, 280, 288);
    fixedTables = {
      literal: buildTable(literal, 'fixed literal/length'),
      distance: buildTable(new Uint8Array(30).fill(5), 'fixed distance'),
    };
  }
  return fixedTables;
}

/**
 * LSB-first bit input, read three bytes at a time (enough for any code: 7 bits of offset + 15 bits of code fit
 * in 24). Reading past the end supplies zero bits (so a table lookup near the end of the data works), but
 * consuming any of them is 'truncated'.
 */
class BitInput {
  /**
   * The byte holding the next bit, and that bit's place in it (0..7): one count of bits would overflow the
   * 32-bit arithmetic of `>>>` for inputs over 512 MiB.
   */
  private byte = 0;
  private bit = 0;

  constructor(private readonly data: Uint8Array) {}

  /** The next 17 or more bits, without consuming them. */
  private peek(): number {
    const d = this.data;
    const at = this.byte;
    if (at + 2 < d.length) return (d[at] | (d[at + 1] << 8) | (d[at + 2] << 16)) >>> this.bit;
    // The last two bytes: no reads past the end (they would return undefined and slow every read down).
    let word = 0;
    for (let k = 0; at + k < d.length && k < 3; k++) word |= d[at + k] << (8 * k);
    return word >>> this.bit;
  }

  private consume(n: number): void {
    const bit = this.bit + n;
    this.byte += bit >>> 3;
    this.bit = bit & 7;
    if (this.byte >= this.data.length && (this.byte > this.data.length || this.bit > 0)) {
      throw new InflateError('truncated', 'the compressed data ends in the middle of the stream');
    }
  }

  bits(n: number): number {
    if (n === 0) return 0;
    const value = this.peek() & ((1 << n) - 1);
    this.consume(n);
    return value;
  }

  symbol(table: HuffmanTable, what: string): number {
    const entry = table.entries[this.peek() & ((1 << table.bits) - 1)];
    if (entry === 0) throw new InflateError('corrupt', `invalid ${what} code`);
    this.consume(entry & 15);
    return entry >> 4;
  }

  /** Skip to the next byte boundary and hand back the byte position there (for stored blocks). */
  alignToByte(): number {
    if (this.bit > 0) this.consume(8 - this.bit);
    return this.byte;
  }

  seek(position: number): void {
    this.byte = position;
    this.bit = 0;
  }
}

/** Output into the caller's buffer, enforcing the mode's limit. */
class Output {
  length = 0;

  constructor(
    readonly buffer: Uint8Array,
    readonly mode: InflateMode,
  ) {}

  get full(): boolean {
    return this.length === this.buffer.length;
  }

  /** A prefix read has all it asked for: stop before reading another symbol (the rest may be anything). */
  get done(): boolean {
    return this.mode === 'prefix' && this.full;
  }

  /** How many of `n` more bytes fit. The caller writes those, then calls overflow() if some did not fit. */
  room(n: number): number {
    return Math.min(n, this.buffer.length - this.length);
  }

  /**
   * The stream produced a byte that does not fit. A prefix read simply has what it wanted (and stops, as `done`
   * is now true); in the other modes it is an overrun, refused here, before any further input is read.
   */
  overflow(): void {
    if (this.mode === 'prefix') return;
    throw new InflateError('overrun', `the stream produces more than the declared ${this.buffer.length} bytes`);
  }
}

/**
 * Decode the raw deflate stream `input` into `out` (see InflateMode). Returns the number of bytes written.
 * Bytes after the end of the stream are never decoded.
 *
 * @throws InflateError ('overrun', 'truncated' or 'corrupt'), with `produced` set to the bytes written.
 */
export function inflateRaw(input: Uint8Array, out: Uint8Array, mode: InflateMode): number {
  const output = new Output(out, mode);
  try {
    return decodeStream(new BitInput(input), input, output);
  } catch (err) {
    if (err instanceof InflateError) err.produced = output.length;
    throw err;
  }
}

function decodeStream(bits: BitInput, input: Uint8Array, output: Output): number {
  let final: number;
  do {
    if (output.done) return output.length;
    final = bits.bits(1);
    const type = bits.bits(2);
    if (type === 0) copyStoredBlock(bits, input, output);
    else if (type === 1) decodeBlock(bits, output, fixedCodes().literal, fixedCodes().distance);
    else if (type === 2) {
      const codes = readDynamicCodes(bits);
      decodeBlock(bits, output, codes.literal, codes.distance);
    } else throw new InflateError('corrupt', 'invalid block type 3');
  } while (!final);
  if (!output.full && output.mode !== 'at-most') {
    const declared = output.buffer.length;
    throw new InflateError('truncated', `the stream ends after ${output.length} of the declared ${declared} bytes`);
  }
  return output.length;
}

function copyStoredBlock(bits: BitInput, input: Uint8Array, output: Output): void {
  const start = bits.alignToByte();
  if (start + 4 > input.length) throw new InflateError('truncated', 'the compressed data ends in a stored block header');
  const length = input[start] | (input[start + 1] << 8);
  const check = input[start + 2] | (input[start + 3] << 8);
  if ((length ^ 0xffff) !== check) throw new InflateError('corrupt', 'a stored block length does not match its complement');
  const from = start + 4;
  const n = output.room(length);
  if (from + n > input.length) throw new InflateError('truncated', 'the compressed data ends in a stored block');
  output.buffer.set(input.subarray(from, from + n), output.length);
  output.length += n;
  // After a partial copy the prefix read is done and the position no longer matters.
  bits.seek(from + n);
  if (n < length) output.overflow();
}

function readDynamicCodes(bits: BitInput): { literal: HuffmanTable; distance: HuffmanTable } {
  const literalCount = bits.bits(5) + 257;
  const distanceCount = bits.bits(5) + 1;
  const codeLengthCount = bits.bits(4) + 4;
  if (literalCount > 286 || distanceCount > 30) throw new InflateError('corrupt', 'too many literal/length or distance codes');
  const codeLengthLengths = new Uint8Array(19);
  for (let i = 0; i < codeLengthCount; i++) codeLengthLengths[CODE_LENGTH_ORDER[i]] = bits.bits(3);
  const codeLengthTable = buildTable(codeLengthLengths, 'code length');

  const lengths = new Uint8Array(literalCount + distanceCount);
  for (let i = 0; i < lengths.length;) {
    const symbol = bits.symbol(codeLengthTable, 'code length');
    if (symbol < 16) {
      lengths[i++] = symbol;
      continue;
    }
    let repeat: number;
    let value = 0;
    if (symbol === 16) {
      if (i === 0) throw new InflateError('corrupt', 'a code length repeat has no previous length');
      value = lengths[i - 1];
      repeat = 3 + bits.bits(2);
    } else if (symbol === 17) repeat = 3 + bits.bits(3);
    else repeat = 11 + bits.bits(7);
    if (i + repeat > lengths.length) throw new InflateError('corrupt', 'code length repeats run past the code');
    lengths.fill(value, i, i + repeat);
    i += repeat;
  }
  if (lengths[END_OF_BLOCK] === 0) throw new InflateError('corrupt', 'the literal/length code has no end-of-block symbol');
  return {
    literal: buildTable(lengths.subarray(0, literalCount), 'literal/length'),
    distance: buildTable(lengths.subarray(literalCount), 'distance'),
  };
}

function decodeBlock(bits: BitInput, output: Output, literal: HuffmanTable, distance: HuffmanTable): void {
  const out = output.buffer;
  while (!output.done) {
    const symbol = bits.symbol(literal, 'literal/length');
    if (symbol < 256) {
      // A full prefix read has stopped before reading this symbol, so a literal that does not fit is an overrun.
      if (output.length === out.length) output.overflow();
      out[output.length++] = symbol;
      continue;
    }
    if (symbol === END_OF_BLOCK) return;
    const lengthIndex = symbol - 257;
    if (lengthIndex >= 29) throw new InflateError('corrupt', `invalid length symbol ${symbol}`);
    const length = LENGTH_BASE[lengthIndex] + bits.bits(LENGTH_EXTRA[lengthIndex]);
    const distanceSymbol = bits.symbol(distance, 'distance');
    if (distanceSymbol >= 30) throw new InflateError('corrupt', `invalid distance symbol ${distanceSymbol}`);
    const back = DIST_BASE[distanceSymbol] + bits.bits(DIST_EXTRA[distanceSymbol]);
    if (back > output.length) throw new InflateError('corrupt', `a match reaches ${back} bytes back, before the start of the data`);
    const n = output.room(length);
    // Byte by byte on purpose: a match may overlap the bytes it is producing (distance < length).
    let at = output.length;
    for (const end = at + n; at < end; at++) out[at] = out[at - back];
    output.length = at;
    if (n < length) output.overflow();
  }
}
