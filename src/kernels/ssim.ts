import { InvalidInputError } from '../errors';
import { logicalBytes } from '../gpu/cost';
import { type Graph, type TensorValue } from '../gpu/graph';
import { paddedChannels } from '../gpu/tensor';
import { LINEAR_WORKGROUP_INDEX_WGSL, WORKGROUP_BUILTINS } from '../gpu/dispatch';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';

/**
 * Partial sums for SSIM and PSNR (src/runtime/ssim-gpu.ts). The GPU only produces per-workgroup sums; the caller adds
 * them up in float64, so the final mean over millions of pixels loses nothing to f32 accumulation.
 *
 * SSIM (`ssimPartials`): skimage filters with 'reflect' borders and then crops (win − 1) / 2 pixels from every
 * side before the mean, so only pixels whose whole window lies inside the image count and the border mode never
 * matters; we compute exactly those (H − 2r) × (W − 2r) pixels. One 8×8 workgroup per output tile and vec4
 * channel group: it copies the (8 + 2r)² input tile of both images into workgroup memory, each invocation
 * filters its pixel directly with the 2-D window w[ky]·w[kx] (the product of the separable 1-D weights), and the
 * 64 SSIM values are summed by a tree.
 *
 * Precision: the CPU reference forms σ² = E[x²] − μ² in float64; in f32 that cancels catastrophically (8-bit
 * data: E[x²] ≈ 6e4 with an absolute rounding of ~4e-3, against C2 ≈ 58). So each invocation takes two passes
 * over its window: μ first, then the centred moments Σ w (x − μ)², Σ w (x − μ)(y − μ_y), which equal the
 * variance and covariance up to a second-order term in μ's own rounding and never cancel.
 *
 * PSNR (`squaredErrorPartials`): Σ (a − b)² over contiguous runs of 64·PER vec4 elements per workgroup (each
 * invocation sums PER strided elements, then a tree). Padded channel lanes are 0 in both images and add 0.
 */
export const SSIM_TILE = 8;
const REDUCE_WORKGROUP = 64;
/** vec4 elements each PSNR invocation sums before the tree. */
const SQUARED_ERROR_PER_THREAD = 16;

/** Workgroup memory the SSIM kernel needs for a window radius `r`. */
export function ssimWorkgroupBytes(radius: number): number {
  const side = SSIM_TILE + 2 * radius;
  return 2 * side * side * 16 + SSIM_TILE * SSIM_TILE * 16;
}

