/**
 * Checkpoint reading: PyTorch .pth/.pt files (zip and legacy formats) to CPU tensors, with no Python and
 * no code execution. Later readers (safetensors) plug in next to `readPth` and reuse the same tensor,
 * storage and state-dict helpers.
 */
export { readPth, readTorchObject, type ReadPthOptions } from './pth';
export {
  canonicalizeStateDict,
  checkFinite,
  checkNoUnexpected,
  takeTensor,
  type CanonicalizeOptions,
  type StateDict,
} from './state-dict';
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
  type GlobalAllowList,
  type GlobalFactory,
  type PickleBuildable,
  type UnpickleOptions,
  type UnpickleResult,
} from './pickle';
export { ZipArchive, openZip, crc32, type ZipEntry, type ZipReadOptions } from './zip';
export { materializeView, decodeElements, float16BitsToNumber, type StorageBytes, type TensorView } from './storage';
export { torchGlobals, parseStoragePid, type StoragePid } from './torch-pickle';
