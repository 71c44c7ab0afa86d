/**
 * Reading PyTorch checkpoints (.pth / .pt) without Python. The container format is sniffed first so a
 * wrong file (LFS pointer, HTML page, safetensors) gets a precise message; then the zip (torch >= 1.6) or
 * legacy reader unpickles the object with the torch allow-list (classes of a whole pickled model become
 * inert records; calling anything off the list is refused), and the result is canonicalised into a flat
 * StateDict - for a whole model, the keys its state_dict() would have.
 */
import { CheckpointError } from '../errors';
import { readTorchLegacy } from './legacy';
import { sniffCheckpoint } from './sniff';
import { canonicalizeStateDict, type StateDict } from './state-dict';
import { readTorchZip } from './torch-zip';

export interface ReadPthOptions {
  /** Name of the file, used in error messages. */
  name?: string;
  /**
   * Called with the size of every buffer the zip reader allocates to inflate a compressed entry into
   * (uncompressed entries, which is how PyTorch writes them, are read in place and not reported).
   */
  onInflate?: (bytes: number) => void;
}

/** A plain Uint8Array view of the input: a Node Buffer's `slice` and `subarray` semantics differ, so we drop it. */
function asBytes(bytes: Uint8Array | ArrayBuffer): Uint8Array {
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  if (!(bytes instanceof Uint8Array)) throw new TypeError('readPth expects a Uint8Array or ArrayBuffer');
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Read a PyTorch checkpoint and return its weights as a flat name -> tensor map. */
export function readPth(bytes: Uint8Array | ArrayBuffer, options: ReadPthOptions = {}): StateDict {
  const label = options.name ?? 'checkpoint';
  return canonicalizeStateDict(readTorchObject(bytes, options), { name: label });
}

/**
 * Read a PyTorch checkpoint and return the unpickled object as saved (dicts are Maps, tensors CpuTensors),
 * for callers that need more than the weights (e.g. an 'epoch' entry or several state dicts).
 */
export function readTorchObject(bytes: Uint8Array | ArrayBuffer, options: ReadPthOptions = {}): unknown {
  const data = asBytes(bytes);
  const label = options.name ?? 'checkpoint';
  const sniffed = sniffCheckpoint(data);
  switch (sniffed.kind) {
    case 'torch-zip':
      return readTorchZip(data, label, { onInflate: options.onInflate });
    case 'torch-legacy':
    case 'pickle':
      // A pickle that does not start with the torch magic number is reported by the legacy reader.
      return readTorchLegacy(data, label);
    case 'safetensors':
      throw new CheckpointError(
        'CHECKPOINT_FORMAT',
        `${label}: this is ${sniffed.description}, not a PyTorch .pth file; read it with readSafetensors, or with ` +
          `readCheckpoint, which accepts both`,
      );
    case 'empty':
      throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: the file is empty (0 bytes); the download or copy failed`);
    default:
      throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: not a PyTorch checkpoint: this is ${sniffed.description}`);
  }
}
