import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import { type Graph, type TensorValue } from '../gpu/graph';
import { formatShape, tensorElements } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { linearEntry } from './wgsl-common';

/**
 * Backward of `clamp(x, lo, hi)` (pointwise.ts `clamp`). PyTorch 1.13's clamp_backward passes the gradient where
 * lo ≤ x ≤ hi, bounds included, and 0 elsewhere (checked: clamp(x, 0, 1) at x = 0 and x = 1 gives gradient 1).
 * It needs the input x: from the output alone x = lo cannot be told from x < lo. Padded channels stay 0 because
 * the upstream gradient is 0 there.
 */
const WORKGROUP = 64;

export function clampBackwardWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, lo: f32, hi: f32, no_lo: u32, no_hi: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('gy', 1, 'read')}
${io.declare('x', 2, 'read')}
${io.declare('dx', 3, 'read_write')}

${linearEntry(WORKGROUP)}
  let v = ${io.load('x', 'i')};
  // An infinite bound (a one-sided clamp) is no bound at all: even x = ±inf passes, as in PyTorch.
  let above_lo = (v >= vec4<f32>(p.lo)) | vec4<bool>(p.no_lo != 0u);
  let below_hi = (v <= vec4<f32>(p.hi)) | vec4<bool>(p.no_hi != 0u);
  let inside = above_lo & below_hi;
  ${io.store('dx', 'i', `select(vec4<f32>(0.0), ${io.load('gy', 'i')}, inside)`)}
}`;
}

/** dx of `clamp(x, lo, hi)` from the upstream gradient `gy` and the clamp's input `x`. */
export function clampBackward(graph: Graph, gy: TensorValue, x: TensorValue, lo: number, hi: number, label: string): TensorValue {
  if (gy.shape.some((d, i) => d !== x.shape[i])) {
    throw new InvalidInputError(
      `${label}: input '${x.label}' ${formatShape(x.shape)} does not match the gradient ${formatShape(gy.shape)}`,
    );
  }
  if (Number.isNaN(lo) || Number.isNaN(hi) || lo > hi || lo === Infinity || hi === -Infinity) {
    throw new InvalidInputError(`${label}: clamp bounds [${lo}, ${hi}] are not an interval`);
  }
  const dx = graph.tensor(gy.shape, label);
  const count = tensorElements(gy.shape) / 4;
  graph.add({
    label,
    kernel: kernelShader('clamp_backward', { family: 'clamp_backward' }, (io) => clampBackwardWgsl(io)),
    uniforms: {
      count,
      lo: Number.isFinite(lo) ? lo : 0,
      hi: Number.isFinite(hi) ? hi : 0,
      no_lo: lo === -Infinity ? 1 : 0,
      no_hi: hi === Infinity ? 1 : 0,
    },
    bindings: { gy, x, dx },
    workgroups: Math.ceil(count / WORKGROUP),
    // Two comparisons per element; gy and x read, dx written.
    cost: { flops: 2 * logicalElements(gy.shape), bytes: 3 * logicalBytes(gy.shape) },
  });
  return dx;
}
