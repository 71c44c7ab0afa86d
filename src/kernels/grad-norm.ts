/**
 * The global L2 norm of the gradients and torch.nn.utils.clip_grad_norm_(max_norm, norm_type=2) over a flat f32
 * buffer: a whole gradient arena (gpu/parameter-arena.ts), whose gaps are 0 and add nothing.
 *
 * PyTorch takes the norm of the per-tensor norms, ‖(‖g_i‖₂)_i‖₂; we sum the squares of all elements directly.
 * The two agree up to f32 rounding (the sums are grouped differently); both are exact in real arithmetic.
 *
 * The sum is a parallel, deterministic two-pass reduction: pass 1 gives each workgroup a fixed chunk of vec4s and
 * reduces it in shared memory in a fixed tree order into one partial per workgroup; pass 2 sums the partials in a
 * fixed order in one workgroup. The same buffer size always gives bitwise the same result on a device.
 */
import { invalidArgument } from '../check-args';
import { InvalidInputError } from '../errors';
import { type Binding, type Graph, type TensorValue } from '../gpu/graph';
import { LINEAR_WORKGROUP_INDEX_WGSL, WORKGROUP_BUILTINS } from '../gpu/dispatch';
import { formatShape } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { checkFlatBindings } from './optimizer';
import { linearEntry } from './wgsl-common';

const REDUCE_WORKGROUP = 256;
/** vec4s each invocation of pass 1 reads: a workgroup covers 256·16 vec4s = 16,384 f32. */
const VEC4S_PER_INVOCATION = 16;
const CHUNK = REDUCE_WORKGROUP * VEC4S_PER_INVOCATION;
const CLIP_WORKGROUP = 64;

/** The shared-memory tree sum of `acc` (fixed order); all invocations of the workgroup must reach it. */
function treeSum(): string {
  return `  acc[lid] = sum;
  workgroupBarrier();
  for (var stride = ${REDUCE_WORKGROUP / 2}u; stride > 0u; stride = stride >> 1u) {
    if (lid < stride) { acc[lid] = acc[lid] + acc[lid + stride]; }
    workgroupBarrier();
  }`;
}

export function sumSquaresPartialsWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, groups: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('grads', 1, 'read')}
${io.declare('partials', 2, 'read_write')}
var<workgroup> acc: array<vec4<f32>, ${REDUCE_WORKGROUP}>;

${LINEAR_WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${REDUCE_WORKGROUP})
fn main(${WORKGROUP_BUILTINS}, @builtin(local_invocation_index) lid: u32) {
  let group = linear_workgroup_index(wid, nwg);
  // Uniform per workgroup: workgroups past the count (the plan's spread rounds up) leave before the barriers.
  if (group >= p.groups) { return; }
  let start = group * ${CHUNK}u;
  var sum = vec4<f32>(0.0);
  for (var k = 0u; k < ${VEC4S_PER_INVOCATION}u; k++) {
    let j = start + k * ${REDUCE_WORKGROUP}u + lid;
    if (j < p.count) {
      let g = ${io.load('grads', 'j')};
      sum = sum + g * g;
    }
  }
${treeSum()}
  if (lid == 0u) { ${io.store('partials', 'group', 'acc[0]')} }
}`;
}

export function sumPartialsWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { groups: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('partials', 1, 'read')}
${io.declare('norm_sq', 2, 'read_write')}
var<workgroup> acc: array<vec4<f32>, ${REDUCE_WORKGROUP}>;

@compute @workgroup_size(${REDUCE_WORKGROUP})
fn main(@builtin(local_invocation_index) lid: u32) {
  var sum = vec4<f32>(0.0);
  for (var j = lid; j < p.groups; j += ${REDUCE_WORKGROUP}u) {
    sum = sum + ${io.load('partials', 'j')};
  }
${treeSum()}
  if (lid == 0u) {
    let t = acc[0];
    ${io.store('norm_sq', '0u', 'vec4<f32>((t.x + t.y) + (t.z + t.w), 0.0, 0.0, 0.0)')}
  }
}`;
}

