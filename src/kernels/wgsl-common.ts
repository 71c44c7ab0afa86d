/**
 * WGSL shared by kernels with one invocation per work item. Large images need more workgroups than one grid
 * dimension allows, so `workgroupGrid` (src/gpu/graph.ts) spreads them over x and y and the shader folds them
 * back into one index.
 */
export function linearEntry(workgroupSize: number, index = 'i', count = 'p.count'): string {
  return `@compute @workgroup_size(${workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let ${index} = (wid.y * nwg.x + wid.x) * ${workgroupSize}u + lid;
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
