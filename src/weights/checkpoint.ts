/**
 * One entry point for every weights file a user may bring: PyTorch .pth/.pt (zip or legacy format, plain
 * state_dicts, wrapped ones, or whole pickled models) and safetensors. The format is sniffed from the bytes,
 * never from the file name, so a mislabelled file still loads and a wrong file (Git LFS pointer, HTML page,
 * gzip...) gets a message saying what it really is. Works on bytes in any JS runtime; no Node API is used.
 */
import { CheckpointError, InvalidInputError } from '../errors';
import { readTorchObject } from './pth';
import { readSafetensors } from './safetensors';
import { sniffCheckpoint } from './sniff';
import { canonicalizeStateDict, type StateDict } from './state-dict';

export type CheckpointFormat = 'torch-zip' | 'torch-legacy' | 'safetensors';

export interface ReadCheckpointOptions {
  /** Name of the file, used in error messages (a File's own name is used when omitted). */
  name?: string;
  /**
   * Called with the size of every buffer allocated to inflate a compressed zip entry into (PyTorch writes
   * entries uncompressed; those are read in place and not reported). For measuring decompression work.
   */
  onInflate?: (bytes: number) => void;
}

export interface CheckpointContents {
  format: CheckpointFormat;
  /** The canonical state dict: wrappers unwrapped, nested dicts flattened, universal prefixes stripped. */
  stateDict: StateDict;
  /** safetensors `__metadata__` (empty for .pth files). */
  metadata: Map<string, string>;
}

function asBytes(input: Uint8Array | ArrayBuffer): Uint8Array {
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (input instanceof Uint8Array) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  throw new InvalidInputError('readCheckpoint expects a Uint8Array, an ArrayBuffer or a Blob');
}

/** Read any supported checkpoint and report its format and metadata along with the state dict. */
export function readCheckpointContents(input: Uint8Array | ArrayBuffer, options: ReadCheckpointOptions = {}): CheckpointContents {
  const bytes = asBytes(input);
  const label = options.name ?? 'checkpoint';
  const sniffed = sniffCheckpoint(bytes);
  switch (sniffed.kind) {
    case 'safetensors': {
      const file = readSafetensors(bytes, { name: label });
      return {
        format: 'safetensors',
        stateDict: canonicalizeStateDict(file.tensors, { name: label }),
        metadata: file.metadata,
      };
    }
    case 'torch-zip':
    case 'torch-legacy':
    case 'pickle': {
      const stateDict = canonicalizeStateDict(readTorchObject(bytes, { name: label, onInflate: options.onInflate }), { name: label });
      return { format: sniffed.kind === 'torch-zip' ? 'torch-zip' : 'torch-legacy', stateDict, metadata: new Map() };
    }
    case 'empty':
      throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: the file is empty (0 bytes); the download or copy failed`);
    default:
      throw new CheckpointError(
        'CHECKPOINT_FORMAT',
        `${label}: not a checkpoint (PyTorch .pth/.pt or safetensors): this is ${sniffed.description}`,
      );
  }
}

function isBlob(x: unknown): x is Blob {
  return typeof Blob !== 'undefined' && x instanceof Blob;
}

/**
 * The state dict of a checkpoint given as bytes (synchronous) or as a Blob / File (asynchronous, e.g. from
 * an `<input type=file>` or `fetch(...).then((r) => r.blob())`).
 */
export function readCheckpoint(input: Uint8Array | ArrayBuffer, options?: ReadCheckpointOptions): StateDict;
export function readCheckpoint(input: Blob, options?: ReadCheckpointOptions): Promise<StateDict>;
export function readCheckpoint(input: Uint8Array | ArrayBuffer | Blob, options?: ReadCheckpointOptions): StateDict | Promise<StateDict>;
export function readCheckpoint(
  input: Uint8Array | ArrayBuffer | Blob,
  options: ReadCheckpointOptions = {},
): StateDict | Promise<StateDict> {
  if (isBlob(input)) {
    return readCheckpointContentsAsync(input, options).then((c) => c.stateDict);
  }
  return readCheckpointContents(input, options).stateDict;
}

/** readCheckpointContents for a Blob or File. */
export async function readCheckpointContentsAsync(
  input: Uint8Array | ArrayBuffer | Blob,
  options: ReadCheckpointOptions = {},
): Promise<CheckpointContents> {
  if (!isBlob(input)) return readCheckpointContents(input, options);
  const fileName = (input as Partial<File>).name;
  const name = options.name ?? (typeof fileName === 'string' && fileName ? fileName : undefined);
  return readCheckpointContents(new Uint8Array(await input.arrayBuffer()), { ...options, name });
}
