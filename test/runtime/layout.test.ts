/**
 * The one-pass conversions between the caller's images and the plans' padded NHWC layout (src/runtime/layout.ts)
 * against the two-step path they replace, kept here verbatim as the reference: raster → planar float
 * (rasterToFloat, the symmetric map, the old normalizeForRun) → cropped window → NHWC (nchwToNhwcPadded), and
 * NHWC → planar (nhwcPaddedToNchw) → pasted core or feathered blend → mapped back → raster (floatToRaster).
 * Every comparison is bit for bit, on random data of odd sizes with 1 and 3 channels, whole images and tiles.
 */
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { nchwToNhwcPadded, nhwcPaddedToNchw, paddedChannels } from '../../src/gpu/tensor';
import { type FloatImage, floatToRaster, type RasterImage, rasterToFloat } from '../../src/io/image';
import {
  type NormalizationRange,
  type PercentileRange,
  percentileDenormalize,
  percentileNormalize,
  runNormalization,
} from '../../src/io/normalize';
import {
  FloatInput,
  FloatOutput,
  floatPercentiles,
  type Normalization,
  RasterInput,
  RasterOutput,
  rasterPercentiles,
} from '../../src/runtime/layout';
import { FeatherBlender, rampWeight } from '../../src/runtime/tile-blend';
import { planTiles, type Tile, type TilingSpec } from '../../src/runtime/tiling';
import { seededRandom } from '../helpers/random';

// ---- The two-step path, as src/models/restoration-model.ts and io/normalize.ts had it. ----

function oldNormalizeForRun(
  image: FloatImage,
  option: PercentileRange,
  network: { outChannels: number; symmetric: boolean },
): { image: FloatImage; invert: (output: FloatImage) => FloatImage } {
  const { low, high } = option;
  const perChannel = network.outChannels === image.channels;
  const { image: normalized, range } = percentileNormalize(image, { pLow: low, pHigh: high, perChannel });
  const data = normalized.data;
  if (network.symmetric) for (let i = 0; i < data.length; i++) data[i] = 2 * data[i] - 1;
  const outRange: NormalizationRange = perChannel
    ? range
    : { low: new Array(network.outChannels).fill(range.low[0]), high: new Array(network.outChannels).fill(range.high[0]), eps: range.eps };
  const invert = (output: FloatImage): FloatImage => {
    if (!network.symmetric) return percentileDenormalize(output, outRange);
    return percentileDenormalize({ ...output, data: output.data.map((v) => (v + 1) / 2) }, outRange);
  };
  return { image: normalized, invert };
}

function cropChw(data: Float32Array, c: number, h: number, w: number, y0: number, y1: number, x0: number, x1: number): Float32Array {
  const tw = x1 - x0;
  const th = y1 - y0;
  const out = new Float32Array(c * th * tw);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < th; y++) {
      const src = (ch * h + y0 + y) * w + x0;
      out.set(data.subarray(src, src + tw), (ch * th + y) * tw);
    }
  }
  return out;
}

function pasteChw(
  dst: Float32Array,
  dh: number,
  dw: number,
  src: Float32Array,
  sh: number,
  sw: number,
  c: number,
  sy: number,
  sx: number,
  dy: number,
  dx: number,
  rows: number,
  cols: number,
): void {
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < rows; y++) {
      const from = (ch * sh + sy + y) * sw + sx;
      dst.set(src.subarray(from, from + cols), (ch * dh + dy + y) * dw + dx);
    }
  }
}

class OldFeatherBlender {
  private readonly weights: Float32Array;
  constructor(
    readonly out: Float32Array,
    private readonly channels: number,
    private readonly height: number,
    private readonly width: number,
    private readonly input: { width: number; height: number },
    private readonly scale: number,
    private readonly ramp: number,
  ) {
    this.weights = new Float32Array(height * width);
  }
  add(tile: Tile, tileOut: Float32Array, tileHeight: number, tileWidth: number): void {
    const s = this.scale;
    const wy = Array.from({ length: tileHeight }, (_, v) =>
      rampWeight(v, tileHeight, this.ramp, tile.wy0 > 0, tile.wy1 < this.input.height),
    );
    const wx = Array.from({ length: tileWidth }, (_, u) => rampWeight(u, tileWidth, this.ramp, tile.wx0 > 0, tile.wx1 < this.input.width));
    for (let v = 0; v < tileHeight; v++) {
      for (let u = 0; u < tileWidth; u++) {
        const w = wy[v] * wx[u];
        if (w === 0) continue;
        const p = (tile.wy0 * s + v) * this.width + tile.wx0 * s + u;
        this.weights[p] += w;
        for (let c = 0; c < this.channels; c++) {
          this.out[c * this.height * this.width + p] += w * tileOut[(c * tileHeight + v) * tileWidth + u];
        }
      }
    }
  }
  finish(): void {
    const plane = this.height * this.width;
    for (let p = 0; p < plane; p++) for (let c = 0; c < this.channels; c++) this.out[c * plane + p] /= this.weights[p];
  }
}

