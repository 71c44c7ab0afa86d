/**
 * Test-only TIFF LZW encoder (MSB-first codes of 9 to 12 bits with TIFF's "early change"), so that tests can
 * make LZW strips of any content and with each of the endings real writers produce.
 */

const CLEAR = 256;
const EOI = 257;

/** Collects codes most significant bit first. */
class BitWriter {
  private bytes: number[] = [];
  private acc = 0;
  private bits = 0;
  write(code: number, width: number): void {
    this.acc = (this.acc << width) | code;
    this.bits += width;
    while (this.bits >= 8) {
      this.bits -= 8;
      this.bytes.push((this.acc >>> this.bits) & 0xff);
    }
    this.acc &= (1 << this.bits) - 1;
  }
  finish(): Uint8Array {
    if (this.bits > 0) this.bytes.push((this.acc << (8 - this.bits)) & 0xff); // zero padding bits
    return Uint8Array.from(this.bytes);
  }
}

/**
 * The width the decoder reads the next code with, given the encoder's next free code. The decoder adds its
 * table entries one code later than the encoder (it needs the following code to complete each entry), so
 * it is one entry behind; its width grows when its next free code reaches 511, 1023 and 2047.
 */
function widthFor(encoderNext: number): number {
  const decoderNext = encoderNext - 1;
  return decoderNext >= 2047 ? 12 : decoderNext >= 1023 ? 11 : decoderNext >= 511 ? 10 : 9;
}

/**
 * LZW-encodes `data` as TIFF writers do: a clear code first, another whenever the table is about to fill,
 * and the given ending: `'eoi'` (the usual), `'clear-eoi'` (what libtiff writes when the table has just
 * filled) or `'none'` (no end code, only the padding bits of the last byte).
 */
export function lzwEncode(data: Uint8Array, ending: 'eoi' | 'clear-eoi' | 'none' = 'eoi'): Uint8Array {
  const out = new BitWriter();
  let table = new Map<number, number>(); // prefix code * 256 + next byte -> code
  let next = 258;
  out.write(CLEAR, 9);
  if (data.length > 0) {
    let prefix = data[0];
    for (let i = 1; i < data.length; i++) {
      const key = prefix * 256 + data[i];
      const known = table.get(key);
      if (known !== undefined) {
        prefix = known;
        continue;
      }
      out.write(prefix, widthFor(next));
      table.set(key, next++);
      if (next === 4094) {
        out.write(CLEAR, widthFor(next));
        table = new Map();
        next = 258;
      }
      prefix = data[i];
    }
    out.write(prefix, widthFor(next));
    next++; // the decoder adds an entry for this last code too
  }
  if (ending === 'clear-eoi') {
    out.write(CLEAR, widthFor(next));
    out.write(EOI, 9);
  } else if (ending === 'eoi') {
    out.write(EOI, widthFor(next));
  }
  return out.finish();
}
