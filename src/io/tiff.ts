/**
 * TIFF reading for {@link AnyRasterImage}. Browser-safe (no Node APIs); written here rather than taken from
 * npm because no maintained pure-JS package reads 16-bit and float TIFFs with PackBits *and* writes them
 * (`tiff` has no PackBits and no encoder, `utif` converts to 8-bit RGBA, `geotiff` is large).
 *
 * Supported: classic TIFF in either byte order; every page of the main IFD chain; strips and tiles;
 * chunky and planar sample layout; compression none, LZW, Deflate (8 and 32946) and PackBits; predictors
 * 2 (horizontal) and 3 (floating point); 1/2/4/8/16-bit unsigned and 32-bit float samples; BlackIsZero and
 * WhiteIsZero gray, RGB and palette, each with one extra sample kept as the `alpha` plane.
 *
 * | file                         | result                                                                |
 * | ---------------------------- | --------------------------------------------------------------------- |
 * | gray 8 / 16 bit              | 1 channel, same bit depth (WhiteIsZero is inverted to BlackIsZero)   |
 * | gray 1 / 2 / 4 bit           | 1 channel, 8-bit, scaled to 0..255 like PNG                           |
 * | gray / RGB float32           | 1 / 3 channels, bitDepth 32, values as stored                         |
 * | RGB 8 / 16 bit               | 3 channels, same bit depth                                            |
 * | + one ExtraSample            | the same, plus an `alpha` plane                                       |
 * | palette 8-bit, gray ramp     | 1 channel, 8-bit, the **raw index** (see {@link paletteIsGrayRamp})   |
 * | other palettes               | expanded through the ColorMap: 1 channel if all entries are gray,     |
 * |                              | otherwise 3 channels (8-bit, ColorMap value >> 8, like PIL)           |
 *
 * Anything else (JPEG or fax compression, signed or 64-bit samples, CMYK/YCbCr/Lab, BigTIFF, ...) is an
 * {@link ImageFormatError} naming the tag and its value.
 *
 * Memory is bounded by the header (tiff-layout.ts): a page over 2^30 samples or with oversized tiles is
 * refused from its IFD, a page whose strips or tiles are too short to decode to its pixels is refused before
 * anything is allocated, and each strip or tile is decoded into a buffer of its own size (rows × row bytes)
 * by codecs that stop at the first byte beyond it (an IMAGE_FORMAT error).
 */
import { ImageFormatError, InvalidInputError } from '../errors';
import type { AnyRasterImage } from './image';
import { HOST_LITTLE_ENDIAN, inflateChunk, lzwDecode, undoFloatPredictor, undoHorizontalPredictor, unpackBits } from './tiff-codecs';
import { type Layout, MAX_SAMPLES, checkChunksFit, chunkLabel, chunkRowBytes, chunkRows, tileSizeProblem } from './tiff-layout';
import {
  COMPRESSION,
  COMPRESSION_NAMES,
  LAYOUT_TAGS,
  PHOTOMETRIC,
  PHOTOMETRIC_NAMES,
  POINTER_TAGS,
  SAMPLE_FORMAT_NAMES,
  TAG,
  TYPE,
  TYPE_SIZE,
  tagLabel,
} from './tiff-tags';

/** One IFD entry as stored (numbers for numeric types, a string for ASCII, bytes for BYTE/UNDEFINED). */
export interface TiffTag {
  tag: number;
  type: number;
  /** Number of values as the file counts them (for ASCII: bytes including the final NUL). */
  count: number;
  /** RATIONAL/SRATIONAL values are flattened numerator, denominator pairs. */
  value: number[] | string | Uint8Array;
}

