import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import type { Graph, TensorValue } from '../gpu/graph';
import { formatShape, paddedChannels, tensorElements } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { linearEntry, outputPixelIndex } from './wgsl-common';

const WORKGROUP = 64;

/**
 * Neighbor2Neighbor's 8 ordered pairs of 4-neighbours in a 2×2 cell (0 top-left, 1 top-right, 2 bottom-left,
 * 3 bottom-right), as its train.py `generate_mask_pair` lists them: the first goes to g1, the second to g2.
 */
export const NEIGHBOR_PAIR_TABLE: readonly (readonly [number, number])[] = [
  [0, 1],
  [0, 2],
  [1, 3],
  [2, 3],
  [1, 0],
  [2, 0],
  [3, 1],
  [3, 2],
];

export function neighborSubsampleWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  // Each pair's corner packed 2 bits per choice, so the shader reads the table with a shift, not a dynamic index.
  const packed = (k: 0 | 1) => NEIGHBOR_PAIR_TABLE.reduce((bits, pair, choice) => bits | (pair[k] << (2 * choice)), 0);
  return `struct Params { count: u32, c4: u32, wo: u32, ho: u32, w: u32, h: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
${io.declare('choices', 2, 'read')}
${io.declare('first', 3, 'read_write')}
${io.declare('second', 4, 'read_write')}

const FIRST = ${packed(0)}u;
const SECOND = ${packed(1)}u;

fn cell_source(b: u32, oy: u32, ox: u32, corner: u32, c: u32) -> u32 {
  let y = 2u * oy + corner / 2u;
  let x = 2u * ox + corner % 2u;
  return ((b * p.h + y) * p.w + x) * p.c4 + c;
}

${linearEntry(WORKGROUP)}
${outputPixelIndex('p.c4')}
  // The choice is a small integer stored as f32 (channel 0 of a one-channel tensor); clamp keeps a bad value in range.
  let choice = min(u32(max(${io.load('choices', 'pix')}.x, 0.0)), 7u);
  ${io.store('first', 'i', io.load('x', 'cell_source(b, oy, ox, (FIRST >> (2u * choice)) & 3u, c)'))}
  ${io.store('second', 'i', io.load('x', 'cell_source(b, oy, ox, (SECOND >> (2u * choice)) & 3u, c)'))}
}`;
}

/**
 * Neighbor2Neighbor's random neighbour sub-sampler on the GPU: for x [N, H, W, C] and `choices` [N, ⌊H/2⌋, ⌊W/2⌋, 1]
 * (each 0..7, an index into NEIGHBOR_PAIR_TABLE, the same for every channel of a cell), g1(x) and g2(x), each
 * [N, ⌊H/2⌋, ⌊W/2⌋, C]: per 2×2 cell, the pair's first and second pixel. An odd last row or column is dropped, as
 * the reference's space_to_depth drops it. Plain gathers: no gradient flows through it (Neighbor2Neighbor samples
 * the noisy input and the no_grad denoised image only).
 */
export function neighborSubimages(
  graph: Graph,
  x: TensorValue,
  choices: TensorValue,
  label: string,
): { first: TensorValue; second: TensorValue } {
  const [n, h, w, c] = x.shape;
  const outShape = [n, Math.floor(h / 2), Math.floor(w / 2), c] as const;
  if (outShape[1] < 1 || outShape[2] < 1) throw new InvalidInputError(`${label}: ${formatShape(x.shape)} is too small for 2×2 cells`);
  const [cn, ch, cw, cc] = choices.shape;
  if (cn !== n || ch !== outShape[1] || cw !== outShape[2] || cc !== 1) {
    throw new InvalidInputError(
      `${label}: choices ${formatShape(choices.shape)} do not fit ${formatShape(x.shape)} (need [${n}, ${outShape[1]}, ${outShape[2]}, 1])`,
    );
  }
  const first = graph.tensor(outShape, `${label} g1`);
  const second = graph.tensor(outShape, `${label} g2`);
  const count = tensorElements(outShape) / 4;
  graph.add({
    label,
    kernel: kernelShader('neighbor_subsample', { family: 'neighbor_subsample' }, (io) => neighborSubsampleWgsl(io)),
    uniforms: { count, c4: paddedChannels(c) / 4, wo: outShape[2], ho: outShape[1], w, h },
    bindings: { x, choices, first, second },
    workgroups: Math.ceil(count / WORKGROUP),
    cost: { flops: logicalElements(outShape), bytes: 4 * logicalBytes(outShape) },
  });
  return { first, second };
}
