/**
 * What PyTorch's pickles are allowed to reference, and how those references become data. Both container
 * formats (zip since torch 1.6, and the legacy sequential format) pickle tensors the same way:
 *   torch._utils._rebuild_tensor_v2(<persistent storage>, storage_offset, size, stride, requires_grad, hooks)
 * where the storage is a persistent id ('storage', torch.FloatStorage, key, location, numel[, view]).
 * The format readers supply the storage bytes; this module turns pids and rebuild calls into CpuTensors.
 */
import { CheckpointError } from '../errors';
import { describePyValue, PyGlobal, type FactoryContext, type GlobalAllowList, type GlobalFactory } from './pickle';
import { PyInstance } from './py-instance';
import { materializeView, type StorageBytes, type TensorBudget, type TensorView } from './storage';
import type { DType } from './tensor';

/** Legacy typed-storage classes, which torch still writes as storage type markers in both formats. */
const STORAGE_TYPES: ReadonlyMap<string, DType> = new Map<string, DType>([
  ['torch.FloatStorage', 'float32'],
  ['torch.DoubleStorage', 'float64'],
  ['torch.HalfStorage', 'float16'],
  ['torch.BFloat16Storage', 'bfloat16'],
  ['torch.LongStorage', 'int64'],
  ['torch.IntStorage', 'int32'],
  ['torch.ShortStorage', 'int16'],
  ['torch.CharStorage', 'int8'],
  ['torch.ByteStorage', 'uint8'],
  ['torch.BoolStorage', 'bool'],
  ['torch.UntypedStorage', 'uint8'],
]);

/**
 * Advice attached to CHECKPOINT_UNSAFE errors. Whole pickled models are readable, so a call of an unknown
 * global means code that PyTorch itself never pickles (a custom __reduce__, or a deliberate payload).
 */
export const TORCH_UNSAFE_HINT =
  'PyTorch checkpoints only call tensor and storage rebuild functions; this file calls something else, which ' +
  'torch.load(weights_only=False) would execute. If you trust its source, load it in Python and re-save it ' +
  'with torch.save(model.state_dict(), path).';

/** A storage persistent id, decoded. */
export interface StoragePid {
  key: string;
  dtype: DType;
  /** Qualified name of the storage class, e.g. 'torch.FloatStorage'. */
  typeName: string;
  location: string;
  numel: number;
  /** Legacy format only: the pid denotes the slice [offset, offset + numel) of storage `key`, named `view.key`. */
  view?: { key: string; offset: number; numel: number };
}

/**
 * The class of a legacy-format module persistent id ('module', cls, source_file, source): torch.save wrote
 * one for each nn.Module class of a whole pickled model, with the class's source code (which is ignored,
 * never run). Returns undefined for any other persistent id.
 */
