/**
 * Argument checks for the public entry points. Types vanish at run time: a JavaScript caller (or an `any`)
 * can pass anything, and without these checks a wrong argument surfaces as a raw TypeError from deep inside
 * (`Cannot read properties of null`), sometimes only after a GPU device was created. Each check throws
 * InvalidInputError naming the function and the argument: `denoise: image must be an image object, got null`.
 */
import { InvalidInputError } from './errors';

/** What was passed, for messages: `null`, `number 42`, `string 'abc'`, `Array`, `Map`, `object`. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'string') return `string '${value.length > 40 ? `${value.slice(0, 40)}…` : value}'`;
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a primitive here (objects are handled below)
  if (typeof value !== 'object') return typeof value === 'function' ? 'function' : `${typeof value} ${String(value)}`;
  const name = (Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null)?.constructor?.name;
  return name && name !== 'Object' ? name : 'object';
}

export function invalidArgument(where: string, name: string, expected: string, value: unknown): InvalidInputError {
  return new InvalidInputError(`${where}: ${name} must be ${expected}, got ${describeValue(value)}`);
}

/** How one argument is checked; `where` is the function's name, `name` the argument's (or an option's path). */
export interface ArgRule {
  check(value: unknown, where: string, name: string): void;
}

/** A rule from a predicate and a description of what it accepts ("a Uint8Array"). */
export function rule(expected: string, test: (value: unknown) => boolean): ArgRule {
  return {
    check(value, where, name) {
      if (!test(value)) throw invalidArgument(where, name, expected, value);
    },
  };
}

/** `undefined` (left out) or what `inner` accepts. */
export function optional(inner: ArgRule): ArgRule {
  return {
    check(value, where, name) {
      if (value !== undefined) inner.check(value, where, name);
    },
  };
}

/** A rule that calls a validator taking the argument's name (the io validators: validateRaster, …). */
export function validatedBy(validate: (value: never, name: string) => void): ArgRule {
  return { check: (value, where, name) => validate(value as never, `${where}: ${name}`) };
}

const isObject = (v: unknown): v is object => typeof v === 'object' && v !== null;
const isArrayLike = (v: unknown) => isObject(v) && typeof (v as { length?: unknown }).length === 'number';

export const STRING = rule('a string', (v) => typeof v === 'string');
export const NON_EMPTY_STRING = rule('a non-empty string', (v) => typeof v === 'string' && v.length > 0);
export const NUMBER = rule('a number', (v) => typeof v === 'number' && !Number.isNaN(v));
export const FINITE_NUMBER = rule('a finite number', (v) => typeof v === 'number' && Number.isFinite(v));
export const POSITIVE_NUMBER = rule('a positive number', (v) => typeof v === 'number' && v > 0 && Number.isFinite(v));
export const INTEGER = rule('an integer', (v) => Number.isInteger(v));
export const NON_NEGATIVE_INTEGER = rule('an integer >= 0', (v) => Number.isInteger(v) && (v as number) >= 0);
export const POSITIVE_INTEGER = rule('an integer >= 1', (v) => Number.isInteger(v) && (v as number) >= 1);
export const BOOLEAN = rule('a boolean', (v) => typeof v === 'boolean');
export const FUNCTION = rule('a function', (v) => typeof v === 'function');
export const OBJECT = rule('an object', isObject);
/** An options argument: an object, or left out. `null` is refused: it is not "no options" in this API. */
export const OPTIONS = optional(rule('an options object', (v) => isObject(v) && !Array.isArray(v)));
export const BYTES = rule('a Uint8Array', (v) => v instanceof Uint8Array);
export const BYTES_OR_BUFFER = rule('a Uint8Array or ArrayBuffer', (v) => v instanceof Uint8Array || v instanceof ArrayBuffer);
export const STRING_ARRAY = rule('an array of strings', (v) => Array.isArray(v) && v.every((s) => typeof s === 'string'));
/** Numbers by index (arrays, typed arrays); strings are array-like too, but never what a caller meant. */
export const NUMBERS = rule('an array or typed array of numbers', isArrayLike);
/** Any image or image-like object; the function's own validation looks at its fields. */
export const IMAGE = rule('an image object', (v) => isObject(v) && !Array.isArray(v));
/** An image, or an array of images / pages (the encoders). */
export const IMAGES = rule('an image object or an array of them', isObject);
export const MAP = rule('a Map', (v) => v instanceof Map);
/** An AbortSignal, or anything shaped like one (polyfills): `aborted` and `addEventListener`. */
export const ABORT_SIGNAL = rule('an AbortSignal', (v) => {
  const signal = v as Partial<AbortSignal> | null;
  return isObject(signal) && typeof signal.aborted === 'boolean' && typeof signal.addEventListener === 'function';
});

export function oneOf(values: readonly unknown[]): ArgRule {
  const expected = `one of ${values.map((v) => (typeof v === 'string' ? `'${v}'` : String(v))).join(', ')}`;
  return rule(expected, (v) => values.includes(v));
}

/** A value built by `ctor` (or a subclass). */
export function instanceOf(ctor: abstract new (...args: never[]) => unknown, expected = `a ${ctor.name}`): ArgRule {
  return rule(expected, (v) => v instanceof ctor);
}

/** Any of several rules; `expected` says what together they accept. */
export function anyOf(expected: string, ...rules: ArgRule[]): ArgRule {
  return rule(expected, (v) =>
    rules.some((r) => {
      try {
        r.check(v, '', '');
        return true;
      } catch {
        return false;
      }
    }),
  );
}

/** Checks `args` by position: `[name, rule]` for each parameter. */
export function checkArgs(where: string, args: ArrayLike<unknown>, rules: readonly (readonly [string, ArgRule])[]): void {
  rules.forEach(([name, r], i) => r.check(args[i], where, name));
}

/** Checks the fields of an options object that are present (`options.tileSize`, …); the object itself first. */
export function checkOptionFields(where: string, options: unknown, fields: Readonly<Record<string, ArgRule>>, name = 'options'): void {
  OPTIONS.check(options, where, name);
  if (options === undefined) return;
  for (const [field, r] of Object.entries(fields)) {
    const value = (options as Record<string, unknown>)[field];
    if (value !== undefined) r.check(value, where, `${name}.${field}`);
  }
}

type AnyFunction = (...args: never[]) => unknown;

/**
 * `fn` behind argument checks, for exporting functions whose own module does not check their types. The
 * wrapper keeps `fn`'s name and signature; internal callers keep using `fn` itself.
 */
export function guarded<F extends AnyFunction>(where: string, fn: F, rules: readonly (readonly [string, ArgRule])[]): F {
  const wrapper = function (this: unknown, ...args: unknown[]) {
    checkArgs(where, args, rules);
    return (fn as unknown as (...a: unknown[]) => unknown).apply(this, args);
  };
  Object.defineProperty(wrapper, 'name', { value: fn.name });
  return wrapper as unknown as F;
}

/** Like {@link guarded} for a function returning a promise: a bad argument rejects it rather than throwing. */
export function guardedAsync<F extends (...args: never[]) => Promise<unknown>>(
  where: string,
  fn: F,
  rules: readonly (readonly [string, ArgRule])[],
): F {
  const checked = guarded(where, fn, rules) as unknown as (...a: unknown[]) => Promise<unknown>;
  const wrapper = function (this: unknown, ...args: unknown[]) {
    try {
      return checked.apply(this, args);
    } catch (e) {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- passes on the check's own typed error
      return Promise.reject(e);
    }
  };
  Object.defineProperty(wrapper, 'name', { value: fn.name });
  return wrapper as unknown as F;
}
