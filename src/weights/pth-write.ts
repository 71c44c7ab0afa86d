/**
 * Writing a state_dict as a PyTorch checkpoint that PyTorch 1.13 loads with `torch.load(f, weights_only=True)`
 * and `load_state_dict(strict=True)` (training.md §5), the mirror of pth.ts + torch-zip.ts:
 *   - a zip of stored entries under one top folder '<archive>/': 'data.pkl', then 'data/<key>' for each
 *     storage (raw little-endian bytes, keys '0', '1', … in tensor order, entries in sorted key order as
 *     torch.save writes them), then 'version' = "3\n"; every entry's data 64-byte aligned (zip-write.ts);
 *   - data.pkl at pickle protocol 2: `collections.OrderedDict()`, then per key the tensor
 *     `torch._utils._rebuild_tensor_v2(pid, 0, size, stride, False, OrderedDict())` with
 *     `pid = BINPERSID(('storage', torch.FloatStorage | torch.LongStorage, key, 'cpu', numel))` and
 *     contiguous strides; optionally a BUILD of `{'_metadata': OrderedDict('': {'version': 1}, …)}` marking
 *     BatchNorm modules as version 2. Memoised like CPython's pickler, so the pickle is byte-identical to what
 *     torch.save writes for the same OrderedDict (tools/torch/check_written_checkpoint.py checks this).
 * No Python float is ever written: the 1.13 weights_only unpickler refuses them. Optimizer and scheduler
 * state belong in a JSON sidecar.
 */
import { describeValue } from '../check-args';
import { InvalidInputError } from '../errors';
import { formatShape } from '../format-shape';
import { encodeTensor } from './encode';
import { PickleWriter, type MemoIndex } from './pickle-write';
import type { CpuTensor } from './tensor';
import { writeStoredZip, type StoredZipEntry } from './zip-write';

/** One tensor to write: a state_dict entry, in PyTorch layout (row-major, e.g. OIHW conv weights). */
export interface CheckpointEntry {
  /** The state_dict key ('model.0.weight'). */
  name: string;
  shape: readonly number[];
  /** float32 for parameters and running statistics; int64 for BatchNorm's `num_batches_tracked`. */
  dtype: 'float32' | 'int64';
  /** Row-major values: a Float32Array (float32), a BigInt64Array (int64), or plain numbers (f32-rounded / integers). */
  data: Float32Array | BigInt64Array | readonly number[];
}

export interface WritePthOptions {
  /** Name of the zip's top folder (torch.save uses the file's stem; default 'archive', its name for buffers). */
  archiveName?: string;
  /**
   * Write `_metadata` and mark these module prefixes ('model.3') as BatchNorm version 2, as
   * `module.state_dict()` does. Each must have a `<prefix>.num_batches_tracked` entry: version 2 makes it
   * required under strict loading. Left out: no `_metadata` (PyTorch then treats every module as version 1).
   */
  batchNormVersions?: readonly string[];
}

const STORAGE_CLASS = { float32: 'FloatStorage', int64: 'LongStorage' } as const;
/** torch.save's file format version in 1.13 (caffe2 kProducedFileFormatVersion). */
const FILE_FORMAT_VERSION = '3\n';
const WHERE = 'writePth';