export function moduleClassFromPid(pid: unknown, label: string): PyGlobal | undefined {
  if (!Array.isArray(pid) || pid[0] !== 'module') return undefined;
  const cls: unknown = pid[1];
  if (!(cls instanceof PyGlobal)) {
    throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: module persistent id names a ${describePyValue(cls)}, not a class`);
  }
  return cls;
}

/**
 * Decode ('storage', storage_type, key, location, numel[, view_metadata]). The view metadata only exists
 * in the legacy format (where it is usually None).
 */
export function parseStoragePid(pid: unknown, label: string): StoragePid {
  const bad = (why: string): CheckpointError => new CheckpointError('CHECKPOINT_FORMAT', `${label}: unsupported persistent id (${why})`);
  if (!Array.isArray(pid) || pid.length < 5) throw bad(`expected a storage tuple, got ${describePyValue(pid)}`);
  const [tag, type, key, location, numel, viewMetadata] = pid as unknown[];
  if (tag !== 'storage') throw bad(`tag ${JSON.stringify(describeTag(tag))}, expected 'storage'`);
  if (!(type instanceof PyGlobal)) throw bad(`storage type is a ${describePyValue(type)}`);
  const dtype = STORAGE_TYPES.get(type.qualifiedName);
  if (!dtype) throw bad(`unknown storage type '${type.qualifiedName}'`);
  if (typeof key !== 'string' && typeof key !== 'number') throw bad(`storage key is a ${describePyValue(key)}`);
  if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) throw bad(`storage size ${String(numel)}`);
  const result: StoragePid = {
    key: String(key),
    dtype,
    typeName: type.qualifiedName,
    location: typeof location === 'string' ? location : String(location),
    numel,
  };
  if (viewMetadata !== undefined && viewMetadata !== null) {
    // (view_key, offset, view_numel): the tensor uses elements [offset, offset + view_numel) of storage `key`.
    if (!Array.isArray(viewMetadata) || viewMetadata.length !== 3) throw bad('malformed view metadata');
    const [viewKey, offset, viewNumel] = viewMetadata as unknown[];
    if (
      typeof offset !== 'number' ||
      typeof viewNumel !== 'number' ||
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(viewNumel) ||
      offset < 0 ||
      viewNumel < 0
    ) {
      throw bad('malformed view metadata');
    }
    result.view = { key: String(viewKey), offset, numel: viewNumel };
  }
  return result;
}

function describeTag(tag: unknown): string {
  return typeof tag === 'string' ? tag : describePyValue(tag);
}

/** How the rebuild functions turn a storage + view into a value. Legacy loading first runs with a no-op. */
export type TensorMaterializer = (storage: StorageBytes, view: TensorView, what: string, budget: TensorBudget) => unknown;

function isStorageBytes(x: unknown): x is StorageBytes {
  return typeof x === 'object' && x !== null && 'dtype' in x && 'bytes' in x && 'numel' in x && 'key' in x;
}

function toIntTuple(x: unknown, what: string, label: string): number[] {
  if (!Array.isArray(x)) {
    throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: ${what} must be a tuple of ints, got ${describePyValue(x)}`);
  }
  return (x as unknown[]).map((v) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
      throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: ${what} contains ${describePyValue(v)} ${String(v)}`);
    }
    return v;
  });
}

export interface TorchGlobalsOptions {
  /** Turns storage + view into the tensor value (default: materializeView; the legacy dry run passes a no-op). */
  materialize?: TensorMaterializer;
  /**
   * Total bytes all materialised tensors may occupy. Stride-0 views let a tiny file describe huge tensors,
   * so readers set this from the file size (default: unlimited apart from the per-tensor cap).
   */
  maxTensorBytes?: number;
}

/**
 * Bytes the tensors of a file of `fileBytes` bytes may take once decoded: generous for real files (half
 * precision doubles in size, tied weights are copied per name) yet bounded by the file size.
 */
export function maxTensorBytesFor(fileBytes: number): number {
  return 4 * fileBytes + 64 * 2 ** 20;
}

/**
 * The allow-list for torch checkpoints. Calling anything not listed here (os.system, builtins.eval, model
 * classes...) makes the unpickler throw CHECKPOINT_UNSAFE before it is used. Unknown classes may still appear
 * as data and be reconstructed inertly (NEWOBJ, copyreg._reconstructor), which is how whole pickled models
 * are read.
 */
export function torchGlobals(label: string, options: TorchGlobalsOptions = {}): GlobalAllowList {
  const materialize = options.materialize ?? materializeView;
  const budget: TensorBudget = { remaining: options.maxTensorBytes ?? Number.POSITIVE_INFINITY };
  let tensorCount = 0;
  const rebuildTensor = (args: readonly unknown[], fn: string): unknown => {
    if (args.length < 4) {
      throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: ${fn} called with ${args.length} arguments, expected at least 4`);
    }
    const [storage, offset, size, stride] = args;
    if (!isStorageBytes(storage)) {
      throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: ${fn} expects a storage, got ${describePyValue(storage)}`);
    }
    const what = `${label}: tensor #${tensorCount++} (storage '${storage.key}')`;
    if (typeof offset !== 'number') {
      throw new CheckpointError('CHECKPOINT_FORMAT', `${what}: storage offset is a ${describePyValue(offset)}`);
    }
    const view: TensorView = {
      storageOffset: offset,
      size: toIntTuple(size, 'size', what),
      stride: toIntTuple(stride, 'stride', what),
    };
    return materialize(storage, view, what, budget);
  };
  // A Parameter is a tensor with requires_grad; for inference the tensor is all we need. torch < 1.0 pickled
  // parameters as a call of the class itself, torch.nn.parameter.Parameter(data, requires_grad).
  const rebuildParameter =
    (fn: string): GlobalFactory =>
    (args) => {
      if (args.length < 1) throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: ${fn} without data`);
      return args[0];
    };
  const notCallable =
    (name: string): GlobalFactory =>
    () => {
      throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: the pickle tries to call '${name}', which torch never does`);
    };

  const globals = new Map<string, GlobalFactory>([
    ['collections.OrderedDict', (args, _how, ctx) => orderedDict(args, label, ctx)],
    ['torch._utils._rebuild_tensor_v2', (args) => rebuildTensor(args, '_rebuild_tensor_v2')],
    ['torch._utils._rebuild_tensor', (args) => rebuildTensor(args, '_rebuild_tensor')],
    ['torch._utils._rebuild_parameter', rebuildParameter('_rebuild_parameter')],
    ['torch._utils._rebuild_parameter_with_state', rebuildParameter('_rebuild_parameter_with_state')],
    ['torch.nn.parameter.Parameter', rebuildParameter('torch.nn.parameter.Parameter')],
    // torch.Size pickles as torch.Size((d0, d1, ...)).
    ['torch.Size', (args, _how, ctx) => Object.freeze(copied(Array.isArray(args[0]) ? (args[0] as unknown[]) : [], ctx))],
    // Python 3 pickles bytes at protocol 2 as _codecs.encode(str, 'latin1'); pure data, no side effects.
    ['_codecs.encode', (args, _how, ctx) => codecsEncode(args, label, ctx)],
    // Python 3 pickles b'' at protocols 0-2 as builtins.bytes(). Only data-shaped arguments are accepted
    // (never bytes(n), which would allocate n zero bytes).
    ['builtins.bytes', (args, _how, ctx) => builtinsBytes(args, label, ctx)],
    ['builtins.set', (args, _how, ctx) => new Set(copied(iterableArg(args), ctx))],
    ['builtins.frozenset', (args, _how, ctx) => new Set(copied(iterableArg(args), ctx))],
    // torch.device('cpu') / ('cuda', 0): only a location string.
    [
      'torch.device',
      (args) =>
        args
          .filter((a) => a !== null && a !== undefined)
          .map(String)
          .join(':'),
    ],
    // Modules pickled by torch <= 0.4 carry `_backend = _get_thnn_function_backend()`; torch itself now
    // defines it as a no-op for exactly this purpose.
    ['torch.nn.backends.thnn._get_thnn_function_backend', () => null],
    // The reconstruction helpers that protocols 0-1 (and some __reduce__ implementations) use to recreate
    // an instance of a class without calling it; here they only ever produce inert records.
    ['copyreg._reconstructor', (args) => reconstructor(args, label)],
    ['copyreg.__newobj__', (args) => newobj(args[0], args.slice(1), undefined, label)],
    ['copyreg.__newobj_ex__', (args) => newobjEx(args, label)],
    // `object` appears as the base-class argument of copyreg._reconstructor.
    ['builtins.object', notCallable('builtins.object')],
  ]);
  for (const name of STORAGE_TYPES.keys()) globals.set(name, notCallable(name));
  return globals;
}