/** The old input side of `run` (raster) or `runFloat` (float): the network's NHWC input for a window. */
function oldInput(
  image: RasterImage | FloatImage,
  symmetric: boolean,
  option: PercentileRange | undefined,
  outChannels: number,
  window: [number, number, number, number],
): { packed: Float32Array; invert?: (o: FloatImage) => FloatImage } {
  let float: FloatImage;
  if ('bitDepth' in image) {
    float = rasterToFloat(image);
    if (symmetric) float.data = float.data.map((v) => 2 * v - 1);
  } else float = image;
  let invert: ((o: FloatImage) => FloatImage) | undefined;
  if (option) {
    const n = oldNormalizeForRun(float, option, { outChannels, symmetric });
    float = n.image;
    invert = n.invert;
  }
  const [y0, y1, x0, x1] = window;
  const crop = cropChw(float.data, float.channels, float.height, float.width, y0, y1, x0, x1);
  return { packed: nchwToNhwcPadded(crop, [1, y1 - y0, x1 - x0, float.channels]), invert };
}

// ---- Data ----

function randomRaster(width: number, height: number, channels: 1 | 3, bitDepth: 8 | 16, seed: number): RasterImage {
  const r = seededRandom(seed);
  const max = bitDepth === 16 ? 65535 : 255;
  const n = width * height * channels;
  const data = bitDepth === 16 ? new Uint16Array(n) : new Uint8Array(n);
  // A narrow band of codes per image, so that percentiles fall between distinct values, plus both extremes.
  const lo = Math.floor(r() * max * 0.3);
  const span = Math.max(3, Math.floor(r() * max * 0.6));
  for (let i = 0; i < n; i++) data[i] = Math.min(max, lo + Math.floor(r() * span));
  data[0] = 0;
  data[n - 1] = max;
  return { width, height, channels, bitDepth, data };
}

function randomFloat(width: number, height: number, channels: number, seed: number): FloatImage {
  const r = seededRandom(seed);
  const data = Float32Array.from({ length: width * height * channels }, () => 0.2 + 0.9 * r() - 0.1 * r());
  return { width, height, channels, data };
}

/** A network output in NHWC: around [0, 1] and past it, with exact rounding ties and infinities among them. */
function randomOutput(height: number, width: number, channels: number, seed: number, specials = true): Float32Array {
  const r = seededRandom(seed);
  const cp = paddedChannels(channels);
  const out = new Float32Array(height * width * cp);
  for (let p = 0; p < height * width; p++) {
    for (let c = 0; c < channels; c++) {
      const k = r();
      out[p * cp + c] =
        !specials || k < 0.9
          ? 1.2 * r() - 0.1
          : k < 0.95
            ? (Math.floor(r() * 255) + 0.5) / 255
            : k < 0.97
              ? Infinity
              : k < 0.99
                ? -Infinity
                : 2 * r() - 0.5;
    }
  }
  return out;
}

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function expectSameFloats(got: Float32Array, want: Float32Array, what: string): void {
  expect(got.length, what).toBe(want.length);
  const g = bits(got);
  const w = bits(want);
  const first = g.findIndex((v, i) => v !== w[i]);
  expect(first, `${what}: first differing element (${got[first]} vs ${want[first]})`).toBe(-1);
}

const SIZES: [number, number][] = [
  [1, 1],
  [7, 5],
  [13, 11],
  [33, 17],
  [300, 241], // more pixels than 16-bit codes: mapped through a table (smaller 16-bit images map each code directly)
];
const NORMALIZE: (PercentileRange | undefined)[] = [undefined, { low: 1, high: 99.8 }, { low: 3, high: 70 }];

