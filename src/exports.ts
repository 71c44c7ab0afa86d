// Everything both entries export besides the environment-bound functions.
export * from './errors';
export { GPUContext, requestContext, type ContextOptions, type RequestContextOptions } from './gpu/context';
export type { AdapterDescription } from './gpu/adapter-info';
export { RestorationModel, type ModelInfo, type RunOptions, type RunStats } from './models/restoration-model';
export { ARCHITECTURES, architectureByName, recogniseStateDict, type Architecture, type Recognised } from './models/registry';
export { planTiles, tilingFor, type Tile, type TilingSpec } from './models/tiling';
export { DnCNN, DNCNN_25, type DnCNNConfig } from './models/dncnn';
export type { Network } from './models/network';
export { networkFromCheckpoint, networkFromStateDict, type ArchitectureConfig } from './models/load';
export { readPth } from './weights/pth';
export { readCheckpoint, readCheckpointContents } from './weights/checkpoint';
export { readSafetensors, writeSafetensors } from './weights/safetensors';
export type { StateDict } from './weights/state-dict';
export type { CpuTensor } from './weights/tensor';
export * from './io/index';
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
