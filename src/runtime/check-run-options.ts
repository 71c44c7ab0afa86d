/**
 * RunOptions (runtime/restoration-model.ts) checked field by field, for denoise/upscale (api-checks.ts) and for
 * a model's own run methods. Imports only check-args and io/normalize, so that every floor above io may import it.
 */
import { ABORT_SIGNAL, type ArgRule, checkOptionFields, FUNCTION, NON_NEGATIVE_INTEGER, POSITIVE_NUMBER } from '../check-args';
import { checkPercentileRange } from '../io/normalize';

export const RUN_OPTION_FIELDS: Readonly<Record<string, ArgRule>> = {
  tileSize: NON_NEGATIVE_INTEGER,
  maxActivationBytes: POSITIVE_NUMBER,
  onProgress: FUNCTION,
  signal: ABORT_SIGNAL,
  normalize: { check: (value, where, name) => void checkPercentileRange(value, `${where}: ${name}`) },
};

/** Throws InvalidInputError naming the option (`run: options.tileSize must be …`) for a wrong type. */
export function checkRunOptions(where: string, options: unknown): void {
  checkOptionFields(where, options, RUN_OPTION_FIELDS);
}
