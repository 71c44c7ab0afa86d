/**
 * Decompression bombs and overruns in TIFF strips and tiles: every codec stops at the size of the strip or
 * tile (rows × row bytes) and refuses data beyond it; a header whose data cannot be in the file is refused
 * before the page is allocated. Bombs are generated here (test/io/bombs.ts, test/io/lzw-encode.ts).
 */
import { describe, expect, it } from 'vitest';

import { ImageFormatError } from '../../src/errors';
import { inflatedByteCount } from '../../src/io/bounded-inflate';
import { decodeTiff } from '../../src/io/tiff';
import { CodecOverrunError, lzwDecode, maxDecodedBytes, unpackBits } from '../../src/io/tiff-codecs';
import { MIB, deflateZeros, zlibZeros } from './bombs';
import { concat, pseudoRandomBytes, zlib } from './helpers';
import { lzwEncode } from './lzw-encode';
import { type RawTiffPage, buildRawTiff } from './tiff-builder';

const LZW = 5;
const DEFLATE = 8;
const DEFLATE_OLD = 32946;
const PACKBITS = 32773;

function formatError(page: RawTiffPage, ...fragments: (string | RegExp)[]): ImageFormatError {
  const bytes = buildRawTiff(page);
  let caught: unknown;
  try {
    decodeTiff(bytes, { name: 'x.tif' });
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ImageFormatError);
  const err = caught as ImageFormatError;
  expect(err.code).toBe('IMAGE_FORMAT');
  for (const f of fragments) expect(err.message).toMatch(f);
  return err;
}

function pixels(page: RawTiffPage): number[] {
  return Array.from(decodeTiff(buildRawTiff(page))[0].image.data);
}

