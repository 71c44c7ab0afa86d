import { LINEAR_WORKGROUP_INDEX_WGSL, WORKGROUP_BUILTINS } from '../gpu/dispatch';

/**
 * WGSL shared by kernels with one invocation per work item: the entry point, whose work item `index` is the
 * linear workgroup index (the plan spreads the node's workgroup count over the device's grid, src/gpu/dispatch.ts)
 * times the workgroup size plus the local index. It defines the shared `linear_workgroup_index` helper, so a
 * shader has one entry point made by it.
 */
export function linearEntry(workgroupSize: number, index = 'i', count = 'p.count'): string {
  return `${LINEAR_WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${workgroupSize})
fn main(${WORKGROUP_BUILTINS},
        @builtin(local_invocation_index) lid: u32) {
  let ${index} = linear_workgroup_index(wid, nwg) * ${workgroupSize}u + lid;
  if (${index} >= ${count}) { return; }`;
}

/**
 * Splits work item `i` (one vec4 channel group of one NHWC output pixel) into the group `channel`, the output
 * column `ox`, row `oy` and batch item `b`; needs `p.wo` and `p.ho`.
 */
export function outputPixelIndex(c4: string, channel = 'c'): string {
  return `  let ${channel} = i % ${c4};
  let pix = i / ${c4};
  let ox = pix % p.wo;
  let oy = (pix / p.wo) % p.ho;
  let b = pix / (p.wo * p.ho);`;
}

/** 0, 1, …, n − 1: the indices the shader generators unroll over. */
export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