/** What a page's tags say besides the pixels; kept so that a written file can carry it on. */
export interface TiffMetadata {
  /** Byte order of the file ('II' little endian, 'MM' big endian). */
  littleEndian: boolean;
  compression: number;
  predictor: number;
  photometric: number;
  /** 1 = chunky (interleaved), 2 = planar. */
  planarConfiguration: number;
  tiled: boolean;
  /** NewSubfileType (bit 0 = reduced-resolution copy of another page, bit 1 = page of a multi-page file). */
  subfileType: number;
  /** Orientation tag when present (pixels are returned as stored, not rotated). */
  orientation?: number;
  /** XResolution, YResolution and ResolutionUnit (1 none, 2 inch, 3 cm) when present. */
  resolution?: { x: number; y: number; unit: number };
  /** Palette files: the ColorMap as stored (all red values, then green, then blue; 16-bit). */
  colorMap?: Uint16Array;
  /** Palette files: whether the pixels are the raw indices or were expanded through the ColorMap. */
  palette?: 'index' | 'expanded';
  /** The ExtraSamples value of the alpha plane: 0 unspecified, 1 associated (premultiplied), 2 unassociated. */
  extraSampleType?: number;
  /**
   * Every other tag of the page (description, software, date, vendor tags such as Zeiss `CZ_SEM` 34118 or
   * FEI 34680–34683), for writing back unchanged. Pointer tags (Exif, GPS, SubIFDs) are left out.
   */
  extraTags: TiffTag[];
}

/** One decoded page. */
export interface TiffPage {
  image: AnyRasterImage;
  metadata: TiffMetadata;
}

export interface DecodeTiffOptions {
  /** Used in error messages (e.g. the file name); default `'input'`. */
  name?: string;
  /**
   * Palette (photometric 3) handling: `'auto'` (default) returns the raw index for gray-ramp palettes such
   * as Zeiss SEM files and expands other palettes; `'index'` always returns the raw index; `'expand'`
   * always looks the colours up in the ColorMap.
   */
  palette?: 'auto' | 'index' | 'expand';
  /** Decode only this page (0-based); default: every page. */
  page?: number;
}

/** True when `bytes` start with a classic TIFF header ('II*\0' or 'MM\0*'). */
export function isTiff(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 4 &&
    ((bytes[0] === 0x49 && bytes[1] === 0x49 && bytes[2] === 42 && bytes[3] === 0) ||
      (bytes[0] === 0x4d && bytes[1] === 0x4d && bytes[2] === 0 && bytes[3] === 42))
  );
}

/**
 * Zeiss SmartSEM (and similar) store 8-bit gray micrographs as palette TIFFs whose ColorMap is the identity
 * gray ramp (entry i = i·257, i.e. gray level i) except for a few entries reserved for annotation colours:
 * in the Zeiss files every ninth entry (9 → red, 18 → green, 27 → blue, ..., 243 → white). The detector
 * signal is written as gray levels that avoid those entries (the histogram of the micrograph area is empty
 * at 9, 18, ..., 234 and the level below each holds about twice its neighbours' count: level i was stored
 * as i − 1), and the data bar text and logo use the overlay colours. Expanding through the ColorMap would
 * turn a dim pixel of level 9 into bright red and make 243 brighter than 254, so the raw index is the
 * measurement and is what we return. A ColorMap counts as such a ramp when at least three quarters of its
 * entries are exactly gray level i (i·257, or i·256 as PIL writes it); for the entries that are, looking up
 * the ColorMap and taking the index give the same value.
 */
export function paletteIsGrayRamp(colorMap: Uint16Array, bits: number): boolean {
  const n = 1 << bits;
  if (bits !== 8 || colorMap.length !== 3 * n) return false;
  let identity = 0;
  for (let i = 0; i < n; i++) {
    const r = colorMap[i];
    if (r === colorMap[n + i] && r === colorMap[2 * n + i] && (r === i * 257 || r === i * 256)) identity++;
  }
  return identity * 4 >= n * 3;
}

// ---------------------------------------------------------------------------------------------------
// IFD parsing
// ---------------------------------------------------------------------------------------------------

interface Ifd {
  offset: number;
  entries: Map<number, TiffTag>;
  next: number;
}

class Reader {
  readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    readonly le: boolean,
    readonly fail: (msg: string) => never,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u16(at: number): number {
    return this.view.getUint16(at, this.le);
  }
  u32(at: number): number {
    return this.view.getUint32(at, this.le);
  }

