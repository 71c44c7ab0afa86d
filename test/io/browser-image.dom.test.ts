/**
 * Browser image inputs and outputs (src/io/browser-image.ts): ImageData, canvases, ImageBitmaps and Files in,
 * ImageData and Blobs out. Runs only in the chromium project (the `.dom.test.ts` suffix): it needs a real
 * canvas, createImageBitmap and the browser's image decoders.
 *
 * Expected pixels come from the test itself (the RGBA it puts in), from PIL (fixture JSON files) or from a
 * BMP file written here byte by byte; never from the code under test.
 */
import { describe, expect, it } from 'vitest';

import { ImageFormatError, InvalidInputError } from '../../src/errors';
import {
  imageFromBitmap,
  imageFromCanvas,
  imageFromFile,
  imageFromImageData,
  imagesFromFile,
  imageToBlob,
  imageToImageData,
} from '../../src/io/browser-image';
import type { AnyRasterImage, RasterImage } from '../../src/io/image';
import { readFixtureBytes, readFixtureJson } from '../helpers/fixture-loader';

/** Deterministic bytes (an LCG), so failures reproduce. */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

type Kind = 'gray' | 'rgb' | 'rgba';

/** RGBA pixels of the given kind: R = G = B for gray, alpha 255 unless rgba (which includes 0 and 255). */
function rgbaPixels(kind: Kind, width: number, height: number, seed: number): Uint8ClampedArray<ArrayBuffer> {
  const n = width * height;
  const r = bytes(n * 4, seed);
  const px = new Uint8ClampedArray(n * 4);
  for (let i = 0; i < n; i++) {
    px[4 * i] = r[4 * i];
    px[4 * i + 1] = kind === 'gray' ? r[4 * i] : r[4 * i + 1];
    px[4 * i + 2] = kind === 'gray' ? r[4 * i] : r[4 * i + 2];
    px[4 * i + 3] = kind === 'rgba' ? r[4 * i + 3] : 255;
  }
  if (kind === 'rgba') {
    px[3] = 0;
    px[7] = 255;
  }
  return px;
}

/** The samples the test expects in a RasterImage made from RGBA pixels (the channels picked out by hand). */
function expectedSamples(px: Uint8ClampedArray, channels: 1 | 3): number[] {
  const out: number[] = [];
  for (let i = 0; i < px.length; i += 4) {
    if (channels === 1) out.push(px[i]);
    else out.push(px[i], px[i + 1], px[i + 2]);
  }
  return out;
}

function alphaOf(px: Uint8ClampedArray): number[] {
  const out: number[] = [];
  for (let i = 3; i < px.length; i += 4) out.push(px[i]);
  return out;
}

