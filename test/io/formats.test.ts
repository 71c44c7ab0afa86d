import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ImageFormatError, InvalidInputError } from '../../src/errors';
import { decodeImage, formatFromFileName, readImage, sniffFormat, writeImage } from '../../src/io/formats';
import type { AnyRasterImage } from '../../src/io/image';
import { readImageFile, readImageFilePages, writeImageFile } from '../../src/node-files';
import { pseudoRandomSamples } from './helpers';

function makeImage(channels: 1 | 3, bitDepth: 8 | 16 | 32, alpha: boolean, seed: number, width = 13, height = 7): AnyRasterImage {
  const img = { width, height, channels, bitDepth, data: pseudoRandomSamples(width * height * channels, bitDepth, seed) } as AnyRasterImage;
  if (alpha) img.alpha = pseudoRandomSamples(width * height, bitDepth, seed + 100);
  return img;
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

describe('readImage / writeImage: every format, bit depth and channel layout round-trips exactly', () => {
  for (const format of ['png', 'tiff'] as const) {
    for (const bitDepth of format === 'png' ? ([8, 16] as const) : ([8, 16, 32] as const)) {
      for (const channels of [1, 3] as const) {
        for (const alpha of [false, true]) {
          it(`${format} ${bitDepth}-bit ${channels === 1 ? 'gray' : 'RGB'}${alpha ? ' + alpha' : ''}`, () => {
            const img = makeImage(channels, bitDepth, alpha, bitDepth * 10 + channels + (alpha ? 1 : 0));
            const bytes = writeImage(img, { format });
            expect(sniffFormat(bytes)).toBe(format);
            const file = readImage(bytes);
            expect(file.format).toBe(format);
            expect(file.pages.length).toBe(1);
            expect(file.pages[0].image).toEqual(img);
            expect(decodeImage(bytes)).toEqual(img);
          });
        }
      }
    }
  }

  it('multi-page TIFF: every page comes back, each at its own bit depth', () => {
    const pages = [makeImage(1, 8, false, 1), makeImage(3, 16, true, 2), makeImage(1, 32, false, 3)];
    const bytes = writeImage(pages, { format: 'tiff', compression: 'deflate' });
    const file = readImage(bytes);
    expect(file.pages.map((p) => p.image)).toEqual(pages);
    expect(decodeImage(bytes, { page: 1 })).toEqual(pages[1]);
  });
});

describe('format errors', () => {
  it('JPEG, BMP, WebP, GIF and text are refused with a hint to convert', () => {
    const jpeg = Uint8Array.of(0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46);
    expectFormatError(
      () => readImage(jpeg, { name: 'photo.jpg' }),
      /photo\.jpg: unsupported image format \(it looks like a JPEG file/,
      /convert it to PNG or TIFF/,
    );
    const bmp = new Uint8Array([0x42, 0x4d, 0, 0, 0, 0, 0, 0, 0, 0]);
    expectFormatError(() => readImage(bmp), /a BMP file/);
    const webp = new TextEncoder().encode('RIFF\0\0\0\0WEBPVP8 ');
    expectFormatError(() => readImage(webp), /a WebP file/);
    expectFormatError(() => readImage(new TextEncoder().encode('GIF89a....')), /a GIF file/);
    expectFormatError(() => readImage(new Uint8Array(0)), /it is empty/);
    expect(() => readImage('x' as unknown as Uint8Array)).toThrow(InvalidInputError);
  });

  it('float samples and several pages do not fit a PNG', () => {
    expectFormatError(
      () => writeImage(makeImage(1, 32, false, 1), { format: 'png' }),
      /PNG cannot store 32-bit float samples: write a TIFF/,
    );
    expectFormatError(
      () => writeImage([makeImage(1, 8, false, 1), makeImage(1, 8, false, 2)], { format: 'png' }),
      /a PNG file holds one image, got 2 pages/,
    );
    expect(() => writeImage(makeImage(1, 8, false, 1), { format: 'jpeg' as 'png' })).toThrow(/format must be 'png' or 'tiff'/);
    expectFormatError(() => readImage(writeImage(makeImage(1, 8, false, 1), { format: 'png' }), { page: 1 }), /page 1 does not exist/);
  });

  it('file names map to formats', () => {
    expect(['a.png', 'B.PNG', 'c.tif', 'd.TIFF', 'e.jpg'].map(formatFromFileName)).toEqual(['png', 'png', 'tiff', 'tiff', undefined]);
  });
});

describe('node-files: readImageFile / readImageFilePages / writeImageFile', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'webgpu-restore-io-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes by extension and reads by content, keeping bit depth and alpha', async () => {
    const img16 = makeImage(3, 16, true, 7);
    for (const name of ['x.png', 'x.tif', 'x.tiff']) {
      const path = join(dir, name);
      await writeImageFile(path, img16);
      expect(await readImageFile(path)).toEqual(img16);
    }
    // A TIFF saved under a .png name is still read as TIFF (content decides).
    await writeFile(join(dir, 'misnamed.png'), writeImage(img16, { format: 'tiff' }));
    expect(await readImageFile(join(dir, 'misnamed.png'))).toEqual(img16);
  });

  it('float TIFFs: readImageFile refuses, readImageFilePages keeps the floats; multi-page files', async () => {
    const f = makeImage(1, 32, false, 8);
    const path = join(dir, 'f.tif');
    await writeImageFile(path, [f, makeImage(1, 8, false, 9)], { compression: 'deflate' });
    await expect(readImageFile(path)).rejects.toThrow(/32-bit float samples; read it with readImageFilePages/);
    const file = await readImageFilePages(path);
    expect(file.pages.length).toBe(2);
    expect(file.pages[0].image).toEqual(f);
    expect((await readImageFile(path, { page: 1 })).bitDepth).toBe(8);
    expect((await readFile(path)).subarray(0, 2).toString()).toBe('II');
  });

  it('names the path on errors', async () => {
    await expect(readImageFile(join(dir, 'missing.png'))).rejects.toThrow(/cannot read .*missing\.png/);
    await expect(writeImageFile(join(dir, 'out.jpg'), makeImage(1, 8, false, 1))).rejects.toThrow(
      /out\.jpg: cannot tell the output format from the name; use \.png, \.tif or \.tiff/,
    );
    await expect(writeImageFile(join(dir, 'no-such-dir', 'a.png'), makeImage(1, 8, false, 1))).rejects.toThrow(/cannot write/);
  });
});
