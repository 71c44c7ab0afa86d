import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { ImageFormatError } from '../../src/errors';
import type { AnyRasterImage } from '../../src/io/image';
import { decodeTiff, isTiff, paletteIsGrayRamp } from '../../src/io/tiff';
import { encodeTiff } from '../../src/io/tiff-write';
import { lzwDecode, unpackBits } from '../../src/io/tiff-codecs';
import { type ExpectedPage, fromBase64, pseudoRandomSamples } from './helpers';

const TIFF_FIXTURES = new URL('../fixtures/io/tiff/', import.meta.url);
const ZEISS_DIR = new URL('../../../shared/data/sem/zeiss-with-databar/', import.meta.url);
const ZEISS = JSON.parse(readFileSync(new URL('../fixtures/io/zeiss.json', import.meta.url), 'utf8')) as Record<
  string,
  { width: number; height: number; sha256: string; sum: number; colormap: number[]; czSemLength: number }
>;

function expectPage(got: AnyRasterImage, exp: ExpectedPage): void {
  expect({ w: got.width, h: got.height, c: got.channels, d: got.bitDepth }).toEqual({
    w: exp.width,
    h: exp.height,
    c: exp.channels,
    d: exp.bitDepth,
  });
  const data = fromBase64(exp.data, exp.bitDepth);
  expect(got.data).toBeInstanceOf(data.constructor);
  // Compare bit patterns so that -0 and NaN payloads count too.
  expect(Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength)).toEqual(
    Buffer.from(data.buffer, data.byteOffset, data.byteLength),
  );
  if (exp.alpha === undefined) expect(got.alpha).toBeUndefined();
  else expect(Array.from(got.alpha ?? [])).toEqual(Array.from(fromBase64(exp.alpha, exp.bitDepth)));
}

function makeImage(width: number, height: number, channels: 1 | 3, bitDepth: 8 | 16 | 32, alpha: boolean, seed: number): AnyRasterImage {
  const img = {
    width,
    height,
    channels,
    bitDepth,
    data: pseudoRandomSamples(width * height * channels, bitDepth, seed),
  } as AnyRasterImage;
  if (alpha) img.alpha = pseudoRandomSamples(width * height, bitDepth, seed + 1);
  return img;
}

