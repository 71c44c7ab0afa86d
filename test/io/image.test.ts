import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { InvalidInputError } from '../../src/errors';
import {
  type Float32RasterImage,
  type FloatImage,
  type RasterImage,
  conformChannels,
  convertAlpha,
  copyAlpha,
  floatToRaster,
  validateAnyRaster,
  withoutAlpha,
  rasterToFloat,
  roundHalfEven,
  toGray,
  toRgb,
  validateFloat,
  validateRaster,
} from '../../src/io/image';

const FIXTURES = new URL('../fixtures/io/', import.meta.url);

describe('rasterToFloat', () => {
  it('divides by 255 and de-interleaves RGB into planes', () => {
    const img: RasterImage = {
      width: 2,
      height: 1,
      channels: 3,
      bitDepth: 8,
      data: Uint8Array.of(0, 51, 255, 102, 153, 204),
    };
    const f = rasterToFloat(img);
    expect(f.channels).toBe(3);
    expect(f.width).toBe(2);
    expect(f.height).toBe(1);
    expect(f.data).toBeInstanceOf(Float32Array);
    expect(Array.from(f.data)).toEqual([0, 102 / 255, 51 / 255, 153 / 255, 1, 204 / 255].map(Math.fround));
  });

  it('divides 16-bit data by 65535', () => {
    const f = rasterToFloat({ width: 3, height: 1, channels: 1, bitDepth: 16, data: Uint16Array.of(0, 257, 65535) });
    expect(Array.from(f.data)).toEqual([0, Math.fround(257 / 65535), 1]);
  });

  it('round-trips through floatToRaster exactly for every 8- and 16-bit code value', () => {
    const d8 = new Uint8Array(256);
    for (let i = 0; i < 256; i++) d8[i] = i;
    const r8 = floatToRaster(rasterToFloat({ width: 16, height: 16, channels: 1, bitDepth: 8, data: d8 }), 8);
    expect(r8.data).toEqual(d8);
    const d16 = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) d16[i] = i;
    const img16: RasterImage = { width: 256, height: 256, channels: 1, bitDepth: 16, data: d16 };
    const r16 = floatToRaster(rasterToFloat(img16), 16);
    expect(r16.data).toBeInstanceOf(Uint16Array);
    let mismatches = 0;
    for (let i = 0; i < d16.length; i++) if (r16.data[i] !== d16[i]) mismatches++;
    expect(mismatches).toBe(0);
    const rgb16: RasterImage = { width: 5, height: 3, channels: 3, bitDepth: 16, data: d16.slice(60000, 60045) };
    expect(floatToRaster(rasterToFloat(rgb16), 16)).toEqual(rgb16);
  });
});

describe('floatToRaster', () => {
  const gray = (values: number[]): FloatImage => ({
    width: values.length,
    height: 1,
    channels: 1,
    data: Float32Array.from(values),
  });

  it('clamps to [0, 1] (including ±Infinity)', () => {
    const r = floatToRaster(gray([-0.5, -Infinity, 1.5, Infinity, 0, 1]), 8);
    expect(Array.from(r.data)).toEqual([0, 0, 255, 255, 0, 255]);
    const r16 = floatToRaster(gray([-1, 2]), 16);
    expect(Array.from(r16.data)).toEqual([0, 65535]);
  });

  it('rounds half to even like numpy (0.5 -> 0, 1.5 -> 2, 2.5 -> 2)', () => {
    // k/510 in float32, times 255 in float32, is exactly k/2 for these k.
    const xs = [1, 3, 5, 7].map((k) => Math.fround(k / 510));
    for (const x of xs) expect(Math.fround(x * 255) % 1).toBe(0.5);
    expect(Array.from(floatToRaster(gray(xs), 8).data)).toEqual([0, 2, 2, 4]);
  });

  it('matches NumPy float32 quantization bit for bit (fixture with 257 exact ties)', () => {
    const fx = JSON.parse(readFileSync(new URL('quantize.json', FIXTURES), 'utf8')) as {
      x: (number | string)[];
      u8: number[];
      u16: number[];
      ties8: number;
    };
    expect(fx.ties8).toBeGreaterThan(100);
    const xs = fx.x.map((v) => (v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : (v as number)));
    expect(Array.from(floatToRaster(gray(xs), 8).data)).toEqual(fx.u8);
    expect(Array.from(floatToRaster(gray(xs), 16).data)).toEqual(fx.u16);
  });

  it('interleaves planes back into RGB', () => {
    const f: FloatImage = { width: 2, height: 1, channels: 3, data: Float32Array.of(0, 1, 0.2, 0.4, 1, 0) };
    const r = floatToRaster(f, 8);
    expect(r.channels).toBe(3);
    expect(Array.from(r.data)).toEqual([0, 51, 255, 255, 102, 0]);
  });

  it('rejects NaN with InvalidInputError naming its position', () => {
    const f: FloatImage = { width: 2, height: 2, channels: 1, data: Float32Array.of(0, 0, 0.5, NaN) };
    expect(() => floatToRaster(f, 8)).toThrow(InvalidInputError);
    expect(() => floatToRaster(f, 8)).toThrow(/NaN at channel 0, row 1, column 1/);
    try {
      floatToRaster(f, 16);
    } catch (err) {
      expect((err as InvalidInputError).code).toBe('INVALID_INPUT');
    }
  });

  it('rejects other channel counts, bit depths and bad lengths', () => {
    const two: FloatImage = { width: 1, height: 1, channels: 2, data: new Float32Array(2) };
    expect(() => floatToRaster(two, 8)).toThrow(/1- or 3-channel/);
    expect(() => floatToRaster(gray([0]), 12 as 8)).toThrow(/bitDepth must be 8, 16 or 32/);
    expect(() => floatToRaster({ width: 2, height: 2, channels: 1, data: new Float32Array(3) }, 8)).toThrow(/length 3.*= 4/);
  });
});