export function ssimWgsl(weights: ArrayLike<number>, io: TensorAccess = WHOLE_BINDINGS): string {
  const k = weights.length;
  const radius = (k - 1) / 2;
  const side = SSIM_TILE + 2 * radius;
  const tile = SSIM_TILE * SSIM_TILE;
  // Written with full precision; WGSL rounds each literal to the nearest f32.
  const w = Array.from(weights, (v) => v.toPrecision(17)).join(', ');
  return `struct Params { h: u32, w: u32, c4: u32, oh: u32, ow: u32, gx: u32, channels: u32, c1: f32, c2: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('a', 1, 'read')}
${io.declare('b', 2, 'read')}
${io.declare('partials', 3, 'read_write')}

var<private> gauss: array<f32, ${k}> = array<f32, ${k}>(${w});
var<workgroup> tile_a: array<vec4<f32>, ${side * side}>;
var<workgroup> tile_b: array<vec4<f32>, ${side * side}>;
var<workgroup> red: array<vec4<f32>, ${tile}>;

@compute @workgroup_size(${SSIM_TILE}, ${SSIM_TILE})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) loc: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let c = wid.z;
  // Output pixel (ox, oy) is the window whose top-left input pixel is (ox, oy).
  let x0 = wid.x * ${SSIM_TILE}u;
  let y0 = wid.y * ${SSIM_TILE}u;
  for (var t = lid; t < ${side * side}u; t += ${tile}u) {
    // Clamped reads only feed invocations past the output edge, whose results are discarded.
    let iy = min(y0 + t / ${side}u, p.h - 1u);
    let ix = min(x0 + t % ${side}u, p.w - 1u);
    let idx = (iy * p.w + ix) * p.c4 + c;
    tile_a[t] = ${io.load('a', 'idx')};
    tile_b[t] = ${io.load('b', 'idx')};
  }
  workgroupBarrier();

  var s = vec4<f32>(0.0);
  if (x0 + loc.x < p.ow && y0 + loc.y < p.oh) {
    var mx = vec4<f32>(0.0);
    var my = vec4<f32>(0.0);
    for (var ky = 0u; ky < ${k}u; ky++) {
      var rx = vec4<f32>(0.0);
      var ry = vec4<f32>(0.0);
      let row = (loc.y + ky) * ${side}u + loc.x;
      for (var kx = 0u; kx < ${k}u; kx++) {
        rx += gauss[kx] * tile_a[row + kx];
        ry += gauss[kx] * tile_b[row + kx];
      }
      mx += gauss[ky] * rx;
      my += gauss[ky] * ry;
    }
    var vx = vec4<f32>(0.0);
    var vy = vec4<f32>(0.0);
    var vxy = vec4<f32>(0.0);
    for (var ky = 0u; ky < ${k}u; ky++) {
      var rxx = vec4<f32>(0.0);
      var ryy = vec4<f32>(0.0);
      var rxy = vec4<f32>(0.0);
      let row = (loc.y + ky) * ${side}u + loc.x;
      for (var kx = 0u; kx < ${k}u; kx++) {
        let dx = tile_a[row + kx] - mx;
        let dy = tile_b[row + kx] - my;
        rxx += gauss[kx] * dx * dx;
        ryy += gauss[kx] * dy * dy;
        rxy += gauss[kx] * dx * dy;
      }
      vx += gauss[ky] * rxx;
      vy += gauss[ky] * ryy;
      vxy += gauss[ky] * rxy;
    }
    let ssim = ((2.0 * mx * my + p.c1) * (2.0 * vxy + p.c2)) / ((mx * mx + my * my + p.c1) * (vx + vy + p.c2));
    // Padded lanes (0 in both images) would score 1; they must add nothing.
    let lane = vec4<u32>(0u, 1u, 2u, 3u) + c * 4u;
    s = select(vec4<f32>(0.0), ssim, lane < vec4<u32>(p.channels));
  }
  red[lid] = s;
  workgroupBarrier();
  for (var span = ${tile / 2}u; span > 0u; span >>= 1u) {
    if (lid < span) { red[lid] += red[lid + span]; }
    workgroupBarrier();
  }
  if (lid == 0u) { ${io.store('partials', '(wid.y * p.gx + wid.x) * p.c4 + c', 'red[0]')} }
}`;
}

/**
 * Per-tile sums of the SSIM map of `a` and `b` ([1, H, W, C], H, W ≥ 2r + 1) over the (H − 2r) × (W − 2r)
 * pixels whose window fits: → [1, ⌈(H − 2r) / 8⌉, ⌈(W − 2r) / 8⌉, C], channel c of a tile holding Σ SSIM_c.
 * `weights` are the normalised 1-D Gaussian weights (odd length); c1 = (K1·L)², c2 = (K2·L)².
 */
