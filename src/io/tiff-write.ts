/**
 * TIFF writing for {@link AnyRasterImage}: little-endian classic TIFF, one IFD per page, strips of about
 * 64 KiB, uncompressed or Deflate (optionally with the horizontal or floating-point predictor), 8/16-bit
 * unsigned or 32-bit float samples, gray or RGB with an optional alpha plane (one ExtraSample). Palette
 * metadata read from a gray-ramp palette file (Zeiss SEM) is written back as a palette image with the
 * same ColorMap, so the file looks as before in viewers; descriptive and vendor tags read with the page are
 * copied. Browser-safe.
 */
import { zlibSync } from 'fflate';

import { ImageFormatError, InvalidInputError } from '../errors';
import { type AnyRasterImage, validateAnyRaster } from './image';
import type { TiffMetadata, TiffTag } from './tiff';
import { HOST_LITTLE_ENDIAN, applyFloatPredictor, applyHorizontalPredictor } from './tiff-codecs';
import { COMPRESSION, LAYOUT_TAGS, PHOTOMETRIC, POINTER_TAGS, TAG, TYPE, TYPE_SIZE } from './tiff-tags';

export interface EncodeTiffOptions {
  /** `'none'` (default) or `'deflate'` (zlib, TIFF compression 8). */
  compression?: 'none' | 'deflate';
  /**
   * With Deflate: difference neighbouring samples first (predictor 2 for integers, 3 for floats), which
   * usually makes smooth images noticeably smaller. Default `true` when compressing.
   */
  predictor?: boolean;
  /** zlib level 0..9 (default 6). */
  level?: number;
}

/** A page to write: an image, optionally with the metadata it was read with. */
export interface TiffWritePage {
  image: AnyRasterImage;
  metadata?: Partial<TiffMetadata>;
}

const STRIP_BYTES = 64 * 1024;

interface Entry {
  tag: number;
  type: number;
  count: number;
  /** Value bytes, little endian. */
  data: Uint8Array;
}

function encodeValues(type: number, values: ArrayLike<number>): Uint8Array {
  const size = TYPE_SIZE[type];
  const out = new Uint8Array(values.length * size);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    switch (type) {
      case TYPE.BYTE:
      case TYPE.UNDEFINED:
        out[i] = v;
        break;
      case TYPE.SBYTE:
        dv.setInt8(i, v);
        break;
      case TYPE.SHORT:
        dv.setUint16(2 * i, v, true);
        break;
      case TYPE.SSHORT:
        dv.setInt16(2 * i, v, true);
        break;
      case TYPE.LONG:
      case TYPE.IFD:
        dv.setUint32(4 * i, v, true);
        break;
      case TYPE.SLONG:
        dv.setInt32(4 * i, v, true);
        break;
      case TYPE.FLOAT:
        dv.setFloat32(4 * i, v, true);
        break;
      case TYPE.DOUBLE:
        dv.setFloat64(8 * i, v, true);
        break;
    }
  }
  return out;
}

function entry(tag: number, type: number, values: ArrayLike<number>): Entry {
  return { tag, type, count: values.length, data: encodeValues(type, values) };
}

/** Rationals as flattened numerator/denominator pairs (count = number of pairs). */
function rationalEntry(tag: number, value: number): Entry {
  // A denominator of 10^k keeps decimal resolutions (e.g. 118.11 px/cm) exact to ~7 digits.
  let den = 1;
  while (den < 1e6 && Math.abs(Math.round(value * den) - value * den) > 1e-9 * den) den *= 10;
  let num = Math.round(value * den);
  while (num > 0xffffffff) {
    num = Math.round(num / 10);
    den = Math.max(1, Math.round(den / 10));
  }
  const data = new Uint8Array(8);
  const dv = new DataView(data.buffer);
  dv.setUint32(0, num, true);
  dv.setUint32(4, den, true);
  return { tag, type: TYPE.RATIONAL, count: 1, data };
}