describe('roundHalfEven', () => {
  it('rounds ties to even, other values to nearest', () => {
    expect([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, 2.4999, 2.5001, 7].map(roundHalfEven)).toEqual([0, 2, 2, 4, -0, -2, -2, 2, 3, 7]);
  });
});

describe('validateRaster / validateFloat', () => {
  it('accepts a good image', () => {
    expect(() => validateRaster({ width: 2, height: 3, channels: 3, bitDepth: 8, data: new Uint8Array(18) })).not.toThrow();
    expect(() => validateFloat({ width: 2, height: 3, channels: 4, data: new Float32Array(24) })).not.toThrow();
  });

  it('catches a wrong data length and names the numbers', () => {
    const img: RasterImage = { width: 7, height: 13, channels: 3, bitDepth: 8, data: new Uint8Array(7 * 13) };
    expect(() => validateRaster(img)).toThrow(InvalidInputError);
    expect(() => validateRaster(img)).toThrow('image.data has length 91, but width*height*channels = 7*13*3 = 273');
    expect(() => validateRaster(img, 'noisy')).toThrow(/^noisy\.data has length 91/);
  });

  it('catches the wrong array type for the bit depth', () => {
    expect(() => validateRaster({ width: 1, height: 1, channels: 1, bitDepth: 8, data: new Uint16Array(1) })).toThrow(
      'image.data must be a Uint8Array for bitDepth 8, got Uint16Array',
    );
    expect(() => validateRaster({ width: 1, height: 1, channels: 1, bitDepth: 16, data: new Uint8Array(1) })).toThrow(
      'image.data must be a Uint16Array for bitDepth 16, got Uint8Array',
    );
    expect(() => validateRaster({ width: 1, height: 1, channels: 1, bitDepth: 8, data: [0] as unknown as Uint8Array })).toThrow(
      /got Array/,
    );
  });

  it('catches bad sizes, channel counts and bit depths', () => {
    const base = { width: 1, height: 1, channels: 1 as const, bitDepth: 8 as const, data: new Uint8Array(1) };
    expect(() => validateRaster({ ...base, width: 0 })).toThrow('image.width must be a positive integer, got 0');
    expect(() => validateRaster({ ...base, height: 1.5 })).toThrow(/height must be a positive integer/);
    expect(() => validateRaster({ ...base, channels: 2 as 1 })).toThrow(/channels must be 1 or 3, got 2/);
    expect(() => validateRaster({ ...base, bitDepth: 12 as 8 })).toThrow(/bitDepth must be 8 or 16, got 12/);
    expect(() => validateFloat({ width: 1, height: 1, channels: 1, data: new Float64Array(1) as unknown as Float32Array })).toThrow(
      /Float32Array, got Float64Array/,
    );
  });
});

