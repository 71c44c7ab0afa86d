import { InvalidInputError } from '../errors';
import { formatShape } from '../format-shape';
import { ignoredKeysOf, type Module, namedParameters } from './module';

/**
 * Checks that a state_dict's keys and shapes are exactly those of `module` (ignored keys aside), for
 * recognisers: a file that looks like `network` but does not fit its inferred configuration gets an
 * InvalidInputError naming the first few offending keys, before any weights are converted.
 */
export function checkKeysMatch(
  module: Module<any, any>,
  keys: ReadonlyMap<string, { readonly shape: readonly number[] }>,
  network: string,
): void {
  const problems: string[] = [];
  const expected = namedParameters(module);
  const known = new Set([...expected.map(([k]) => k), ...ignoredKeysOf(module)]);
  for (const [key, p] of expected) {
    const t = keys.get(key);
    if (!t) problems.push(`'${key}' is missing`);
    else if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      problems.push(`'${key}' has shape ${formatShape(t.shape)}, expected ${formatShape(p.shape)}`);
    }
  }
  for (const key of keys.keys()) {
    if (!known.has(key) && !/(^|\.)num_batches_tracked$/.test(key)) problems.push(`'${key}' is unexpected`);
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 6).join('; ') + (problems.length > 6 ? `; … (${problems.length} problems in all)` : '');
    throw new InvalidInputError(`the weights look like a ${network} but do not fit one: ${shown}`);
  }
}
