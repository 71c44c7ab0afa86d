import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import { type Graph, type TensorValue } from '../gpu/graph';
import { formatShape, paddedChannels } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { linearEntry } from './wgsl-common';
import { LINEAR_WORKGROUP_INDEX_WGSL, WORKGROUP_BUILTINS } from '../gpu/dispatch';

/**
 * CBAM (Woo et al. 2018) as the SINSR variant uses it (aaivu/CSM-SR architecture_2.py cbam_block):
 *   g_c = sigmoid(mlp(avgpool(x)) + mlp(maxpool(x)))      mlp = Linear(C→C/r) → ReLU → Linear(C/r→C), shared
 *   g_s = sigmoid(conv7x7(cat(mean_c(x·g_c), max_c(x·g_c))))   (channel-mean-max.ts + a Conv2d 2→1)
 *   out = (x·g_c)·g_s
 * Kernels here:
 * - `globalAvgMaxPool`: [n, h, w, C] → [n, 1, 2, C] (pixel 0 the mean, pixel 1 the max over h·w), one workgroup
 *   per (image, channel vec4), strided partial sums and maxima then a tree.
 * - `cbamChannelGate`: the shared MLP on both pooled vectors and the sigmoid → g_c [n, 1, 1, C], one workgroup per
 *   image.
 * - `applyCbam`: (x·g_c)·g_s (+ an optional residual), written to a new tensor or a channel slice of a wider one.
 */

/** The channel MLP's parameters in PyTorch nn.Linear layout. */
export interface CbamMlpWeights {
  /** [hidden, C] */
  w1: ArrayLike<number>;
  /** [hidden] */
  b1: ArrayLike<number>;
  /** [C, hidden] */
  w2: ArrayLike<number>;
  /** [C] */
  b2: ArrayLike<number>;
}

export const CBAM_MAX_HIDDEN = 256;
const POOL_WORKGROUP = 64;
const GATE_WORKGROUP = 64;
const APPLY_WORKGROUP = 64;

/**
 * Packs the MLP (vec4s): W1 rows (hidden × c4, lanes = input channels), b1 (⌈hidden/4⌉), W2 transposed
 * (hidden × c4, lanes = output channels), b2 (c4). Padded lanes are 0.
 */
export function packCbamMlp(w: CbamMlpWeights, channels: number, hidden: number): Float32Array {
  const c = channels;
  if (!Number.isInteger(hidden) || hidden < 1 || hidden > CBAM_MAX_HIDDEN) {
    throw new InvalidInputError(`CBAM hidden width ${hidden} must be an integer in 1..${CBAM_MAX_HIDDEN}`);
  }
  const sizes: [string, ArrayLike<number>, number][] = [
    ['w1', w.w1, hidden * c],
    ['b1', w.b1, hidden],
    ['w2', w.w2, c * hidden],
    ['b2', w.b2, c],
  ];
  for (const [name, a, n] of sizes) {
    if (a.length !== n) throw new InvalidInputError(`CBAM ${name} has ${a.length} values, expected ${n} (C=${c}, hidden=${hidden})`);
  }
  const c4 = paddedChannels(c) / 4;
  const h4 = Math.ceil(hidden / 4);
  const out = new Float32Array((2 * hidden * c4 + h4 + c4) * 4);
  const b1Off = hidden * c4 * 4;
  const w2Off = b1Off + h4 * 4;
  const b2Off = w2Off + hidden * c4 * 4;
  for (let j = 0; j < hidden; j++) {
    for (let ch = 0; ch < c; ch++) {
      out[j * c4 * 4 + ch] = w.w1[j * c + ch];
      out[w2Off + j * c4 * 4 + ch] = w.w2[ch * hidden + j];
    }
    out[b1Off + j] = w.b1[j];
  }
  for (let ch = 0; ch < c; ch++) out[b2Off + ch] = w.b2[ch];
  return out;
}

export function globalAvgMaxPoolWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  const WG = POOL_WORKGROUP;
  return `struct Params { groups: u32, c4: u32, plane: u32, inv_plane: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
${io.declare('y', 2, 'read_write')}

var<workgroup> psum: array<vec4<f32>, ${WG}>;
var<workgroup> pmax: array<vec4<f32>, ${WG}>;

${LINEAR_WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${WG})
fn main(${WORKGROUP_BUILTINS},
        @builtin(local_invocation_index) lid: u32) {
  // One workgroup per (image, vec4 group); the grid may be padded, so the guard is uniform per workgroup.
  let g = linear_workgroup_index(wid, nwg);
  let live = g < p.groups;
  var s = vec4<f32>(0.0);
  var m = vec4<f32>(-3.0e38);
  if (live) {
    let c = g % p.c4;
    let base = (g / p.c4) * p.plane * p.c4 + c;
    for (var k = lid; k < p.plane; k += ${WG}u) {
      let v = ${io.load('x', 'base + k * p.c4')};
      s += v;
      m = max(m, v);
    }
  }
  psum[lid] = s;
  pmax[lid] = m;
  workgroupBarrier();
  for (var h = ${WG / 2}u; h > 0u; h >>= 1u) {
    if (lid < h) {
      psum[lid] += psum[lid + h];
      pmax[lid] = max(pmax[lid], pmax[lid + h]);
    }
    workgroupBarrier();
  }
  if (live && lid == 0u) {
    let c = g % p.c4;
    let b = g / p.c4;
    ${io.store('y', '(b * 2u) * p.c4 + c', 'psum[0] * p.inv_plane')}
    ${io.store('y', '(b * 2u + 1u) * p.c4 + c', 'pmax[0]')}
  }
}`;
}