/** A copy of `items`, charged to the unpickler's copy budget. */
function copied<T>(items: readonly T[], ctx: FactoryContext): T[] {
  ctx.charge(items.length);
  return [...items];
}

/** `cls.__new__(cls, *args)` for an unknown class: an inert record. Allow-listed globals are not instantiated. */
function newobj(cls: unknown, args: readonly unknown[], kwargs: Map<unknown, unknown> | undefined, label: string): PyInstance {
  if (!(cls instanceof PyGlobal)) {
    throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: cannot reconstruct an instance of a ${describePyValue(cls)}`);
  }
  if (cls.allowed) {
    throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: unexpected reconstruction of an instance of '${cls.qualifiedName}'`);
  }
  return new PyInstance(cls.qualifiedName, Object.freeze([...args]), kwargs);
}

function newobjEx(args: readonly unknown[], label: string): PyInstance {
  const [cls, positional, kwargs] = args;
  if (!Array.isArray(positional) || !(kwargs instanceof Map)) {
    throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: copyreg.__newobj_ex__ needs (cls, args, kwargs)`);
  }
  return newobj(cls, positional, kwargs, label);
}

/**
 * copyreg._reconstructor(cls, base, state): with base `object` Python does `object.__new__(cls)` and ignores
 * the state; other bases would run the base class's __new__ / __init__, which we do not emulate.
 */
function reconstructor(args: readonly unknown[], label: string): PyInstance {
  const [cls, base] = args;
  if (!(base instanceof PyGlobal) || base.qualifiedName !== 'builtins.object') {
    throw new CheckpointError(
      'CHECKPOINT_FORMAT',
      `${label}: copyreg._reconstructor with base ${describePyValue(base)} is not supported (only 'object')`,
    );
  }
  return newobj(cls, [], undefined, label);
}

function iterableArg(args: readonly unknown[]): unknown[] {
  const a = args[0];
  if (Array.isArray(a)) return a;
  if (a instanceof Set) return [...a];
  if (a instanceof Map) return [...a.keys()];
  return [];
}

function builtinsBytes(args: readonly unknown[], label: string, ctx: FactoryContext): Uint8Array {
  const a = args[0];
  if (a === undefined) return new Uint8Array(0);
  if (Array.isArray(a) || a instanceof Uint8Array) ctx.charge(a.length);
  if (a instanceof Uint8Array) return a.slice();
  if (Array.isArray(a) && a.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x < 256)) {
    return Uint8Array.from(a as number[]);
  }
  throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: builtins.bytes called with a ${describePyValue(a)}`);
}

