/**
 * The legacy torch.save format (PyTorch < 1.6, or `_use_new_zipfile_serialization=False`), still common for
 * published weights (KAIR's DnCNN among them). The file is a sequence of pickles followed by raw storages:
 *   1. the magic number 0x1950a86a20f9469cfc6c      2. the protocol version 1001
 *   3. sys_info {'little_endian': ..., ...}         4. the object itself, storages as persistent ids
 *   5. the list of storage keys, in file order      6. per key: int64 element count, then the raw elements
 * Because the storage bytes only come after the object pickle, the object pickle is read twice: once to
 * learn the storages (and where the pickle ends), then again with the storage bytes in hand.
 * Whole pickled models (torch.save(model)) also name each nn.Module class through a persistent id
 * ('module', cls, source_file, source); the class becomes an inert reference and its source is ignored.
 * Unlike the zip format there is no checksum, so floating-point values no trained network holds (NaN,
 * infinities, magnitudes of 1e31 and more: what flipped bits produce) are refused instead of loaded.
 */
import { CheckpointError } from '../errors';
import { describePyValue, unpickleAt, type UnpickleResult } from './pickle';
import { describeValue, findImplausibleValue, MAX_PLAUSIBLE_MAGNITUDE } from './plausible-values';
import { TORCH_LEGACY_MAGIC_NUMBER } from './sniff';
import { canonicalizeStateDict } from './state-dict';
import { materializeView, type StorageBytes } from './storage';
import {
  maxTensorBytesFor,
  moduleClassFromPid,
  parseStoragePid,
  torchGlobals,
  TORCH_UNSAFE_HINT,
  type StoragePid,
  type TensorMaterializer,
} from './torch-pickle';
import { dtypeByteSize, formatShape, type CpuTensor } from './tensor';

const LEGACY_PROTOCOL_VERSION = 1001;

export function readTorchLegacy(bytes: Uint8Array, label: string): unknown {
  const plain = (offset: number): UnpickleResult =>
    unpickleAt(bytes, offset, { globals: new Map(), name: label, unsafeHint: TORCH_UNSAFE_HINT });

  const magic = plain(0);
  if (magic.value !== TORCH_LEGACY_MAGIC_NUMBER) {
    throw new CheckpointError(
      'CHECKPOINT_FORMAT',
      `${label}: a Python pickle, but not a torch.save checkpoint (it holds a ${describePyValue(magic.value)}, ` +
        `not the torch magic number)`,
    );
  }
  const version = plain(magic.end);
  if (version.value !== LEGACY_PROTOCOL_VERSION) {
    throw new CheckpointError(
      'CHECKPOINT_FORMAT',
      `${label}: unsupported legacy torch protocol version ${String(version.value)} (expected ${LEGACY_PROTOCOL_VERSION})`,
    );
  }
  const sysInfo = plain(version.end);
  if (sysInfo.value instanceof Map && sysInfo.value.get('little_endian') === false) {
    throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: big-endian legacy checkpoints are not supported`);
  }
  const objectStart = sysInfo.end;

  // Pass 1: collect the storages the object refers to; tensors are not built yet.
  const pids = new Map<string, StoragePid>();
  const dryRun = unpickleAt(bytes, objectStart, {
    globals: torchGlobals(label, { materialize: () => null }),
    unknownGlobals: 'inert',
    name: label,
    unsafeHint: TORCH_UNSAFE_HINT,
    persistentLoad: (pid) => {
      const moduleClass = moduleClassFromPid(pid, label);
      if (moduleClass) return moduleClass;
      const p = parseStoragePid(pid, label);
      const known = pids.get(p.key);
      if (known && known.dtype !== p.dtype) {
        throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: storage '${p.key}' is used as both ${known.dtype} and ${p.dtype}`);
      }
      pids.set(p.key, p);
      return { key: p.key, dtype: p.dtype, numel: p.numel, bytes: new Uint8Array(0) } satisfies StorageBytes;
    },
  });

  // The storage records, in the order of the key list.
  const keyList = plain(dryRun.end);
  if (!Array.isArray(keyList.value)) {
    throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: legacy storage key list is a ${describePyValue(keyList.value)}`);
  }
  const storages = readStorageRecords(bytes, keyList.end, keyList.value as unknown[], pids, label);

  // Pass 2: the same object pickle, now with real storages.
  const views = new Map<string, StorageBytes>();
  const built: { tensor: CpuTensor; what: string }[] = [];
  const materialize: TensorMaterializer = (storage, view, what, budget) => {
    const tensor = materializeView(storage, view, what, budget);
    built.push({ tensor, what });
    return tensor;
  };
  const root = unpickleAt(bytes, objectStart, {
    globals: torchGlobals(label, { maxTensorBytes: maxTensorBytesFor(bytes.length), materialize }),
    unknownGlobals: 'inert',
    name: label,
    unsafeHint: TORCH_UNSAFE_HINT,
    persistentLoad: (pid) => {
      // Whole pickled models: each nn.Module class comes with its source code, which is never looked at.
      const moduleClass = moduleClassFromPid(pid, label);
      if (moduleClass) return moduleClass;
      const p = parseStoragePid(pid, label);
      const root = storages.get(p.key);
      if (!root) throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: storage '${p.key}' has no data record`);
      if (!p.view) return root;
      const cached = views.get(p.view.key);
      if (cached) return cached;
      const { offset, numel } = p.view;
      if (offset + numel > root.numel) {
        throw new CheckpointError(
          'CHECKPOINT_FORMAT',
          `${label}: storage view '${p.view.key}' [${offset}, ${offset + numel}) exceeds storage '${p.key}' of ${root.numel} elements`,
        );
      }
      const size = dtypeByteSize(root.dtype);
      const view: StorageBytes = {
        key: p.view.key,
        dtype: root.dtype,
        numel,
        bytes: root.bytes.subarray(offset * size, (offset + numel) * size),
      };
      views.set(p.view.key, view);
      return view;
    },
  }).value;
  refuseImplausibleValues(root, built, label);
  return root;
}

