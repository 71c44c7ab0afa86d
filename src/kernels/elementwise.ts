import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import { type Graph, type TensorValue, workgroupGrid } from '../gpu/graph';
import { formatShape, tensorElements } from '../gpu/tensor';
import { linearEntry } from './wgsl-common';

/** Elementwise binary operations on two tensors of the same shape. */
export type BinaryOp = 'add' | 'sub' | 'mul';

const EXPR: Record<BinaryOp, string> = { add: 'a[i] + b[i]', sub: 'a[i] - b[i]', mul: 'a[i] * b[i]' };
const WORKGROUP = 64;

export function binaryWgsl(op: BinaryOp): string {
  return `struct Params { count: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;

${linearEntry(WORKGROUP)}
  y[i] = ${EXPR[op]};
}`;
}

/** `y = a op b`. Padded channels stay 0 because they are 0 in both operands (0−0, 0+0, 0·0). */
export function binary(
  graph: Graph,
  op: BinaryOp,
  a: TensorValue,
  b: TensorValue,
  label: string,
  maxWorkgroupsPerDimension = 65535,
): TensorValue {
  if (a.shape.some((d, i) => d !== b.shape[i])) {
    throw new InvalidInputError(`${label}: shapes ${formatShape(a.shape)} and ${formatShape(b.shape)} differ`);
  }
  const y = graph.tensor(a.shape, label);
  const count = tensorElements(a.shape) / 4;
  graph.add({
    label,
    kernel: { label: `binary[${op}]`, code: binaryWgsl(op) },
    uniforms: { count },
    bindings: { a, b, y },
    workgroups: workgroupGrid(Math.ceil(count / WORKGROUP), maxWorkgroupsPerDimension),
    cost: { flops: logicalElements(a.shape), bytes: 3 * logicalBytes(a.shape) },
  });
  return y;
}