function orderedDict(args: readonly unknown[], label: string, ctx: FactoryContext): Map<unknown, unknown> {
  const out = new Map<unknown, unknown>();
  const init = args[0];
  if (init === undefined || init === null) return out;
  if (init instanceof Map || Array.isArray(init)) ctx.charge(init instanceof Map ? init.size : init.length);
  if (init instanceof Map) return new Map(init);
  if (Array.isArray(init)) {
    for (const pair of init) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: OrderedDict initialiser items must be (key, value) pairs`);
      }
      out.set(pair[0], pair[1]);
    }
    return out;
  }
  throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: OrderedDict called with a ${describePyValue(init)}`);
}

function codecsEncode(args: readonly unknown[], label: string, ctx: FactoryContext): Uint8Array {
  const [text, encoding] = args;
  if (typeof text !== 'string') throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: _codecs.encode of a ${describePyValue(text)}`);
  ctx.charge(text.length);
  const enc = typeof encoding === 'string' ? encoding.toLowerCase().replace(/[-_]/g, '') : 'utf8';
  if (enc === 'latin1' || enc === 'iso88591') {
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c > 0xff) throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: _codecs.encode: non-latin-1 character`);
      out[i] = c;
    }
    return out;
  }
  if (enc === 'utf8') return new TextEncoder().encode(text);
  throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: _codecs.encode with unsupported encoding '${String(encoding)}'`);
}