/**
 * The legacy format has no checksum, so corruption shows only in the values: refuse the first value no
 * trained network holds (see plausible-values.ts), naming the tensor by its state_dict key when it has one.
 */
function refuseImplausibleValues(root: unknown, built: readonly { tensor: CpuTensor; what: string }[], label: string): void {
  for (const { tensor, what } of built) {
    const bad = findImplausibleValue(tensor);
    if (!bad) continue;
    const key = stateDictKeyOf(root, tensor, label);
    const name = key === undefined ? what : `${label}: tensor '${key}'`;
    throw new CheckpointError(
      'CHECKPOINT_FORMAT',
      `${name} (${tensor.dtype} ${formatShape(tensor.shape)}) holds ${describeValue(bad.value)} at flat index ${bad.index}, ` +
        `which no trained network holds (|value| >= ${MAX_PLAUSIBLE_MAGNITUDE} or not finite). The legacy (pre-1.6) ` +
        `format has no checksum, so the file is most likely corrupted: download or copy it again.`,
    );
  }
}

/** The key `tensor` would have in the canonical state dict, if the object canonicalises at all. */
function stateDictKeyOf(root: unknown, tensor: CpuTensor, label: string): string | undefined {
  try {
    for (const [key, t] of canonicalizeStateDict(root, { name: label })) if (t === tensor) return key;
  } catch (err) {
    if (!(err instanceof CheckpointError)) throw err;
  }
  return undefined;
}

/** Read `int64 numel` + raw elements for each storage key, checking every length against the file. */
function readStorageRecords(
  bytes: Uint8Array,
  start: number,
  keys: unknown[],
  pids: Map<string, StoragePid>,
  label: string,
): Map<string, StorageBytes> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const truncated = (key: string, need: number, at: number): CheckpointError =>
    new CheckpointError(
      'CHECKPOINT_TRUNCATED',
      `${label}: the data of storage '${key}' needs bytes ${at}..${at + need} but the file has only ${bytes.length} ` +
        `bytes; the file is truncated or incomplete`,
    );
  const out = new Map<string, StorageBytes>();
  let pos = start;
  for (const rawKey of keys) {
    const key = String(rawKey);
    const pid = pids.get(key);
    if (!pid) throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: storage key '${key}' is listed but never used`);
    if (pos + 8 > bytes.length) throw truncated(key, 8, pos);
    const count = dv.getBigInt64(pos, true);
    pos += 8;
    if (count !== BigInt(pid.numel)) {
      throw new CheckpointError(
        'CHECKPOINT_FORMAT',
        `${label}: storage '${key}' has ${count} elements in its data record but ${pid.numel} in the pickle`,
      );
    }
    const nbytes = pid.numel * dtypeByteSize(pid.dtype);
    if (pos + nbytes > bytes.length) throw truncated(key, nbytes, pos);
    out.set(key, { key, dtype: pid.dtype, numel: pid.numel, bytes: bytes.subarray(pos, pos + nbytes) });
    pos += nbytes;
  }
  for (const key of pids.keys()) {
    if (!out.has(key)) throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: storage '${key}' is used but has no data record`);
  }
  return out;
}
