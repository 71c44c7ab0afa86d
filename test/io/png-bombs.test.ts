/**
 * Decompression bombs and trailing data in PNG image data: inflating stops at what IHDR implies
 * (height × (1 + row bytes), summed over the Adam7 passes), bombs are generated here (test/io/bombs.ts).
 */
import { describe, expect, it } from 'vitest';

import { ImageFormatError } from '../../src/errors';
import { inflatedByteCount } from '../../src/io/bounded-inflate';
import { decodePng } from '../../src/io/png';
import { zlibZeros } from './bombs';
import { SIGNATURE, chunk, concat, ihdr, zlib } from './helpers';

function png(header: Uint8Array, idat: Uint8Array): Uint8Array {
  return concat(SIGNATURE, header, chunk('IDAT', idat), chunk('IEND', new Uint8Array(0)));
}

function formatError(fn: () => unknown): ImageFormatError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ImageFormatError);
    expect((err as ImageFormatError).code).toBe('IMAGE_FORMAT');
    return err as ImageFormatError;
  }
  throw new Error('expected an ImageFormatError, but decoding succeeded');
}

describe('PNG decompression bombs', () => {
  it('a 256 MiB IDAT bomb behind a 1x1 header is refused after inflating only the 2 bytes 1x1 needs', () => {
    const bomb = png(ihdr(1, 1, 8, 0), zlibZeros(256));
    expect(bomb.length).toBeLessThan(300_000);
    const before = inflatedByteCount();
    const t0 = performance.now();
    const err = formatError(() => decodePng(bomb, 'bomb.png'));
    const ms = performance.now() - t0;
    expect(err.message).toMatch(/^bomb\.png: PNG image data is corrupt: it decompresses to more than the 2 bytes that 1x1 needs/);
    // The inflater fills the rows and refuses the next byte: nothing past them is ever produced.
    expect(inflatedByteCount() - before).toBe(2);
    expect(ms).toBeLessThan(5_000);
  });

  it('the same for an interlaced header: the bound is the sum over the Adam7 passes', () => {
    // 3x3 gray 8-bit, Adam7: passes 1, 4, 5, 6, 7 hold 1x1, 1x1, 2x1, 1x2, 3x1 pixels -> 2 + 2 + 3 + 4 + 4 bytes.
    const expected = 15;
    const before = inflatedByteCount();
    const err = formatError(() => decodePng(png(ihdr(3, 3, 8, 0, 1), zlibZeros(256))));
    expect(err.message).toMatch(`more than the ${expected} bytes that 3x3 needs`);
    expect(inflatedByteCount() - before).toBe(expected);
    // Exactly the sum decodes; one byte more is trailing data.
    expect(Array.from(decodePng(png(ihdr(3, 3, 8, 0, 1), zlib(new Uint8Array(expected)))).data)).toEqual(new Array(9).fill(0));
    formatError(() => decodePng(png(ihdr(3, 3, 8, 0, 1), zlib(new Uint8Array(expected + 1)))));
  });
});

describe('PNG trailing image data', () => {
  it('one byte after the last row is IMAGE_FORMAT (it used to be ignored)', () => {
    // 4x3 gray 8-bit: 3 rows of 1 filter byte + 4 samples = 15 bytes.
    const rows = Uint8Array.of(0, 1, 2, 3, 4, 0, 5, 6, 7, 8, 0, 9, 10, 11, 12);
    expect(Array.from(decodePng(png(ihdr(4, 3, 8, 0), zlib(rows))).data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const err = formatError(() => decodePng(png(ihdr(4, 3, 8, 0), zlib(concat(rows, Uint8Array.of(0)))), 't.png'));
    expect(err.message).toMatch(
      /^t\.png: PNG image data is corrupt: it decompresses to more than the 15 bytes that 4x3 needs \(trailing data/,
    );
  });

  it('a whole extra row is IMAGE_FORMAT too', () => {
    const fourRows = new Uint8Array(4 * 5);
    formatError(() => decodePng(png(ihdr(4, 3, 8, 0), zlib(fourRows))));
  });
});

describe('PNG size limits from the header', () => {
  it('an image over 2^28 pixels is refused from IHDR', () => {
    const err = formatError(() => decodePng(png(ihdr(65536, 4097, 8, 0), zlib(new Uint8Array(10)))));
    expect(err.message).toMatch(/too large to decode: 65536x4097 pixels \(limit 268435456\)/);
  });

  it('image data too short to expand to the declared rows is refused before anything is allocated', () => {
    // 8192x8192 RGBA 16-bit would be 512 MiB of rows; 100 compressed bytes expand to at most 103 200.
    const t0 = performance.now();
    const err = formatError(() => decodePng(png(ihdr(8192, 8192, 16, 6), zlib(new Uint8Array(100)))));
    expect(err.message).toMatch(/PNG image data is truncated: \d+ compressed bytes can expand to at most \d+, 8192x8192 needs 536879104/);
    expect(performance.now() - t0).toBeLessThan(1_000);
  });
});
