/**
 * The zip checkpoint format (torch.save since PyTorch 1.6): '<folder>/data.pkl' pickles the object, each
 * storage is the entry '<folder>/data/<key>'. PyTorch stores entries uncompressed, but re-packing tools may
 * deflate them, and then a few megabytes of file can declare gigabytes. So nothing is inflated before the
 * reader knows it is needed and bounded:
 *   - data.pkl may declare at most MAX_PICKLE_BYTES;
 *   - the pickle is read twice: first only to learn which tensors exist and how far into its storage each
 *     reaches, then to build them. In between, the tensors' decoded size is checked against the budget the
 *     file size allows, and the bytes to inflate against the tensors' own size (see maxInflatedStorageBytes);
 *   - a storage is inflated when its first tensor is built, and only as far as its tensors reach; an entry
 *     no tensor uses is never inflated.
 */
import { CheckpointError } from '../errors';
import { unpickle } from './pickle';
import { decodedByteSize, lazyStorage, viewByteExtent, type StorageBytes, type TensorView } from './storage';
import { maxTensorBytesFor, parseStoragePid, torchGlobals, TORCH_UNSAFE_HINT, type StoragePid } from './torch-pickle';
import { dtypeByteSize, numel } from './tensor';
import { METHOD_STORED, ZipArchive, type ZipEntry } from './zip';

/** Largest data.pkl accepted (64 MiB). Real ones take a few hundred bytes per tensor: kilobytes to a few MB. */
export const MAX_PICKLE_BYTES = 64 * 2 ** 20;

/** The byteorder record holds 'little' or 'big'; anything longer is not one. */
const MAX_BYTEORDER_BYTES = 16;

/**
 * Bytes of compressed storages a checkpoint may make the reader inflate: twice the bytes of the tensors it
 * declares, plus 1 MiB so small files whose tensors are slices of a larger storage still load. PyTorch
 * writes each storage exactly as large as its tensors, so real files need at most 1x.
 */
export function maxInflatedStorageBytes(tensorBytes: number): number {
  return 2 * tensorBytes + 2 ** 20;
}

export interface ReadTorchZipOptions {
  /** Called with the size of every buffer allocated to inflate a zip entry into (see ZipReadOptions). */
  onInflate?: (bytes: number) => void;
}

/** What the first pass over the pickle learns: how far each storage is read, and how much the tensors take. */
interface StoragePlan {
  /** Storage entry name -> bytes from its start that its tensors read. */
  extents: Map<string, number>;
  /** Sum over tensors of elements x element size as stored. */
  tensorBytes: number;
  /** The same once decoded (half precision widens to float32). */
  decodedBytes: number;
}

export function readTorchZip(bytes: Uint8Array, label: string, options: ReadTorchZipOptions = {}): unknown {
  const { onInflate } = options;
  const archive = new ZipArchive(bytes, { name: label, onInflate });
  const { prefix, entry } = findDataPkl(archive, label);
  refuseBigEndian(archive, prefix, label);
  const pickle = readPickle(archive, entry, label);
  const pickleName = `${label} (${entry.name})`;

  const storageEntry = storageEntryFinder(archive, prefix, label);
  const plan = planStorageReads(pickle, pickleName, label, storageEntry);
  checkPlan(plan, archive, bytes.length, label);

  // Second pass: the same pickle, with storages that inflate on first use, only as far as the plan says.
  const storages = new Map<string, StorageBytes>();
  return unpickle(pickle, {
    globals: torchGlobals(label, { maxTensorBytes: maxTensorBytesFor(bytes.length) }),
    unknownGlobals: 'inert',
    name: pickleName,
    unsafeHint: TORCH_UNSAFE_HINT,
    persistentLoad: (pid) => {
      const { pid: p, entry: e } = storageEntry(pid);
      const cached = storages.get(p.key);
      if (cached) return cached;
      // Stored entries cost nothing to read whole. A compressed one is inflated as far as its tensors reach;
      // one no tensor uses (a bare storage in the object) only if a caller of readTorchObject asks for it.
      const extent = plan.extents.get(e.name) ?? p.numel * dtypeByteSize(p.dtype);
      const load = () => (e.method === METHOD_STORED ? archive.read(e) : archive.readPrefix(e, extent));
      const storage = lazyStorage(e.name, p.dtype, p.numel, load);
      storages.set(p.key, storage);
      return storage;
    },
  });
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
  // Entry names are not quoted: any zip file may end up here, and its contents are none of our messages' business.
  throw new CheckpointError(
    'CHECKPOINT_FORMAT',
    `${label}: a zip archive of ${archive.entries.length} entries without '<folder>/data.pkl', so not a PyTorch checkpoint`,
  );
}