function base64Samples(b64: string, bitDepth: 8 | 16 | 32): number[] {
  const raw = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const view = bitDepth === 8 ? raw : bitDepth === 16 ? new Uint16Array(raw.buffer) : new Float32Array(raw.buffer);
  return Array.from(view);
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

function throwsSync(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an exception');
}

/** A bottom-up 24-bit BMP (BITMAPINFOHEADER, rows padded to 4 bytes), written from the pixels' RGB. */
function bmp24(px: Uint8ClampedArray, width: number, height: number): Uint8Array {
  const stride = (width * 3 + 3) & ~3;
  const size = 54 + stride * height;
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  out[0] = 0x42; // 'B'
  out[1] = 0x4d; // 'M'
  dv.setUint32(2, size, true);
  dv.setUint32(10, 54, true); // pixel data offset
  dv.setUint32(14, 40, true); // header size
  dv.setInt32(18, width, true);
  dv.setInt32(22, height, true); // positive: bottom row first
  dv.setUint16(26, 1, true); // planes
  dv.setUint16(28, 24, true); // bits per pixel
  dv.setUint32(34, stride * height, true);
  for (let y = 0; y < height; y++) {
    const row = 54 + (height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const i = 4 * (y * width + x);
      out[row + 3 * x] = px[i + 2]; // BGR
      out[row + 3 * x + 1] = px[i + 1];
      out[row + 3 * x + 2] = px[i];
    }
  }
  return out;
}

function canvasWith(
  px: Uint8ClampedArray<ArrayBuffer>,
  width: number,
  height: number,
  kind: 'offscreen' | 'element',
): OffscreenCanvas | HTMLCanvasElement {
  const canvas = kind === 'offscreen' ? new OffscreenCanvas(width, height) : document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const g = canvas.getContext('2d') as OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D;
  g.putImageData(new ImageData(px, width, height), 0, 0);
  return canvas;
}

const W = 13;
const H = 7;

describe('imageFromImageData / imageToImageData', () => {
  for (const [kind, channels] of [
    ['gray', 1],
    ['rgb', 3],
    ['rgba', 3],
  ] as const) {
    it(`${kind}: ${channels} channel(s)${kind === 'rgba' ? ' + alpha' : ''}, and back exactly`, () => {
      const px = rgbaPixels(kind, W, H, 11 + channels);
      const img = imageFromImageData(new ImageData(px.slice(), W, H));
      expect(img).toMatchObject({ width: W, height: H, channels, bitDepth: 8 });
      expect(img.data).toBeInstanceOf(Uint8Array);
      expect(Array.from(img.data)).toEqual(expectedSamples(px, channels));
      if (kind === 'rgba') expect(Array.from(img.alpha ?? [])).toEqual(alphaOf(px));
      else expect(img.alpha).toBeUndefined();

      const back = imageToImageData(img);
      expect(back).toBeInstanceOf(ImageData);
      expect([back.width, back.height]).toEqual([W, H]);
      expect(Array.from(back.data)).toEqual(Array.from(px));
    });
  }

  it("alpha: 'drop' leaves the alpha plane out", () => {
    const px = rgbaPixels('rgba', W, H, 5);
    const img = imageFromImageData(new ImageData(px, W, H), { alpha: 'drop' });
    expect(img.channels).toBe(3);
    expect(img.alpha).toBeUndefined();
    expect(Array.from(img.data)).toEqual(expectedSamples(px, 3));
  });

  it('a gray image with some transparency stays 1 channel + alpha', () => {
    const px = rgbaPixels('gray', W, H, 6);
    px[4 * 5 + 3] = 17;
    const img = imageFromImageData(new ImageData(px, W, H));
    expect(img.channels).toBe(1);
    expect(Array.from(img.alpha ?? [])).toEqual(alphaOf(px));
  });

  it('refuses Display P3 pixels, bad sizes and bad options', () => {
    const p3 = new ImageData(2, 2, { colorSpace: 'display-p3' });
    const e = throwsSync(() => imageFromImageData(p3));
    expect(e).toBeInstanceOf(InvalidInputError);
    expect(e.message).toMatch(/display-p3.*colorSpace: 'srgb'/);
    expect(throwsSync(() => imageFromImageData({ width: 3, height: 2, data: new Uint8ClampedArray(20) }))).toBeInstanceOf(
      InvalidInputError,
    );
    expect(throwsSync(() => imageFromImageData(new ImageData(1, 1), { alpha: 'maybe' as never }))).toBeInstanceOf(InvalidInputError);
  });

  it('16-bit images are scaled to 8 bits with rounding, gray is replicated, 16-bit alpha is scaled', () => {
    const n = 40;
    const data = new Uint16Array(n);
    const alpha = new Uint16Array(n);
    const r = bytes(4 * n, 9);
    for (let i = 0; i < n; i++) {
      data[i] = r[4 * i] * 256 + r[4 * i + 1];
      alpha[i] = r[4 * i + 2] * 256 + r[4 * i + 3];
    }
    // Values right at the rounding boundaries: v = 257k ± 128 lies just either side of k ± 0.5.
    data.set([0, 65535, 128, 129, 257 * 100 + 128, 257 * 100 + 129]);
    const img: RasterImage = { width: 8, height: 5, channels: 1, bitDepth: 16, data, alpha };
    const px = imageToImageData(img).data;
    for (let i = 0; i < n; i++) {
      const v = Math.round((data[i] * 255) / 65535);
      expect([px[4 * i], px[4 * i + 1], px[4 * i + 2]]).toEqual([v, v, v]);
      expect(px[4 * i + 3]).toBe(Math.round((alpha[i] * 255) / 65535));
    }
    expect(Array.from(px.subarray(0, 24)).filter((_, i) => i % 4 === 0)).toEqual([0, 255, 0, 1, 100, 101]);
  });

  it('float images map options.range to 0..255 (clamped, NaN as 0)', () => {
    const img: AnyRasterImage = { width: 6, height: 1, channels: 1, bitDepth: 32, data: Float32Array.of(-1, 0, 0.5, 1, 2, NaN) };
    const gray = (d: ImageData) => Array.from(d.data).filter((_, i) => i % 4 === 0);
    expect(gray(imageToImageData(img))).toEqual([0, 0, 128, 255, 255, 0]);
    expect(gray(imageToImageData(img, { range: [-1, 2] }))).toEqual([0, 85, 128, 170, 255, 0]);
  });
});

describe('imageFromCanvas / imageFromBitmap', () => {
  for (const kind of ['offscreen', 'element'] as const) {
    it(`an ${kind === 'offscreen' ? 'OffscreenCanvas' : 'HTMLCanvasElement'} with known RGB pixels`, () => {
      const px = rgbaPixels('rgb', W, H, 21);
      const img = imageFromCanvas(canvasWith(px, W, H, kind));
      expect(img).toMatchObject({ width: W, height: H, channels: 3, bitDepth: 8 });
      expect(Array.from(img.data)).toEqual(expectedSamples(px, 3));
      expect(img.alpha).toBeUndefined();
    });
  }

  it('a gray canvas gives 1 channel; a canvas drawn with fillRect gives those colours', () => {
    const px = rgbaPixels('gray', W, H, 22);
    expect(Array.from(imageFromCanvas(canvasWith(px, W, H, 'offscreen')).data)).toEqual(expectedSamples(px, 1));

    const canvas = new OffscreenCanvas(4, 2);
    const g = canvas.getContext('2d')!;
    g.fillStyle = 'rgb(10, 200, 30)';
    g.fillRect(0, 0, 2, 2);
    g.fillStyle = '#ff8000';
    g.fillRect(2, 0, 2, 2);
    const img = imageFromCanvas(canvas);
    expect(img.channels).toBe(3);
    const a = [10, 200, 30];
    const b = [255, 128, 0];
    expect(Array.from(img.data)).toEqual([...a, ...a, ...b, ...b, ...a, ...a, ...b, ...b]);
  });

  it('transparency: alpha exact, opaque pixels exact (canvases store premultiplied colour)', () => {
    const px = rgbaPixels('rgba', W, H, 23);
    const img = imageFromCanvas(canvasWith(px, W, H, 'element'));
    expect(Array.from(img.alpha ?? [])).toEqual(alphaOf(px));
    for (let i = 0; i < W * H; i++) {
      if (px[4 * i + 3] !== 255) continue;
      expect(Array.from(img.data.subarray(3 * i, 3 * i + 3))).toEqual(Array.from(px.subarray(4 * i, 4 * i + 3)));
    }
  });

  it('a canvas with a bitmaprenderer context (not 2d) is read too', async () => {
    const px = rgbaPixels('rgb', W, H, 24);
    const bitmap = await createImageBitmap(new ImageData(px, W, H));
    const canvas = new OffscreenCanvas(W, H);
    canvas.getContext('bitmaprenderer')!.transferFromImageBitmap(bitmap);
    expect(Array.from(imageFromCanvas(canvas).data)).toEqual(expectedSamples(px, 3));
  });

  it('an ImageBitmap of that canvas, with and without alpha', async () => {
    const px = rgbaPixels('rgb', W, H, 25);
    const bitmap = await createImageBitmap(canvasWith(px, W, H, 'offscreen'), {
      premultiplyAlpha: 'none',
      colorSpaceConversion: 'none',
    });
    const img = imageFromBitmap(bitmap);
    expect(img).toMatchObject({ width: W, height: H, channels: 3, bitDepth: 8 });
    expect(Array.from(img.data)).toEqual(expectedSamples(px, 3));
    expect(bitmap.width).toBe(W); // not closed by us

    const rgba = rgbaPixels('rgba', W, H, 26);
    const fromData = await createImageBitmap(new ImageData(rgba, W, H), { premultiplyAlpha: 'none' });
    expect(Array.from(imageFromBitmap(fromData).alpha ?? [])).toEqual(alphaOf(rgba));
    expect(imageFromBitmap(fromData, { alpha: 'drop' }).alpha).toBeUndefined();

    bitmap.close();
    const e = throwsSync(() => imageFromBitmap(bitmap));
    expect(e).toBeInstanceOf(InvalidInputError);
    expect(e.message).toMatch(/closed ImageBitmap/);
  });
});

describe('imageFromFile / imagesFromFile', () => {
  it('a 16-bit gray PNG File keeps its 16 bits (vs PIL)', async () => {
    const cases = await readFixtureJson('test/fixtures/io/cases.json');
    for (const name of ['gray16.png', 'rgb16_adam7.png']) {
      const c = cases[name];
      const file = new File([(await readFixtureBytes(`test/fixtures/io/${name}`)) as Uint8Array<ArrayBuffer>], name);
      const img = await imageFromFile(file);
      expect(img).toMatchObject({ width: c.width, height: c.height, channels: c.channels, bitDepth: 16 });
      expect(img.data).toBeInstanceOf(Uint16Array);
      expect(Array.from(img.data)).toEqual(c.expected);
    }
  });

  it('a 16-bit RGBA PNG Blob keeps its alpha plane, or drops it when asked', async () => {
    const exp = (await readFixtureJson('test/fixtures/io/alpha/expected.json'))['rgba16.png'].pages[0];
    const blob = new Blob([(await readFixtureBytes('test/fixtures/io/alpha/rgba16.png')) as Uint8Array<ArrayBuffer>]);
    const img = await imageFromFile(blob);
    expect(img).toMatchObject({ width: exp.width, height: exp.height, channels: 3, bitDepth: 16 });
    expect(Array.from(img.data)).toEqual(base64Samples(exp.data, 16));
    expect(Array.from(img.alpha ?? [])).toEqual(base64Samples(exp.alpha, 16));
    expect((await imageFromFile(blob, { alpha: 'drop' })).alpha).toBeUndefined();
  });

  it('a multi-page TIFF gives every page at its own depth; imageFromFile picks one', async () => {
    const exp = (await readFixtureJson('test/fixtures/io/tiff/expected.json'))['multipage.tif'];
    const file = new File([(await readFixtureBytes('test/fixtures/io/tiff/multipage.tif')) as Uint8Array<ArrayBuffer>], 'multipage.tif');
    const decoded = await imagesFromFile(file);
    expect(decoded.format).toBe('tiff');
    expect(decoded.pages.map((p) => [p.image.width, p.image.height, p.image.bitDepth])).toEqual(
      exp.pages.map((p: AnyRasterImage) => [p.width, p.height, p.bitDepth]),
    );
    for (const [i, p] of exp.pages.entries()) {
      expect(Array.from(decoded.pages[i].image.data)).toEqual(base64Samples(p.data, p.bitDepth));
    }
    const second = await imageFromFile(file, { page: 1 });
    expect(second.bitDepth).toBe(exp.pages[1].bitDepth);
    expect(Array.from(second.data)).toEqual(base64Samples(exp.pages[1].data, exp.pages[1].bitDepth));
  });

  it('other formats go through the browser: a BMP written here comes back exactly', async () => {
    for (const [kind, channels] of [
      ['rgb', 3],
      ['gray', 1],
    ] as const) {
      const px = rgbaPixels(kind, W, H, 31);
      const file = new File([bmp24(px, W, H) as Uint8Array<ArrayBuffer>], 'test.bmp', { type: 'image/bmp' });
      const decoded = await imagesFromFile(file);
      expect(decoded.format).toBe('browser');
      expect(decoded.pages[0].image).toMatchObject({ width: W, height: H, channels, bitDepth: 8 });
      expect(Array.from(decoded.pages[0].image.data)).toEqual(expectedSamples(px, channels));
      expect(decoded.pages[0].image.alpha).toBeUndefined();
    }
  });

  it('bytes that look like JPEG but that the browser cannot decode → ImageFormatError naming the file', async () => {
    const junk = new Uint8Array(200);
    junk.set([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46]);
    const e = await rejection(imageFromFile(new File([junk], 'photo.jpg', { type: 'image/jpeg' })));
    expect(e).toBeInstanceOf(ImageFormatError);
    expect(e.message).toMatch(
      /^photo\.jpg: unsupported image format or corrupt file, the browser could not decode it \(it looks like a JPEG file/,
    );
    expect(e.message).toMatch(/PNG and TIFF/);
  });

  it('empty, unknown and corrupt files → ImageFormatError; a page a PNG does not have → ImageFormatError', async () => {
    expect(await rejection(imageFromFile(new Blob([])))).toBeInstanceOf(ImageFormatError);
    const text = await rejection(imageFromFile(new File(['hello, world'], 'notes.txt')));
    expect(text).toBeInstanceOf(ImageFormatError);
    expect(text.message).toMatch(/^notes\.txt: .*text/);
    const png = await readFixtureBytes('test/fixtures/io/gray16.png');
    const truncated = new File([png.slice(0, 60)], 'cut.png');
    const cut = await rejection(imageFromFile(truncated));
    expect(cut).toBeInstanceOf(ImageFormatError);
    expect(cut.message).toMatch(/cut\.png/);
    const bmp = new File([bmp24(rgbaPixels('rgb', 2, 2, 1), 2, 2) as Uint8Array<ArrayBuffer>], 'x.bmp');
    expect(await rejection(imageFromFile(bmp, { page: 1 }))).toBeInstanceOf(ImageFormatError);
    expect(await rejection(imageFromFile(new File([png as Uint8Array<ArrayBuffer>], 'a.png'), { page: 1 }))).toBeInstanceOf(
      ImageFormatError,
    );
  });
});

describe('imageToBlob', () => {
  for (const format of ['png', 'tiff'] as const) {
    it(`${format}: a 16-bit RGB image with alpha round-trips through a Blob`, async () => {
      const n = W * H;
      const r = bytes(8 * n, format === 'png' ? 41 : 42);
      const data = new Uint16Array(3 * n);
      const alpha = new Uint16Array(n);
      for (let i = 0; i < 3 * n; i++) data[i] = r[2 * i] * 256 + r[2 * i + 1];
      for (let i = 0; i < n; i++) alpha[i] = r[6 * n + 2 * i] * 256 + r[6 * n + 2 * i + 1];
      const img: RasterImage = { width: W, height: H, channels: 3, bitDepth: 16, data, alpha };
      const blob = imageToBlob(img, { format });
      expect(blob.type).toBe(format === 'png' ? 'image/png' : 'image/tiff');
      const back = await imageFromFile(blob);
      expect(back).toMatchObject({ width: W, height: H, channels: 3, bitDepth: 16 });
      expect(Array.from(back.data)).toEqual(Array.from(data));
      expect(Array.from(back.alpha ?? [])).toEqual(Array.from(alpha));
    });
  }

  it('the browser decodes our 8-bit PNG to the same pixels', async () => {
    const px = rgbaPixels('rgb', W, H, 43);
    const img = imageFromImageData(new ImageData(px, W, H));
    const bitmap = await createImageBitmap(imageToBlob(img, { format: 'png' }), {
      premultiplyAlpha: 'none',
      colorSpaceConversion: 'none',
    });
    expect(Array.from(imageFromBitmap(bitmap).data)).toEqual(expectedSamples(px, 3));
    bitmap.close();
  });
});