/** The bytes of a .pth file holding `entries` as an OrderedDict state_dict, in the given key order. */
export function writePth(entries: readonly CheckpointEntry[], options: WritePthOptions = {}): Uint8Array {
  const tensors = checkpointTensors(entries, WHERE);
  const archive = checkArchiveName(options.archiveName);
  const metadata = options.batchNormVersions === undefined ? undefined : moduleVersions(options.batchNormVersions, tensors);
  const keyed = [...tensors].map(([name, tensor], index) => ({ name, tensor, key: String(index) }));
  const storages: StoredZipEntry[] = keyed
    .map((t) => ({ name: `${archive}/data/${t.key}`, data: encodeTensor(t.tensor) }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return writeStoredZip(
    [
      { name: `${archive}/data.pkl`, data: stateDictPickle(keyed, metadata) },
      ...storages,
      { name: `${archive}/version`, data: new TextEncoder().encode(FILE_FORMAT_VERSION) },
    ],
    { label: WHERE },
  );
}

/**
 * The entries checked and as CpuTensors, in order (shared with the safetensors writer). Refuses, with an
 * InvalidInputError naming the entry: a non-string or repeated name, a dtype other than float32/int64, a shape
 * that is not a list of non-negative integers, data of the wrong kind or length, non-integer int64 values, and
 * a `num_batches_tracked` that is not the int64 scalar BatchNorm2d keeps. NaN and ±Inf weights are written.
 */
export function checkpointTensors(entries: readonly CheckpointEntry[], where: string): Map<string, CpuTensor> {
  if (!Array.isArray(entries)) throw new InvalidInputError(`${where}: entries must be an array of {name, shape, dtype, data}`);
  const out = new Map<string, CpuTensor>();
  entries.forEach((entry: unknown, i) => {
    const bad = (why: string) => new InvalidInputError(`${where}: entry ${i}${named(entry)}: ${why}`);
    if (typeof entry !== 'object' || entry === null) throw bad('not an object {name, shape, dtype, data}');
    const { name, shape, dtype, data } = entry as Partial<Record<keyof CheckpointEntry, unknown>>;
    if (typeof name !== 'string' || name.length === 0) throw bad('the name must be a non-empty string');
    if (out.has(name)) throw bad(`the name '${name}' is used twice`);
    if (dtype !== 'float32' && dtype !== 'int64') throw bad(`dtype ${JSON.stringify(dtype)} is not 'float32' or 'int64'`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      throw bad('the shape must be an array of non-negative integers');
    }
    const dims = (shape as number[]).slice();
    if (/(^|\.)num_batches_tracked$/.test(name) && (dtype !== 'int64' || dims.length !== 0)) {
      throw bad(`BatchNorm's num_batches_tracked is an int64 scalar (shape []), not ${dtype} ${formatShape(dims)}`);
    }
    const values = typedData(dtype, data, bad);
    const count = dims.reduce((n, d) => n * d, 1);
    if (values.length !== count) throw bad(`shape ${formatShape(dims)} has ${count} elements but the data has ${values.length}`);
    out.set(name, { dtype, shape: dims, data: values });
  });
  return out;
}

function named(entry: unknown): string {
  const name = typeof entry === 'object' && entry !== null ? (entry as { name?: unknown }).name : undefined;
  return typeof name === 'string' && name.length > 0 ? ` ('${name}')` : '';
}

function typedData(dtype: 'float32' | 'int64', data: unknown, bad: (why: string) => InvalidInputError): Float32Array | BigInt64Array {
  const kind = describeValue(data);
  if (dtype === 'float32') {
    if (data instanceof Float32Array) return data;
    if (Array.isArray(data) && data.every((v): v is number => typeof v === 'number')) return Float32Array.from(data);
    throw bad(`float32 data must be a Float32Array or an array of numbers, got ${kind}`);
  }
  if (data instanceof BigInt64Array) return data;
  if (Array.isArray(data)) {
    const at = data.findIndex((v) => !Number.isSafeInteger(v));
    if (at < 0) return BigInt64Array.from(data as number[], (v) => BigInt(v));
    throw bad(`int64 data holds ${String(data[at])} at index ${at}, not a safe integer`);
  }
  throw bad(`int64 data must be a BigInt64Array or an array of integers, got ${kind}`);
}

function checkArchiveName(name: unknown): string {
  if (name === undefined) return 'archive';
  // PyTorch's reader takes everything before the first entry's first '/' as the folder.
  if (typeof name !== 'string' || name.length === 0 || name.includes('/') || name.includes('\\')) {
    throw new InvalidInputError(`${WHERE}: archiveName must be a non-empty string without '/' or '\\', got ${JSON.stringify(name)}`);
  }
  return name;
}

/** `_metadata` items: the root module at version 1 (unless it is itself a BatchNorm), then each BatchNorm at 2. */
function moduleVersions(prefixes: readonly string[], tensors: ReadonlyMap<string, CpuTensor>): [string, number][] {
  if (!Array.isArray(prefixes) || !prefixes.every((p) => typeof p === 'string')) {
    throw new InvalidInputError(`${WHERE}: batchNormVersions must be an array of module prefixes (strings)`);
  }
  const seen = new Set<string>();
  for (const prefix of prefixes) {
    if (seen.has(prefix)) throw new InvalidInputError(`${WHERE}: batchNormVersions lists '${prefix}' twice`);
    seen.add(prefix);
    const nbt = prefix === '' ? 'num_batches_tracked' : `${prefix}.num_batches_tracked`;
    // BatchNorm version 2 makes num_batches_tracked a required key under load_state_dict(strict=True).
    if (!tensors.has(nbt)) {
      throw new InvalidInputError(`${WHERE}: batchNormVersions marks '${prefix}' as a BatchNorm but there is no entry '${nbt}'`);
    }
  }
  const items: [string, number][] = [['', seen.has('') ? 2 : 1]];
  for (const prefix of prefixes) if (prefix !== '') items.push([prefix, 2]);
  return items;
}

/** PyTorch's contiguous strides: row-major, with size-0 dimensions counted as 1 (TensorImpl's empty_tensor_restride). */
function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let step = 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    strides[k] = step;
    step *= Math.max(shape[k], 1);
  }
  return strides;
}