function normalization(
  image: RasterImage | FloatImage,
  symmetric: boolean,
  option: PercentileRange | undefined,
  outChannels: number,
): Normalization | undefined {
  if (!option) return undefined;
  const stats = 'bitDepth' in image ? rasterPercentiles(image, symmetric) : floatPercentiles(image);
  return runNormalization(image.channels, option, { outChannels, symmetric }, stats);
}

/** Windows of an image (the whole of it, and inner ones). */
function windows(width: number, height: number): [number, number, number, number][] {
  const out: [number, number, number, number][] = [[0, height, 0, width]];
  if (width > 2 && height > 2) out.push([1, height - 1, 1, width - 1], [0, Math.ceil(height / 2), Math.floor(width / 3), width]);
  return out;
}

describe('input: caller image → padded NHWC in one pass, bit-identical to the two-step path', () => {
  for (const channels of [1, 3] as const) {
    for (const bitDepth of [8, 16] as const) {
      for (const symmetric of [false, true]) {
        it(`raster, ${channels} channel(s), ${bitDepth}-bit, ${symmetric ? 'symmetric' : 'unit'} range`, () => {
          SIZES.forEach(([w, h], i) => {
            const image = randomRaster(w, h, channels, bitDepth, 10 * i + channels + bitDepth + (symmetric ? 1 : 0));
            for (const option of NORMALIZE) {
              if (option && w * h < 4) continue; // a flat image cannot be normalised (an error, tested below)
              for (const outChannels of [channels, channels === 1 ? 3 : 1]) {
                const input = new RasterInput(image, symmetric, normalization(image, symmetric, option, outChannels));
                for (const win of windows(w, h)) {
                  const want = oldInput(image, symmetric, option, outChannels, win).packed;
                  expectSameFloats(
                    input.pack(...win),
                    want,
                    `${w}×${h} ${JSON.stringify(option)} → ${outChannels} window ${win.join(',')}`,
                  );
                }
              }
            }
          });
        });
      }
    }
  }

  for (const channels of [1, 3, 5]) {
    for (const symmetric of [false, true]) {
      it(`float (CHW), ${channels} channel(s), ${symmetric ? 'symmetric' : 'unit'} network`, () => {
        SIZES.forEach(([w, h], i) => {
          const image = randomFloat(w, h, channels, 100 + i + channels);
          for (const option of NORMALIZE) {
            if (option && w * h < 4) continue;
            for (const outChannels of [channels, 1]) {
              // runFloat passes values through: `symmetric` only matters to the normalisation.
              const input = new FloatInput(image, normalization(image, symmetric, option, outChannels));
              for (const win of windows(w, h)) {
                const want = oldInput(image, option ? symmetric : false, option, outChannels, win).packed;
                expectSameFloats(input.pack(...win), want, `${w}×${h} ${JSON.stringify(option)} window ${win.join(',')}`);
              }
            }
          }
        });
      });
    }
  }

  it('the same error for a flat image under normalisation', () => {
    const flat: RasterImage = { width: 4, height: 3, channels: 1, bitDepth: 8, data: new Uint8Array(12).fill(7) };
    const option = { low: 1, high: 99 };
    const old = () => oldFlatCheck(rasterToFloat(flat), option);
    const now = () => normalization(flat, false, option, 1);
    expect(old).toThrow(InvalidInputError);
    expect(now).toThrow(InvalidInputError);
    expect(() => now()).toThrow(errorOf(old));
  });
});

/** The old flat-image check of normalizeForRun (the percentiles are also those of percentileNormalize). */
function oldFlatCheck(image: FloatImage, option: PercentileRange): void {
  const { range } = percentileNormalize(image, { pLow: option.low, pHigh: option.high });
  range.low.forEach((lo, c) => {
    if (!(range.high[c] > lo)) {
      throw new InvalidInputError(
        `normalize: the ${option.low} and ${option.high} percentiles of channel ${c} are both ${lo}; ` +
          'choose percentiles further apart (or leave normalisation off)',
      );
    }
  });
}

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('no error');
}

interface Case {
  channels: 1 | 3;
  inChannels: 1 | 3;
  bitDepth: 8 | 16;
  symmetric: boolean;
  option: PercentileRange | undefined;
  scale: number;
}

