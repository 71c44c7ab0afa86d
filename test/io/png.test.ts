import { readFileSync, readdirSync } from 'node:fs';

import { decode as fastPngDecode, encode as fastPngEncode } from 'fast-png';
import { describe, expect, it } from 'vitest';

import { ImageFormatError, InvalidInputError } from '../../src/errors';
import type { RasterImage } from '../../src/io/image';
import { decodePng, describeImageBytes, encodePng, isPng } from '../../src/io/png';
import { type ExpectedPage, SIGNATURE, buildPng, chunk, concat, fromBase64, ihdr, pseudoRandomBytes, zlib } from './helpers';

const SET12_DIR = new URL('../../../shared/data/set12/', import.meta.url);
const FIXTURES = new URL('../fixtures/io/', import.meta.url);

function readFixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(name, FIXTURES)));
}

function makeRaster(width: number, height: number, channels: 1 | 3, bitDepth: 8 | 16, seed: number): RasterImage {
  const n = width * height * channels;
  const bytes = pseudoRandomBytes(n * 2, seed);
  const data = bitDepth === 16 ? new Uint16Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = bitDepth === 16 ? (bytes[2 * i] << 8) | bytes[2 * i + 1] : bytes[i];
  return { width, height, channels, bitDepth, data };
}

function expectFormatError(fn: () => unknown, ...fragments: (string | RegExp)[]): ImageFormatError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ImageFormatError);
  const err = caught as ImageFormatError;
  expect(err.code).toBe('IMAGE_FORMAT');
  for (const f of fragments) expect(err.message).toMatch(f);
  return err;
}

describe('encodePng / decodePng round trip', () => {
  const sizes: [number, number][] = [
    [1, 1],
    [7, 13],
    [13, 7],
    [64, 3],
  ];
  for (const bitDepth of [8, 16] as const) {
    for (const channels of [1, 3] as const) {
      for (const [w, h] of sizes) {
        it(`${bitDepth}-bit, ${channels} channel(s), ${w}x${h}`, () => {
          const img = makeRaster(w, h, channels, bitDepth, w * 1000 + h * 10 + channels + bitDepth);
          const bytes = encodePng(img);
          expect(isPng(bytes)).toBe(true);
          const back = decodePng(bytes, 'roundtrip.png');
          expect(back.width).toBe(w);
          expect(back.height).toBe(h);
          expect(back.channels).toBe(channels);
          expect(back.bitDepth).toBe(bitDepth);
          expect(back.data).toBeInstanceOf(bitDepth === 16 ? Uint16Array : Uint8Array);
          expect(Array.from(back.data)).toEqual(Array.from(img.data));
          // An independent decoder (fast-png) reads what we wrote identically.
          const other = fastPngDecode(bytes);
          expect(other.depth).toBe(bitDepth);
          expect(other.channels).toBe(channels);
          expect(Array.from(other.data)).toEqual(Array.from(img.data));
        });
      }
    }
  }

  it('keeps 16-bit values exactly (no reduction to 8 bits)', () => {
    const data = Uint16Array.of(0, 1, 255, 256, 257, 4095, 32768, 65534, 65535);
    const img: RasterImage = { width: 3, height: 3, channels: 1, bitDepth: 16, data };
    const back = decodePng(encodePng(img));
    expect(back.bitDepth).toBe(16);
    expect(Array.from(back.data)).toEqual(Array.from(data));
  });

  it('rejects malformed images with InvalidInputError', () => {
    const bad = { width: 2, height: 2, channels: 1, bitDepth: 8, data: new Uint8Array(3) } as RasterImage;
    expect(() => encodePng(bad)).toThrow(InvalidInputError);
    expect(() => encodePng(bad)).toThrow(/length 3/);
    const wrongType = { width: 1, height: 1, channels: 1, bitDepth: 16, data: new Uint8Array(1) } as RasterImage;
    expect(() => encodePng(wrongType)).toThrow(/Uint16Array/);
  });
});

