// Everything both entries export besides the environment-bound functions.
export * from './errors';
export { GPUContext, requestContext, type ContextOptions, type RequestContextOptions } from './gpu/context';
export type { AdapterDescription } from './gpu/adapter-info';
export { RestorationModel, type ModelInfo, type RunOptions, type RunStats } from './runtime/restoration-model';
export { ARCHITECTURES, type Architecture, type Recognised } from './models/registry';
export type { Tile, TilingSpec } from './runtime/tiling';
export type { GpuMetricOptions } from './runtime/ssim-gpu';
export { DnCNN, DNCNN_25, type DnCNNConfig } from './models/dncnn';
export { N2VUNet, n2vUNetConfig, type N2VUNetConfig } from './models/n2v-unet';
export type { Network } from './models/network';
export type { ArchitectureConfig } from './models/load';
export { readCheckpoint, readCheckpointContents } from './weights/checkpoint';
export { readSafetensors } from './weights/safetensors';
export type { StateDict } from './weights/state-dict';
export type { CpuTensor } from './weights/tensor';
export * from './io/index';
// In place of the same names from the modules above: these check their arguments' types (see the file).
export {
  architectureByName,
  conformChannels,
  convertAlpha,
  copyAlpha,
  cropRows,
  decodeImage,
  decodeTiff,
  describeImageBytes,
  encodePng,
  encodeTiff,
  formatFromFileName,
  gaussianWeights,
  imageFromFile,
  infoBarFromRows,
  isAnyRaster,
  isPng,
  isTiff,
  loadFeatureNetwork,
  lpips,
  maxAbsDiff,
  maxValue,
  mse,
  networkFromCheckpoint,
  networkFromStateDict,
  paletteIsGrayRamp,
  percentile,
  percentiles,
  planTiles,
  psnr,
  psnrGpu,
  readImage,
  readPth,
  recogniseStateDict,
  relativeL2,
  roundHalfEven,
  sniffFormat,
  ssim,
  ssimGpu,
  tilingFor,
  toGray,
  toRgb,
  withoutAlpha,
  writeImage,
  writeSafetensors,
} from './checked-exports';
export {
  BUILTIN_MODELS,
  DEFAULT_MODEL,
  type BuiltinModelName,
  type ContextChoice,
  type DenoiseOptions,
  type LoadModelOptions,
  type UpscaleOptions,
  type WeightsSource,
} from './api';
// Training on the GPU (src/training): a trainer per model and batch shape, its data pipeline, schedules and writers.
export {
  Trainer,
  type OptimizerState,
  type StepResult,
  type TrainedTensor,
  type TrainerOptions,
  type TrainingBatch,
} from './training/trainer';
export { GanTrainer, type GanStepResult, type GanTrainerOptions } from './training/gan-trainer';
export { PatchGANDiscriminator, PATCHGAN_70, type PatchGANConfig } from './models/patchgan';
export type { NetworkTraining } from './training/network-state';
export type { FitOptions, FitProgress, FitResult, ValidationScores } from './training/fit';
export type { LossConfig, LossTerm } from './training/loss-config';
export type { OptimizerConfig } from './training/optimizer-config';
export type { ParameterGroup } from './training/parameter-groups';
export type { BatchNormMode } from './layers/training-graph';
// Feature networks (torchvision's vgg16/vgg19/alexnet `features`) for the perceptual loss and LPIPS.
export { alexnet, FeatureNetwork, vgg, type FeatureBackbone, type VggDepth } from './models/vgg';
export { Lpips, LPIPS_LAYERS, type LpipsBatch, type LpipsOptions } from './runtime/lpips';
export { CosineAnnealingLR, MultiStepLR, ReduceLROnPlateau, StepLR, type LrSchedule } from './training/schedules';
export type { TrainingExample, TrainingSet } from './training/data/training-set';
export type { NoiseModel } from './training/data/noise-model';
export { trainedStateToPth, trainedStateToSafetensors, initializeParameters, parseNoiseModel } from './checked-exports';
// Self-supervised training on the user's own noisy images (Noise2Void, N2V2, Neighbor2Neighbor).
export { fineTune } from './checked-exports';
export type { FineTuneOptions, FineTuneResult, NamedImage } from './training/fine-tune';
export type { SelfSupervision } from './training/self-supervision';
export type { StructMask } from './training/data/blind-spot';
export { noisyImagesSet } from './training/data/training-set';