  readIfd(offset: number, index: number): Ifd {
    const { bytes } = this;
    if (offset + 2 > bytes.length) {
      this.fail(`TIFF file is truncated: IFD ${index} at byte ${offset} is beyond the end of the file (${bytes.length} bytes)`);
    }
    const n = this.u16(offset);
    const end = offset + 2 + 12 * n;
    if (end + 4 > bytes.length) {
      this.fail(`TIFF file is truncated: IFD ${index} at byte ${offset} has ${n} entries but the file ends at byte ${bytes.length}`);
    }
    const entries = new Map<number, TiffTag>();
    for (let k = 0; k < n; k++) {
      const e = offset + 2 + 12 * k;
      const tag = this.u16(e);
      const type = this.u16(e + 2);
      const count = this.u32(e + 4);
      const size = TYPE_SIZE[type];
      if (size === undefined) continue; // unknown field type: readers must skip it (TIFF 6.0, section 2)
      const total = size * count;
      const at = total <= 4 ? e + 8 : this.u32(e + 8);
      if (at + total > bytes.length) {
        if (LAYOUT_TAGS.has(tag)) {
          this.fail(`TIFF file is truncated: the value of ${tagLabel(tag)} (${total} bytes at byte ${at}) is beyond the end of the file`);
        }
        continue; // a broken descriptive tag should not make the image unreadable
      }
      entries.set(tag, { tag, type, count, value: this.readValue(type, count, at) });
    }
    return { offset, entries, next: this.u32(end) };
  }