describe('decodePng on Set12', () => {
  const reference = JSON.parse(readFileSync(new URL('set12.json', FIXTURES), 'utf8')) as Record<
    string,
    { width: number; height: number; sum: number; sumSquares: number; pixels: [number, number, number][] }
  >;
  const files = readdirSync(SET12_DIR)
    .filter((f) => f.endsWith('.png'))
    .sort();

  it('finds the twelve images', () => {
    expect(files.length).toBe(12);
    expect(Object.keys(reference).sort()).toEqual(files);
  });

  for (const file of files) {
    it(`${file} decodes to 1-channel 8-bit and matches PIL`, () => {
      const img = decodePng(new Uint8Array(readFileSync(new URL(file, SET12_DIR))), file);
      expect(img.channels).toBe(1);
      expect(img.bitDepth).toBe(8);
      expect(img.data).toBeInstanceOf(Uint8Array);
      expect([256, 512]).toContain(img.width);
      expect(img.height).toBe(img.width);
      const ref = reference[file];
      expect(img.width).toBe(ref.width);
      expect(img.height).toBe(ref.height);
      let sum = 0;
      let sumSquares = 0;
      for (const v of img.data) {
        sum += v;
        sumSquares += v * v;
      }
      expect(sum).toBe(ref.sum);
      expect(sumSquares).toBe(ref.sumSquares);
      for (const [x, y, v] of ref.pixels) expect(img.data[y * img.width + x]).toBe(v);
    });
  }
});

describe('decodePng colour types and bit depths (fixtures checked against PIL)', () => {
  const cases = JSON.parse(readFileSync(new URL('cases.json', FIXTURES), 'utf8')) as Record<
    string,
    { width: number; height: number; channels: 1 | 3; bitDepth: 8 | 16; expected: number[] }
  >;
  it('has the fixture cases', () => {
    expect(Object.keys(cases).length).toBeGreaterThanOrEqual(15);
  });
  for (const [file, c] of Object.entries(cases)) {
    it(file, () => {
      const img = decodePng(readFixture(file), file);
      expect({ w: img.width, h: img.height, c: img.channels, d: img.bitDepth }).toEqual({
        w: c.width,
        h: c.height,
        c: c.channels,
        d: c.bitDepth,
      });
      expect(img.data).toBeInstanceOf(c.bitDepth === 16 ? Uint16Array : Uint8Array);
      expect(Array.from(img.data)).toEqual(c.expected);
    });
  }
});

describe('decodePng on PNGs written by fast-png', () => {
  it('8-bit colour palette expands to RGB', () => {
    const palette = [
      [255, 0, 0],
      [0, 128, 255],
      [7, 7, 7],
    ];
    const idx = Uint8Array.of(0, 1, 2, 2, 1, 0);
    const bytes = fastPngEncode({ width: 3, height: 2, channels: 1, depth: 8, data: idx, palette });
    const img = decodePng(bytes);
    expect(img.channels).toBe(3);
    expect(img.bitDepth).toBe(8);
    expect(Array.from(img.data)).toEqual(Array.from(idx).flatMap((i) => palette[i]));
  });

  it('palette with only gray entries decodes to one channel', () => {
    const palette = [
      [0, 0, 0],
      [100, 100, 100],
      [255, 255, 255],
    ];
    const idx = Uint8Array.of(2, 1, 0, 1);
    const img = decodePng(fastPngEncode({ width: 2, height: 2, channels: 1, depth: 8, data: idx, palette }));
    expect(img.channels).toBe(1);
    expect(Array.from(img.data)).toEqual([255, 100, 0, 100]);
  });

  it('palette with alpha (tRNS) keeps the alpha as a separate plane', () => {
    const palette = [
      [10, 20, 30, 0],
      [40, 50, 60, 128],
    ];
    const idx = Uint8Array.of(1, 0);
    const img = decodePng(fastPngEncode({ width: 2, height: 1, channels: 1, depth: 8, data: idx, palette }));
    expect(img.channels).toBe(3);
    expect(Array.from(img.data)).toEqual([40, 50, 60, 10, 20, 30]);
    expect(Array.from(img.alpha ?? [])).toEqual([128, 0]);
  });

  for (const depth of [8, 16] as const) {
    it(`${depth}-bit gray+alpha keeps the alpha as a separate plane`, () => {
      const data = depth === 16 ? Uint16Array.of(1000, 1, 65535, 2, 300, 3) : Uint8Array.of(10, 1, 255, 2, 30, 3);
      const img = decodePng(fastPngEncode({ width: 3, height: 1, channels: 2, depth, data }));
      expect(img.channels).toBe(1);
      expect(img.bitDepth).toBe(depth);
      expect(Array.from(img.data)).toEqual([data[0], data[2], data[4]]);
      expect(img.alpha).toBeInstanceOf(depth === 16 ? Uint16Array : Uint8Array);
      expect(Array.from(img.alpha ?? [])).toEqual([1, 2, 3]);
    });

    it(`${depth}-bit RGBA keeps the alpha as a separate plane`, () => {
      const n = 2 * 3;
      const rgba = depth === 16 ? new Uint16Array(n * 4) : new Uint8Array(n * 4);
      const max = depth === 16 ? 65535 : 255;
      for (let i = 0; i < rgba.length; i++) rgba[i] = (i * 7919) % (max + 1);
      const img = decodePng(fastPngEncode({ width: 3, height: 2, channels: 4, depth, data: rgba }));
      expect(img.channels).toBe(3);
      expect(img.bitDepth).toBe(depth);
      const expected: number[] = [];
      for (let p = 0; p < n; p++) expected.push(rgba[4 * p], rgba[4 * p + 1], rgba[4 * p + 2]);
      expect(Array.from(img.data)).toEqual(expected);
      expect(Array.from(img.alpha ?? [])).toEqual(Array.from({ length: n }, (_, p) => rgba[4 * p + 3]));
    });
  }

  it('Adam7-interlaced 8-bit RGB and 16-bit gray', () => {
    for (const [channels, depth] of [
      [3, 8],
      [1, 16],
    ] as const) {
      const img = makeRaster(11, 9, channels, depth, 42 + channels);
      const bytes = fastPngEncode({ width: 11, height: 9, channels, depth, data: img.data }, { interlace: 'Adam7' });
      expect(bytes[8 + 8 + 12]).toBe(1); // IHDR interlace byte
      const back = decodePng(bytes);
      expect(Array.from(back.data)).toEqual(Array.from(img.data));
    }
  });
});