export function ssimPartials(
  graph: Graph,
  a: TensorValue,
  b: TensorValue,
  weights: ArrayLike<number>,
  c1: number,
  c2: number,
  label: string,
): TensorValue {
  const [n, h, w, ch] = a.shape;
  if (b.shape.some((d, i) => d !== a.shape[i])) throw new InvalidInputError(`${label}: the two images differ in shape`);
  if (n !== 1) throw new InvalidInputError(`${label}: one image at a time (batch ${n})`);
  const k = weights.length;
  if (k % 2 !== 1) throw new InvalidInputError(`${label}: the window must have odd length, got ${k}`);
  if (h < k || w < k) throw new InvalidInputError(`${label}: a ${h}x${w} image is smaller than the ${k}x${k} window`);
  const oh = h - k + 1;
  const ow = w - k + 1;
  const gx = Math.ceil(ow / SSIM_TILE);
  const gy = Math.ceil(oh / SSIM_TILE);
  const c4 = paddedChannels(ch) / 4;
  const partials = graph.tensor([1, gy, gx, ch], label);
  // A copy: the text bakes the weights in, generated later (on a pipeline-cache miss), and the key names them.
  const gauss = Array.from(weights);
  graph.add({
    label,
    kernel: kernelShader(`ssim[k${k}]`, { family: 'ssim', weights: gauss }, (io) => ssimWgsl(gauss, io)),
    uniforms: { h, w, c4, oh, ow, gx, channels: ch, c1, c2 },
    bindings: { a, b, partials },
    workgroups: [gx, gy, c4],
    // Per output pixel and channel, as the shader computes it: the two means (4 per tap, 4 per window row), the
    // centred moments (11 per tap, 6 per row), the SSIM formula and the sum (15). Both images read once.
    cost: {
      flops: oh * ow * ch * (15 * k * k + 10 * k + 15),
      bytes: 2 * logicalBytes(a.shape) + logicalBytes(partials.shape),
    },
  });
  return partials;
}

export function squaredErrorWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, groups: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('a', 1, 'read')}
${io.declare('b', 2, 'read')}
${io.declare('partials', 3, 'read_write')}

var<workgroup> red: array<vec4<f32>, ${REDUCE_WORKGROUP}>;

${LINEAR_WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${REDUCE_WORKGROUP})
fn main(${WORKGROUP_BUILTINS},
        @builtin(local_invocation_index) lid: u32) {
  // The grid may be padded past p.groups; the guard is uniform per workgroup.
  let g = linear_workgroup_index(wid, nwg);
  var acc = vec4<f32>(0.0);
  if (g < p.groups) {
    let base = g * ${REDUCE_WORKGROUP * SQUARED_ERROR_PER_THREAD}u + lid;
    for (var j = 0u; j < ${SQUARED_ERROR_PER_THREAD}u; j++) {
      let e = base + j * ${REDUCE_WORKGROUP}u;
      if (e < p.count) {
        let d = ${io.load('a', 'e')} - ${io.load('b', 'e')};
        acc += d * d;
      }
    }
  }
  red[lid] = acc;
  workgroupBarrier();
  for (var span = ${REDUCE_WORKGROUP / 2}u; span > 0u; span >>= 1u) {
    if (lid < span) { red[lid] += red[lid + span]; }
    workgroupBarrier();
  }
  if (g < p.groups && lid == 0u) { ${io.store('partials', 'g', 'red[0]')} }
}`;
}

/**
 * Sums of (a − b)² over runs of the NHWC-padded elements: → [1, 1, groups, 4]; the sum of every value of the
 * result is Σ (a − b)² over all pixels and channels.
 */
export function squaredErrorPartials(graph: Graph, a: TensorValue, b: TensorValue, label: string): TensorValue {
  if (b.shape.some((d, i) => d !== a.shape[i])) throw new InvalidInputError(`${label}: the two images differ in shape`);
  const [n, h, w, ch] = a.shape;
  const count = (n * h * w * paddedChannels(ch)) / 4;
  const groups = Math.ceil(count / (REDUCE_WORKGROUP * SQUARED_ERROR_PER_THREAD));
  const partials = graph.tensor([1, 1, groups, 4], label);
  graph.add({
    label,
    kernel: kernelShader('squared_error', { family: 'squared_error' }, (io) => squaredErrorWgsl(io)),
    uniforms: { count, groups },
    bindings: { a, b, partials },
    workgroups: groups,
    // Subtract, square, add per element; both images read once, the partial sums written.
    cost: { flops: 3 * n * h * w * ch, bytes: 2 * logicalBytes(a.shape) + logicalBytes(partials.shape) },
  });
  return partials;
}
