export type { FloatImage, RasterImage } from './image';
export {
  BT601_WEIGHTS,
  floatToRaster,
  maxValue,
  rasterToFloat,
  roundHalfEven,
  toGray,
  toRgb,
  validateFloat,
  validateRaster,
} from './image';
export { decodePng, describeImageBytes, encodePng, isPng } from './png';
export { maxAbsDiff, mse, psnr, relativeL2 } from './metrics';
export { addGaussianNoise, createRng, type Rng } from './noise';