interface KeyedTensor {
  name: string;
  tensor: CpuTensor;
  /** Storage key: the entry '<archive>/data/<key>'. */
  key: string;
}

/** data.pkl, emitting the same objects in the same order as torch.save's pickler (see the file comment). */
function stateDictPickle(tensors: readonly KeyedTensor[], metadata: readonly [string, number][] | undefined): Uint8Array {
  const w = new PickleWriter();
  const orderedDict = () => {
    w.global('collections', 'OrderedDict').emptyTuple();
    return w.reduce();
  };
  // torch.save's persistent_id returns the same 'storage' and 'cpu' string objects every time.
  let storageTag: MemoIndex | undefined;
  let cpu: MemoIndex | undefined;
  const shared = (index: MemoIndex | undefined, text: string): MemoIndex => {
    if (index === undefined) return w.str(text);
    w.get(index);
    return index;
  };

  orderedDict();
  w.dictItems(tensors, ({ name, tensor, key }) => {
    w.str(name);
    w.global('torch._utils', '_rebuild_tensor_v2');
    w.tuple(6, () => {
      w.tuple(5, () => {
        storageTag = shared(storageTag, 'storage');
        w.global('torch', STORAGE_CLASS[tensor.dtype as 'float32' | 'int64']);
        w.str(key);
        cpu = shared(cpu, 'cpu');
        w.int(tensor.data.length);
      });
      w.persistentId();
      w.int(0); // storage offset
      w.intTuple(tensor.shape);
      w.intTuple(contiguousStrides(tensor.shape));
      w.bool(false); // requires_grad
      orderedDict(); // backward hooks
    });
    w.reduce();
  });

  if (metadata) {
    // OrderedDict.__reduce__ carries the instance __dict__ as BUILD state: {'_metadata': OrderedDict(...)}.
    w.emptyDict();
    let version: MemoIndex | undefined;
    w.dictItems([metadata], (items) => {
      w.str('_metadata');
      orderedDict();
      w.dictItems(items, ([prefix, v]) => {
        w.str(prefix);
        w.emptyDict();
        w.dictItems([v], (n) => {
          version = shared(version, 'version'); // the keyword-argument key of dict(version=...), one interned string
          w.int(n);
        });
      });
    });
    w.build();
  }
  return w.finish();
}