/**
 * Σg² over `elements` f32 values of `grads` (rounded up to whole vec4s; a tail past `elements` must be 0), as a
 * [1, 1, 1, 1] tensor. Two dispatches: per-chunk partials, then their sum.
 */
export function gradNormSquared(graph: Graph, grads: Binding, elements: number, label: string): TensorValue {
  const count = checkFlatBindings(label, elements, { grads });
  const groups = Math.ceil(count / CHUNK);
  const partials = graph.tensor([1, 1, groups, 4], `${label} partials`);
  graph.add({
    label: `${label} partials`,
    kernel: kernelShader('sum-squares-partials', { family: 'sum-squares-partials' }, (io) => sumSquaresPartialsWgsl(io)),
    uniforms: { count, groups },
    bindings: { grads, partials },
    workgroups: groups,
    cost: { flops: 2 * elements, bytes: 4 * elements + 16 * groups },
  });
  const normSq = graph.tensor([1, 1, 1, 1], `${label}`);
  graph.add({
    label,
    kernel: kernelShader('sum-partials', { family: 'sum-partials' }, (io) => sumPartialsWgsl(io)),
    uniforms: { groups },
    bindings: { partials, norm_sq: normSq },
    workgroups: 1,
    cost: { flops: 4 * groups, bytes: 16 * groups + 4 },
  });
  return normSq;
}

export function clipWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, max_norm: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('grads', 1, 'read_write')}
${io.declare('norm_sq', 2, 'read')}
${io.declare('total_norm', 3, 'read_write')}

${linearEntry(CLIP_WORKGROUP)}
  let total = sqrt(${io.load('norm_sq', '0u')}.x);
  // clip_grad_norm_: max_norm / (total + 1e-6) is a Python float over a tensor, which PyTorch evaluates as
  // reciprocal() * max_norm; clamp(max=1). The gradients are multiplied even when the coefficient is 1.
  let coef = min((1.0 / (total + f32(1e-6))) * p.max_norm, 1.0);
  ${io.store('grads', 'i', `${io.load('grads', 'i')} * coef`)}
  if (i == 0u) { ${io.store('total_norm', '0u', 'vec4<f32>(total, 0.0, 0.0, 0.0)')} }
}`;
}

/**
 * torch.nn.utils.clip_grad_norm_(max_norm, 2) on `elements` f32 values of `grads`, given `normSquared` (Σg²,
 * from `gradNormSquared`): total = √Σg², coef = min(maxNorm/(total + 1e-6), 1), every gradient × coef. Returns
 * a [1, 1, 1, 1] tensor holding the pre-clip total norm, which clip_grad_norm_ returns, for reporting.
 */
export function clipGradNorm(
  graph: Graph,
  grads: Binding,
  elements: number,
  normSquared: TensorValue,
  maxNorm: number,
  label: string,
): TensorValue {
  const count = checkFlatBindings(label, elements, { grads });
  if (typeof maxNorm !== 'number' || !Number.isFinite(maxNorm) || maxNorm < 0) {
    throw invalidArgument(label, 'maxNorm', 'a finite number >= 0', maxNorm);
  }
  if (normSquared.shape.some((d) => d !== 1)) {
    throw new InvalidInputError(`${label}: normSquared must be a [1, 1, 1, 1] tensor, got ${formatShape(normSquared.shape)}`);
  }
  const totalNorm = graph.tensor([1, 1, 1, 1], `${label} total norm`);
  graph.add({
    label,
    kernel: kernelShader('clip-grad-norm', { family: 'clip-grad-norm' }, (io) => clipWgsl(io)),
    uniforms: { count, max_norm: maxNorm },
    bindings: { grads, norm_sq: normSquared, total_norm: totalNorm },
    workgroups: Math.ceil(count / CLIP_WORKGROUP),
    cost: { flops: elements, bytes: 8 * elements + 8 },
  });
  return totalNorm;
}