/** Per image and channel: the mean (pixel 0) and the max (pixel 1) over h·w → [n, 1, 2, C]. */
export function globalAvgMaxPool(graph: Graph, x: TensorValue, label: string): TensorValue {
  const [n, h, w, c] = x.shape;
  const c4 = paddedChannels(c) / 4;
  const y = graph.tensor([n, 1, 2, c], label);
  const groups = n * c4;
  graph.add({
    label,
    kernel: kernelShader('global_avg_max_pool', { family: 'global_avg_max_pool' }, (io) => globalAvgMaxPoolWgsl(io)),
    uniforms: { groups, c4, plane: h * w, inv_plane: 1 / (h * w) },
    bindings: { x, y },
    workgroups: groups,
    // An add and a max per input element, the mean's ÷ per channel.
    cost: { flops: 2 * logicalElements(x.shape) + n * c, bytes: logicalBytes(x.shape) + logicalBytes(y.shape) },
  });
  return y;
}

export function cbamChannelGateWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  const WG = GATE_WORKGROUP;
  return `struct Params { n: u32, c4: u32, c: u32, hidden: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('pooled', 1, 'read')}
@group(0) @binding(2) var<storage, read> weights: array<vec4<f32>>;
${io.declare('gate', 3, 'read_write')}

var<workgroup> hid: array<vec2<f32>, ${CBAM_MAX_HIDDEN}>;

${LINEAR_WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${WG})
fn main(${WORKGROUP_BUILTINS},
        @builtin(local_invocation_index) lid: u32) {
  let b = linear_workgroup_index(wid, nwg);
  if (b >= p.n) { return; }
  let c4 = p.c4;
  let avg = b * 2u * c4;
  let mx = avg + c4;
  let b1 = p.hidden * c4;
  let w2 = b1 + (p.hidden + 3u) / 4u;
  let b2 = w2 + p.hidden * c4;
  // Hidden units of the shared first layer, for the average (x) and the max (y) vector.
  for (var j = lid; j < p.hidden; j += ${WG}u) {
    var sa = vec4<f32>(0.0);
    var sm = vec4<f32>(0.0);
    for (var k = 0u; k < c4; k++) {
      let wv = weights[j * c4 + k];
      sa += wv * ${io.load('pooled', 'avg + k')};
      sm += wv * ${io.load('pooled', 'mx + k')};
    }
    let bias = weights[b1 + j / 4u][j % 4u];
    hid[j] = max(vec2<f32>((sa.x + sa.y) + (sa.z + sa.w), (sm.x + sm.y) + (sm.z + sm.w)) + bias, vec2<f32>(0.0));
  }
  workgroupBarrier();
  // Second layer on both, each with its bias (the MLP runs twice), summed, then the sigmoid; padded lanes 0.
  for (var k = lid; k < c4; k += ${WG}u) {
    var oa = weights[b2 + k];
    var om = oa;
    for (var j = 0u; j < p.hidden; j++) {
      let wv = weights[w2 + j * c4 + k];
      oa += hid[j].x * wv;
      om += hid[j].y * wv;
    }
    let g = 1.0 / (1.0 + exp(-(oa + om)));
    let lane = k * 4u + vec4<u32>(0u, 1u, 2u, 3u);
    ${io.store('gate', 'b * c4 + k', 'select(vec4<f32>(0.0), g, lane < vec4<u32>(p.c))')}
  }
}`;
}

/**
 * g_c from `globalAvgMaxPool`'s output: [n, 1, 2, C] → [n, 1, 1, C]. `weights` holds `packCbamMlp(...)`.
 */
export function cbamChannelGate(
  graph: Graph,
  pooled: TensorValue,
  params: { weights: GPUBuffer; hidden: number; label: string },
): TensorValue {
  const [n, one, two, c] = pooled.shape;
  if (one !== 1 || two !== 2)
    throw new InvalidInputError(`${params.label}: pooled tensor ${formatShape(pooled.shape)} must be [n, 1, 2, C]`);
  const hidden = params.hidden;
  if (!Number.isInteger(hidden) || hidden < 1 || hidden > CBAM_MAX_HIDDEN) {
    throw new InvalidInputError(`${params.label}: CBAM hidden width ${hidden} must be an integer in 1..${CBAM_MAX_HIDDEN}`);
  }
  const c4 = paddedChannels(c) / 4;
  const bytes = (2 * hidden * c4 + Math.ceil(hidden / 4) + c4) * 16;
  if (params.weights.size < bytes) {
    throw new InvalidInputError(
      `${params.label}: CBAM weights buffer holds ${params.weights.size} bytes, expected ${bytes} for C=${c}, hidden=${hidden}`,
    );
  }
  const gate = graph.tensor([n, 1, 1, c], `${params.label}.gate`);
  graph.add({
    label: `${params.label}.gate`,
    kernel: kernelShader('cbam[channel_gate]', { family: 'cbam_channel_gate' }, (io) => cbamChannelGateWgsl(io)),
    uniforms: { n, c4, c, hidden },
    bindings: { pooled, weights: params.weights, gate },
    workgroups: n,
    // Per image, the MLP on both pooled vectors: 2 × (W1 (2·C·hidden) + b1 + ReLU + W2 (2·hidden·C) + b2), then
    // their sum and the sigmoid per channel. Pooled vectors, W1, b1, W2, b2 read once, the gate written.
    cost: {
      flops: n * (8 * c * hidden + 4 * hidden + 4 * c),
      bytes: logicalBytes(pooled.shape) + (2 * hidden * c + hidden + c) * 4 + logicalBytes(gate.shape),
    },
  });
  return gate;
}

