import { InvalidInputError } from '../errors';
import { formatShape } from '../format-shape';

/**
 * What a network recogniser looks at: a state_dict's keys and tensor shapes (a StateDict qualifies, and so does
 * a map built from a manifest). The helpers below read shapes and throw InvalidInputError naming the key and the
 * network, for checkpoints that look like a network but do not fit it.
 */
export type KeyShapes = ReadonlyMap<string, { readonly shape: readonly number[] }>;

/** The shape of `key`, which must exist and, when given, have `rank` dimensions. */
export function shapeOf(keys: KeyShapes, key: string, net: string, rank?: number): readonly number[] {
  const t = keys.get(key);
  if (!t) throw new InvalidInputError(`${net} checkpoint: '${key}' is missing`);
  if (rank !== undefined && t.shape.length !== rank) {
    throw new InvalidInputError(`${net} checkpoint: '${key}' has shape ${formatShape(t.shape)}, expected ${rank} dimensions`);
  }
  return t.shape;
}

/** Throws unless `key` exists with exactly `shape`; `why` says where the expectation comes from. */
export function expectShape(keys: KeyShapes, key: string, shape: readonly number[], net: string, why = ''): void {
  const actual = shapeOf(keys, key, net);
  if (actual.length !== shape.length || actual.some((d, i) => d !== shape[i])) {
    throw new InvalidInputError(
      `${net} checkpoint: '${key}' has shape ${formatShape(actual)}, expected ${formatShape(shape)}${why ? ` (${why})` : ''}`,
    );
  }
}

/** Throws if `key` exists (e.g. a bias on a layout whose convolution has none). */
export function expectAbsent(keys: KeyShapes, key: string, net: string, why: string): void {
  if (keys.has(key)) throw new InvalidInputError(`${net} checkpoint: unexpected '${key}' (${why})`);
}

/**
 * The indices i of keys matching `pattern` (whose first group captures i), sorted; they must run 0, 1, …, n−1
 * (what nn.Sequential and ModuleList produce), else InvalidInputError.
 */
export function consecutiveIndices(keys: KeyShapes, pattern: RegExp, net: string, what: string): number {
  const found = [...keys.keys()]
    .map((k) => pattern.exec(k))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  const unique = [...new Set(found)];
  unique.forEach((v, i) => {
    if (v !== i) throw new InvalidInputError(`${net} checkpoint: ${what} ${i} is missing (found ${unique.join(', ')})`);
  });
  return unique.length;
}

/** The four BatchNorm2d tensors (`weight`, `bias`, `running_mean`, `running_var`), each [channels]. */
export function expectBatchNorm(keys: KeyShapes, prefix: string, channels: number, net: string): void {
  for (const p of ['weight', 'bias', 'running_mean', 'running_var']) {
    expectShape(keys, `${prefix}.${p}`, [channels], net, 'BatchNorm2d');
  }
}