describe('toGray / toRgb', () => {
  it('uses BT.601 weights and rounds (raster)', () => {
    const rgb: RasterImage = {
      width: 4,
      height: 1,
      channels: 3,
      bitDepth: 8,
      data: Uint8Array.of(255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30),
    };
    const g = toGray(rgb);
    expect(g.channels).toBe(1);
    expect(g.bitDepth).toBe(8);
    // 0.299*255 = 76.245, 0.587*255 = 149.685, 0.114*255 = 29.07, 2.99+11.74+3.42 = 18.15
    expect(Array.from(g.data)).toEqual([76, 150, 29, 18]);
  });

  it('maps gray pixels to themselves at 8 and 16 bits', () => {
    const d8 = new Uint8Array(256 * 3);
    for (let v = 0; v < 256; v++) d8.fill(v, 3 * v, 3 * v + 3);
    expect(Array.from(toGray({ width: 256, height: 1, channels: 3, bitDepth: 8, data: d8 }).data)).toEqual(
      Array.from({ length: 256 }, (_, v) => v),
    );
    const d16 = Uint16Array.of(65535, 65535, 65535, 12345, 12345, 12345);
    const g16 = toGray({ width: 2, height: 1, channels: 3, bitDepth: 16, data: d16 });
    expect(g16.data).toBeInstanceOf(Uint16Array);
    expect(Array.from(g16.data)).toEqual([65535, 12345]);
  });

  it('works on planar float images without rounding', () => {
    const f: FloatImage = { width: 2, height: 1, channels: 3, data: Float32Array.of(1, 0, 0, 1, 0, 0.5) };
    const g = toGray(f);
    expect(g.channels).toBe(1);
    expect(g.data[0]).toBeCloseTo(0.299, 6);
    expect(g.data[1]).toBeCloseTo(0.587 + 0.057, 6);
  });

  it('toRgb replicates gray, and both return 1-/3-channel inputs unchanged', () => {
    const gray: RasterImage = { width: 2, height: 1, channels: 1, bitDepth: 16, data: Uint16Array.of(7, 60000) };
    const rgb = toRgb(gray);
    expect(rgb.channels).toBe(3);
    expect(rgb.data).toBeInstanceOf(Uint16Array);
    expect(Array.from(rgb.data)).toEqual([7, 7, 7, 60000, 60000, 60000]);
    expect(toGray(gray)).toBe(gray);
    expect(toRgb(rgb)).toBe(rgb);
    const fg: FloatImage = { width: 2, height: 1, channels: 1, data: Float32Array.of(0.25, 0.75) };
    expect(Array.from(toRgb(fg).data)).toEqual([0.25, 0.75, 0.25, 0.75, 0.25, 0.75]);
    expect(toGray(toRgb(fg)).data[1]).toBeCloseTo(0.75, 6);
  });
});

