import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import { type Graph, type TensorValue } from '../gpu/graph';
import { formatShape, tensorElements } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { linearEntry } from './wgsl-common';

/** Elementwise binary operations on two tensors of the same shape. */
export type BinaryOp = 'add' | 'sub' | 'mul';

const OPERATOR: Record<BinaryOp, string> = { add: '+', sub: '-', mul: '*' };
const WORKGROUP = 64;

export function binaryWgsl(op: BinaryOp, io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('a', 1, 'read')}
${io.declare('b', 2, 'read')}
${io.declare('y', 3, 'read_write')}

${linearEntry(WORKGROUP)}
  ${io.store('y', 'i', `${io.load('a', 'i')} ${OPERATOR[op]} ${io.load('b', 'i')}`)}
}`;
}

/** `y = a op b`. Padded channels stay 0 because they are 0 in both operands (0−0, 0+0, 0·0). */
export function binary(graph: Graph, op: BinaryOp, a: TensorValue, b: TensorValue, label: string): TensorValue {
  if (a.shape.some((d, i) => d !== b.shape[i])) {
    throw new InvalidInputError(`${label}: shapes ${formatShape(a.shape)} and ${formatShape(b.shape)} differ`);
  }
  const y = graph.tensor(a.shape, label);
  const count = tensorElements(a.shape) / 4;
  graph.add({
    label,
    kernel: kernelShader(`binary[${op}]`, { family: 'binary', op }, (io) => binaryWgsl(op, io)),
    uniforms: { count },
    bindings: { a, b, y },
    workgroups: Math.ceil(count / WORKGROUP),
    cost: { flops: logicalElements(a.shape), bytes: 3 * logicalBytes(a.shape) },
  });
  return y;
}