/** A tag read from another file, re-encoded little endian; undefined when it cannot be carried over. */
function passThrough(t: TiffTag): Entry | undefined {
  if (LAYOUT_TAGS.has(t.tag) || POINTER_TAGS.has(t.tag) || t.type === TYPE.IFD || TYPE_SIZE[t.type] === undefined) {
    return undefined;
  }
  if (t.type === TYPE.ASCII) {
    const s = typeof t.value === 'string' ? t.value : '';
    const data = new Uint8Array(s.length + 1);
    for (let i = 0; i < s.length; i++) data[i] = s.charCodeAt(i) & 0xff;
    return { tag: t.tag, type: t.type, count: data.length, data };
  }
  if (t.value instanceof Uint8Array) {
    return { tag: t.tag, type: t.type, count: t.value.length, data: t.value.slice() };
  }
  if (!Array.isArray(t.value)) return undefined;
  if (t.type === TYPE.RATIONAL || t.type === TYPE.SRATIONAL) {
    const data = new Uint8Array(4 * t.value.length);
    const dv = new DataView(data.buffer);
    for (let i = 0; i < t.value.length; i++) {
      if (t.type === TYPE.RATIONAL) dv.setUint32(4 * i, t.value[i], true);
      else dv.setInt32(4 * i, t.value[i], true);
    }
    return { tag: t.tag, type: t.type, count: t.value.length / 2, data };
  }
  return entry(t.tag, t.type, t.value);
}

/** The strip bytes (before compression) of rows [y0, y1), little endian, with the predictor applied. */
function stripBytes(img: AnyRasterImage, spp: number, y0: number, y1: number, predictor: boolean): Uint8Array {
  const { width, channels, alpha } = img;
  const rowSamples = width * spp;
  const count = (y1 - y0) * rowSamples;
  // Interleave colour + alpha for these rows.
  const Ctor = img.bitDepth === 32 ? Float32Array : img.bitDepth === 16 ? Uint16Array : Uint8Array;
  let samples: Uint8Array | Uint16Array | Float32Array;
  if (alpha === undefined) samples = img.data.slice(y0 * rowSamples, y1 * rowSamples);
  else {
    samples = new Ctor(count);
    const src = img.data;
    for (let p = y0 * width, o = 0; p < y1 * width; p++) {
      for (let c = 0; c < channels; c++) samples[o++] = src[p * channels + c];
      samples[o++] = alpha[p];
    }
  }
  if (img.bitDepth === 32 && predictor) {
    const out = new Uint8Array(count * 4);
    for (let r = 0; r < y1 - y0; r++) {
      applyFloatPredictor(samples as Float32Array, r * rowSamples, rowSamples, spp, out, r * rowSamples * 4);
    }
    return out;
  }
  if (predictor) {
    for (let r = 0; r < y1 - y0; r++) applyHorizontalPredictor(samples as Uint8Array | Uint16Array, r * rowSamples, rowSamples, spp);
  }
  if (img.bitDepth === 8) return samples as Uint8Array;
  // `samples` is a fresh array: on little-endian hosts its bytes are the file's bytes.
  if (HOST_LITTLE_ENDIAN) return new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
  const out = new Uint8Array(samples.byteLength);
  const dv = new DataView(out.buffer);
  if (img.bitDepth === 16) for (let i = 0; i < count; i++) dv.setUint16(2 * i, samples[i], true);
  else for (let i = 0; i < count; i++) dv.setFloat32(4 * i, samples[i], true);
  return out;
}

/** True when the page's metadata holds an 8-bit gray-ramp palette that can be written back as is. */
function keepsPalette(
  img: AnyRasterImage,
  meta: Partial<TiffMetadata> | undefined,
): meta is Partial<TiffMetadata> & { colorMap: Uint16Array } {
  return (
    meta?.palette === 'index' &&
    meta.colorMap instanceof Uint16Array &&
    meta.colorMap.length === 768 &&
    img.bitDepth === 8 &&
    img.channels === 1 &&
    img.alpha === undefined
  );
}

