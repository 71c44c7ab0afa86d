export type { AnyRasterImage, BitDepth, ChannelPolicy, Float32RasterImage, FloatImage, RasterImage } from './image';
export {
  BT601_WEIGHTS,
  conformChannels,
  convertAlpha,
  copyAlpha,
  floatToRaster,
  isAnyRaster,
  maxValue,
  rasterToFloat,
  roundHalfEven,
  toGray,
  toRgb,
  validateAnyRaster,
  validateFloat,
  validateRaster,
  withoutAlpha,
} from './image';
export { decodePng, describeImageBytes, encodePng, isPng } from './png';
export { decodeTiff, isTiff, paletteIsGrayRamp, type DecodeTiffOptions, type TiffMetadata, type TiffPage, type TiffTag } from './tiff';
export { encodeTiff, type EncodeTiffOptions, type TiffWritePage } from './tiff-write';
export {
  decodeImage,
  formatFromFileName,
  readImage,
  sniffFormat,
  writeImage,
  type DecodedImageFile,
  type ImageFormat,
  type ImagePage,
  type ReadImageOptions,
  type WriteImageOptions,
} from './formats';
export {
  cropRows,
  detectInfoBar,
  infoBarFromRows,
  pasteInfoBar,
  splitInfoBar,
  type DetectInfoBarOptions,
  type InfoBar,
  type SplitImage,
} from './info-bar';
export {
  percentile,
  percentileDenormalize,
  percentileNormalize,
  percentiles,
  type NormalizationRange,
  type PercentileNormalizeOptions,
} from './normalize';
export { maxAbsDiff, mse, psnr, relativeL2, type MetricImage, type PsnrOptions } from './metrics';
export { gaussianWeights, ssim, type SsimOptions } from './ssim';
export { addGaussianNoise, createRng, type Rng } from './noise';
export {
  imageFromBitmap,
  imageFromCanvas,
  imageFromFile,
  imageFromImageData,
  imagesFromFile,
  imageToBlob,
  imageToImageData,
  type BrowserDecodedImageFile,
  type BrowserImageOptions,
  type ImageDataLike,
  type ImageFromFileOptions,
  type ImageToBlobOptions,
  type ImageToImageDataOptions,
} from './browser-image';
