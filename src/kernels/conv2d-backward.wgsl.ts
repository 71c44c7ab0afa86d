import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { linearEntry } from './wgsl-common';

export const INPUT_GRAD_GATHER_WORKGROUP = 64;

/**
 * The general input gradient of a Conv2d (any stride, padding, dilation, groups), for the geometries the forward
 * kernels cannot take (conv2d-backward.ts): one invocation per dx vec4, summing in a fixed order over the taps
 * whose window covers it, dx[n, iy, ix, ci] = Σ gy[n, oy, ox, co]·W[co, ci', ky, kx] with oy = (iy + p − ky·d)/s
 * (and ox likewise) an integer in range. Rows and columns no window touches get 0.
 *
 * Dense / grouped: the weight is the unflipped in/out-swapped tap-major pack (weight-pack-gpu.ts
 * `conv2dTransposedWeightPack`): per tap, gy channel vec4 (within the group) and dx channel vec4, four vec4s (one
 * per gy channel) of 4 dx channels. Depthwise: the depthwise pack, per channel vec4 one vec4 per tap.
 */
export function conv2dInputGradGatherWgsl(depthwise: boolean, io: TensorAccess = WHOLE_BINDINGS): string {
  const accumulate = depthwise
    ? `      acc = fma(${io.load('gy', 'gb + c4')}, weight[c4 * p.kh * p.kw + tap], acc);`
    : `      var wi = (tap * p.coutg4 * p.c4 + c4) * 4u;
      for (var co4 = 0u; co4 < p.coutg4; co4++) {
        let g = ${io.load('gy', 'gb + gco + co4')};
        acc = acc + weight[wi] * g.x + weight[wi + 1u] * g.y + weight[wi + 2u] * g.z + weight[wi + 3u] * g.w;
        wi += p.c4 * 4u;
      }`;
  return `struct Params {
  n: u32, h: u32, w: u32, c4: u32,
  ho: u32, wo: u32, gc4: u32, cin: u32,
  kh: u32, kw: u32, stride: i32, dilation: i32,
  pad_y: i32, pad_x: i32, cing4: u32, coutg4: u32,
  count: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('gy', 1, 'read')}
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;
${io.declare('dx', 3, 'read_write')}

${linearEntry(INPUT_GRAD_GATHER_WORKGROUP)}
  let c4 = i % p.c4;
  let pix = i / p.c4;
  let ix = i32(pix % p.w);
  let iy = i32((pix / p.w) % p.h);
  let n = pix / (p.w * p.h);
  // The group's first gy channel vec4 (dense and grouped kernels; the depthwise one pairs channels one to one).
  let gco = (c4 / p.cing4) * p.coutg4;
  var acc = vec4<f32>(0.0);
  for (var ky = 0u; ky < p.kh; ky++) {
    let ty = iy + p.pad_y - i32(ky) * p.dilation;
    if (ty < 0 || ty % p.stride != 0) { continue; }
    let oy = u32(ty / p.stride);
    if (oy >= p.ho) { continue; }
    for (var kx = 0u; kx < p.kw; kx++) {
      let tx = ix + p.pad_x - i32(kx) * p.dilation;
      if (tx < 0 || tx % p.stride != 0) { continue; }
      let ox = u32(tx / p.stride);
      if (ox >= p.wo) { continue; }
      let tap = ky * p.kw + kx;
      let gb = ((n * p.ho + oy) * p.wo + ox) * p.gc4;
${accumulate}
    }
  }
  let keep = (vec4<u32>(c4 * 4u) + vec4<u32>(0u, 1u, 2u, 3u)) < vec4<u32>(p.cin);
  ${io.store('dx', 'i', 'select(vec4<f32>(0.0), acc, keep)')}
}`;
}