interface EncodedPage {
  entries: Entry[];
  strips: Uint8Array[];
}

function encodePage(page: TiffWritePage, index: number, options: EncodeTiffOptions): EncodedPage {
  const img = page.image;
  validateAnyRaster(img, `page ${index}`);
  const meta = page.metadata;
  const deflate = options.compression === 'deflate';
  if (options.compression !== undefined && options.compression !== 'none' && !deflate) {
    throw new InvalidInputError(`encodeTiff: compression must be 'none' or 'deflate', got ${String(options.compression)}`);
  }
  const predictor = deflate && (options.predictor ?? true);
  const level = options.level ?? 6;
  if (!Number.isInteger(level) || level < 0 || level > 9) {
    throw new InvalidInputError(`encodeTiff: level must be an integer 0..9, got ${String(options.level)}`);
  }
  const hasAlpha = img.alpha !== undefined;
  const spp = img.channels + (hasAlpha ? 1 : 0);
  const bytesPerRow = img.width * spp * (img.bitDepth / 8);
  const rowsPerStrip = Math.max(1, Math.min(img.height, Math.floor(STRIP_BYTES / bytesPerRow)));
  const strips: Uint8Array[] = [];
  for (let y = 0; y < img.height; y += rowsPerStrip) {
    const raw = stripBytes(img, spp, y, Math.min(img.height, y + rowsPerStrip), predictor);
    strips.push(deflate ? zlibSync(raw, { level: level as 6 }) : raw);
  }

  const palette = keepsPalette(img, meta);
  const entries: Entry[] = [];
  const subfile = meta?.subfileType ?? 0;
  if (subfile !== 0) entries.push(entry(TAG.NewSubfileType, TYPE.LONG, [subfile]));
  entries.push(entry(TAG.ImageWidth, TYPE.LONG, [img.width]));
  entries.push(entry(TAG.ImageLength, TYPE.LONG, [img.height]));
  entries.push(entry(TAG.BitsPerSample, TYPE.SHORT, new Array(spp).fill(img.bitDepth)));
  entries.push(entry(TAG.Compression, TYPE.SHORT, [deflate ? COMPRESSION.DEFLATE : COMPRESSION.NONE]));
  const photometric = palette ? PHOTOMETRIC.PALETTE : img.channels === 3 ? PHOTOMETRIC.RGB : PHOTOMETRIC.BLACK_IS_ZERO;
  entries.push(entry(TAG.PhotometricInterpretation, TYPE.SHORT, [photometric]));
  entries.push(entry(TAG.StripOffsets, TYPE.LONG, new Array(strips.length).fill(0))); // patched later
  if (meta?.orientation !== undefined) entries.push(entry(TAG.Orientation, TYPE.SHORT, [meta.orientation]));
  entries.push(entry(TAG.SamplesPerPixel, TYPE.SHORT, [spp]));
  entries.push(entry(TAG.RowsPerStrip, TYPE.LONG, [rowsPerStrip]));
  entries.push(
    entry(
      TAG.StripByteCounts,
      TYPE.LONG,
      strips.map((s) => s.length),
    ),
  );
  if (meta?.resolution) {
    entries.push(rationalEntry(TAG.XResolution, meta.resolution.x));
    entries.push(rationalEntry(TAG.YResolution, meta.resolution.y));
  }
  entries.push(entry(TAG.PlanarConfiguration, TYPE.SHORT, [1]));
  if (meta?.resolution) entries.push(entry(TAG.ResolutionUnit, TYPE.SHORT, [meta.resolution.unit]));
  if (predictor) entries.push(entry(TAG.Predictor, TYPE.SHORT, [img.bitDepth === 32 ? 3 : 2]));
  if (palette) entries.push(entry(TAG.ColorMap, TYPE.SHORT, meta.colorMap));
  if (hasAlpha) entries.push(entry(TAG.ExtraSamples, TYPE.SHORT, [meta?.extraSampleType ?? 2]));
  entries.push(entry(TAG.SampleFormat, TYPE.SHORT, new Array(spp).fill(img.bitDepth === 32 ? 3 : 1)));
  for (const t of meta?.extraTags ?? []) {
    const e = passThrough(t);
    if (e && !entries.some((x) => x.tag === e.tag)) entries.push(e);
  }
  entries.sort((a, b) => a.tag - b.tag);
  return { entries, strips };
}

