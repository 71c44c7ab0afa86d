/**
 * The public functions of io/, models/ and weights/ whose own modules do not check their argument types,
 * exported behind checks (check-args.ts): a wrong argument is an InvalidInputError naming the function and the
 * argument, never a raw TypeError. exports.ts exports these in place of the originals (an explicit export wins
 * over `export *`); code inside the library keeps calling the originals. Where a function validates its
 * arguments itself (decodePng, rasterToFloat, readCheckpoint, …) it is exported as it is.
 */
import {
  anyOf,
  type ArgRule,
  BOOLEAN,
  BYTES,
  BYTES_OR_BUFFER,
  checkOptionFields,
  FINITE_NUMBER,
  guarded,
  guardedAsync,
  IMAGE,
  IMAGES,
  instanceOf,
  INTEGER,
  MAP,
  NON_NEGATIVE_INTEGER,
  NUMBER,
  NUMBERS,
  OBJECT,
  oneOf,
  optional,
  OPTIONS,
  POSITIVE_INTEGER,
  POSITIVE_NUMBER,
  rule,
  STRING,
  validatedBy,
} from './check-args';
import { ARCHITECTURE_CONFIG } from './api-checks';
import { GPUContext } from './gpu/context';
import * as checkpoint from './training/checkpoint';
import * as noise from './training/data/noise-model';
import * as init from './training/init';
import * as fineTuning from './training/fine-tune';
import * as browserImage from './io/browser-image';
import * as formats from './io/formats';
import * as image from './io/image';
import * as infoBar from './io/info-bar';
import * as metrics from './io/metrics';
import * as normalize from './io/normalize';
import * as png from './io/png';
import * as ssimCpu from './io/ssim';
import * as gpuMetrics from './runtime/ssim-gpu';
import * as lpipsMetric from './runtime/lpips';
import * as featureNetworks from './models/vgg';
import * as tiff from './io/tiff';
import * as tiffWrite from './io/tiff-write';
import * as load from './models/load';
import * as registry from './models/registry';
import * as tiling from './runtime/tiling';
import * as pth from './weights/pth';
import * as safetensors from './weights/safetensors';

/** Checked by the function itself; listed so that the later arguments keep their positions. */
const SELF_CHECKED: ArgRule = { check() {} };
/** A full 8/16/32-bit interleaved image, for functions that read its fields without validating them. */
const ANY_RASTER = validatedBy(image.validateAnyRaster);
const BIT_DEPTH = oneOf([8, 16, 32]);
const TYPED_SAMPLES = rule(
  'a Uint8Array, Uint16Array or Float32Array',
  (v) => v instanceof Uint8Array || v instanceof Uint16Array || v instanceof Float32Array,
);
/** Two images or two arrays of numbers (metrics take either). */
const METRIC_INPUT = rule('an image or an array of numbers', (v) => typeof v === 'object' && v !== null);
const PEAK_OR_OPTIONS = optional(anyOf('a data range (number) or an options object', FINITE_NUMBER, OBJECT));

/** Options that name a fixed set of fields: the object, then each field present. */
function optionsWith(fields: Readonly<Record<string, ArgRule>>): ArgRule {
  return { check: (value, where, name) => checkOptionFields(where, value, fields, name) };
}

