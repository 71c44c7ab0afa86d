import { InvalidInputError } from '../errors';

/** Throws InvalidInputError unless every `name: [value, min]` entry is an integer >= min (config validation). */
export function requireIntegers(net: string, entries: Record<string, readonly [value: number, min: number]>): void {
  for (const [name, [value, min]] of Object.entries(entries)) {
    if (!Number.isInteger(value) || value < min) {
      throw new InvalidInputError(`${net} ${name} must be an integer >= ${min}, got ${value}`);
    }
  }
}

/** Throws InvalidInputError unless `value` is one of `allowed`. */
export function requireOneOf<T>(net: string, name: string, value: T, allowed: readonly T[]): void {
  if (!allowed.includes(value)) {
    throw new InvalidInputError(`${net} ${name} must be ${allowed.map((a) => `'${String(a)}'`).join(' or ')}, got '${String(value)}'`);
  }
}