  readValue(type: number, count: number, at: number): number[] | string | Uint8Array {
    const { view, le, bytes } = this;
    switch (type) {
      case TYPE.ASCII: {
        let s = '';
        const stop = count > 0 && bytes[at + count - 1] === 0 ? count - 1 : count;
        for (let i = 0; i < stop; i++) s += String.fromCharCode(bytes[at + i]);
        return s;
      }
      case TYPE.BYTE:
      case TYPE.UNDEFINED:
        return bytes.slice(at, at + count);
      default: {
        const out: number[] = new Array<number>(type === TYPE.RATIONAL || type === TYPE.SRATIONAL ? 2 * count : count);
        for (let i = 0; i < out.length; i++) {
          switch (type) {
            case TYPE.SBYTE:
              out[i] = view.getInt8(at + i);
              break;
            case TYPE.SHORT:
              out[i] = view.getUint16(at + 2 * i, le);
              break;
            case TYPE.SSHORT:
              out[i] = view.getInt16(at + 2 * i, le);
              break;
            case TYPE.LONG:
            case TYPE.IFD:
            case TYPE.RATIONAL:
              out[i] = view.getUint32(at + 4 * i, le);
              break;
            case TYPE.SLONG:
            case TYPE.SRATIONAL:
              out[i] = view.getInt32(at + 4 * i, le);
              break;
            case TYPE.FLOAT:
              out[i] = view.getFloat32(at + 4 * i, le);
              break;
            case TYPE.DOUBLE:
              out[i] = view.getFloat64(at + 8 * i, le);
              break;
          }
        }
        return out;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Page decoding
// ---------------------------------------------------------------------------------------------------

function numbers(entries: Map<number, TiffTag>, tag: number): number[] | undefined {
  const e = entries.get(tag);
  if (e === undefined) return undefined;
  if (Array.isArray(e.value)) return e.value;
  if (e.value instanceof Uint8Array) return Array.from(e.value);
  return undefined;
}

/** Samples of the whole page, interleaved with all `spp` samples per pixel (chunky), in native order. */
type SampleArray = Uint8Array | Uint16Array | Float32Array;

function decodePage(r: Reader, ifd: Ifd, pageIndex: number, options: DecodeTiffOptions): TiffPage {
  const { entries } = ifd;
  const pageFail = (msg: string): never => r.fail(`page ${pageIndex}: ${msg}`);
  const unsupported = (tag: number, value: number | string, what?: string): never =>
    pageFail(`unsupported ${tagLabel(tag)} = ${value}${what ? ` (${what})` : ''}`);
  const one = (tag: number, fallback?: number): number => {
    const v = numbers(entries, tag);
    if (v === undefined || v.length === 0) {
      if (fallback === undefined) pageFail(`required ${tagLabel(tag)} is missing`);
      return fallback as number;
    }
    return v[0];
  };

  const width = one(TAG.ImageWidth);
  const height = one(TAG.ImageLength);
  if (width <= 0 || height <= 0) pageFail(`invalid image size ${width}x${height}`);
  const spp = one(TAG.SamplesPerPixel, 1);
  if (spp < 1) unsupported(TAG.SamplesPerPixel, spp);
  const bitsList = numbers(entries, TAG.BitsPerSample) ?? [1];
  const bits = bitsList[0];
  if (bitsList.some((b) => b !== bits)) unsupported(TAG.BitsPerSample, bitsList.join(','), 'mixed sample sizes');
  const formatList = numbers(entries, TAG.SampleFormat) ?? [1];
  const sampleFormat = formatList[0];
  if (formatList.some((f) => f !== sampleFormat)) unsupported(TAG.SampleFormat, formatList.join(','), 'mixed sample formats');
  const compression = one(TAG.Compression, COMPRESSION.NONE);
  const photometric = one(TAG.PhotometricInterpretation, -1);
  const planarConfiguration = one(TAG.PlanarConfiguration, 1);
  let predictor = one(TAG.Predictor, 1);
  const fillOrder = one(TAG.FillOrder, 1);

  // What the samples are.
  let float = false;
  if (sampleFormat === 3) {
    if (bits !== 32) unsupported(TAG.BitsPerSample, bits, `${bits}-bit float samples; only 32-bit float is supported`);
    float = true;
  } else if (sampleFormat === 1 || sampleFormat === 4) {
    if (![1, 2, 4, 8, 16].includes(bits)) {
      unsupported(TAG.BitsPerSample, bits, `${bits}-bit integer samples; 1, 2, 4, 8 and 16 bits are supported`);
    }
  } else {
    unsupported(TAG.SampleFormat, sampleFormat, `${SAMPLE_FORMAT_NAMES[sampleFormat] ?? 'unknown'} samples`);
  }
  if (![1, 5, 8, 32773, 32946].includes(compression)) {
    unsupported(TAG.Compression, compression, COMPRESSION_NAMES[compression] ?? 'unknown');
  }
  if (planarConfiguration !== 1 && planarConfiguration !== 2) unsupported(TAG.PlanarConfiguration, planarConfiguration);
  if (fillOrder !== 1) unsupported(TAG.FillOrder, fillOrder, 'bits filled least significant first');
  if (predictor !== 1 && predictor !== 2 && predictor !== 3) unsupported(TAG.Predictor, predictor);
  // libtiff applies the predictor only with LZW and Deflate and ignores the tag otherwise (PIL, for one,
  // writes Predictor = 2 into PackBits files); do the same.
  const predicted = [COMPRESSION.LZW, COMPRESSION.DEFLATE, COMPRESSION.DEFLATE_OLD].includes(compression as 5);
  if (!predicted) predictor = 1;
  if (predictor === 2 && bits < 8) unsupported(TAG.Predictor, 2, `horizontal differencing of ${bits}-bit samples`);
  if (predictor === 3 && !float) unsupported(TAG.Predictor, 3, 'the floating-point predictor on integer samples');

  // Colour model: gray (1 sample), RGB (3) or palette (1), plus at most one extra sample (alpha).
  let colorSamples: number;
  switch (photometric) {
    case PHOTOMETRIC.WHITE_IS_ZERO:
    case PHOTOMETRIC.BLACK_IS_ZERO:
      colorSamples = 1;
      break;
    case PHOTOMETRIC.RGB:
      colorSamples = 3;
      break;
    case PHOTOMETRIC.PALETTE:
      colorSamples = 1;
      if (float || bits > 8) unsupported(TAG.BitsPerSample, bits, `${bits}-bit palette indices`);
      break;
    case -1:
      // Missing tag: a common omission in one-sample files; three samples are RGB.
      colorSamples = spp >= 3 ? 3 : 1;
      break;
    default:
      return unsupported(TAG.PhotometricInterpretation, photometric, PHOTOMETRIC_NAMES[photometric] ?? 'unknown');
  }
  const extra = spp - colorSamples;
  if (extra < 0) unsupported(TAG.SamplesPerPixel, spp, `${PHOTOMETRIC_NAMES[photometric] ?? 'this'} image needs ${colorSamples}`);
  if (extra > 1) unsupported(TAG.SamplesPerPixel, spp, `${extra} extra samples; only one (alpha) is supported`);
  if (extra === 1 && photometric === PHOTOMETRIC.PALETTE) unsupported(TAG.ExtraSamples, 'present', 'alpha on a palette image');
  if (extra === 1 && bits < 8) unsupported(TAG.ExtraSamples, 'present', `alpha with ${bits}-bit samples`);
  if (BigInt(width) * BigInt(height) * BigInt(spp) > BigInt(MAX_SAMPLES)) {
    pageFail(`image is too large to decode: ${width}x${height}x${spp} samples (limit ${MAX_SAMPLES})`);
  }

  // Chunk layout.
  const tiled = entries.has(TAG.TileWidth) || entries.has(TAG.TileOffsets);
  let layout: Layout;
  if (tiled) {
    const tw = one(TAG.TileWidth);
    const th = one(TAG.TileLength);
    if (tw <= 0 || th <= 0) pageFail(`invalid tile size ${tw}x${th}`);
    const tooLarge = tileSizeProblem(tw, th, width, height, planarConfiguration === 2 ? 1 : spp);
    if (tooLarge !== undefined) pageFail(tooLarge);
    layout = {
      width,
      height,
      spp,
      bits,
      float,
      compression,
      predictor,
      tiled,
      planar: planarConfiguration === 2 && spp > 1,
      chunkWidth: tw,
      chunkHeight: th,
      chunksAcross: Math.ceil(width / tw),
      chunksDown: Math.ceil(height / th),
      offsets: numbers(entries, TAG.TileOffsets) ?? pageFail(`required ${tagLabel(TAG.TileOffsets)} is missing`),
      byteCounts: numbers(entries, TAG.TileByteCounts),
    };
  } else {
    let rps = one(TAG.RowsPerStrip, 0xffffffff);
    if (rps <= 0 || rps > height) rps = height;
    layout = {
      width,
      height,
      spp,
      bits,
      float,
      compression,
      predictor,
      tiled,
      planar: planarConfiguration === 2 && spp > 1,
      chunkWidth: width,
      chunkHeight: rps,
      chunksAcross: 1,
      chunksDown: Math.ceil(height / rps),
      offsets: numbers(entries, TAG.StripOffsets) ?? pageFail(`required ${tagLabel(TAG.StripOffsets)} is missing`),
      byteCounts: numbers(entries, TAG.StripByteCounts),
    };
  }
  const chunksPerPlane = layout.chunksAcross * layout.chunksDown;
  const chunkCount = layout.planar ? chunksPerPlane * spp : chunksPerPlane;
  const offsetsTag = tiled ? TAG.TileOffsets : TAG.StripOffsets;
  if (layout.offsets.length < chunkCount) {
    pageFail(`${tagLabel(offsetsTag)} has ${layout.offsets.length} entries, but the image needs ${chunkCount}`);
  }
  if (layout.byteCounts === undefined && compression !== COMPRESSION.NONE) {
    pageFail(`required ${tagLabel(tiled ? TAG.TileByteCounts : TAG.StripByteCounts)} is missing`);
  }
  if (layout.byteCounts !== undefined && layout.byteCounts.length < chunkCount) {
    pageFail(
      `${tagLabel(tiled ? TAG.TileByteCounts : TAG.StripByteCounts)} has ${layout.byteCounts.length} entries, ` +
        `but the image needs ${chunkCount}`,
    );
  }

  // Before anything is allocated: every strip/tile must be in the file and able to hold its data.
  checkChunksFit(r.bytes, layout, chunkCount, pageFail);
  const samples = readSamples(r, layout, pageFail, `${options.name ?? 'input'}: page ${pageIndex}: `);

  // Metadata.
  const metadata: TiffMetadata = {
    littleEndian: r.le,
    compression,
    predictor,
    photometric,
    planarConfiguration,
    tiled,
    subfileType: one(TAG.NewSubfileType, 0),
    extraTags: [],
  };
  if (entries.has(TAG.Orientation)) metadata.orientation = one(TAG.Orientation);
  const xr = numbers(entries, TAG.XResolution);
  const yr = numbers(entries, TAG.YResolution);
  if (xr && yr && xr.length >= 2 && yr.length >= 2) {
    metadata.resolution = { x: xr[0] / xr[1], y: yr[0] / yr[1], unit: one(TAG.ResolutionUnit, 2) };
  }
  for (const [tag, entry] of entries) {
    if (!LAYOUT_TAGS.has(tag) && !POINTER_TAGS.has(tag) && entry.type !== TYPE.IFD) metadata.extraTags.push(entry);
  }

  // Pixels.
  const n = width * height;
  let alpha: SampleArray | undefined;
  if (extra === 1) {
    metadata.extraSampleType = (numbers(entries, TAG.ExtraSamples) ?? [0])[0];
    alpha = new (samples.constructor as Uint8ArrayConstructor)(n);
    for (let i = 0, j = colorSamples; i < n; i++, j += spp) alpha[i] = samples[j];
  }
  let color: SampleArray;
  if (extra === 0) color = samples;
  else {
    color = new (samples.constructor as Uint8ArrayConstructor)(n * colorSamples);
    for (let i = 0, j = 0, o = 0; i < n; i++, j += spp) for (let c = 0; c < colorSamples; c++) color[o++] = samples[j + c];
  }

  if (photometric === PHOTOMETRIC.PALETTE) {
    const cm = numbers(entries, TAG.ColorMap);
    const entriesNeeded = 3 * (1 << bits);
    if (cm === undefined) pageFail(`palette image without ${tagLabel(TAG.ColorMap)}`);
    if ((cm as number[]).length < entriesNeeded) {
      pageFail(`${tagLabel(TAG.ColorMap)} has ${(cm as number[]).length} values, ${bits}-bit indices need ${entriesNeeded}`);
    }
    const colorMap = Uint16Array.from((cm as number[]).slice(0, entriesNeeded));
    metadata.colorMap = colorMap;
    const mode = options.palette ?? 'auto';
    const useIndex = mode === 'index' || (mode === 'auto' && paletteIsGrayRamp(colorMap, bits));
    metadata.palette = useIndex ? 'index' : 'expanded';
    const image = useIndex
      ? { width, height, channels: 1 as const, bitDepth: 8 as const, data: color as Uint8Array }
      : expandPalette(color as Uint8Array, colorMap, bits, width, height);
    return { image, metadata };
  }

  if (bits < 8) {
    // Sub-byte gray: scale to 0..255 (exact: 255 is divisible by 1, 3 and 15), as for PNG.
    const scale = 255 / ((1 << bits) - 1);
    for (let i = 0; i < color.length; i++) color[i] *= scale;
  }
  if (photometric === PHOTOMETRIC.WHITE_IS_ZERO) {
    if (float) unsupported(TAG.PhotometricInterpretation, 0, 'WhiteIsZero with float samples');
    const max = bits === 16 ? 65535 : 255;
    for (let i = 0; i < color.length; i++) color[i] = max - color[i];
  }
  const bitDepth = float ? 32 : bits === 16 ? 16 : 8;
  const image = { width, height, channels: colorSamples as 1 | 3, bitDepth, data: color } as AnyRasterImage;
  if (alpha !== undefined) image.alpha = alpha;
  return { image, metadata };
}

function expandPalette(index: Uint8Array, colorMap: Uint16Array, bits: number, width: number, height: number): AnyRasterImage {
  const n = 1 << bits;
  let allGray = true;
  for (let i = 0; i < n && allGray; i++) allGray = colorMap[i] === colorMap[n + i] && colorMap[i] === colorMap[2 * n + i];
  const count = width * height;
  if (allGray) {
    const out = new Uint8Array(count);
    for (let i = 0; i < count; i++) out[i] = colorMap[index[i]] >> 8;
    return { width, height, channels: 1, bitDepth: 8, data: out };
  }
  const out = new Uint8Array(count * 3);
  for (let i = 0, o = 0; i < count; i++, o += 3) {
    const k = index[i];
    out[o] = colorMap[k] >> 8;
    out[o + 1] = colorMap[n + k] >> 8;
    out[o + 2] = colorMap[2 * n + k] >> 8;
  }
  return { width, height, channels: 3, bitDepth: 8, data: out };
}

/** Decompresses every strip/tile and assembles all samples of the page, chunky, in native byte order. */
function readSamples(r: Reader, L: Layout, fail: (msg: string) => never, prefix: string): SampleArray {
  const { width, height, spp, bits, float, planar, chunkWidth, chunkHeight, chunksAcross, chunksDown } = L;
  const total = width * height * spp;
  const out: SampleArray = float ? new Float32Array(total) : bits === 16 ? new Uint16Array(total) : new Uint8Array(total);
  const sppInChunk = planar ? 1 : spp;
  const rowBytes = chunkRowBytes(L);
  const rowSamples = chunkWidth * sppInChunk;
  const planes = planar ? spp : 1;
  const label = chunkLabel(L);
  // A whole strip or tile: the codecs refuse data that decodes to more than this.
  const chunkRaw = new Uint8Array(rowBytes * chunkHeight);
  // Per-row sample buffer in native order (integers) before predictor undo and scatter.
  const rowInts = float ? new Uint32Array(rowSamples) : bits === 16 ? new Uint16Array(rowSamples) : new Uint8Array(rowSamples);
  const rowFloats = float ? new Float32Array(rowSamples) : undefined;
  const f32Bits = rowFloats ? new Uint32Array(rowFloats.buffer) : undefined;
  const le = r.le;
  // Bytes of the row buffer, for copying samples that are already in host order.
  const rowBytesView = new Uint8Array(rowInts.buffer);

  for (let plane = 0; plane < planes; plane++) {
    for (let cy = 0; cy < chunksDown; cy++) {
      for (let cx = 0; cx < chunksAcross; cx++) {
        const index = plane * chunksAcross * chunksDown + cy * chunksAcross + cx;
        const y0 = cy * chunkHeight;
        const x0 = cx * chunkWidth;
        // Strips: the last one may hold fewer rows. Tiles always hold whole tiles (padding at the edges).
        const rows = chunkRows(L, index);
        const needed = rows * rowBytes;
        const where = `${label} ${index}`;
        const raw = fetchChunk(r, L, index, needed, chunkRaw, where, fail, prefix);

        const validRows = Math.min(rows, height - y0);
        const validCols = Math.min(chunkWidth, width - x0);
        for (let y = 0; y < validRows; y++) {
          const rowStart = y * rowBytes;
          // Bytes -> native samples of one row.
          if (float && L.predictor === 3) {
            undoFloatPredictor(raw, rowStart, rowSamples, sppInChunk, rowFloats as Float32Array, 0);
          } else if (float) {
            if (le === HOST_LITTLE_ENDIAN) rowBytesView.set(raw.subarray(rowStart, rowStart + 4 * rowSamples));
            else {
              for (let i = 0, b = rowStart; i < rowSamples; i++, b += 4) {
                rowInts[i] = le
                  ? (raw[b] | (raw[b + 1] << 8) | (raw[b + 2] << 16) | (raw[b + 3] << 24)) >>> 0
                  : ((raw[b] << 24) | (raw[b + 1] << 16) | (raw[b + 2] << 8) | raw[b + 3]) >>> 0;
              }
            }
            if (L.predictor === 2) undoHorizontalPredictor(rowInts, 0, rowSamples, sppInChunk);
            (f32Bits as Uint32Array).set(rowInts);
          } else if (bits === 16) {
            if (le === HOST_LITTLE_ENDIAN) rowBytesView.set(raw.subarray(rowStart, rowStart + 2 * rowSamples));
            else {
              for (let i = 0, b = rowStart; i < rowSamples; i++, b += 2) {
                rowInts[i] = le ? raw[b] | (raw[b + 1] << 8) : (raw[b] << 8) | raw[b + 1];
              }
            }
            if (L.predictor === 2) undoHorizontalPredictor(rowInts, 0, rowSamples, sppInChunk);
          } else if (bits === 8) {
            rowInts.set(raw.subarray(rowStart, rowStart + rowSamples));
            if (L.predictor === 2) undoHorizontalPredictor(rowInts, 0, rowSamples, sppInChunk);
          } else {
            const mask = (1 << bits) - 1;
            for (let i = 0; i < rowSamples; i++) {
              const bit = i * bits;
              rowInts[i] = (raw[rowStart + (bit >> 3)] >> (8 - bits - (bit & 7))) & mask;
            }
          }
          const src = float ? (rowFloats as Float32Array) : rowInts;
          // Scatter into the chunky page buffer.
          const yy = y0 + y;
          if (planar) {
            for (let x = 0; x < validCols; x++) out[(yy * width + x0 + x) * spp + plane] = src[x];
          } else {
            const dst = (yy * width + x0) * spp;
            const count = validCols * spp;
            if (src.length === count && dst + count <= out.length) (out as Uint8Array).set(src, dst);
            else for (let i = 0; i < count; i++) out[dst + i] = src[i];
          }
        }
      }
    }
  }
  return out;
}

/**
 * The decompressed bytes of one strip/tile (`needed` bytes), or an error naming it. `scratch` has the size
 * of a whole strip or tile: a short last strip may decode to that much (some writers pad it), never more.
 * The chunk has been checked to lie in the file (`checkChunksFit`).
 */
function fetchChunk(
  r: Reader,
  L: Layout,
  index: number,
  needed: number,
  scratch: Uint8Array,
  where: string,
  fail: (msg: string) => never,
  prefix: string,
): Uint8Array {
  const { bytes } = r;
  const offset = L.offsets[index];
  if (L.compression === COMPRESSION.NONE) {
    // Copy: the predictor is undone in place.
    const out = scratch.subarray(0, needed);
    out.set(bytes.subarray(offset, offset + needed));
    return out;
  }
  const count = Math.max(0, L.byteCounts ? L.byteCounts[index] : needed);
  const src = bytes.subarray(offset, offset + count);
  let produced: number;
  try {
    switch (L.compression) {
      case COMPRESSION.PACKBITS:
        produced = unpackBits(src, scratch);
        break;
      case COMPRESSION.LZW:
        produced = lzwDecode(src, scratch);
        break;
      default:
        produced = inflateChunk(src, scratch);
    }
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ImageFormatError(`${prefix}${where} is corrupt (${COMPRESSION_NAMES[L.compression]} decoding failed: ${why})`, {
      cause: err,
    });
  }
  if (produced < needed) {
    fail(`${where} is truncated or corrupt: ${COMPRESSION_NAMES[L.compression]} data gave ${produced} bytes, ${needed} needed`);
  }
  return scratch.subarray(0, needed);
}

/**
 * Decodes every page of a TIFF file (or only `options.page`), with its metadata.
 *
 * @throws ImageFormatError when the bytes are not a TIFF, the file is truncated or corrupt, or it uses a
 *   variant this reader does not support (the message names the tag and its value).
 * @throws InvalidInputError when `bytes` is not a `Uint8Array`.
 */
export function decodeTiff(bytes: Uint8Array, options: DecodeTiffOptions = {}): TiffPage[] {
  const name = options.name ?? 'input';
  if (!(bytes instanceof Uint8Array)) throw new InvalidInputError(`decodeTiff: ${name} must be a Uint8Array of file bytes`);
  const fileFail = (msg: string): never => {
    throw new ImageFormatError(`${name}: ${msg}`);
  };
  const bigTiff =
    bytes.length >= 4 &&
    ((bytes[0] === 0x49 && bytes[1] === 0x49 && bytes[2] === 43 && bytes[3] === 0) ||
      (bytes[0] === 0x4d && bytes[1] === 0x4d && bytes[2] === 0 && bytes[3] === 43));
  if (bigTiff) {
    fileFail('BigTIFF files are not supported (header version 43); save as classic TIFF (< 4 GB)');
  }
  if (!isTiff(bytes)) fileFail('not a TIFF file (no II*\\0 or MM\\0* header)');
  if (bytes.length < 8) fileFail(`TIFF file is truncated: ${bytes.length} bytes, the header alone has 8`);
  const r = new Reader(bytes, bytes[0] === 0x49, fileFail);

  const pages: TiffPage[] = [];
  const seen = new Set<number>();
  let offset = r.u32(4);
  if (offset === 0) fileFail('TIFF file has no image (first IFD offset is 0)');
  let index = 0;
  while (offset !== 0) {
    if (seen.has(offset)) break; // a loop in the IFD chain: stop rather than spin
    seen.add(offset);
    const ifd = r.readIfd(offset, index);
    if (options.page === undefined || options.page === index) {
      pages.push(decodePage(r, ifd, index, options));
      if (options.page !== undefined) break;
    }
    offset = ifd.next;
    index++;
  }
  if (options.page !== undefined && pages.length === 0) {
    const count = `${index} page${index === 1 ? '' : 's'}`;
    throw new ImageFormatError(`${name}: page ${options.page} does not exist (the file has ${count})`);
  }
  return pages;
}
