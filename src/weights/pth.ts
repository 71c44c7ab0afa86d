/**
 * Reading PyTorch checkpoints (.pth / .pt) without Python. The container format is sniffed first so a
 * wrong file (LFS pointer, HTML page, safetensors) gets a precise message; then the zip (torch >= 1.6) or
 * legacy reader unpickles the object with the torch allow-list (classes of a whole pickled model become
 * inert records; calling anything off the list is refused), and the result is canonicalised into a flat
 * StateDict - for a whole model, the keys its state_dict() would have.
 */
import { CheckpointError } from '../errors';
import { readTorchLegacy } from './legacy';
import { unpickle } from './pickle';
import { sniffCheckpoint } from './sniff';
import { canonicalizeStateDict, type StateDict } from './state-dict';
import type { StorageBytes } from './storage';
import { maxTensorBytesFor, parseStoragePid, torchGlobals, TORCH_UNSAFE_HINT } from './torch-pickle';
import { dtypeByteSize } from './tensor';
import { ZipArchive, type ZipEntry } from './zip';

export interface ReadPthOptions {
  /** Name of the file, used in error messages. */
  name?: string;
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
      return readTorchZip(data, label);
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

/** Pick the archive's data.pkl: '<prefix>/data.pkl' where prefix is the first entry's top folder (any name). */
function findDataPkl(archive: ZipArchive, label: string): { prefix: string; entry: ZipEntry } {
  const first = archive.entries[0];
  if (!first) throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: the zip archive is empty`);
  const slash = first.name.indexOf('/');
  const prefix = slash >= 0 ? first.name.slice(0, slash) : '';
  const direct = archive.get(`${prefix}/data.pkl`);
  if (direct) return { prefix, entry: direct };
  // Tolerate re-packed archives whose first entry is something else.
  const other = archive.entries.find((e) => /^[^/]+\/data\.pkl$/.test(e.name));
  if (other) return { prefix: other.name.slice(0, other.name.indexOf('/')), entry: other };
  const names = archive.entries.slice(0, 5).map((e) => `'${e.name}'`).join(', ');
  throw new CheckpointError(
    'CHECKPOINT_FORMAT',
    `${label}: zip archive without '<folder>/data.pkl', so not a PyTorch checkpoint (entries: ${names}` +
      `${archive.entries.length > 5 ? ', ...' : ''})`,
  );
}

function readTorchZip(bytes: Uint8Array, label: string): unknown {
  const archive = new ZipArchive(bytes, { name: label });
  const { prefix, entry } = findDataPkl(archive, label);

  // torch >= 2.1 records the byte order of the storages; older files are always little-endian.
  const byteorder = archive.get(`${prefix}/byteorder`);
  if (byteorder && new TextDecoder().decode(archive.read(byteorder)).trim() === 'big') {
    throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: big-endian checkpoints are not supported`);
  }

  const storages = new Map<string, StorageBytes>();
  const persistentLoad = (pid: unknown): StorageBytes => {
    const p = parseStoragePid(pid, label);
    const cached = storages.get(p.key);
    if (cached) {
      if (cached.dtype !== p.dtype) {
        throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: storage '${p.key}' is used as both ${cached.dtype} and ${p.dtype}`);
      }
      return cached;
    }
    const name = `${prefix}/data/${p.key}`;
    const e = archive.get(name);
    if (!e) throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: storage entry '${name}' is missing from the archive`);
    const data = archive.read(e);
    const needed = p.numel * dtypeByteSize(p.dtype);
    if (data.length < needed) {
      throw new CheckpointError(
        'CHECKPOINT_FORMAT',
        `${label}: storage '${name}' has ${data.length} bytes but ${p.numel} ${p.dtype} elements need ${needed}`,
      );
    }
    const storage: StorageBytes = { key: name, dtype: p.dtype, numel: p.numel, bytes: data };
    storages.set(p.key, storage);
    return storage;
  };

  return unpickle(archive.read(entry), {
    globals: torchGlobals(label, { maxTensorBytes: maxTensorBytesFor(bytes.length) }),
    unknownGlobals: 'inert',
    persistentLoad,
    name: `${label} (${entry.name})`,
    unsafeHint: TORCH_UNSAFE_HINT,
  });
}