/**
 * Encodes one or more pages as a little-endian TIFF. Each page keeps its bit depth (8/16-bit unsigned or
 * 32-bit float), its channels (gray or RGB) and its alpha plane (as an unassociated ExtraSample unless the
 * page's metadata says otherwise). Pages given as {@link TiffWritePage} with the metadata returned by
 * `decodeTiff` also keep their resolution, orientation tag, descriptive and vendor tags, and, for
 * gray-ramp palette files read as raw indices, the palette.
 *
 * @throws InvalidInputError for malformed images or options.
 * @throws ImageFormatError when the result would exceed the 4 GiB limit of classic TIFF.
 */
export function encodeTiff(
  pages: AnyRasterImage | TiffWritePage | readonly (AnyRasterImage | TiffWritePage)[],
  options: EncodeTiffOptions = {},
): Uint8Array {
  const list = (Array.isArray(pages) ? pages : [pages]) as (AnyRasterImage | TiffWritePage)[];
  if (list.length === 0) throw new InvalidInputError('encodeTiff: no pages to write');
  const normalized: TiffWritePage[] = list.map((p) => ('image' in p ? p : { image: p }));
  const encoded = normalized.map((p, i) => encodePage(p, i, options));

  // Layout: header, then per page: strips, out-of-line tag values, IFD (word aligned).
  let size = 8;
  const plan = encoded.map((page) => {
    const stripOffsets: number[] = [];
    for (const s of page.strips) {
      stripOffsets.push(size);
      size += s.length;
      size += size & 1;
    }
    const valueOffsets = new Map<Entry, number>();
    for (const e of page.entries) {
      if (e.data.length > 4) {
        valueOffsets.set(e, size);
        size += e.data.length;
        size += size & 1;
      }
    }
    const ifdOffset = size;
    size += 2 + 12 * page.entries.length + 4;
    return { stripOffsets, valueOffsets, ifdOffset };
  });
  if (size > 0xffffffff) {
    throw new ImageFormatError(`encodeTiff: the file would be ${size} bytes, beyond the 4 GiB limit of classic TIFF`);
  }

  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  out[0] = 0x49;
  out[1] = 0x49;
  dv.setUint16(2, 42, true);
  dv.setUint32(4, plan[0].ifdOffset, true);
  encoded.forEach((page, p) => {
    const { stripOffsets, valueOffsets, ifdOffset } = plan[p];
    page.strips.forEach((s, i) => out.set(s, stripOffsets[i]));
    const offsetsEntry = page.entries.find((e) => e.tag === TAG.StripOffsets) as Entry;
    offsetsEntry.data = encodeValues(TYPE.LONG, stripOffsets);
    dv.setUint16(ifdOffset, page.entries.length, true);
    page.entries.forEach((e, k) => {
      const at = ifdOffset + 2 + 12 * k;
      dv.setUint16(at, e.tag, true);
      dv.setUint16(at + 2, e.type, true);
      dv.setUint32(at + 4, e.count, true);
      const valueAt = valueOffsets.get(e);
      if (valueAt === undefined) out.set(e.data, at + 8);
      else {
        out.set(e.data, valueAt);
        dv.setUint32(at + 8, valueAt, true);
      }
    });
    const nextAt = ifdOffset + 2 + 12 * page.entries.length;
    dv.setUint32(nextAt, p + 1 < encoded.length ? plan[p + 1].ifdOffset : 0, true);
  });
  return out;
}
