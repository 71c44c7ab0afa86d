import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import { type Binding, type Graph, type TensorValue } from '../gpu/graph';
import { paddedChannels } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { addChannelSums, checkChannelBinding, checkShape } from './batchnorm-train';
import { kernelShader } from './kernel-source';
import { linearEntry } from './wgsl-common';

/**
 * Backward of the channels-last nn.LayerNorm(C) of layernorm.ts (SCUNet, docs/training.md §1.5). Per pixel, with
 * x̂ = (x − μ)·r, r = 1/√(σ²_b + eps) and ĝ = g·γ:
 *   dx = r·(ĝ − mean_C ĝ − x̂·mean_C(ĝ·x̂)),   dγ = Σ_pixels g·x̂,   dβ = Σ_pixels g.
 *
 * 1. One invocation per pixel (as the forward) recomputes μ and r exactly as the forward does (shift by the first
 *    channel, two passes), writes dx, and saves (s, m, r) per pixel, the shift, the mean of x − s and r, so that
 *    2. the per-channel sums over pixels (batchnorm-train.wgsl.ts: parallel partials, fixed-order reduce) see the
 *    same x̂ without recomputing the statistics once per channel.
 */
const WORKGROUP = 64;

export function layerNormDxWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  const x = (i: string) => io.load('x', i);
  return `struct Params { pixels: u32, c4: u32, c: u32, eps: f32, inv_c: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
${io.declare('gy', 2, 'read')}
@group(0) @binding(3) var<storage, read> weight: array<vec4<f32>>;
${io.declare('dx', 4, 'read_write')}
${io.declare('stats', 5, 'read_write')}

fn lane_mask(k: u32) -> vec4<f32> {
  let lane = k * 4u + vec4<u32>(0u, 1u, 2u, 3u);
  return select(vec4<f32>(0.0), vec4<f32>(1.0), lane < vec4<u32>(p.c));
}

${linearEntry(WORKGROUP, 'px', 'p.pixels')}
  let base = px * p.c4;
  let last = p.c4 - 1u;
  let s = ${x('base')}.x;
  // The forward's statistics, the same operations in the same order (layernorm.ts).
  var acc = vec4<f32>(0.0);
  for (var k = 0u; k < last; k++) { acc += ${x('base + k')} - s; }
  acc += (${x('base + last')} - s) * lane_mask(last);
  let m = (acc.x + acc.y + acc.z + acc.w) * p.inv_c;
  var sq = vec4<f32>(0.0);
  for (var k = 0u; k < last; k++) { let d = (${x('base + k')} - s) - m; sq += d * d; }
  let dl = ((${x('base + last')} - s) - m) * lane_mask(last);
  sq += dl * dl;
  let variance = (sq.x + sq.y + sq.z + sq.w) * p.inv_c;
  let r = 1.0 / sqrt(variance + p.eps);
  // mean_C ĝ and mean_C ĝ·x̂ over the logical channels (the mask keeps padded lanes out whatever they hold).
  var sg = vec4<f32>(0.0);
  var sgx = vec4<f32>(0.0);
  for (var k = 0u; k < p.c4; k++) {
    let gh = ${io.load('gy', 'base + k')} * weight[k] * lane_mask(k);
    sg += gh;
    sgx += gh * (((${x('base + k')} - s) - m) * r);
  }
  let mg = (sg.x + sg.y + sg.z + sg.w) * p.inv_c;
  let mgx = (sgx.x + sgx.y + sgx.z + sgx.w) * p.inv_c;
  for (var k = 0u; k < p.c4; k++) {
    let gh = ${io.load('gy', 'base + k')} * weight[k];
    let xh = ((${x('base + k')} - s) - m) * r;
    let v = r * ((gh - mg) - xh * mgx);
    ${io.store('dx', 'base + k', 'select(vec4<f32>(0.0), v, lane_mask(k) > vec4<f32>(0.5))')}
  }
  ${io.store('stats', 'px', 'vec4<f32>(s, m, r, 0.0)')}
}`;
}

/**
 * Backward of `layerNorm` (channels-last, over C): returns dx and writes dγ and dβ (overwriting `dWeight`,
 * `dBias`). `weight` is γ in PyTorch's layout ([C], vec4-padded with zeros).
 */
export function layerNormBackward(
  graph: Graph,
  gy: TensorValue,
  x: TensorValue,
  params: { weight: Binding; dWeight: Binding; dBias: Binding; eps: number; label: string },
): TensorValue {
  const { label, eps } = params;
  const [n, h, w, c] = x.shape;
  checkShape(label, 'the gradient gy', gy, x.shape);
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new InvalidInputError(`${label}: LayerNorm eps must be a finite number >= 0, got ${eps}`);
  checkChannelBinding(label, 'weight', params.weight, c);
  checkChannelBinding(label, 'dWeight', params.dWeight, c);
  checkChannelBinding(label, 'dBias', params.dBias, c);
  const pixels = n * h * w;
  const dx = graph.tensor(x.shape, `${label}.dx`);
  // (s, m, r) per pixel: [n, h, w, 3] is one vec4 per pixel.
  const stats = graph.tensor([n, h, w, 3], `${label}.stats`);
  graph.add({
    label: `${label}.dx`,
    kernel: kernelShader('layernorm_dx', { family: 'layernorm_dx' }, (io) => layerNormDxWgsl(io)),
    uniforms: { pixels, c4: paddedChannels(c) / 4, c, eps, inv_c: 1 / c },
    bindings: { x, gy, weight: params.weight, dx, stats },
    workgroups: Math.ceil(pixels / WORKGROUP),
    // Per element: the statistics (4, as the forward counts them), ĝ (1), x̂ (2), the two means' products and adds (3),
    // dx (4).
    cost: { flops: 14 * logicalElements(x.shape), bytes: 3 * logicalBytes(x.shape) + c * 4 + pixels * 12 },
  });
  addChannelSums(graph, {
    label: `${label}.dparams`,
    shape: x.shape,
    rows: 2,
    partials: {
      key: { op: 'ln_grad_sums' },
      params: '',
      declarations: (io) => [io.declare('x', 1, 'read'), io.declare('gy', 2, 'read'), io.declare('stats', 3, 'read')].join('\n'),
      setup: () => '',
      terms: (io) => `    let st = ${io.load('stats', 'px')};
    let q0 = ${io.load('gy', 'e')};
    let q1 = q0 * (((${io.load('x', 'e')} - st.x) - st.y) * st.z);`,
      uniforms: {},
      bindings: { x, gy, stats },
    },
    reduce: {
      key: { op: 'ln_dparams' },
      params: '',
      declarations: () => `@group(0) @binding(1) var<storage, read_write> d_weight: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> d_bias: array<vec4<f32>>;`,
      finish: () => `    d_weight[k] = select(vec4<f32>(0.0), sum1, lane_ok);
    d_bias[k] = select(vec4<f32>(0.0), sum0, lane_ok);`,
      uniforms: {},
      bindings: { d_weight: params.dWeight, d_bias: params.dBias },
    },
    // x̂ (3), g·x̂ and two adds.
    flopsPerElement: 6,
    bytesRead: 2 * logicalBytes(x.shape) + pixels * 12,
    reduceBytes: 2 * c * 4,
  });
  return dx;
}
