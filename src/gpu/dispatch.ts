import { LimitExceededError } from '../errors';

/**
 * How many workgroups a dispatch needs, and how the plan lays them out on the device.
 *
 * WebGPU caps every dimension of a dispatch at `maxComputeWorkgroupsPerDimension` (65,535 on most devices), and
 * large images need more workgroups than that. Kernels do not deal with the limit. A graph node declares either
 * - a number: a linear count of workgroups. The shader derives everything from one linear workgroup index, and
 *   the plan, when it compiles the graph for a device, spreads the count over x and y (`spreadWorkgroups`) so no
 *   dimension exceeds that device's limit; or
 * - an exact [x, y, z] grid, for a shader that uses the dimensions themselves (SSIM's tiles × channels). The plan
 *   only checks it against the limit.
 *
 * A shader recovers the linear index with the one WGSL helper below, `linear_workgroup_index(wid, nwg)`, from the
 * `workgroup_id` and `num_workgroups` builtins (`WORKGROUP_BUILTINS`). The x-extent of the spread thus comes from
 * the dispatch itself: the pipeline does not depend on the spread (no uniform to fill, and no override constant,
 * which would make one pipeline per image size). The spread rounds x·y up, so workgroups past the count exist;
 * every kernel returns early for an index past its work, as it does for invocations past its work in the last
 * workgroup.
 */
export type WorkgroupCount = number | readonly [number, number, number];

/** The builtins a kernel's entry point declares to call `linear_workgroup_index`. */
export const WORKGROUP_BUILTINS = '@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>';

/** The shared WGSL helper (module scope): the linear index of this workgroup in a spread dispatch. */
export const LINEAR_WORKGROUP_INDEX_WGSL = `// The plan spreads a linear count of workgroups over x and y (src/gpu/dispatch.ts); this folds it back.
fn linear_workgroup_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.y * nwg.x + wid.x;
}`;

/** Spreads a linear count of workgroups over x and y so no dimension exceeds `maxPerDimension`. */
export function spreadWorkgroups(count: number, maxPerDimension: number, what = 'dispatch'): [number, number, number] {
  if (count <= maxPerDimension) return [Math.max(1, count), 1, 1];
  const y = Math.ceil(count / maxPerDimension);
  if (y > maxPerDimension) {
    throw new LimitExceededError('maxComputeWorkgroupsPerDimension', count, maxPerDimension * maxPerDimension, `${what} (image too large)`);
  }
  return [Math.ceil(count / y), y, 1];
}

/** The grid the plan dispatches for a node's declared workgroups on a device with this limit. */
export function dispatchGrid(workgroups: WorkgroupCount, maxPerDimension: number, what: string): [number, number, number] {
  if (typeof workgroups === 'number') return spreadWorkgroups(workgroups, maxPerDimension, what);
  const largest = Math.max(...workgroups);
  if (largest > maxPerDimension) throw new LimitExceededError('maxComputeWorkgroupsPerDimension', largest, maxPerDimension, what);
  return [workgroups[0], workgroups[1], workgroups[2]];
}
