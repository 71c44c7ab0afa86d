/**
 * Which device limits we ask for. A device starts from the spec defaults (128 MiB per storage binding,
 * 256 MiB per buffer, 16 KiB workgroup memory) unless `requiredLimits` raises them, and whole networks at
 * real image sizes need more. We ask for the adapter's maximum of every limit our kernels depend on, and no
 * other: every kernel binds group 0 only and has a 1- or 2-D workgroup, so the defaults of maxBindGroups (4)
 * and maxComputeWorkgroupSizeZ (64) are more than enough.
 *
 * (The two "maxDynamic…BuffersPerPipelineLayout artificially reduced" lines Dawn prints on lavapipe do not
 * come from here: Dawn prints them while it discovers the adapter, before any device is requested.)
 */
export const LIMITS_WE_RAISE = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  // An alignment limit is "raised" by lowering it: the adapter's (16 on lavapipe, not the default 256) lets row
  // bands of tensors larger than one binding start at finer row boundaries (kernels/conv2d-bands.ts).
  'minStorageBufferOffsetAlignment',
] as const;

export type RaisedLimit = (typeof LIMITS_WE_RAISE)[number];

export function requiredLimitsFor(adapter: GPUAdapter): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of LIMITS_WE_RAISE) {
    const value = (adapter.limits as unknown as Record<string, number | undefined>)[name];
    if (typeof value === 'number' && Number.isFinite(value)) out[name] = value;
  }
  return out;
}

/** A plain-object snapshot of the limits that matter to us, for reports and error messages. */
export function describeLimits(limits: GPUSupportedLimits): Record<RaisedLimit, number> {
  const out = {} as Record<RaisedLimit, number>;
  for (const name of LIMITS_WE_RAISE) out[name] = (limits as unknown as Record<string, number>)[name];
  return out;
}
