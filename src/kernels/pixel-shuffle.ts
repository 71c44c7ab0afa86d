import { InvalidInputError } from '../errors';
import { logicalBytes } from '../gpu/cost';
import { type Graph, type TensorValue } from '../gpu/graph';
import { formatShape, paddedChannels, type Shape4 } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { linearEntry, outputPixelIndex } from './wgsl-common';

/**
 * Moves data between channels and space. Output channels scatter over input vec4 groups arbitrarily, so each
 * invocation gathers one output pixel × one output vec4 group lane by lane (four scalar reads).
 * With r the block size, C the channels of the "deep" side divided by r² (shallow side channels):
 * - `pixelShuffle` (PyTorch CRD):     out[c, h·r+i, w·r+j] = in[c·r² + i·r + j, h, w]
 * - `pixelUnshuffle` (its inverse):   out[c·r² + i·r + j, h, w] = in[c, h·r+i, w·r+j]
 * - `depthToSpace` (TensorFlow DCR):  out[c, h·r+i, w·r+j] = in[(i·r + j)·C + c, h, w]
 * - `spaceToDepth` (its inverse):     out[(i·r + j)·C + c, h, w] = in[c, h·r+i, w·r+j]
 * Lanes past the logical output channels are written 0.
 */
export type PixelShuffleMode = 'pixel_shuffle' | 'pixel_unshuffle' | 'depth_to_space' | 'space_to_depth';

const MODE_ID: Record<PixelShuffleMode, number> = {
  pixel_shuffle: 0,
  depth_to_space: 1,
  pixel_unshuffle: 2,
  space_to_depth: 3,
};

const WORKGROUP = 64;

export function pixelShuffleOutputShape(input: Shape4, mode: PixelShuffleMode, r: number, label: string = mode): Shape4 {
  if (!Number.isInteger(r) || r < 1) throw new InvalidInputError(`${label}: block size ${r} must be a positive integer`);
  const [n, h, w, c] = input;
  if (!(mode in MODE_ID)) throw new InvalidInputError(`${label}: unknown mode '${String(mode)}'`);
  if (mode === 'pixel_shuffle' || mode === 'depth_to_space') {
    if (c % (r * r) !== 0) {
      throw new InvalidInputError(`${label}: ${c} input channels of ${formatShape(input)} are not divisible by r² = ${r * r}`);
    }
    return [n, h * r, w * r, c / (r * r)];
  }
  if (h % r !== 0 || w % r !== 0) {
    throw new InvalidInputError(`${label}: input size ${h}x${w} of ${formatShape(input)} is not divisible by r = ${r}`);
  }
  return [n, h / r, w / r, c * r * r];
}

export function pixelShuffleWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c4_out: u32, c_out: u32, c4_in: u32, c_shallow: u32,
  h: u32, w: u32, ho: u32, wo: u32, r: u32, mode: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
${io.declare('y', 2, 'read_write')}

${linearEntry(WORKGROUP)}
${outputPixelIndex('p.c4_out', 'g')}
  let rr = p.r * p.r;
  var v = vec4<f32>(0.0);
  for (var k = 0u; k < 4u; k++) {
    let co = g * 4u + k;
    if (co >= p.c_out) { break; }
    var ci: u32;
    var iy: u32;
    var ix: u32;
    if (p.mode < 2u) {
      // Deep → shallow: output pixel (oy, ox) comes from input pixel (oy / r, ox / r), offset (i, j) in the block.
      let bi = oy % p.r;
      let bj = ox % p.r;
      iy = oy / p.r;
      ix = ox / p.r;
      ci = select(co * rr + bi * p.r + bj, (bi * p.r + bj) * p.c_shallow + co, p.mode == 1u);
    } else {
      // Shallow → deep: output channel co names the shallow channel and the offset in the block.
      var c: u32;
      var blk: u32;
      if (p.mode == 2u) {
        c = co / rr;
        blk = co % rr;
      } else {
        c = co % p.c_shallow;
        blk = co / p.c_shallow;
      }
      ci = c;
      iy = oy * p.r + blk / p.r;
      ix = ox * p.r + blk % p.r;
    }
    v[k] = ${io.load('x', '((b * p.h + iy) * p.w + ix) * p.c4_in + ci / 4u')}[ci % 4u];
  }
  ${io.store('y', 'i', 'v')}
}`;
}

function rearrange(graph: Graph, x: TensorValue, mode: PixelShuffleMode, r: number, label: string): TensorValue {
  const outShape = pixelShuffleOutputShape(x.shape, mode, r, label);
  const [n, h, w, cin] = x.shape;
  const [, ho, wo, cout] = outShape;
  const y = graph.tensor(outShape, label);
  const c4Out = paddedChannels(cout) / 4;
  const count = n * ho * wo * c4Out;
  const deepToShallow = mode === 'pixel_shuffle' || mode === 'depth_to_space';
  graph.add({
    label,
    kernel: kernelShader('pixel_shuffle', { family: 'pixel_shuffle' }, (io) => pixelShuffleWgsl(io)),
    uniforms: {
      count,
      c4_out: c4Out,
      c_out: cout,
      c4_in: paddedChannels(cin) / 4,
      c_shallow: deepToShallow ? cout : cin,
      h,
      w,
      ho,
      wo,
      r,
      mode: MODE_ID[mode],
    },
    bindings: { x, y },
    workgroups: Math.ceil(count / WORKGROUP),
    cost: { flops: 0, bytes: logicalBytes(x.shape) + logicalBytes(outShape) },
  });
  return y;
}

/** nn.PixelShuffle(r): [n, h, w, c·r²] → [n, h·r, w·r, c], CRD channel order. */
export function pixelShuffle(graph: Graph, x: TensorValue, r: number, label: string): TensorValue {
  return rearrange(graph, x, 'pixel_shuffle', r, label);
}

/** nn.PixelUnshuffle(r): [n, h·r, w·r, c] → [n, h, w, c·r²], the inverse of pixelShuffle. */
export function pixelUnshuffle(graph: Graph, x: TensorValue, r: number, label: string): TensorValue {
  return rearrange(graph, x, 'pixel_unshuffle', r, label);
}

/** tf.nn.depth_to_space(x, r) (NHWC, DCR order): [n, h, w, c·r²] → [n, h·r, w·r, c]. */
export function depthToSpace(graph: Graph, x: TensorValue, r: number, label: string): TensorValue {
  return rearrange(graph, x, 'depth_to_space', r, label);
}

/** tf.nn.space_to_depth(x, r) (NHWC, DCR order), the inverse of depthToSpace. */
export function spaceToDepth(graph: Graph, x: TensorValue, r: number, label: string): TensorValue {
  return rearrange(graph, x, 'space_to_depth', r, label);
}