function cases(): Case[] {
  const out: Case[] = [];
  for (const channels of [1, 3] as const) {
    for (const bitDepth of [8, 16] as const) {
      for (const symmetric of [false, true]) {
        for (const option of NORMALIZE) {
          for (const scale of [1, 2]) out.push({ channels, inChannels: channels, bitDepth, symmetric, option, scale });
        }
      }
    }
    out.push({ channels, inChannels: channels === 1 ? 3 : 1, bitDepth: 8, symmetric: false, option: { low: 2, high: 98 }, scale: 1 });
  }
  return out;
}

/**
 * Runs the output side of a case both ways over the given tiles of a w × h input (one tile = the whole image):
 * random NHWC "network outputs" per tile, pasted (exact tilings) or blended (approximate ones).
 */
function outputsBothWays(c: Case, w: number, h: number, tiles: Tile[], blend: boolean, seed: number, specials = true) {
  const input = randomRaster(w, h, c.inChannels, c.bitDepth, seed);
  const old = oldInput(input, c.symmetric, c.option, c.channels, [0, h, 0, w]);
  const norm = normalization(input, c.symmetric, c.option, c.channels);
  const s = c.scale;
  const [ow, oh, oc] = [w * s, h * s, c.channels];
  const oldOut = new Float32Array(oc * ow * oh);
  const oldBlender = blend ? new OldFeatherBlender(oldOut, oc, oh, ow, input, s, 3 * s) : undefined;
  const rasterSink = new RasterOutput(ow, oh, oc, c.bitDepth, c.symmetric, norm);
  const floatSink = new FloatOutput(ow, oh, oc, norm);
  const rasterBlender = blend ? new FeatherBlender(rasterSink.blendSums(), oc, oh, ow, input, s, 3 * s) : undefined;
  const floatBlender = blend ? new FeatherBlender(floatSink.blendSums(), oc, oh, ow, input, s, 3 * s) : undefined;
  tiles.forEach((t, k) => {
    const [th, tw] = [(t.wy1 - t.wy0) * s, (t.wx1 - t.wx0) * s];
    const nhwc = randomOutput(th, tw, oc, seed * 100 + k, specials);
    const chw = nhwcPaddedToNchw(nhwc, [1, th, tw, oc]);
    const core = [(t.y0 - t.wy0) * s, (t.x0 - t.wx0) * s, t.y0 * s, t.x0 * s, (t.y1 - t.y0) * s, (t.x1 - t.x0) * s] as const;
    if (blend) {
      oldBlender!.add(t, chw, th, tw);
      rasterBlender!.add(t, nhwc, th, tw);
      floatBlender!.add(t, nhwc, th, tw);
    } else {
      pasteChw(oldOut, oh, ow, chw, th, tw, oc, ...core);
      rasterSink.paste(nhwc, tw, ...core);
      floatSink.paste(nhwc, tw, ...core);
    }
  });
  if (blend) {
    oldBlender!.finish();
    rasterSink.fromBlend(rasterBlender!.sums, rasterBlender!.weights);
    floatSink.fromBlend(floatBlender!.sums, floatBlender!.weights);
  }
  let oldFloat: FloatImage = { width: ow, height: oh, channels: oc, data: oldOut };
  if (old.invert) oldFloat = old.invert(oldFloat);
  // `runFloat`: the output as it comes back (normalisation undone); `run`: then the symmetric map and the raster.
  const oldRunFloat = oldFloat;
  const forRaster = c.symmetric ? { ...oldFloat, data: oldFloat.data.map((v) => (v + 1) / 2) } : oldFloat;
  return { oldRunFloat, oldRaster: () => floatToRaster(forRaster, c.bitDepth), rasterSink, floatSink };
}

