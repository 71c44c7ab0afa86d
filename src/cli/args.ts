/**
 * Argument parsing on node:util's parseArgs, turning its exceptions into UsageErrors (exit code 2, no stack
 * trace), plus validators for option values that say which option was wrong.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InvalidInputError } from '../errors';
import { checkPercentileRange, type PercentileRange } from '../io/normalize';
import { UsageError } from './errors';

type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** node:util's parseArgs (strict, positionals allowed) with its errors as UsageErrors for `command`. */
export function parseCommandArgs<O extends OptionSpec>(
  command: string,
  argv: string[],
  options: O,
): ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    // Node appends advice about '--' for positionals that look like options; an unknown option is the usual case.
    const message = (e as Error).message.replace(/\. To specify a positional argument[\s\S]*$/, '');
    throw new UsageError(message, command);
  }
}

/** A positive number (`--data-range 255`). */
export function positiveNumber(command: string, option: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(`${option} needs a positive number, got '${value}'`, command);
  }
  return n;
}

/** An integer in [min, max] (`--tile 256`). */
export function integerInRange(command: string, option: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || n < min || n > max) {
    throw new UsageError(`${option} needs an integer from ${min} to ${max}, got '${value}'`, command);
  }
  return n;
}

/** Two percentiles `low,high` with 0 <= low < high <= 100 (`--normalize 1,99.8`). */
export function percentileRange(command: string, option: string, value: string): PercentileRange {
  const bad = () =>
    new UsageError(`${option} needs two percentiles low,high with 0 <= low < high <= 100 (e.g. 1,99.8), got '${value}'`, command);
  const [low, high, ...rest] = value.split(',').map((p) => (p.trim() === '' ? Number.NaN : Number(p)));
  if (high === undefined || rest.length > 0) throw bad();
  try {
    return checkPercentileRange({ low, high }, option);
  } catch (e) {
    throw e instanceof InvalidInputError ? bad() : e;
  }
}

/** One of a fixed set of words (`--dtype f16`). */
export function oneOf<T extends string>(command: string, option: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`${option} must be one of ${allowed.join(', ')}, got '${value}'`, command);
  }
  return value as T;
}