describe('decodePng errors', () => {
  const good = readFixture('gray4.png');

  it('names JPEG, GIF, TIFF, WebP, empty, text and Git LFS inputs', () => {
    expectFormatError(
      () => decodePng(Uint8Array.of(0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46, 0x49, 0x46), 'photo.png'),
      'photo.png is not a PNG file',
      /JPEG/,
      /ff d8 ff e0/,
    );
    expectFormatError(() => decodePng(new TextEncoder().encode('GIF89a....'), 'a.png'), /GIF/);
    expectFormatError(() => decodePng(Uint8Array.of(0x49, 0x49, 0x2a, 0, 8, 0, 0, 0), 'b.png'), /TIFF/);
    expectFormatError(() => decodePng(Uint8Array.of(0x4d, 0x4d, 0, 0x2a, 0, 0, 0, 8), 'b.png'), /TIFF/);
    expectFormatError(() => decodePng(new TextEncoder().encode('RIFF\x10\0\0\0WEBPVP8 '), 'c.png'), /WebP/);
    expectFormatError(() => decodePng(new Uint8Array(0), 'empty.png'), 'empty.png is not a PNG file', /empty/);
    expectFormatError(
      () => decodePng(new TextEncoder().encode('version https://git-lfs.github.com/spec/v1\noid sha256:abc\n'), 'x.png'),
      /Git LFS pointer/,
    );
    expectFormatError(() => decodePng(new TextEncoder().encode('<!DOCTYPE html><html>'), 'page.png'), /HTML/);
  });

  it('random bytes are not a PNG', () => {
    const bytes = pseudoRandomBytes(100, 7);
    expectFormatError(() => decodePng(bytes, 'noise.bin'), 'noise.bin is not a PNG file', /100 bytes/);
    expect(describeImageBytes(bytes)).toMatch(/first bytes: [0-9a-f]{2}( [0-9a-f]{2}){7}$/);
  });

  it('recognises a PNG whose signature was mangled by a text-mode transfer', () => {
    const mangled = concat(Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0a, 0x1a, 0x0a), good.subarray(8));
    expectFormatError(() => decodePng(mangled, 'm.png'), /signature was altered/);
  });

  it('defaults the name to "input"', () => {
    expectFormatError(() => decodePng(Uint8Array.of(1, 2, 3)), /^input is not a PNG file/);
  });

  it('rejects non-Uint8Array input with InvalidInputError', () => {
    expect(() => decodePng([1, 2, 3] as unknown as Uint8Array)).toThrow(InvalidInputError);
  });

  it('reports truncated files at every cut point', () => {
    const set12 = new Uint8Array(readFileSync(new URL('01.png', SET12_DIR)));
    for (const file of [good, set12]) {
      const cuts = [8, 9, 15, 20, 33, 40, Math.floor(file.length / 2), file.length - 13, file.length - 12, file.length - 1];
      for (const cut of cuts) {
        expectFormatError(() => decodePng(file.subarray(0, cut), 'cut.png'), /^cut\.png: PNG file is truncated/);
      }
    }
    // Every cut of a small file is caught (never a crash or a silently wrong image).
    for (let cut = 0; cut < good.length; cut++) {
      expect(() => decodePng(good.subarray(0, cut))).toThrow(ImageFormatError);
    }
  });

  it('detects a flipped byte through the chunk CRC', () => {
    const set12 = new Uint8Array(readFileSync(new URL('01.png', SET12_DIR)));
    const bad = set12.slice();
    bad[5000] ^= 0x10;
    expectFormatError(() => decodePng(bad, '01.png'), /CRC mismatch in chunk 'IDAT'/);
    const badHeader = good.slice();
    badHeader[16 + 3] ^= 1; // width byte
    expectFormatError(() => decodePng(badHeader), /CRC mismatch in chunk 'IHDR'/);
  });

  it('detects corrupt compressed data even when the CRCs are valid', () => {
    const raw = new Uint8Array(3 * (1 + 4));
    const z = zlib(raw);
    const broken = z.slice();
    broken[z.length - 1] ^= 0xff; // Adler-32 trailer
    const png = concat(SIGNATURE, ihdr(4, 3, 8, 0), chunk('IDAT', broken), chunk('IEND', new Uint8Array(0)));
    expectFormatError(() => decodePng(png), /checksum mismatch/);
    const garbage = concat(
      SIGNATURE,
      ihdr(4, 3, 8, 0),
      chunk('IDAT', Uint8Array.of(0x78, 0x9c, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 1, 2)),
      chunk('IEND', new Uint8Array(0)),
    );
    expectFormatError(() => decodePng(garbage), /image data is corrupt or truncated/);
  });

  it('detects too little image data', () => {
    const png = buildPng({ width: 4, height: 3, bitDepth: 8, colorType: 0, raw: new Uint8Array(2 * 5 + 3) });
    expectFormatError(() => decodePng(png), /image data is truncated: 13 bytes after decompression, 4x3 needs 15/);
  });

  it('rejects invalid filter types, bad headers and missing chunks', () => {
    const raw = Uint8Array.of(0, 1, 2, 7, 3, 4);
    expectFormatError(
      () => decodePng(buildPng({ width: 2, height: 2, bitDepth: 8, colorType: 0, raw, extra: [] })),
      /invalid filter type 7 on row 1/,
    );
    expectFormatError(
      () => decodePng(buildPng({ width: 2, height: 1, bitDepth: 4, colorType: 2, raw: new Uint8Array(4) })),
      /bit depth 4 is not allowed for colour type 2/,
    );
    expectFormatError(
      () => decodePng(buildPng({ width: 2, height: 1, bitDepth: 8, colorType: 5, raw: new Uint8Array(4) })),
      /unknown colour type 5/,
    );
    expectFormatError(
      () => decodePng(buildPng({ width: 0, height: 1, bitDepth: 8, colorType: 0, raw: new Uint8Array(1) })),
      /invalid image size 0x1/,
    );
    expectFormatError(
      () => decodePng(buildPng({ width: 2, height: 1, bitDepth: 8, colorType: 3, raw: new Uint8Array(3) })),
      /without a PLTE/,
    );
    expectFormatError(() => decodePng(concat(SIGNATURE, ihdr(1, 1, 8, 0), chunk('IEND', new Uint8Array(0)))), /no IDAT/);
    expectFormatError(
      () => decodePng(concat(SIGNATURE, chunk('IDAT', zlib(Uint8Array.of(0, 0))), chunk('IEND', new Uint8Array(0)))),
      /first chunk is 'IDAT', expected 'IHDR'/,
    );
    expectFormatError(
      () =>
        decodePng(
          buildPng({ width: 1, height: 1, bitDepth: 8, colorType: 0, raw: Uint8Array.of(0, 0), extra: [chunk('ABCD', new Uint8Array(1))] }),
        ),
      /unsupported critical PNG chunk 'ABCD'/,
    );
  });

  it('skips unknown ancillary chunks', () => {
    const png = buildPng({
      width: 1,
      height: 1,
      bitDepth: 8,
      colorType: 0,
      raw: Uint8Array.of(0, 42),
      extra: [chunk('abCd', Uint8Array.of(1, 2, 3)), chunk('tEXt', new TextEncoder().encode('k\0v'))],
    });
    expect(Array.from(decodePng(png).data)).toEqual([42]);
  });

  it('rejects palette indices beyond the palette', () => {
    const png = buildPng({ width: 2, height: 1, bitDepth: 8, colorType: 3, raw: Uint8Array.of(0, 1, 2), palette: [1, 2, 3, 4, 5, 6] });
    expectFormatError(() => decodePng(png), /pixel \(1, 0\) uses palette index 2, but the palette has 2 entries/);
  });

  it('keeps the cause of inflate failures', () => {
    const idat = Uint8Array.of(0x78, 0x9c, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 1, 2);
    const garbage = concat(SIGNATURE, ihdr(4, 3, 8, 0), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0)));
    const err = expectFormatError(() => decodePng(garbage), /inflate failed/);
    expect(err.cause).toBeInstanceOf(Error);
    // A zlib stream too short to hold any data is reported as truncated image data.
    const short = concat(SIGNATURE, ihdr(4, 3, 8, 0), chunk('IDAT', Uint8Array.of(0x78, 0x9c, 0xff)), chunk('IEND', new Uint8Array(0)));
    expectFormatError(() => decodePng(short), /image data is truncated: 0 bytes/);
    // A zlib stream cut off halfway: the rows it did hold are counted, like a stream that ends early.
    const rows = new Uint8Array(100 * 101).map((_, i) => (i % 101 === 0 ? 0 : (i * 7) % 13));
    const z = zlib(rows);
    const cut = concat(SIGNATURE, ihdr(100, 100, 8, 0), chunk('IDAT', z.subarray(0, z.length >> 1)), chunk('IEND', new Uint8Array(0)));
    const message = expectFormatError(
      () => decodePng(cut),
      /image data is truncated: \d+ bytes after decompression, 100x100 needs 10100/,
    ).message;
    expect(Number(/truncated: (\d+) bytes/.exec(message)?.[1])).toBeGreaterThan(0);
  });
});

