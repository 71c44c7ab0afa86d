/**
 * From "whatever torch.save was given" to a flat name -> tensor map, plus the checks a model loader needs.
 * Training repositories wrap their weights in many ways ({'params_ema': ...} in BasicSR, {'state_dict': ...}
 * in Lightning, 'module.' prefixes from DataParallel); canonicalising here keeps model code simple.
 */
import { CheckpointError, StateDictError } from '../errors';
import { isTorchModule, moduleStateDict } from './module-state';
import { describePyValue } from './pickle';
import { formatShape, isCpuTensor, isFloatDType, type CpuTensor } from './tensor';

export type StateDict = Map<string, CpuTensor>;

/** Wrapper keys that hold the weights, in order of preference (EMA weights first, as BasicSR recommends). */
const WRAPPER_KEYS = ['params_ema', 'params', 'state_dict', 'model_state_dict', 'model', 'net'];
/** Prefixes added by DataParallel/DistributedDataParallel and by GAN training code, stripped when universal. */
const STRIP_PREFIXES = ['module.', 'netG.'];
const MAX_DEPTH = 64;
/** Bound on dict entries visited while flattening; shared sub-dicts could otherwise blow up exponentially. */
const MAX_VISITS = 2_000_000;

export interface CanonicalizeOptions {
  /** Used as the prefix of error messages (typically the file name). */
  name?: string;
}

/** Views a value as a dict: Maps as they are, whole pickled nn.Modules as their state_dict, else undefined. */
type AsDict = (v: unknown) => Map<unknown, unknown> | undefined;

function dictView(label: string): AsDict {
  const modules = new Map<object, Map<unknown, unknown>>();
  return (v) => {
    if (v instanceof Map) return v;
    if (!isTorchModule(v)) return undefined;
    let sd = modules.get(v);
    if (!sd) {
      sd = moduleStateDict(v, label);
      modules.set(v, sd);
    }
    return sd;
  };
}

/** True when `m` holds at least one tensor, possibly in nested dicts or modules. */
function containsTensor(m: Map<unknown, unknown>, asDict: AsDict, depth = 0, visited = new Set<Map<unknown, unknown>>()): boolean {
  // A dict seen before held no tensor (or we would have returned), so shared sub-dicts are searched once.
  if (depth > 8 || visited.has(m)) return false;
  visited.add(m);
  for (const v of m.values()) {
    if (isCpuTensor(v)) return true;
    const d = asDict(v);
    if (d && containsTensor(d, asDict, depth + 1, visited)) return true;
  }
  return false;
}

/** Descend through known wrapper keys and single-key dicts to the dict that actually holds the weights. */
function unwrap(root: unknown, asDict: AsDict): unknown {
  let node = asDict(root) ?? root;
  for (let depth = 0; depth < MAX_DEPTH && node instanceof Map; depth++) {
    const current: Map<unknown, unknown> = node;
    const wrapped = WRAPPER_KEYS.map((k) => asDict(current.get(k))).find(
      (v): v is Map<unknown, unknown> => v !== undefined && containsTensor(v, asDict),
    );
    if (wrapped) {
      node = wrapped;
      continue;
    }
    if (current.size === 1) {
      const only = asDict(current.values().next().value);
      if (only) {
        node = only;
        continue;
      }
    }
    break;
  }
  return node;
}

function keyList(keys: Iterable<unknown>, limit = 10): string {
  const all = [...keys].map((k) => (typeof k === 'string' ? `'${k}'` : describePyValue(k)));
  return all.length <= limit ? all.join(', ') : `${all.slice(0, limit).join(', ')}, ... (${all.length} in total)`;
}

/**
 * Produce a flat StateDict from the unpickled root object: unwrap the weights, flatten nested dicts with
 * '.', drop non-tensor entries (epoch counters, optimizer settings...) and strip universal prefixes.
 * A whole pickled nn.Module (at the root or under a wrapper key) counts as the dict of its state_dict().
 */