function sameBits(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

describe('decodeTiff on files written by PIL/libtiff and an independent writer (tools/make_io_fixtures.py)', () => {
  const cases = JSON.parse(readFileSync(new URL('expected.json', TIFF_FIXTURES), 'utf8')) as Record<
    string,
    { pil: boolean; pages: ExpectedPage[] }
  >;
  it('has the fixture cases', () => {
    expect(Object.keys(cases).length).toBeGreaterThanOrEqual(40);
  });
  for (const [file, c] of Object.entries(cases)) {
    it(`${file}${c.pil ? ' (= PIL)' : ''}`, () => {
      const bytes = new Uint8Array(readFileSync(new URL(file, TIFF_FIXTURES)));
      expect(isTiff(bytes)).toBe(true);
      const pages = decodeTiff(bytes, { name: file });
      expect(pages.length).toBe(c.pages.length);
      pages.forEach((p, i) => expectPage(p.image, c.pages[i]));
    });
  }

  it('reads a single page of a multi-page file, and names a missing one', () => {
    const bytes = new Uint8Array(readFileSync(new URL('multipage.tif', TIFF_FIXTURES)));
    const [p2] = decodeTiff(bytes, { page: 2 });
    expectPage(p2.image, cases['multipage.tif'].pages[2]);
    expect(() => decodeTiff(bytes, { page: 4, name: 'm.tif' })).toThrow('m.tif: page 4 does not exist (the file has 4 pages)');
  });

  it('palette modes: auto keeps gray-ramp indices and expands colour palettes; index/expand force it', () => {
    const zeissLike = new Uint8Array(readFileSync(new URL('palette_zeiss_like.tif', TIFF_FIXTURES)));
    const [auto] = decodeTiff(zeissLike);
    expect(auto.metadata.palette).toBe('index');
    const [expanded] = decodeTiff(zeissLike, { palette: 'expand' });
    expect(expanded.metadata.palette).toBe('expanded');
    expect(expanded.image.channels).toBe(3); // overlay entries are coloured
    const colour = new Uint8Array(readFileSync(new URL('palette_color.tif', TIFF_FIXTURES)));
    const [idx] = decodeTiff(colour, { palette: 'index' });
    expect(idx.image.channels).toBe(1);
    expect(idx.metadata.colorMap?.length).toBe(768);
  });
});

describe('Zeiss SEM palette TIFFs (shared/data/sem/zeiss-with-databar)', () => {
  for (const [file, ref] of Object.entries(ZEISS)) {
    it(`${file}: 1024x768 raw palette indices equal to PIL's, CZ_SEM tag kept`, () => {
      const bytes = new Uint8Array(readFileSync(new URL(file, ZEISS_DIR)));
      const pages = decodeTiff(bytes, { name: file });
      expect(pages.length).toBe(1);
      const { image, metadata } = pages[0];
      expect({ w: image.width, h: image.height, c: image.channels, d: image.bitDepth }).toEqual({
        w: ref.width,
        h: ref.height,
        c: 1,
        d: 8,
      });
      expect(metadata.palette).toBe('index');
      expect(Array.from(metadata.colorMap?.subarray(0, 30) ?? [])).toEqual(ref.colormap);
      expect(
        createHash('sha256')
          .update(image.data as Uint8Array)
          .digest('hex'),
      ).toBe(ref.sha256);
      const czSem = metadata.extraTags.find((t) => t.tag === 34118);
      expect(typeof czSem?.value).toBe('string');
      expect((czSem?.value as string).length).toBe(ref.czSemLength);
    });
  }

  it('why the raw index is the gray level: identity ramp, overlay entries unused by the micrograph', () => {
    for (const file of Object.keys(ZEISS)) {
      const [{ image, metadata }] = decodeTiff(new Uint8Array(readFileSync(new URL(file, ZEISS_DIR))));
      const cm = metadata.colorMap as Uint16Array;
      const overlay: number[] = [];
      for (let i = 0; i < 256; i++) {
        const gray = cm[i] === cm[256 + i] && cm[i] === cm[512 + i] && cm[i] === i * 257;
        if (!gray) overlay.push(i);
      }
      // Every entry is gray level i except every ninth one (annotation colours: red, green, blue, ...).
      expect(overlay).toEqual(Array.from({ length: 27 }, (_, k) => 9 * (k + 1)));
      // The micrograph above the data bar never uses the coloured overlay entries 9 .. 234: the scanner
      // stores gray level 9k as 9k - 1, which therefore holds about twice its neighbours' count.
      const hist = new Array(256).fill(0);
      for (let i = 0; i < 690 * 1024; i++) hist[image.data[i]]++;
      for (const k of overlay.filter((i) => i < 243)) {
        expect(hist[k]).toBe(0);
        if (hist[k - 2] > 1000) expect(hist[k - 1] / ((hist[k - 2] + hist[k + 1]) / 2)).toBeGreaterThan(1.7); // 1.77–2.09
      }
    }
  });

  it('the gray-ramp rule: identity entries except every ninth is a ramp; a colour palette is not', () => {
    const [{ metadata }] = decodeTiff(new Uint8Array(readFileSync(new URL('125nm_03.tif', ZEISS_DIR))));
    expect(paletteIsGrayRamp(metadata.colorMap as Uint16Array, 8)).toBe(true);
    const rainbow = new Uint16Array(768);
    for (let i = 0; i < 256; i++) {
      rainbow[i] = i * 257;
      rainbow[256 + i] = (255 - i) * 257;
      rainbow[512 + i] = 0;
    }
    expect(paletteIsGrayRamp(rainbow, 8)).toBe(false);
  });

  it('written back with its metadata, the file keeps palette, tags and pixels', () => {
    const bytes = new Uint8Array(readFileSync(new URL('130nm_05.tif', ZEISS_DIR)));
    const [page] = decodeTiff(bytes);
    for (const compression of ['none', 'deflate'] as const) {
      const out = encodeTiff([page], { compression });
      const [back] = decodeTiff(out);
      expect(back.metadata.photometric).toBe(3);
      expect(back.metadata.colorMap).toEqual(page.metadata.colorMap);
      expect(back.metadata.palette).toBe('index');
      expect(sameBits(back.image.data, page.image.data)).toBe(true);
      expect(back.metadata.extraTags.find((t) => t.tag === 34118)?.value).toBe(page.metadata.extraTags.find((t) => t.tag === 34118)?.value);
      expect(back.metadata.resolution).toEqual(page.metadata.resolution);
    }
  });
});

describe('encodeTiff / decodeTiff round trips', () => {
  const sizes: [number, number][] = [
    [1, 1],
    [7, 5],
    [130, 70], // several strips at 8 bits with alpha? (64 KiB strips: forces > 1 strip for float RGB)
  ];
  for (const bitDepth of [8, 16, 32] as const) {
    for (const channels of [1, 3] as const) {
      for (const alpha of [false, true]) {
        for (const compression of ['none', 'deflate'] as const) {
          for (const predictor of compression === 'deflate' ? [true, false] : [false]) {
            const label = `${bitDepth}-bit ${channels === 1 ? 'gray' : 'RGB'}${alpha ? '+alpha' : ''} ${compression}${predictor ? '+predictor' : ''}`;
            it(label, () => {
              for (const [w, h] of sizes) {
                const img = makeImage(w, h, channels, bitDepth, alpha, w * 31 + h + bitDepth + channels);
                const bytes = encodeTiff(img, { compression, predictor });
                const [back] = decodeTiff(bytes);
                expect(back.image.bitDepth).toBe(bitDepth);
                expect(back.image.channels).toBe(channels);
                expect(back.image.width).toBe(w);
                expect(back.image.height).toBe(h);
                expect(sameBits(back.image.data, img.data)).toBe(true);
                if (alpha) expect(sameBits(back.image.alpha as ArrayBufferView, img.alpha as ArrayBufferView)).toBe(true);
                else expect(back.image.alpha).toBeUndefined();
              }
            });
          }
        }
      }
    }
  }

  it('writes several strips for a large image and several pages in order', () => {
    const big = makeImage(300, 200, 3, 16, false, 5); // 360 KB of samples -> 6 strips
    const small = makeImage(3, 2, 1, 32, true, 6);
    const bytes = encodeTiff([big, small], { compression: 'deflate' });
    const pages = decodeTiff(bytes);
    expect(pages.length).toBe(2);
    expect(sameBits(pages[0].image.data, big.data)).toBe(true);
    expect(sameBits(pages[1].image.data, small.data)).toBe(true);
    expect(pages[0].metadata.compression).toBe(8);
    expect(pages[0].metadata.predictor).toBe(2);
    expect(pages[1].metadata.predictor).toBe(3);
  });

  it('passes resolution, descriptive and vendor tags through a read/write cycle', () => {
    const img = makeImage(4, 3, 1, 8, false, 9);
    const first = encodeTiff([
      {
        image: img,
        metadata: {
          resolution: { x: 118.11, y: 72, unit: 3 },
          extraTags: [
            { tag: 270, type: 2, count: 6, value: 'hello' },
            { tag: 34682, type: 2, count: 4, value: 'FEI' },
            { tag: 40000, type: 3, count: 2, value: [1, 65535] },
            { tag: 40001, type: 10, count: 1, value: [-3, 4] },
            { tag: 40002, type: 7, count: 3, value: Uint8Array.of(1, 2, 3) },
            { tag: 34665, type: 4, count: 1, value: [1234] }, // Exif pointer: dropped
          ],
        },
      },
    ]);
    const [page] = decodeTiff(first);
    expect(page.metadata.resolution?.x).toBeCloseTo(118.11, 6);
    expect(page.metadata.resolution?.unit).toBe(3);
    const byTag = new Map(page.metadata.extraTags.map((t) => [t.tag, t.value]));
    expect(byTag.get(270)).toBe('hello');
    expect(byTag.get(34682)).toBe('FEI');
    expect(byTag.get(40000)).toEqual([1, 65535]);
    expect(byTag.get(40001)).toEqual([-3, 4]);
    expect(Array.from(byTag.get(40002) as Uint8Array)).toEqual([1, 2, 3]);
    expect(byTag.has(34665)).toBe(false);
    // And once more: identical bytes.
    expect(encodeTiff([page])).toEqual(first);
  });
});

/** Rewrites the value of `tag` in the first IFD of a little-endian TIFF (inline SHORT/LONG values only). */
function patchTag(bytes: Uint8Array, tag: number, value: number): Uint8Array {
  const out = bytes.slice();
  const dv = new DataView(out.buffer);
  const ifd = dv.getUint32(4, true);
  const n = dv.getUint16(ifd, true);
  for (let k = 0; k < n; k++) {
    const e = ifd + 2 + 12 * k;
    if (dv.getUint16(e, true) === tag) {
      if (dv.getUint16(e + 2, true) === 3) dv.setUint16(e + 8, value, true);
      else dv.setUint32(e + 8, value, true);
      return out;
    }
  }
  throw new Error(`tag ${tag} not found`);
}

/** Renumbers the first IFD entry with tag `from` to `to` (the reader does not need sorted entries). */
function retag(bytes: Uint8Array, from: number, to: number): Uint8Array {
  const out = bytes.slice();
  const dv = new DataView(out.buffer);
  const ifd = dv.getUint32(4, true);
  const n = dv.getUint16(ifd, true);
  for (let k = 0; k < n; k++) {
    const e = ifd + 2 + 12 * k;
    if (dv.getUint16(e, true) === from) {
      dv.setUint16(e, to, true);
      return out;
    }
  }
  throw new Error(`tag ${from} not found`);
}

function expectFormatError(fn: () => unknown, ...fragments: (string | RegExp)[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ImageFormatError);
  for (const f of fragments) expect((caught as Error).message).toMatch(f);
}

describe('decodeTiff errors name the tag and value', () => {
  const base = encodeTiff(makeImage(6, 4, 1, 8, false, 1));
  const rgb = encodeTiff(makeImage(6, 4, 3, 16, false, 2));

  it('unsupported compression, photometric, sample format, bit depth, planar config, predictor', () => {
    expectFormatError(
      () => decodeTiff(patchTag(base, 259, 7), { name: 'x.tif' }),
      'x.tif: page 0: unsupported Compression (tag 259) = 7 (JPEG)',
    );
    expectFormatError(() => decodeTiff(patchTag(base, 259, 4)), /Compression \(tag 259\) = 4 \(CCITT Group 4 fax\)/);
    expectFormatError(() => decodeTiff(patchTag(base, 259, 50000)), /Compression \(tag 259\) = 50000 \(Zstandard\)/);
    expectFormatError(() => decodeTiff(patchTag(rgb, 262, 6)), /PhotometricInterpretation \(tag 262\) = 6 \(YCbCr\)/);
    expectFormatError(() => decodeTiff(patchTag(rgb, 262, 5)), /PhotometricInterpretation \(tag 262\) = 5 \(CMYK/);
    expectFormatError(() => decodeTiff(patchTag(base, 339, 2)), /SampleFormat \(tag 339\) = 2 \(signed integer samples\)/);
    expectFormatError(() => decodeTiff(patchTag(base, 258, 12)), /BitsPerSample \(tag 258\) = 12/);
    expectFormatError(() => decodeTiff(patchTag(base, 284, 3)), /PlanarConfiguration \(tag 284\) = 3/);
    expectFormatError(() => decodeTiff(retag(patchTag(base, 284, 2), 284, 266)), /FillOrder \(tag 266\) = 2/);
    const deflated = encodeTiff(makeImage(6, 4, 1, 8, false, 1), { compression: 'deflate' });
    expectFormatError(() => decodeTiff(patchTag(deflated, 317, 5)), /Predictor \(tag 317\) = 5/);
    expectFormatError(
      () => decodeTiff(patchTag(deflated, 317, 3)),
      /Predictor \(tag 317\) = 3 \(the floating-point predictor on integer samples\)/,
    );
  });

  it('missing required tags, too few strip offsets, truncated files, corrupt data', () => {
    expectFormatError(() => decodeTiff(patchTag(base, 256, 0)), /invalid image size 0x4/);
    expectFormatError(() => decodeTiff(base.subarray(0, 20)), /truncated/);
    expectFormatError(() => decodeTiff(base.subarray(0, 7)), /truncated/);
    const stripEnd = base.subarray(0, 8 + 10); // IFD gone
    expectFormatError(() => decodeTiff(stripEnd), /truncated/);
    const deflated = encodeTiff(makeImage(60, 40, 1, 8, false, 3), { compression: 'deflate' });
    const broken = deflated.slice();
    for (let i = 12; i < 40; i++) broken[i] ^= 0x5a;
    expectFormatError(() => decodeTiff(broken, { name: 'b.tif' }), /b\.tif: page 0: strip 0 is (corrupt|truncated)/);
    expectFormatError(() => decodeTiff(patchTag(base, 277, 3)), /(SamplesPerPixel|truncated|needs)/);
  });

  it('recognises non-TIFF input and BigTIFF', () => {
    expectFormatError(() => decodeTiff(Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0)), /not a TIFF file/);
    expectFormatError(() => decodeTiff(Uint8Array.of(0x49, 0x49, 43, 0, 8, 0, 0, 0)), /BigTIFF/);
    expect(isTiff(Uint8Array.of(0x4d, 0x4d, 0, 42))).toBe(true);
    expect(isTiff(Uint8Array.of(0x49, 0x49))).toBe(false);
  });

  it('stops at a loop in the IFD chain', () => {
    const looped = base.slice();
    const dv = new DataView(looped.buffer);
    const ifd = dv.getUint32(4, true);
    const n = dv.getUint16(ifd, true);
    dv.setUint32(ifd + 2 + 12 * n, ifd, true); // next IFD = itself
    expect(decodeTiff(looped).length).toBe(1);
  });
});

describe('codecs', () => {
  it('unpackBits: literal runs, repeats and the no-op header', () => {
    const src = Uint8Array.of(2, 1, 2, 3, 0xfe, 9, 0x80, 0, 7);
    const dst = new Uint8Array(7);
    expect(unpackBits(src, dst)).toBe(7);
    expect(Array.from(dst)).toEqual([1, 2, 3, 9, 9, 9, 7]);
    expect(unpackBits(Uint8Array.of(5, 1), new Uint8Array(6))).toBe(1); // truncated literal
  });

  it('lzwDecode refuses old-style LZW and impossible codes', () => {
    expect(() => lzwDecode(Uint8Array.of(0, 1, 2, 3), new Uint8Array(4))).toThrow(/old-style/);
    // 9-bit codes: CLEAR (256), 65, then 300 (beyond the next free code 258).
    const bits = [256, 65, 300]
      .map((c) => c.toString(2).padStart(9, '0'))
      .join('')
      .padEnd(32, '0');
    const src = new Uint8Array(4);
    for (let i = 0; i < 4; i++) src[i] = parseInt(bits.slice(8 * i, 8 * i + 8), 2);
    expect(() => lzwDecode(src, new Uint8Array(10))).toThrow(/code 300 is beyond the table/);
  });
});