describe('PNG alpha planes (fixtures from tools/make_io_fixtures.py)', () => {
  const ALPHA = new URL('../fixtures/io/alpha/', import.meta.url);
  const cases = JSON.parse(readFileSync(new URL('expected.json', ALPHA), 'utf8')) as Record<
    string,
    { pil: boolean; pages: ExpectedPage[] }
  >;
  for (const [file, c] of Object.entries(cases)) {
    it(`${file}${c.pil ? ' (= PIL)' : ''}: colour and alpha, then written back and read again unchanged`, () => {
      const exp = c.pages[0];
      const img = decodePng(new Uint8Array(readFileSync(new URL(file, ALPHA))), file);
      expect({ w: img.width, h: img.height, c: img.channels, d: img.bitDepth }).toEqual({
        w: exp.width,
        h: exp.height,
        c: exp.channels,
        d: exp.bitDepth,
      });
      expect(Array.from(img.data)).toEqual(Array.from(fromBase64(exp.data, exp.bitDepth)));
      expect(Array.from(img.alpha ?? [])).toEqual(Array.from(fromBase64(exp.alpha as string, exp.bitDepth)));
      const back = decodePng(encodePng(img));
      expect(back).toEqual(img);
    });
  }

  it('fixture PNGs with alpha from the older set keep the same colour values', () => {
    const la = decodePng(readFixture('gray_alpha8.png'));
    expect(la.alpha).toBeDefined();
    expect(decodePng(readFixture('rgb8_filters.png')).alpha).toBeUndefined();
  });

  for (const depth of [8, 16] as const) {
    for (const channels of [1, 3] as const) {
      it(`encodePng writes ${depth}-bit ${channels === 1 ? 'gray+alpha' : 'RGBA'} and decodes it back exactly`, () => {
        const img = makeRaster(9, 5, channels, depth, 77 + depth + channels);
        const alpha = makeRaster(9, 5, 1, depth, 99 + depth).data;
        const bytes = encodePng({ ...img, alpha });
        expect(bytes[8 + 8 + 9]).toBe(channels === 1 ? 4 : 6); // IHDR colour type
        expect(bytes[8 + 8 + 8]).toBe(depth);
        const back = decodePng(bytes);
        expect(Array.from(back.data)).toEqual(Array.from(img.data));
        expect(Array.from(back.alpha ?? [])).toEqual(Array.from(alpha));
      });
    }
  }

  it('encodePng refuses float samples and a malformed alpha plane', () => {
    const f = { width: 1, height: 1, channels: 1, bitDepth: 32, data: new Float32Array(1) };
    expectFormatError(() => encodePng(f as unknown as RasterImage), /PNG cannot store 32-bit float/);
    const bad: RasterImage = { width: 2, height: 1, channels: 1, bitDepth: 8, data: new Uint8Array(2), alpha: new Uint8Array(1) };
    expect(() => encodePng(bad)).toThrow(/alpha has length 1, but width\*height = 2\*1 = 2/);
    const wrongType: RasterImage = { width: 1, height: 1, channels: 1, bitDepth: 8, data: new Uint8Array(1), alpha: new Uint16Array(1) };
    expect(() => encodePng(wrongType)).toThrow(/alpha must be a Uint8Array/);
  });
});