/** ReadImageOptions / DecodeTiffOptions, shared with the Node file helpers. */
export const READ_IMAGE_OPTIONS = optionsWith({
  name: STRING,
  palette: oneOf(['auto', 'index', 'expand']),
  page: NON_NEGATIVE_INTEGER,
});
const ENCODE_TIFF_FIELDS = {
  compression: oneOf(['none', 'deflate']),
  predictor: BOOLEAN,
  level: oneOf([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
};
export const WRITE_IMAGE_OPTIONS = optionsWith({ ...ENCODE_TIFF_FIELDS, format: oneOf(['png', 'tiff']) });
const NETWORK = rule(
  'a Network (from networkFromCheckpoint)',
  (v) => typeof v === 'object' && v !== null && typeof (v as { architecture?: unknown }).architecture === 'string',
);

// io/image
export const maxValue = guarded('maxValue', image.maxValue, [['bitDepth', oneOf([8, 16])]]);
export const isAnyRaster = guarded('isAnyRaster', image.isAnyRaster, [['img', IMAGE]]);
export const roundHalfEven = guarded('roundHalfEven', image.roundHalfEven, [['x', FINITE_NUMBER]]);
export const convertAlpha = guarded('convertAlpha', image.convertAlpha, [
  ['alpha', TYPED_SAMPLES],
  ['from', BIT_DEPTH],
  ['to', BIT_DEPTH],
]);
export const copyAlpha = guarded('copyAlpha', image.copyAlpha, [
  ['source', ANY_RASTER],
  ['target', ANY_RASTER],
]);
export const withoutAlpha = guarded('withoutAlpha', image.withoutAlpha, [['img', ANY_RASTER]]);
export const toGray = guarded('toGray', image.toGray, [['img', IMAGE]]);
export const toRgb = guarded('toRgb', image.toRgb, [['img', IMAGE]]);
export const conformChannels = guarded('conformChannels', image.conformChannels, [
  ['img', IMAGE],
  ['channels', POSITIVE_INTEGER],
  ['policy', optional(oneOf(['error', 'convert']))],
  ['what', optional(STRING)],
]);

// io/png, io/tiff, io/tiff-write, io/formats
export const isPng = guarded('isPng', png.isPng, [['bytes', BYTES]]);
export const describeImageBytes = guarded('describeImageBytes', png.describeImageBytes, [['bytes', BYTES]]);
export const encodePng = guarded('encodePng', png.encodePng, [['img', IMAGE]]);
export const isTiff = guarded('isTiff', tiff.isTiff, [['bytes', BYTES]]);
export const paletteIsGrayRamp = guarded('paletteIsGrayRamp', tiff.paletteIsGrayRamp, [
  ['colorMap', instanceOf(Uint16Array)],
  ['bits', POSITIVE_INTEGER],
]);
export const decodeTiff = guarded('decodeTiff', tiff.decodeTiff, [
  ['bytes', BYTES],
  ['options', READ_IMAGE_OPTIONS],
]);
export const encodeTiff = guarded('encodeTiff', tiffWrite.encodeTiff, [
  ['pages', IMAGES],
  ['options', optionsWith(ENCODE_TIFF_FIELDS)],
]);
export const sniffFormat = guarded('sniffFormat', formats.sniffFormat, [['bytes', BYTES]]);
export const formatFromFileName = guarded('formatFromFileName', formats.formatFromFileName, [['name', STRING]]);
export const readImage = guarded('readImage', formats.readImage, [
  ['bytes', BYTES],
  ['options', READ_IMAGE_OPTIONS],
]);
export const decodeImage = guarded('decodeImage', formats.decodeImage, [
  ['bytes', BYTES],
  ['options', READ_IMAGE_OPTIONS],
]);
export const writeImage = guarded('writeImage', formats.writeImage, [
  ['image', IMAGES],
  ['options', WRITE_IMAGE_OPTIONS],
]);
export const imageFromFile = guardedAsync('imageFromFile', browserImage.imageFromFile, [
  ['file', SELF_CHECKED],
  ['options', READ_IMAGE_OPTIONS], // and the browser-only fields, which the function reads itself
]);

// io/info-bar, io/normalize, io/metrics, io/ssim, runtime/ssim-gpu
export const cropRows = guarded('cropRows', infoBar.cropRows, [
  ['image', ANY_RASTER],
  ['y0', INTEGER],
  ['y1', INTEGER],
]);
export const infoBarFromRows = guarded('infoBarFromRows', infoBar.infoBarFromRows, [
  ['image', ANY_RASTER],
  ['rows', INTEGER],
]);
export const percentile = guarded('percentile', normalize.percentile, [
  ['values', NUMBERS],
  ['p', NUMBER],
]);
export const percentiles = guarded('percentiles', normalize.percentiles, [
  ['values', NUMBERS],
  ['ps', NUMBERS],
]);
export const mse = guarded('mse', metrics.mse, [
  ['a', NUMBERS],
  ['b', NUMBERS],
]);
export const relativeL2 = guarded('relativeL2', metrics.relativeL2, [
  ['y', NUMBERS],
  ['ref', NUMBERS],
]);
export const maxAbsDiff = guarded('maxAbsDiff', metrics.maxAbsDiff, [
  ['a', NUMBERS],
  ['b', NUMBERS],
]);
export const psnr = guarded('psnr', metrics.psnr, [
  ['a', METRIC_INPUT],
  ['b', METRIC_INPUT],
  ['options', PEAK_OR_OPTIONS],
]);
export const gaussianWeights = guarded('gaussianWeights', ssimCpu.gaussianWeights, [
  ['sigma', POSITIVE_NUMBER],
  ['truncate', optional(POSITIVE_NUMBER)],
]);
export const ssim = guarded('ssim', ssimCpu.ssim, [
  ['a', IMAGE],
  ['b', IMAGE],
  ['options', OPTIONS],
]);
const GPU_METRIC_ARGS: readonly (readonly [string, ArgRule])[] = [
  ['ctx', instanceOf(GPUContext)],
  ['a', IMAGE],
  ['b', IMAGE],
  ['options', PEAK_OR_OPTIONS],
];
export const psnrGpu = guardedAsync('psnrGpu', gpuMetrics.psnrGpu, GPU_METRIC_ARGS);
export const ssimGpu = guardedAsync('ssimGpu', gpuMetrics.ssimGpu, GPU_METRIC_ARGS);
export const lpips = guardedAsync('lpips', lpipsMetric.lpips, [
  ['model', rule('an Lpips model (Lpips.fromCheckpoints)', (v) => v instanceof lpipsMetric.Lpips)],
  ['a', IMAGE],
  ['b', IMAGE],
]);
export const loadFeatureNetwork = guarded('loadFeatureNetwork', featureNetworks.loadFeatureNetwork, [
  ['sd', MAP],
  ['options', optional(OPTIONS)],
]);

// models/, weights/
export const architectureByName = guarded('architectureByName', registry.architectureByName, [['name', STRING]]);
export const recogniseStateDict = guarded('recogniseStateDict', registry.recogniseStateDict, [
  ['keys', MAP],
  ['name', optional(STRING)],
]);
export const networkFromStateDict = guarded('networkFromStateDict', load.networkFromStateDict, [
  ['sd', MAP],
  ['arch', optional(ARCHITECTURE_CONFIG)],
  ['name', optional(STRING)],
]);
export const networkFromCheckpoint = guarded('networkFromCheckpoint', load.networkFromCheckpoint, [
  ['bytes', BYTES_OR_BUFFER],
  ['options', optionsWith({ name: STRING, architecture: ARCHITECTURE_CONFIG })],
]);
export const planTiles = guarded('planTiles', tiling.planTiles, [
  ['width', POSITIVE_INTEGER],
  ['height', POSITIVE_INTEGER],
  ['coreSize', POSITIVE_INTEGER],
  ['spec', OBJECT],
]);
export const tilingFor = guarded('tilingFor', tiling.tilingFor, [['network', NETWORK]]);
export const readPth = guarded('readPth', pth.readPth, [
  ['bytes', BYTES_OR_BUFFER],
  ['options', optionsWith({ name: STRING })],
]);
export const writeSafetensors = guarded('writeSafetensors', safetensors.writeSafetensors, [
  ['tensors', MAP],
  ['options', optionsWith({ metadata: OBJECT, floatDType: oneOf(['float16', 'bfloat16', 'float32', 'float64']) })],
]);

export const trainedStateToPth = guarded('trainedStateToPth', checkpoint.trainedStateToPth, [
  ['state', MAP],
  ['archiveName', optional(STRING)],
]);
export const trainedStateToSafetensors = guarded('trainedStateToSafetensors', checkpoint.trainedStateToSafetensors, [
  ['state', MAP],
  ['metadata', optional(OBJECT)],
]);
export const initializeParameters = guarded('initializeParameters', init.initializeParameters, [
  ['model', NETWORK],
  ['seed', INTEGER],
]);
export const parseNoiseModel = guarded('parseNoiseModel', noise.parseNoiseModel, [['text', STRING]]);
export const fineTune = guardedAsync('fineTune', fineTuning.fineTune, [
  ['ctx', instanceOf(GPUContext)],
  ['model', NETWORK],
  ['images', rule('an array of { name, image }', (v) => Array.isArray(v))],
  ['options', OBJECT],
]);
