/**
 * Checkpoint reading: PyTorch .pth/.pt files (zip and legacy formats, plain state_dicts or whole pickled
 * models) and safetensors to CPU tensors, with no Python and no code execution; and safetensors writing.
 * `readCheckpoint` sniffs the format and is the usual entry point.
 */
export {
  readCheckpoint,
  readCheckpointContents,
  readCheckpointContentsAsync,
  type CheckpointContents,
  type CheckpointFormat,
  type ReadCheckpointOptions,
} from './checkpoint';
export { readPth, readTorchObject, type ReadPthOptions } from './pth';
export { MAX_PICKLE_BYTES, maxInflatedStorageBytes } from './torch-zip';
export { MAX_PLAUSIBLE_MAGNITUDE, findImplausibleValue, type ImplausibleValue } from './plausible-values';
export {
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
  MAX_SAFETENSORS_HEADER,
  type ReadSafetensorsOptions,
  type SafetensorsEntry,
  type SafetensorsFile,
  type SafetensorsHeader,
  type WriteSafetensorsOptions,
} from './safetensors';
export { encodeTensor, numberToBfloat16Bits, numberToFloat16Bits } from './encode';
export { isTorchModule, moduleStateDict } from './module-state';
export { PyInstance } from './py-instance';
export { canonicalizeStateDict, checkFinite, checkNoUnexpected, takeTensor, type CanonicalizeOptions, type StateDict } from './state-dict';
export {
  dtypeByteSize,
  formatShape,
  isCpuTensor,
  isFloatDType,
  numel,
  toFloat32,
  toFloat64,
  type CpuTensor,
  type DType,
  type TensorData,
} from './tensor';
export { sniffCheckpoint, describeFirstBytes, type CheckpointKind, type SniffResult } from './sniff';
export {
  unpickle,
  unpickleAt,
  describePyValue,
  PyGlobal,
  type FactoryContext,
  type GlobalAllowList,
  type GlobalFactory,
  type PickleBuildable,
  type UnpickleOptions,
  type UnpickleResult,
} from './pickle';
export { ZipArchive, openZip, crc32, type ZipEntry, type ZipReadOptions } from './zip';
export {
  materializeView,
  lazyStorage,
  viewByteExtent,
  decodeElements,
  float16BitsToNumber,
  MAX_TENSOR_ELEMENTS,
  type StorageBytes,
  type TensorBudget,
  type TensorView,
} from './storage';
export { torchGlobals, parseStoragePid, maxTensorBytesFor, type StoragePid, type TorchGlobalsOptions } from './torch-pickle';