export function canonicalizeStateDict(obj: unknown, options: CanonicalizeOptions = {}): StateDict {
  const label = options.name ?? 'checkpoint';
  if (isCpuTensor(obj)) {
    throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: the checkpoint holds a single tensor, not a state_dict`);
  }
  const asDict = dictView(label);
  const node = unwrap(obj, asDict);
  if (!(node instanceof Map)) {
    throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: the checkpoint holds a ${describePyValue(obj)}, not a dict of tensors`);
  }

  let flat: StateDict = new Map();
  let visits = 0;
  const onPath = new Set<Map<unknown, unknown>>();
  const walk = (m: Map<unknown, unknown>, prefix: string, depth: number): void => {
    if (depth > MAX_DEPTH || onPath.has(m)) return; // cycles and absurd nesting carry no weights
    onPath.add(m);
    for (const [k, v] of m) {
      if (++visits > MAX_VISITS) {
        throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: the checkpoint's nested dicts have more than ${MAX_VISITS} entries`);
      }
      if (typeof k !== 'string' && typeof k !== 'number') continue;
      const name = prefix + String(k);
      if (isCpuTensor(v)) {
        if (flat.has(name)) throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: two tensors are both named '${name}'`);
        flat.set(name, v);
      } else {
        const d = asDict(v);
        if (d) walk(d, `${name}.`, depth + 1);
      }
    }
    onPath.delete(m);
  };
  walk(node, '', 0);

  if (flat.size === 0) {
    const top = obj instanceof Map ? ` (top-level keys: ${keyList(obj.keys())})` : '';
    throw new CheckpointError('CHECKPOINT_FORMAT', `${label}: no tensors found in the checkpoint${top}`);
  }
  for (let changed = true; changed;) {
    changed = false;
    for (const prefix of STRIP_PREFIXES) {
      if ([...flat.keys()].every((k) => k.startsWith(prefix) && k.length > prefix.length)) {
        flat = new Map([...flat].map(([k, v]) => [k.slice(prefix.length), v]));
        changed = true;
      }
    }
  }
  return flat;
}

/** Length of the common prefix of two strings, used to suggest near-miss keys. */
function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/**
 * The tensor named `key`, checked against `expectedShape` when given.
 * Throws StateDictError MISSING_KEY (listing similar available keys) or SHAPE_MISMATCH.
 */
export function takeTensor(sd: StateDict, key: string, expectedShape?: readonly number[]): CpuTensor {
  const t = sd.get(key);
  if (!t) {
    const keys = [...sd.keys()];
    const similar = keys
      .map((k, i) => ({ k, i, score: commonPrefix(k, key) }))
      .sort((a, b) => b.score - a.score || a.i - b.i)
      .slice(0, 5)
      .map((e) => `'${e.k}'`);
    throw new StateDictError(
      'MISSING_KEY',
      `missing key '${key}' in the state dict; it has ${keys.length} keys` + (similar.length ? `, e.g. ${similar.join(', ')}` : ''),
      [key],
    );
  }
  if (expectedShape && (t.shape.length !== expectedShape.length || t.shape.some((d, i) => d !== expectedShape[i]))) {
    throw new StateDictError(
      'SHAPE_MISMATCH',
      `tensor '${key}' has shape ${formatShape(t.shape)} but ${formatShape(expectedShape)} is expected`,
      [key],
    );
  }
  return t;
}

/**
 * Throw StateDictError UNEXPECTED_KEY if `sd` has tensors the model did not use. BatchNorm's
 * `num_batches_tracked` counters are training bookkeeping and are ignored.
 */
export function checkNoUnexpected(sd: StateDict, usedKeys: Iterable<string>): void {
  const used = new Set(usedKeys);
  const extra = [...sd.keys()].filter((k) => !used.has(k) && !/(^|\.)num_batches_tracked$/.test(k));
  if (extra.length > 0) {
    throw new StateDictError(
      'UNEXPECTED_KEY',
      `the state dict has ${extra.length} unexpected key${extra.length === 1 ? '' : 's'}: ${keyList(extra)}`,
      extra,
    );
  }
}

/** Throw CHECKPOINT_FORMAT naming the first floating-point tensor that contains NaN or +/-Infinity. */
export function checkFinite(sd: StateDict): void {
  for (const [key, t] of sd) {
    if (!isFloatDType(t.dtype)) continue;
    const d = t.data as Float32Array | Float64Array;
    for (let i = 0; i < d.length; i++) {
      const v = d[i];
      if (!Number.isFinite(v)) {
        throw new CheckpointError(
          'CHECKPOINT_FORMAT',
          `tensor '${key}' (shape ${formatShape(t.shape)}) contains ${Number.isNaN(v) ? 'NaN' : v > 0 ? '+Infinity' : '-Infinity'} ` +
            `at flat index ${i}; the weights are corrupted or diverged during training`,
        );
      }
    }
  }
}
