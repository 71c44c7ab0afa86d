import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import type { Graph, TensorValue } from '../gpu/graph';
import { formatShape, tensorElements } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { linearEntry } from './wgsl-common';

const WORKGROUP = 64;

export function scalarWeightedAddWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('a', 1, 'read')}
${io.declare('b', 2, 'read')}
${io.declare('s', 3, 'read')}
${io.declare('y', 4, 'read_write')}

${linearEntry(WORKGROUP)}
  ${io.store('y', 'i', `${io.load('a', 'i')} + ${io.load('s', '0u')}.x * ${io.load('b', 'i')}`)}
}`;
}

/**
 * `y = a + s·b` where the weight s is channel 0 of a [1, 1, 1, 1] tensor, so a weight that changes between steps
 * (Neighbor2Neighbor's γ, which grows with the epoch) is an input of the plan, not a constant compiled into it.
 * Padded channels stay 0.
 */
export function scalarWeightedAdd(graph: Graph, a: TensorValue, b: TensorValue, s: TensorValue, label: string): TensorValue {
  if (a.shape.some((d, i) => d !== b.shape[i])) {
    throw new InvalidInputError(`${label}: shapes ${formatShape(a.shape)} and ${formatShape(b.shape)} differ`);
  }
  if (s.shape.some((d) => d !== 1)) throw new InvalidInputError(`${label}: the weight must be [1, 1, 1, 1], got ${formatShape(s.shape)}`);
  const y = graph.tensor(a.shape, label);
  const count = tensorElements(a.shape) / 4;
  graph.add({
    label,
    kernel: kernelShader('scalar_weighted_add', { family: 'scalar_weighted_add' }, (io) => scalarWeightedAddWgsl(io)),
    uniforms: { count },
    bindings: { a, b, s, y },
    workgroups: Math.ceil(count / WORKGROUP),
    cost: { flops: 2 * logicalElements(a.shape), bytes: 3 * logicalBytes(a.shape) },
  });
  return y;
}
