import type { AdapterDescription } from '../gpu/adapter-info';
import type { VariantOverrides, VariantSource } from '../gpu/context';

/**
 * What a variant selector is given: the context (a GPUContext, or any `{ adapter, variantOverrides }`), whose
 * overrides win over the table; or a bare AdapterDescription (no overrides), which is how tests ask what the
 * table picks for an adapter they do not have.
 */
export type VariantSourceArg = VariantSource | AdapterDescription;

function isAdapterDescription(arg: VariantSourceArg): arg is AdapterDescription {
  return typeof (arg as AdapterDescription).isSoftware === 'boolean';
}

/** The adapter and the overrides of a selector's argument. */
export function variantSource(arg: VariantSourceArg): { adapter: AdapterDescription; overrides: VariantOverrides } {
  if (isAdapterDescription(arg)) return { adapter: arg, overrides: {} };
  return { adapter: arg.adapter, overrides: arg.variantOverrides ?? {} };
}