describe('output: padded NHWC → caller image in one pass, bit-identical to the two-step path', () => {
  const exact: TilingSpec = { alignment: 1, halo: 3, exact: true, minSize: 1 };
  const approximate: TilingSpec = { alignment: 2, halo: 4, exact: false, minSize: 2 };
  const sizes: [number, number][] = [
    [1, 1],
    [9, 7],
    [23, 17],
    [41, 30],
  ];

  for (const c of cases()) {
    const name = `${c.channels} channel(s) from ${c.inChannels}, ${c.bitDepth}-bit, ${c.symmetric ? 'symmetric' : 'unit'}, ×${c.scale}, normalize ${JSON.stringify(c.option)}`;
    it(name, () => {
      sizes.forEach(([w, h], i) => {
        if (c.option && w * h < 4) return;
        const layouts: [string, Tile[], boolean][] = [['whole', [{ x0: 0, x1: w, y0: 0, y1: h, wx0: 0, wx1: w, wy0: 0, wy1: h }], false]];
        if (w > 8) {
          layouts.push(['tiles', planTiles(w, h, 8, exact), false], ['blended tiles', planTiles(w, h, 8, approximate), true]);
        }
        for (const [how, tiles, blend] of layouts) {
          // Without NaN: the images themselves. (NaN is the next test.)
          // Infinities only where pasted: blended with one of the other sign they would make NaNs.
          const r = outputsBothWays(c, w, h, tiles, blend, 1000 + 17 * i + c.channels + c.scale, !blend);
          expectSameFloats(r.floatSink.finish().data, r.oldRunFloat.data, `${w}×${h} ${how}, runFloat`);
          const want = r.oldRaster();
          const got = r.rasterSink.finish();
          expect({ ...got, data: undefined }, `${w}×${h} ${how}`).toEqual({ ...want, data: undefined });
          expect(Array.from(got.data), `${w}×${h} ${how}, run`).toEqual(Array.from(want.data));
        }
      });
    });
  }

  it('rounding: every code, its midpoints to both neighbours and values just around them, 8 and 16 bits', () => {
    for (const bitDepth of [8, 16] as const) {
      const max = bitDepth === 16 ? 65535 : 255;
      const values: number[] = [];
      for (let k = 0; k <= max; k++) {
        for (const v of [k / max, (k + 0.5) / max, (k - 0.5) / max]) {
          const f = Math.fround(v);
          values.push(f, f * (1 + 2 ** -23), f * (1 - 2 ** -23));
        }
      }
      const w = values.length;
      const chw = Float32Array.from(values);
      const sink = new RasterOutput(w, 1, 1, bitDepth, false, undefined);
      sink.paste(nchwToNhwcPadded(chw, [1, 1, w, 1]), w, 0, 0, 0, 0, 1, w);
      const want = floatToRaster({ width: w, height: 1, channels: 1, data: chw }, bitDepth);
      const got = sink.finish().data;
      const first = got.findIndex((v, i) => v !== want.data[i]);
      expect(first, `${bitDepth}-bit: first differing value ${values[first]}`).toBe(-1);
    }
  });

  it('NaN in the output: the same error, naming the first NaN in planar order, tiled or not', () => {
    const [w, h] = [23, 17];
    const plane = w * h;
    const whole: Tile[] = [{ x0: 0, x1: w, y0: 0, y1: h, wx0: 0, wx1: w, wy0: 0, wy1: h }];
    // Tiles pasted bottom row first, so that pixels arrive out of order.
    for (const tiles of [whole, planTiles(w, h, 8, exact).reverse()]) {
      for (const seed of [1, 2, 3]) {
        const rng = seededRandom(seed);
        const chw = Float32Array.from({ length: 3 * plane }, () => rng());
        // NaNs in a later channel at an earlier pixel too: the error names the first in planar order.
        for (const i of [Math.floor(rng() * plane) + 2 * plane, Math.floor(rng() * plane) + plane, Math.floor(rng() * plane) + 2 * plane]) {
          chw[i] = Number.NaN;
        }
        const nhwc = nchwToNhwcPadded(chw, [1, h, w, 3]);
        const sink = new RasterOutput(w, h, 3, 8, false, undefined);
        for (const t of tiles) {
          const window = nchwToNhwcPadded(cropChw(chw, 3, h, w, t.wy0, t.wy1, t.wx0, t.wx1), [1, t.wy1 - t.wy0, t.wx1 - t.wx0, 3]);
          sink.paste(tiles === whole ? nhwc : window, t.wx1 - t.wx0, t.y0 - t.wy0, t.x0 - t.wx0, t.y0, t.x0, t.y1 - t.y0, t.x1 - t.x0);
        }
        const want = errorOf(() => floatToRaster({ width: w, height: h, channels: 3, data: chw }, 8));
        expect(want).toMatch(/NaN at channel 1/);
        expect(() => sink.finish()).toThrow(InvalidInputError);
        expect(errorOf(() => sink.finish())).toBe(want);
      }
    }
  });
});