describe('TIFF Deflate bombs', () => {
  for (const [compression, stream, kind] of [
    [DEFLATE, zlibZeros, 'zlib'],
    [DEFLATE_OLD, deflateZeros, 'raw Deflate'],
  ] as const) {
    it(`a 256 MiB ${kind} strip behind a 1x1 header stops after the 1 byte it holds (compression ${compression})`, () => {
      const bomb = stream(256);
      const before = inflatedByteCount();
      const t0 = performance.now();
      formatError(
        { width: 1, height: 1, compression, chunks: [bomb] },
        /^x\.tif: page 0: strip 0 is corrupt \(Deflate.* decoding failed: the data decodes to more than the 1 byte the header implies; trailing data\)/,
      );
      // The inflater fills the strip and refuses the next byte: nothing past it is ever produced.
      expect(inflatedByteCount() - before).toBe(1);
      expect(performance.now() - t0).toBeLessThan(5_000);
    });
  }

  it('a bomb in one tile of a tiled page stops at the tile size', () => {
    // 20x20 in 16x16 tiles: 4 tiles of 256 bytes; the last one is a bomb.
    const tile = zlib(new Uint8Array(256).fill(7));
    const before = inflatedByteCount();
    formatError(
      { width: 20, height: 20, compression: DEFLATE, tile: { width: 16, height: 16 }, chunks: [tile, tile, tile, zlibZeros(256)] },
      /page 0: tile 3 is corrupt \(Deflate decoding failed: the data decodes to more than the 256 bytes/,
    );
    // Three tiles of 256 bytes, then the bomb tile filled to its 256 bytes and refused.
    expect(inflatedByteCount() - before).toBe(4 * 256);
    // The same page without the bomb decodes.
    expect(
      pixels({ width: 20, height: 20, compression: DEFLATE, tile: { width: 16, height: 16 }, chunks: [tile, tile, tile, tile] }),
    ).toEqual(new Array(400).fill(7));
  });

  it('one byte more than the strip holds is IMAGE_FORMAT', () => {
    const rows = Uint8Array.of(1, 2, 3, 4, 5, 6);
    expect(pixels({ width: 3, height: 2, compression: DEFLATE, chunks: [zlib(rows)] })).toEqual([1, 2, 3, 4, 5, 6]);
    formatError({ width: 3, height: 2, compression: DEFLATE, chunks: [zlib(concat(rows, Uint8Array.of(0)))] }, /more than the 6 bytes/);
  });
});

describe('TIFF LZW overruns', () => {
  it('a strip of 1 MiB of zeros behind a 2x2 header is refused once the 4 bytes are out', () => {
    const bomb = lzwEncode(new Uint8Array(MIB));
    formatError(
      { width: 2, height: 2, compression: LZW, chunks: [bomb] },
      /^x\.tif: page 0: strip 0 is corrupt \(LZW decoding failed: the data decodes to more than the 4 bytes the header implies/,
    );
    expect(() => lzwDecode(bomb, new Uint8Array(4))).toThrow(CodecOverrunError);
  });

  it('a code whose string runs past the end of the strip, or any code after it is full, is refused', () => {
    const data = Uint8Array.of(1, 2, 1, 2, 1, 2);
    // Codes: 1, 2, 258 ("1 2"), 258: the last string ends past 4 bytes -> overrun; 5 bytes -> overrun.
    for (const size of [4, 5]) expect(() => lzwDecode(lzwEncode(data), new Uint8Array(size))).toThrow(CodecOverrunError);
    expect(lzwDecode(lzwEncode(data), new Uint8Array(6))).toBe(6);
    formatError({ width: 5, height: 1, compression: LZW, chunks: [lzwEncode(data)] }, /more than the 5 bytes/);
  });

  it('accepts the endings real strips have: EOI, clear + EOI, no EOI, zero padding, anything after EOI', () => {
    const rows = pseudoRandomBytes(12, 4);
    const page = (chunk: Uint8Array): RawTiffPage => ({ width: 4, height: 3, compression: LZW, chunks: [chunk] });
    for (const ending of ['eoi', 'clear-eoi', 'none'] as const) {
      expect(pixels(page(lzwEncode(rows, ending)))).toEqual(Array.from(rows));
    }
    expect(pixels(page(concat(lzwEncode(rows, 'none'), new Uint8Array(8))))).toEqual(Array.from(rows));
    expect(pixels(page(concat(lzwEncode(rows, 'eoi'), pseudoRandomBytes(50, 1))))).toEqual(Array.from(rows));
    // Without an end code, non-zero bits after the data are more data.
    formatError(
      page(concat(lzwEncode(rows, 'none'), Uint8Array.of(0x12, 0x34))),
      /LZW decoding failed: the data decodes to more than the 12 bytes/,
    );
  });

  it('decodes the test encoder exactly at every ending, across code widths and table resets', () => {
    for (const [n, seed] of [
      [1, 1],
      [300, 2],
      [5_000, 3],
      [200_000, 4],
    ]) {
      const random = pseudoRandomBytes(n, seed);
      const smooth = random.map((b, i) => (i >> 6) + (b & 1));
      for (const data of [random, smooth]) {
        for (const ending of ['eoi', 'clear-eoi', 'none'] as const) {
          const dst = new Uint8Array(n);
          expect(lzwDecode(lzwEncode(data, ending), dst)).toBe(n);
          expect(Buffer.from(dst).equals(Buffer.from(data))).toBe(true);
        }
      }
    }
  });
});

describe('TIFF PackBits overruns', () => {
  const page = (chunk: Uint8Array): RawTiffPage => ({ width: 2, height: 2, compression: PACKBITS, chunks: [chunk] });

  it('a literal or repeat run past the end of the strip is IMAGE_FORMAT', () => {
    formatError(page(Uint8Array.of(5, 1, 2, 3, 4, 5, 6)), /PackBits decoding failed: the data decodes to more than the 4 bytes/);
    formatError(page(Uint8Array.of(0x100 - 9, 7)), /more than the 4 bytes/); // repeat 7 ten times
    expect(() => unpackBits(Uint8Array.of(0x100 - 127, 0), new Uint8Array(100))).toThrow(CodecOverrunError);
  });

  it('data after the strip is full is IMAGE_FORMAT; no-op bytes (-128) are not data', () => {
    formatError(page(Uint8Array.of(3, 1, 2, 3, 4, 0, 9)), /more than the 4 bytes/);
    formatError(page(Uint8Array.of(0x100 - 3, 8, 0xff, 8)), /more than the 4 bytes/);
    expect(pixels(page(Uint8Array.of(3, 1, 2, 3, 4, 0x80, 0x80)))).toEqual([1, 2, 3, 4]);
    expect(pixels(page(Uint8Array.of(0x100 - 3, 8)))).toEqual([8, 8, 8, 8]);
  });
});

describe('TIFF strip sizes', () => {
  it('a short last strip may decode to a whole RowsPerStrip strip (padding some writers add), not more', () => {
    // 2x3 in strips of 2 rows: the last strip needs 1 row and may hold 2.
    const base = { width: 2, height: 3, compression: DEFLATE, rowsPerStrip: 2 };
    const first = zlib(Uint8Array.of(1, 2, 3, 4));
    expect(pixels({ ...base, chunks: [first, zlib(Uint8Array.of(5, 6))] })).toEqual([1, 2, 3, 4, 5, 6]);
    expect(pixels({ ...base, chunks: [first, zlib(Uint8Array.of(5, 6, 0, 0))] })).toEqual([1, 2, 3, 4, 5, 6]);
    formatError({ ...base, chunks: [first, zlib(Uint8Array.of(5, 6, 0, 0, 0))] }, /strip 1 is corrupt .*more than the 4 bytes/);
  });
});

describe('TIFF size limits from the header', () => {
  it('a page over 2^30 samples is refused from the IFD', () => {
    formatError(
      { width: 65536, height: 16385, compression: DEFLATE, chunks: [zlib(new Uint8Array(1))] },
      /image is too large to decode: 65536x16385x1 samples/,
    );
  });

  it('a tile far larger than the image is refused before it is allocated', () => {
    formatError(
      { width: 1, height: 1, compression: DEFLATE, tile: { width: 16384, height: 16384 }, chunks: [zlibZeros(256)] },
      /page 0: tile size 16384x16384 is too large for a 1x1 image \(limit 2048x2048/,
    );
    // Ordinary padded tiles of small images are fine.
    expect(
      pixels({
        width: 3,
        height: 2,
        compression: DEFLATE,
        tile: { width: 256, height: 256 },
        chunks: [zlib(new Uint8Array(65536).fill(4))],
      }),
    ).toEqual(new Array(6).fill(4));
  });

  it('strips whose compressed bytes cannot hold the declared page are refused before it is allocated', () => {
    // 30000x30000 gray would be 900 MB; 1000 compressed bytes decode to at most ~1 MB (Deflate), ~3.6 MB (LZW), 64 KB (PackBits).
    for (const [compression, name] of [
      [DEFLATE, 'Deflate'],
      [LZW, 'LZW'],
      [PACKBITS, 'PackBits'],
    ] as const) {
      const t0 = performance.now();
      formatError(
        { width: 30000, height: 30000, compression, chunks: [new Uint8Array(1000)] },
        new RegExp(`strip 0 is truncated or corrupt: 1000 bytes of ${name} data decode to at most \\d+ bytes, 900000000 needed`),
      );
      expect(performance.now() - t0).toBeLessThan(1_000);
    }
    expect(maxDecodedBytes('deflate', 1000)).toBe(1_032_000);
    expect(maxDecodedBytes('packbits', 1000)).toBe(64_000);
    expect(maxDecodedBytes('lzw', 9)).toBe(8 * 4096);
  });
});