export function applyCbamWgsl(residual: boolean, io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c4: u32, pixels_per_item: u32, y_c4: u32, y_off4: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
${io.declare('cgate', 2, 'read')}
${io.declare('sgate', 3, 'read')}
${residual ? `${io.declare('res', 4, 'read')}\n` : ''}${io.declare('y', 5, 'read_write')}

${linearEntry(APPLY_WORKGROUP)}
  let k = i % p.c4;
  let pix = i / p.c4;
  let b = pix / p.pixels_per_item;
  var v = (${io.load('x', 'i')} * ${io.load('cgate', 'b * p.c4 + k')}) * ${io.load('sgate', 'pix')}.x;
  ${residual ? `v = v + ${io.load('res', 'i')};` : ''}
  ${io.store('y', 'pix * p.y_c4 + p.y_off4 + k', 'v')}
}`;
}

/**
 * (x · g_c) · g_s (+ residual, a tensor of x's shape), to a new tensor or to channels [offset, offset + C) of
 * `out.tensor`. g_c is [n, 1, 1, C]; g_s is [n, h, w, 1]. Padded lanes stay 0 because x (and the residual) are 0
 * there.
 */
export function applyCbam(
  graph: Graph,
  x: TensorValue,
  channelGate: TensorValue,
  spatialGate: TensorValue,
  label: string,
  options: { residual?: TensorValue; out?: { tensor: TensorValue; offset: number } } = {},
): TensorValue {
  const [n, h, w, c] = x.shape;
  const cg = channelGate.shape;
  if (cg[0] !== n || cg[1] !== 1 || cg[2] !== 1 || cg[3] !== c) {
    throw new InvalidInputError(`${label}: channel gate ${formatShape(cg)} does not match input ${formatShape(x.shape)}`);
  }
  const sg = spatialGate.shape;
  if (sg[0] !== n || sg[1] !== h || sg[2] !== w || sg[3] !== 1) {
    throw new InvalidInputError(`${label}: spatial gate ${formatShape(sg)} does not match input ${formatShape(x.shape)}`);
  }
  const res = options.residual;
  if (res && res.shape.some((d, i) => d !== x.shape[i])) {
    throw new InvalidInputError(`${label}: residual ${formatShape(res.shape)} does not match input ${formatShape(x.shape)}`);
  }
  const offset = options.out?.offset ?? 0;
  const y = options.out?.tensor ?? graph.tensor(x.shape, label);
  if (y.shape[0] !== n || y.shape[1] !== h || y.shape[2] !== w) {
    throw new InvalidInputError(`${label}: output ${formatShape(y.shape)} does not match input ${formatShape(x.shape)}`);
  }
  if (!Number.isInteger(offset) || offset < 0 || offset % 4 !== 0 || offset + c > y.shape[3]) {
    throw new InvalidInputError(`${label}: channel offset ${offset} (+${c}) must be a multiple of 4 inside ${y.shape[3]} channels`);
  }
  if ([x, channelGate, spatialGate, res].some((t) => t?.id === y.id))
    throw new InvalidInputError(`${label}: the output cannot also be an input`);
  const c4 = paddedChannels(c) / 4;
  const count = n * h * w * c4;
  graph.add({
    label,
    kernel: kernelShader(`cbam[apply${res ? ',res' : ''}]`, { family: 'cbam_apply', residual: res !== undefined }, (io) =>
      applyCbamWgsl(res !== undefined, io),
    ),
    uniforms: { count, c4, pixels_per_item: h * w, y_c4: paddedChannels(y.shape[3]) / 4, y_off4: offset / 4 },
    bindings: res ? { x, cgate: channelGate, sgate: spatialGate, res, y } : { x, cgate: channelGate, sgate: spatialGate, y },
    workgroups: Math.ceil(count / APPLY_WORKGROUP),
    // Two multiplies (and the residual's add) per element; x, both gates and the residual read, C channels written.
    cost: {
      flops: logicalElements(x.shape) * (res ? 3 : 2),
      bytes: (res ? 3 : 2) * logicalBytes(x.shape) + logicalBytes(channelGate.shape) + logicalBytes(spatialGate.shape),
    },
  });
  return y;
}
