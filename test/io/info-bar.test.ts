import { readFileSync, readdirSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { InvalidInputError } from '../../src/errors';
import { decodePng } from '../../src/io/png';
import type { AnyRasterImage, RasterImage } from '../../src/io/image';
import { toRgb } from '../../src/io/image';
import { cropRows, detectInfoBar, infoBarFromRows, pasteInfoBar, splitInfoBar } from '../../src/io/info-bar';
import { decodeTiff } from '../../src/io/tiff';
import { encodeTiff } from '../../src/io/tiff-write';
import { pseudoRandomBytes } from './helpers';

const SEM = new URL('../../../shared/data/sem/', import.meta.url);
const ZEISS_FILES = readdirSync(new URL('zeiss-with-databar/', SEM))
  .filter((f) => f.endsWith('.tif'))
  .sort();
const NANO_FILES = readdirSync(new URL('nanomembranes/', SEM))
  .filter((f) => f.endsWith('.png'))
  .sort();
const SET12_DIR = new URL('../../../shared/data/set12/', import.meta.url);

function zeiss(file: string) {
  return decodeTiff(new Uint8Array(readFileSync(new URL(`zeiss-with-databar/${file}`, SEM))), { name: file })[0];
}
function nano(file: string): RasterImage {
  return decodePng(new Uint8Array(readFileSync(new URL(`nanomembranes/${file}`, SEM))), file);
}
function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

describe('Zeiss SEM data bar', () => {
  it('finds the four sample files', () => expect(ZEISS_FILES.length).toBe(4));

  for (const file of ZEISS_FILES) {
    it(`${file}: 1024x768 with the bar inside; detected at row 690 (the frame's top line), 78 rows`, () => {
      const { image } = zeiss(file);
      expect([image.width, image.height]).toEqual([1024, 768]);
      const bar = detectInfoBar(image);
      expect(bar).toEqual({ top: 690, rows: 78, source: 'detected', background: 243 });
      // The frame: row 690 is black from column 2 to 1022, the rows below are the bar background.
      const row = (y: number) => image.data.subarray(y * 1024, (y + 1) * 1024);
      expect(
        row(690)
          .subarray(2, 1023)
          .every((v) => v === 0),
      ).toBe(true);
      expect(row(691)[500]).toBe(243);
      expect(
        row(689)
          .subarray(2, 1023)
          .every((v) => v === 0),
      ).toBe(false);
    });

    it(`${file}: split, process the content, paste: the bar comes back byte-identical, also through a TIFF file`, () => {
      const page = zeiss(file);
      const { content, bar, info } = splitInfoBar(page.image);
      expect(info?.top).toBe(690);
      expect(content.height).toBe(690);
      expect(bar?.height).toBe(78);
      // Unprocessed: the whole image is identical.
      expect(sameBytes(pasteInfoBar(content, bar).data, page.image.data)).toBe(true);
      // "Processed" content (inverted): the bar rows are untouched.
      const processed = { ...(content as RasterImage), data: (content.data as Uint8Array).map((v) => 255 - v) };
      const pasted = pasteInfoBar(processed, bar);
      const barStart = 690 * 1024;
      expect(sameBytes(pasted.data.subarray(barStart), page.image.data.subarray(barStart))).toBe(true);
      expect(pasted.data[0]).toBe(255 - page.image.data[0]);
      // Written as a TIFF with the page's metadata and read back: the bar is still byte-identical.
      const [back] = decodeTiff(encodeTiff([{ image: pasted, metadata: page.metadata }], { compression: 'deflate' }));
      expect(sameBytes(back.image.data.subarray(barStart), page.image.data.subarray(barStart))).toBe(true);
      expect(back.metadata.colorMap).toEqual(page.metadata.colorMap);
    });
  }

  it('is found in 16-bit, RGB and float32 versions of the same image', () => {
    const image = zeiss(ZEISS_FILES[0]).image as RasterImage;
    const { width, height } = image;
    const u16: AnyRasterImage = { width, height, channels: 1, bitDepth: 16, data: Uint16Array.from(image.data, (v) => v * 257) };
    const f32: AnyRasterImage = { width, height, channels: 1, bitDepth: 32, data: Float32Array.from(image.data, (v) => v / 255 - 0.1) };
    for (const img of [u16, f32, toRgb(image)]) expect(detectInfoBar(img)?.top).toBe(690);
  });
});

describe('no bar where there is none', () => {
  for (const file of NANO_FILES) {
    it(`nanomembrane ${file}`, () => {
      const img = nano(file);
      expect(detectInfoBar(img)).toBeUndefined();
      expect(splitInfoBar(img)).toEqual({ content: img });
    });
  }

  it('Set12 images', () => {
    const files = readdirSync(SET12_DIR).filter((f) => f.endsWith('.png'));
    expect(files.length).toBe(12);
    for (const f of files) expect(detectInfoBar(decodePng(new Uint8Array(readFileSync(new URL(f, SET12_DIR)))))).toBeUndefined();
  });

  it('a uniform black or saturated band at the bottom (no text) is not a bar', () => {
    const img = nano(NANO_FILES[0]);
    for (const level of [0, 255]) {
      const data = (img.data as Uint8Array).slice();
      data.fill(level, 680 * 1024);
      expect(detectInfoBar({ ...img, data })).toBeUndefined();
    }
  });
});

describe('an FEI-style bar appended below the scan (black, white text)', () => {
  function withFeiBar(img: RasterImage, rows: number): RasterImage {
    const w = img.width;
    const bar = new Uint8Array(rows * w);
    const noise = pseudoRandomBytes(rows * w, 5);
    // White "text": blocks of strokes in a few lines, plus a white scale bar.
    for (let line = 0; line < 3; line++) {
      for (let y = 20 + line * 30; y < 32 + line * 30; y++) {
        for (let x = 30; x < w - 30; x++) if ((x >> 3) % 3 !== 0 && noise[y * w + x] > 120) bar[y * w + x] = 255;
      }
    }
    bar.fill(255, 100 * w + 40, 100 * w + 240);
    const data = new Uint8Array(img.data.length + bar.length);
    data.set(img.data);
    data.set(bar, img.data.length);
    return { ...img, height: img.height + rows, data };
  }

  it('is detected at its first row and split off exactly', () => {
    const scan = nano(NANO_FILES[2]);
    const img = withFeiBar(scan, 116);
    expect(img.height).toBe(884);
    const bar = detectInfoBar(img);
    expect(bar).toMatchObject({ top: 768, rows: 116, source: 'detected', background: 0 });
    const split = splitInfoBar(img);
    expect(sameBytes(split.content.data, scan.data)).toBe(true);
    expect(sameBytes(pasteInfoBar(split.content, split.bar).data, img.data)).toBe(true);
  });
});

describe('explicit rows, alpha and errors', () => {
  const img: RasterImage = {
    width: 3,
    height: 4,
    channels: 1,
    bitDepth: 16,
    data: Uint16Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12),
    alpha: Uint16Array.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11),
  };

  it('an explicit row count (e.g. imageio-style 70 rows) splits without detection', () => {
    const { content, bar, info } = splitInfoBar(img, 1);
    expect(info).toEqual({ top: 3, rows: 1, source: 'explicit' });
    expect(Array.from(content.data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(Array.from(bar?.data ?? [])).toEqual([10, 11, 12]);
    expect(Array.from(bar?.alpha ?? [])).toEqual([9, 10, 11]);
    expect(pasteInfoBar(content, bar)).toEqual(img);
    expect(splitInfoBar(img, 'none')).toEqual({ content: img });
    expect(splitInfoBar(img, { top: 2, rows: 2, source: 'explicit' }).content.height).toBe(2);
    expect(cropRows(img, 1, 2).data).toEqual(Uint16Array.of(4, 5, 6));
  });

  it('rejects impossible row counts and mismatched pieces', () => {
    expect(() => infoBarFromRows(img, 4)).toThrow('info bar rows must be an integer between 1 and 3 (the image has 4 rows), got 4');
    expect(() => splitInfoBar(img, 0)).toThrow(InvalidInputError);
    const { content, bar } = splitInfoBar(img, 2);
    expect(() => pasteInfoBar({ ...content, alpha: undefined }, bar)).toThrow(/has an alpha plane and the other has none/);
    const b = bar as RasterImage;
    expect(() => pasteInfoBar(content, { ...b, bitDepth: 8, data: new Uint8Array(6), alpha: new Uint8Array(6) })).toThrow(
      'pasteInfoBar: the content has bitDepth 16 but the bar has 8',
    );
    expect(() => pasteInfoBar(content, { ...b, width: 2, data: new Uint16Array(4), alpha: new Uint16Array(4) })).toThrow(
      /width 3 but the bar has 2/,
    );
    expect(pasteInfoBar(content, undefined)).toBe(content);
  });
});
