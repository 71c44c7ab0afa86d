/**
 * The state_dict of a whole pickled nn.Module (`torch.save(model)`, e.g. the original cszn DnCNN release),
 * recovered from the inert records the unpickler made of it. An nn.Module's `__dict__` holds its own tensors
 * in `_parameters` and `_buffers` and its children in `_modules`; `Module.state_dict()` visits them in
 * exactly this order (own parameters, own persistent buffers, then each child with `name.` prefixed), and so
 * does this walk, so the keys and their order are those PyTorch would produce. Nothing of the model's code
 * is needed or run.
 */
import { CheckpointError } from '../errors';
import { describePyValue } from './pickle';
import { PyInstance } from './py-instance';
import { isCpuTensor, type CpuTensor } from './tensor';

/** Deeper module trees than this are not real networks (and would be a stack-depth attack). */
const MAX_MODULE_DEPTH = 256;
/** Bound on the tensors collected; shared submodules can otherwise multiply the count exponentially. */
const MAX_ENTRIES = 1_000_000;

/** True for an inert record that has the attributes of an nn.Module. */
export function isTorchModule(x: unknown): x is PyInstance {
  return x instanceof PyInstance && (x.get('_parameters') instanceof Map || x.get('_modules') instanceof Map);
}

/**
 * `module.state_dict()` of a pickled module: a flat, ordered name -> tensor map. A tensor object that appears
 * under two names (a shared parameter) is copied for the second name, so every entry owns its data.
 */
export function moduleStateDict(root: PyInstance, label = 'checkpoint'): Map<string, CpuTensor> {
  const out = new Map<string, CpuTensor>();
  const seen = new Set<CpuTensor>();
  const onPath = new Set<PyInstance>();
  const fail = (message: string): CheckpointError => new CheckpointError('CHECKPOINT_FORMAT', `${label}: ${message}`);

  const add = (key: string, t: CpuTensor): void => {
    if (out.size >= MAX_ENTRIES) throw fail(`the pickled model has more than ${MAX_ENTRIES} tensors`);
    if (out.has(key)) throw fail(`the pickled model names two tensors '${key}'`);
    out.set(key, seen.has(t) ? { dtype: t.dtype, shape: t.shape.slice(), data: t.data.slice() } : t);
    seen.add(t);
  };

  /** The name -> value entries of attribute `attr` (an OrderedDict), or none if the attribute is absent. */
  const entriesOf = (module: PyInstance, attr: string, path: string): [string, unknown][] => {
    const value = module.get(attr);
    if (value === undefined || value === null) return [];
    if (!(value instanceof Map)) throw fail(`'${path}${attr}' of ${module.className} is a ${describePyValue(value)}, not a dict`);
    return [...value].map(([k, v]) => {
      if (typeof k !== 'string') throw fail(`'${path}${attr}' of ${module.className} has a ${describePyValue(k)} key`);
      return [k, v];
    });
  };

  const visit = (module: PyInstance, prefix: string, depth: number): void => {
    if (depth > MAX_MODULE_DEPTH) throw fail(`the pickled model nests modules more than ${MAX_MODULE_DEPTH} deep`);
    // Python would recurse forever on a module that contains itself; a file like that is not a real model.
    if (onPath.has(module)) throw fail(`the pickled model's module '${prefix.slice(0, -1)}' contains itself`);
    onPath.add(module);

    const tensorOrSkip = (kind: string, name: string, v: unknown): CpuTensor | undefined => {
      if (v === null || v === undefined) return undefined; // e.g. Conv2d(bias=False) keeps _parameters['bias'] = None
      if (!isCpuTensor(v)) throw fail(`${kind} '${prefix}${name}' is a ${describePyValue(v)}, not a tensor`);
      return v;
    };
    for (const [name, v] of entriesOf(module, '_parameters', prefix)) {
      const t = tensorOrSkip('parameter', name, v);
      if (t) add(prefix + name, t);
    }
    const nonPersistent = module.get('_non_persistent_buffers_set');
    for (const [name, v] of entriesOf(module, '_buffers', prefix)) {
      if (nonPersistent instanceof Set && nonPersistent.has(name)) continue;
      const t = tensorOrSkip('buffer', name, v);
      if (t) add(prefix + name, t);
    }
    for (const [name, child] of entriesOf(module, '_modules', prefix)) {
      if (child === null) continue;
      if (!isTorchModule(child)) throw fail(`submodule '${prefix}${name}' is a ${describePyValue(child)}, not an nn.Module`);
      visit(child, `${prefix}${name}.`, depth + 1);
    }
    onPath.delete(module);
  };

  visit(root, '', 0);
  return out;
}
