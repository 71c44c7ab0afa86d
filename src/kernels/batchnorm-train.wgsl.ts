import { InvalidInputError } from '../errors';
import { LINEAR_WORKGROUP_INDEX_WGSL, WORKGROUP_BUILTINS } from '../gpu/dispatch';
import { type TensorAccess } from '../gpu/tensor-access';
import { type Activation } from './activation';
import { linearEntry, range } from './wgsl-common';

/**
 * Per-channel sums over every pixel of an NHWC tensor, for the statistics and parameter gradients of BatchNorm
 * training and for the LayerNorm backward's dγ/dβ. WGSL has no float atomics, so a sum over N·H·W pixels is two
 * dispatches with a fixed order (bitwise reproducible):
 *
 * 1. partials: invocation (j, k) sums the quantities of channel vec4 k over pixels j, j + S, j + 2S, … for S
 *    chunks. Consecutive invocations read consecutive vec4s (k, then j = the next pixel), so reads coalesce
 *    whatever the channel count, and each invocation handles about `PIXELS_PER_CHUNK` pixels.
 * 2. reduce: one workgroup per channel vec4; thread t sums partials t, t + 64, …, then a shared-memory tree
 *    adds the 64 results, and thread 0 finishes (mean, 1/σ, running statistics, gradients).
 *
 * Partials live in a graph tensor [1, rows, S, C]: quantity r of chunk j, channel vec4 k at (r·S + j)·C/4 + k.
 */
export const PARTIALS_WORKGROUP = 64;
export const REDUCE_WORKGROUP = 64;
const PIXELS_PER_CHUNK = 32;
/** Enough invocations to fill a large GPU; more would only lengthen the reduce pass. */
const MAX_PARTIAL_INVOCATIONS = 65536;

/** How many chunks S the pixels are split into for channel vec4 count `c4`. */
export function statisticsChunks(pixels: number, c4: number): number {
  return Math.max(1, Math.min(Math.ceil(pixels / PIXELS_PER_CHUNK), Math.floor(MAX_PARTIAL_INVOCATIONS / c4)));
}

/** Binding number of the partials tensor in both passes; a kernel's own bindings use 1 … 15. */
const PARTIALS_BINDING = 16;

export interface PartialsSpec {
  /** Number of quantities summed per channel (rows of the partials tensor). */
  rows: number;
  /** Extra `struct Params` members (after `pixels, c4, chunks, count`), e.g. `, eps: f32`. */
  params: string;
  /** Binding declarations (numbers 1 … 15) and helper functions, through the plan's accessors. */
  declarations: (io: TensorAccess) => string;
  /** Lines run once per invocation; `k` is the channel vec4. */
  setup: (io: TensorAccess) => string;
  /** Loop-body lines defining `q0 … q{rows−1}` (vec4) for pixel `px`, whose vec4 of channel k is `e`. */
  terms: (io: TensorAccess) => string;
}

/** Pass 1: the partial sums over chunk j's pixels for channel vec4 k. */
export function channelPartialsWgsl(spec: PartialsSpec, io: TensorAccess): string {
  const rows = range(spec.rows);
  return `struct Params { pixels: u32, c4: u32, chunks: u32, count: u32${spec.params} }
@group(0) @binding(0) var<uniform> p: Params;
${spec.declarations(io)}
${io.declare('partial', PARTIALS_BINDING, 'read_write')}

${linearEntry(PARTIALS_WORKGROUP)}
  let k = i % p.c4;
  let j = i / p.c4;
${spec.setup(io)}
${rows.map((r) => `  var s${r} = vec4<f32>(0.0);`).join('\n')}
  for (var px = j; px < p.pixels; px += p.chunks) {
    let e = px * p.c4 + k;
${spec.terms(io)}
${rows.map((r) => `    s${r} += q${r};`).join('\n')}
  }
${rows.map((r) => `  ${io.store('partial', `(${r}u * p.chunks + j) * p.c4 + k`, `s${r}`)}`).join('\n')}
}`;
}

export interface ReduceSpec {
  rows: number;
  /** Extra `struct Params` members (after `c4, chunks, c`). */
  params: string;
  /** Binding declarations (numbers 1 … 15). */
  declarations: (io: TensorAccess) => string;
  /**
   * Lines run by one thread per channel vec4 k once the sums are known: `sum0 … sum{rows−1}` (vec4) and
   * `lane_ok` (vec4<bool>, false in padded lanes, which every output must write as 0 or leave alone).
   */
  finish: (io: TensorAccess) => string;
}

/** Pass 2: the fixed-order sum of every chunk's partials, then `finish`. One workgroup per channel vec4. */
export function channelReduceWgsl(spec: ReduceSpec, io: TensorAccess): string {
  const rows = range(spec.rows);
  const wg = REDUCE_WORKGROUP;
  return `struct Params { c4: u32, chunks: u32, c: u32${spec.params} }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('partial', PARTIALS_BINDING, 'read')}
${spec.declarations(io)}

var<workgroup> tree: array<vec4<f32>, ${spec.rows * wg}>;

${LINEAR_WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${wg})
fn main(${WORKGROUP_BUILTINS},
        @builtin(local_invocation_index) t: u32) {
  // k is the same for the whole workgroup, so returning here keeps the barriers below in uniform control flow.
  let k = linear_workgroup_index(wid, nwg);
  if (k >= p.c4) { return; }
${rows
  .map(
    (r) => `  var a${r} = vec4<f32>(0.0);
  for (var j = t; j < p.chunks; j += ${wg}u) { a${r} += ${io.load('partial', `(${r}u * p.chunks + j) * p.c4 + k`)}; }
  tree[${r * wg}u + t] = a${r};`,
  )
  .join('\n')}
  for (var stride = ${wg / 2}u; stride > 0u; stride = stride / 2u) {
    workgroupBarrier();
    if (t < stride) {
${rows.map((r) => `      tree[${r * wg}u + t] += tree[${r * wg}u + t + stride];`).join('\n')}
    }
  }
  // Thread 0 wrote tree[0] (and tree[64], …) last itself, so it needs no barrier to read them.
  if (t == 0u) {
${rows.map((r) => `    let sum${r} = tree[${r * wg}u];`).join('\n')}
    let lane_ok = k * 4u + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.c);
${spec.finish(io)}
  }
}`;
}

/**
 * `act_grad(g, yv, alpha)`: the upstream gradient through an activation fused into the forward, from that
 * forward's output y (PyTorch kinks: relu'(0) = 0, leaky_relu'(0) = α; y > 0 exactly when the input was > 0).
 */
export function activationGradWgsl(a: Activation): string {
  switch (a.kind) {
    case 'none':
      return 'fn act_grad(g: vec4<f32>, yv: vec4<f32>, alpha: f32) -> vec4<f32> { return g; }';
    case 'relu':
      return 'fn act_grad(g: vec4<f32>, yv: vec4<f32>, alpha: f32) -> vec4<f32> { return select(vec4<f32>(0.0), g, yv > vec4<f32>(0.0)); }';
    case 'leakyRelu':
      return 'fn act_grad(g: vec4<f32>, yv: vec4<f32>, alpha: f32) -> vec4<f32> { return select(g * alpha, g, yv > vec4<f32>(0.0)); }';
    default:
      throw new InvalidInputError(`no fused backward for activation '${a.kind}'`);
  }
}
