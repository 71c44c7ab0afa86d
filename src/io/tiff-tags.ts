/**
 * TIFF 6.0 tag numbers, field types and value names shared by the reader (tiff.ts) and the writer
 * (tiff-write.ts). Browser-safe.
 */

export const TAG = {
  NewSubfileType: 254,
  ImageWidth: 256,
  ImageLength: 257,
  BitsPerSample: 258,
  Compression: 259,
  PhotometricInterpretation: 262,
  FillOrder: 266,
  ImageDescription: 270,
  StripOffsets: 273,
  Orientation: 274,
  SamplesPerPixel: 277,
  RowsPerStrip: 278,
  StripByteCounts: 279,
  XResolution: 282,
  YResolution: 283,
  PlanarConfiguration: 284,
  ResolutionUnit: 296,
  Software: 305,
  Predictor: 317,
  ColorMap: 320,
  TileWidth: 322,
  TileLength: 323,
  TileOffsets: 324,
  TileByteCounts: 325,
  SubIFDs: 330,
  ExtraSamples: 338,
  SampleFormat: 339,
  JPEGTables: 347,
  ExifIFD: 34665,
  GPSIFD: 34853,
  InteroperabilityIFD: 40965,
} as const;

/** Names used in error messages ("Compression (tag 259) = 7 (JPEG)"). */
export const TAG_NAMES: Record<number, string> = Object.fromEntries(Object.entries(TAG).map(([k, v]) => [v, k]));

export function tagLabel(tag: number): string {
  const name = TAG_NAMES[tag];
  return name ? `${name} (tag ${tag})` : `tag ${tag}`;
}

/** Field types: byte size of one value. */
export const TYPE = {
  BYTE: 1,
  ASCII: 2,
  SHORT: 3,
  LONG: 4,
  RATIONAL: 5,
  SBYTE: 6,
  UNDEFINED: 7,
  SSHORT: 8,
  SLONG: 9,
  SRATIONAL: 10,
  FLOAT: 11,
  DOUBLE: 12,
  IFD: 13,
} as const;

export const TYPE_SIZE: Record<number, number> = {
  1: 1,
  2: 1,
  3: 2,
  4: 4,
  5: 8,
  6: 1,
  7: 1,
  8: 2,
  9: 4,
  10: 8,
  11: 4,
  12: 8,
  13: 4,
};

export const COMPRESSION = {
  NONE: 1,
  LZW: 5,
  JPEG_OLD: 6,
  JPEG: 7,
  DEFLATE: 8,
  PACKBITS: 32773,
  DEFLATE_OLD: 32946,
} as const;

export const COMPRESSION_NAMES: Record<number, string> = {
  1: 'none',
  2: 'CCITT modified Huffman RLE',
  3: 'CCITT Group 3 fax',
  4: 'CCITT Group 4 fax',
  5: 'LZW',
  6: 'old-style JPEG',
  7: 'JPEG',
  8: 'Deflate',
  32773: 'PackBits',
  32946: 'Deflate (old code)',
  34712: 'JPEG 2000',
  34887: 'LERC',
  34925: 'LZMA',
  50000: 'Zstandard',
  50001: 'WebP',
  50002: 'JPEG XL',
};

export const PHOTOMETRIC = {
  WHITE_IS_ZERO: 0,
  BLACK_IS_ZERO: 1,
  RGB: 2,
  PALETTE: 3,
} as const;

export const PHOTOMETRIC_NAMES: Record<number, string> = {
  0: 'WhiteIsZero',
  1: 'BlackIsZero',
  2: 'RGB',
  3: 'palette',
  4: 'transparency mask',
  5: 'CMYK (separated)',
  6: 'YCbCr',
  8: 'CIE L*a*b*',
  9: 'ICC L*a*b*',
  10: 'ITU L*a*b*',
  32844: 'LogL',
  32845: 'LogLuv',
};

export const SAMPLE_FORMAT_NAMES: Record<number, string> = {
  1: 'unsigned integer',
  2: 'signed integer',
  3: 'IEEE float',
  4: 'undefined',
  5: 'complex integer',
  6: 'complex float',
};

/**
 * Tags that describe the layout of the pixel data. The reader interprets them and the writer writes its own,
 * so they are never passed through as "extra" tags.
 */
export const LAYOUT_TAGS: ReadonlySet<number> = new Set([
  TAG.NewSubfileType,
  255, // SubfileType (old)
  TAG.ImageWidth,
  TAG.ImageLength,
  TAG.BitsPerSample,
  TAG.Compression,
  TAG.PhotometricInterpretation,
  TAG.FillOrder,
  TAG.StripOffsets,
  TAG.Orientation,
  TAG.SamplesPerPixel,
  TAG.RowsPerStrip,
  TAG.StripByteCounts,
  TAG.XResolution,
  TAG.YResolution,
  TAG.PlanarConfiguration,
  TAG.ResolutionUnit,
  TAG.Predictor,
  TAG.ColorMap,
  TAG.TileWidth,
  TAG.TileLength,
  TAG.TileOffsets,
  TAG.TileByteCounts,
  TAG.ExtraSamples,
  TAG.SampleFormat,
  TAG.JPEGTables,
  280, // MinSampleValue: no longer true after processing
  281, // MaxSampleValue
  340, // SMinSampleValue
  341, // SMaxSampleValue
]);

/** Tags whose values are file offsets of other structures: meaningless once copied into another file. */
export const POINTER_TAGS: ReadonlySet<number> = new Set([
  TAG.SubIFDs,
  TAG.ExifIFD,
  TAG.GPSIFD,
  TAG.InteroperabilityIFD,
  288, // FreeOffsets
  289, // FreeByteCounts
  513, // JPEGInterchangeFormat
  514, // JPEGInterchangeFormatLength
]);
