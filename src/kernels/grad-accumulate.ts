import { type Binding, type Graph } from '../gpu/graph';
import { type TensorAccess, WHOLE_BINDINGS } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { checkFlatBindings } from './optimizer';
import { linearEntry } from './wgsl-common';

const WORKGROUP = 64;

export function accumulateWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('total', 1, 'read_write')}
${io.declare('addend', 2, 'read')}

${linearEntry(WORKGROUP)}
  ${io.store('total', 'i', `${io.load('total', 'i')} + ${io.load('addend', 'i')}`)}
}`;
}

/**
 * `into += from` over `elements` f32 values of two flat buffers (gradient arenas): the gradient of a parameter
 * used twice in one step (a discriminator run on real and on generated images) is written by each use's backward
 * into a buffer of its own and summed here, in the fixed order of the uses, as PyTorch accumulates `.grad`.
 */
export function accumulateFlat(graph: Graph, into: Binding, from: Binding, elements: number, label: string): void {
  const count = checkFlatBindings(label, elements, { into, from });
  graph.add({
    label,
    kernel: kernelShader('accumulate', { family: 'accumulate' }, (io) => accumulateWgsl(io)),
    uniforms: { count },
    bindings: { total: into, addend: from },
    workgroups: Math.ceil(count / WORKGROUP),
    cost: { flops: elements, bytes: 12 * elements },
  });
}