/** torch >= 2.1 records the byte order of the storages; older files are always little-endian. */
function refuseBigEndian(archive: ZipArchive, prefix: string, label: string): void {
  const entry = archive.get(`${prefix}/byteorder`);
  if (!entry) return;
  if (entry.uncompressedSize > MAX_BYTEORDER_BYTES) {
    throw new CheckpointError(
      'CHECKPOINT_FORMAT',
      `${label}: the byteorder record declares ${entry.uncompressedSize} bytes; it should hold 'little' or 'big'`,
    );
  }
  if (new TextDecoder().decode(archive.read(entry)).trim() === 'big') {
    throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: big-endian checkpoints are not supported`);
  }
}

function readPickle(archive: ZipArchive, entry: ZipEntry, label: string): Uint8Array {
  if (entry.uncompressedSize > MAX_PICKLE_BYTES) {
    throw new CheckpointError(
      'CHECKPOINT_FORMAT',
      `${label}: '${entry.name}' declares ${entry.uncompressedSize} bytes, more than the ${MAX_PICKLE_BYTES} bytes ` +
        `(64 MiB) allowed for a checkpoint's pickle; refused before inflating it`,
    );
  }
  return archive.read(entry);
}

/**
 * Resolves a storage persistent id to its zip entry, checking (from the declared sizes alone) that the entry
 * exists, can hold the storage, and that the storage is not used with two dtypes.
 */
function storageEntryFinder(archive: ZipArchive, prefix: string, label: string): (pid: unknown) => { pid: StoragePid; entry: ZipEntry } {
  const seen = new Map<string, StoragePid>();
  return (pid) => {
    const p = parseStoragePid(pid, label);
    const known = seen.get(p.key);
    if (known && known.dtype !== p.dtype) {
      throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: storage '${p.key}' is used as both ${known.dtype} and ${p.dtype}`);
    }
    const name = `${prefix}/data/${p.key}`;
    const entry = archive.get(name);
    if (!entry) throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: storage entry '${name}' is missing from the archive`);
    const needed = p.numel * dtypeByteSize(p.dtype);
    if (entry.uncompressedSize < needed) {
      throw new CheckpointError(
        'CHECKPOINT_FORMAT',
        `${label}: storage '${name}' has ${entry.uncompressedSize} bytes but ${p.numel} ${p.dtype} elements need ${needed}`,
      );
    }
    seen.set(p.key, p);
    return { pid: p, entry };
  };
}

/** First pass: run the pickle with tensors left unbuilt, recording what each one would read. */
function planStorageReads(
  pickle: Uint8Array,
  pickleName: string,
  label: string,
  storageEntry: (pid: unknown) => { pid: StoragePid; entry: ZipEntry },
): StoragePlan {
  const plan: StoragePlan = { extents: new Map(), tensorBytes: 0, decodedBytes: 0 };
  const record = (storage: StorageBytes, view: TensorView): null => {
    // Malformed sizes count as nothing here; building the tensor refuses them.
    const count = view.size.every((d) => Number.isSafeInteger(d) && d >= 0) ? numel(view.size) : 0;
    plan.tensorBytes += count * dtypeByteSize(storage.dtype);
    plan.decodedBytes += count * decodedByteSize(storage.dtype);
    // Never plan past the storage's end: a view reaching beyond it is refused when it is built.
    const extent = Math.min(viewByteExtent(view, storage.dtype), storage.numel * dtypeByteSize(storage.dtype));
    plan.extents.set(storage.key, Math.max(plan.extents.get(storage.key) ?? 0, extent));
    return null;
  };
  unpickle(pickle, {
    globals: torchGlobals(label, { materialize: record }),
    unknownGlobals: 'inert',
    name: pickleName,
    unsafeHint: TORCH_UNSAFE_HINT,
    persistentLoad: (pid) => {
      const { pid: p, entry } = storageEntry(pid);
      // Named like the real storage of the second pass, so that errors read the same in both passes.
      return { key: entry.name, dtype: p.dtype, numel: p.numel, bytes: new Uint8Array(0) } satisfies StorageBytes;
    },
  });
  return plan;
}

/** Refuse, before anything is inflated, a file whose tensors or storages exceed what its size allows. */
function checkPlan(plan: StoragePlan, archive: ZipArchive, fileBytes: number, label: string): void {
  const maxDecoded = maxTensorBytesFor(fileBytes);
  if (plan.decodedBytes > maxDecoded) {
    throw new CheckpointError(
      'CHECKPOINT_FORMAT',
      `${label}: its tensors take ${plan.decodedBytes} bytes once decoded, more than the ${maxDecoded} bytes a ` +
        `${fileBytes}-byte file may expand to (views repeating a few stored values, or compressed storages?)`,
    );
  }
  let toInflate = 0;
  for (const [name, extent] of plan.extents) {
    if (archive.get(name)?.method !== METHOD_STORED) toInflate += extent;
  }
  const maxInflated = maxInflatedStorageBytes(plan.tensorBytes);
  if (toInflate > maxInflated) {
    throw new CheckpointError(
      'CHECKPOINT_FORMAT',
      `${label}: its tensors (${plan.tensorBytes} bytes) reach ${toInflate} bytes into compressed storages, more ` +
        `than the ${maxInflated} bytes (2 x the tensor bytes + 1 MiB) the reader inflates for them`,
    );
  }
}