describe('float32 rasters, alpha planes and channel policies', () => {
  it('rasterToFloat copies float32 samples unscaled; floatToRaster(…, 32) interleaves them back', () => {
    const r: Float32RasterImage = {
      width: 2,
      height: 1,
      channels: 3,
      bitDepth: 32,
      data: Float32Array.of(-1.5, 2, 1e6, 0.25, -0, 3),
    };
    const f = rasterToFloat(r);
    expect(Array.from(f.data)).toEqual([-1.5, 0.25, 2, -0, 1e6, 3]);
    const back = floatToRaster(f, 32);
    expect(back.bitDepth).toBe(32);
    expect(back.data).toEqual(r.data);
    expect(Object.is(back.data[4], -0)).toBe(true);
  });

  it('validateAnyRaster checks the array type and the alpha plane', () => {
    expect(() =>
      validateAnyRaster({ width: 1, height: 1, channels: 1, bitDepth: 32, data: new Uint16Array(1) } as unknown as Float32RasterImage),
    ).toThrow('image.data must be a Float32Array for bitDepth 32, got Uint16Array');
    expect(() =>
      validateAnyRaster({ width: 2, height: 1, channels: 1, bitDepth: 16, data: new Uint16Array(2), alpha: new Uint16Array(3) }),
    ).toThrow(/alpha has length 3/);
    expect(() => validateRaster({ width: 1, height: 1, channels: 1, bitDepth: 32 as 8, data: new Uint8Array(1) })).toThrow(
      /bitDepth must be 8 or 16, got 32/,
    );
  });

  it('toGray matches PIL convert("L") exactly on 8-bit RGB (fixed-point BT.601)', () => {
    const fx = JSON.parse(readFileSync(new URL('pil-luma.json', FIXTURES), 'utf8')) as {
      rgb: string;
      gray: string;
      width: number;
      height: number;
    };
    const rgb: RasterImage = {
      width: fx.width,
      height: fx.height,
      channels: 3,
      bitDepth: 8,
      data: new Uint8Array(Buffer.from(fx.rgb, 'base64')),
    };
    expect(Array.from(toGray(rgb).data)).toEqual(Array.from(new Uint8Array(Buffer.from(fx.gray, 'base64'))));
  });

  it('toGray / toRgb keep the alpha plane and work on float32 rasters', () => {
    const alpha = Uint8Array.of(9, 8);
    const g = toGray({ width: 2, height: 1, channels: 3, bitDepth: 8, data: Uint8Array.of(10, 10, 10, 0, 0, 255), alpha });
    expect(Array.from(g.data)).toEqual([10, 29]);
    expect(g.alpha).toBe(alpha);
    const f: Float32RasterImage = { width: 1, height: 1, channels: 3, bitDepth: 32, data: Float32Array.of(1, 0, 0) };
    expect(toGray(f).data[0]).toBeCloseTo(0.299, 6);
    const rgb = toRgb({ width: 1, height: 1, channels: 1, bitDepth: 32, data: Float32Array.of(-2) } as Float32RasterImage);
    expect(rgb.data).toBeInstanceOf(Float32Array);
    expect(Array.from(rgb.data)).toEqual([-2, -2, -2]);
  });

  it('conformChannels: errors that say what to do, or converts on request', () => {
    const rgb: RasterImage = { width: 1, height: 1, channels: 3, bitDepth: 8, data: Uint8Array.of(255, 0, 0) };
    expect(() => conformChannels(rgb, 1, 'error', 'DnCNN')).toThrow(InvalidInputError);
    expect(() => conformChannels(rgb, 1, 'error', 'DnCNN')).toThrow(
      'DnCNN expects 1 channel (grayscale), but the image has 3 channels (RGB); convert it with toGray() (BT.601 luma) or pass the channel policy "convert"',
    );
    expect(Array.from(conformChannels(rgb, 1, 'convert').data)).toEqual([76]);
    const gray: FloatImage = { width: 1, height: 1, channels: 1, data: Float32Array.of(0.5) };
    expect(() => conformChannels(gray, 3)).toThrow(
      /expects 3 channels \(RGB\), but the image has 1 channel \(grayscale\); convert it with toRgb\(\)/,
    );
    expect(conformChannels(gray, 3, 'convert').channels).toBe(3);
    expect(conformChannels(gray, 1)).toBe(gray);
    expect(() => conformChannels(gray, 4, 'convert')).toThrow(/no automatic conversion/);
  });

  it('copyAlpha / convertAlpha / withoutAlpha', () => {
    const src: RasterImage = { width: 2, height: 1, channels: 1, bitDepth: 8, data: new Uint8Array(2), alpha: Uint8Array.of(0, 255) };
    const out16: RasterImage = { width: 2, height: 1, channels: 1, bitDepth: 16, data: new Uint16Array(2) };
    expect(Array.from(copyAlpha(src, out16).alpha ?? [])).toEqual([0, 65535]);
    expect(Array.from(convertAlpha(Uint16Array.of(0, 128, 65535), 16, 8))).toEqual([0, 0, 255]);
    expect(Array.from(convertAlpha(Float32Array.of(-1, 0.5, 2), 32, 8))).toEqual([0, 128, 255]);
    expect(Array.from(convertAlpha(Uint8Array.of(51), 8, 32))).toEqual([Math.fround(0.2)]);
    expect(copyAlpha(out16, src)).toBe(src); // no alpha to copy
    expect(() => copyAlpha(src, { ...out16, width: 1, data: new Uint16Array(1) })).toThrow(/alpha plane is 2x1 but the image is 1x1/);
    expect(withoutAlpha(src).alpha).toBeUndefined();
    expect(withoutAlpha(out16)).toBe(out16);
  });
});
