import { StateDictError } from '../errors';
import { checkNoUnexpected, type StateDict, takeTensor } from '../weights/state-dict';
import { toFloat64 } from '../weights/tensor';

/** A learnable tensor or buffer, named exactly as in PyTorch's state_dict, held on the CPU in float64. */
export interface Parameter {
  readonly shape: readonly number[];
  data: Float64Array | undefined;
}

export function parameter(shape: readonly number[]): Parameter {
  return { shape, data: undefined };
}

/**
 * The CPU side of a PyTorch module: its own parameters and its named children, so `loadStateDict` can walk it
 * and build the same dotted keys PyTorch's `state_dict()` has. GPU work is added by each layer (`upload`,
 * `forward`).
 */
export abstract class Module {
  /** Own parameters by PyTorch name (`weight`, `bias`, `running_mean`, …). */
  parameters(): Record<string, Parameter> {
    return {};
  }

  /** Child modules by attribute name or Sequential index. */
  children(): [string, Module][] {
    return [];
  }

  /** Keys PyTorch keeps in a state_dict that inference does not need (e.g. `num_batches_tracked`). */
  ignoredKeys(): string[] {
    return [];
  }
}

export function namedParameters(module: Module, prefix = ''): [string, Parameter][] {
  const out: [string, Parameter][] = Object.entries(module.parameters()).map(([k, p]) => [prefix + k, p]);
  for (const [name, child] of module.children()) out.push(...namedParameters(child, `${prefix}${name}.`));
  return out;
}

function ignoredKeys(module: Module, prefix = ''): string[] {
  const out = module.ignoredKeys().map((k) => prefix + k);
  for (const [name, child] of module.children()) out.push(...ignoredKeys(child, `${prefix}${name}.`));
  return out;
}

/**
 * Like PyTorch's `load_state_dict(strict=True)`: every parameter must be present with its exact shape, and
 * the file must have no keys the module does not know. Errors list the offending keys.
 */
export function loadStateDict(module: Module, sd: StateDict): void {
  const params = namedParameters(module);
  const missing = params.filter(([k]) => !sd.has(k)).map(([k]) => k);
  if (missing.length > 0) {
    const shown = missing.slice(0, 8).join(', ') + (missing.length > 8 ? `, … (${missing.length} in all)` : '');
    const available = [...sd.keys()].slice(0, 6).join(', ');
    throw new StateDictError('MISSING_KEY', `state_dict is missing ${shown}; it has e.g. ${available}`, missing);
  }
  for (const [key, p] of params) p.data = toFloat64(takeTensor(sd, key, p.shape));
  checkNoUnexpected(sd, [...params.map(([k]) => k), ...ignoredKeys(module)]);
}

export function requireData(p: Parameter, what: string): Float64Array {
  if (!p.data) throw new StateDictError('MISSING_KEY', `${what} has no weights loaded`, [what]);
  return p.data;
}
