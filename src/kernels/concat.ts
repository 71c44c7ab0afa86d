import { InvalidInputError } from '../errors';
import { logicalBytes, placedExtent } from '../gpu/cost';
import { type Graph, type TensorValue } from '../gpu/graph';
import { formatShape, paddedChannels } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { linearEntry, outputPixelIndex } from './wgsl-common';

/**
 * torch.cat([a, b], dim=1) of two NHWC tensors, with the spatial alignment the U-Nets do just before it folded
 * into the read, so neither the aligned copy nor the upsampled map is ever written out on its own:
 * - `top`/`left`: where the source's first pixel lands in the output, zeros elsewhere; this is F.pad(src,
 *   [left, right, top, bottom]) with whatever right/bottom fills the output (milesial's Up pads the upsampled
 *   map with the floor/ceil split, left = ⌊dX/2⌋, top = ⌊dY/2⌋). Negative values crop, as F.pad does.
 * - `scale`: an integer nearest-neighbour upsampling of the source first (legacy 'nearest', src = ⌊dst / s⌋),
 *   which is smp's decoder `F.interpolate(x, scale_factor=2)` before its concatenation.
 * Channels: output channel k < Ca comes from a, Ca ≤ k < Ca + Cb from b. Any channel counts: when Ca is a
 * multiple of 4, whole vec4s are copied; otherwise each lane is gathered on its own. Padded channels stay 0.
 */
export interface ConcatPlacement {
  /** Output row of the source's row 0 (after scaling); default 0. */
  top?: number;
  /** Output column of the source's column 0 (after scaling); default 0. */
  left?: number;
  /** Integer nearest upsampling factor of the source; default 1. */
  scale?: number;
}

export interface ConcatOptions {
  /** Output [h, w]; default the first input's scaled size. */
  size?: readonly [number, number];
  first?: ConcatPlacement;
  second?: ConcatPlacement;
}

const WORKGROUP = 64;

/** A part's placement with its defaults, checked (integer offsets, a positive integer scale); the backward shares it. */
export function placement(p: ConcatPlacement | undefined, what: string, label: string): Required<ConcatPlacement> {
  const out = { top: p?.top ?? 0, left: p?.left ?? 0, scale: p?.scale ?? 1 };
  if (!Number.isInteger(out.top) || !Number.isInteger(out.left)) {
    throw new InvalidInputError(`${label}: ${what} offset ${out.top},${out.left} must be integers`);
  }
  if (!Number.isInteger(out.scale) || out.scale < 1) {
    throw new InvalidInputError(`${label}: ${what} scale ${out.scale} must be a positive integer`);
  }
  return out;
}

/**
 * WGSL. `fetch_a(item, oy, ox, g)` returns vec4 group `g` of source a (binding `xa`) for output pixel (oy, ox) of
 * batch item `item`, or zeros outside the placed window; same for b. Signed arithmetic: offsets may be negative.
 */
export function concatWgsl(aligned: boolean, io: TensorAccess = WHOLE_BINDINGS): string {
  const fetch = (s: 'a' | 'b') => `fn fetch_${s}(item: u32, oy: u32, ox: u32, g: u32) -> vec4<f32> {
  let ry = i32(oy) - p.top_${s};
  let rx = i32(ox) - p.left_${s};
  if (ry < 0 || rx < 0) { return vec4<f32>(0.0); }
  let sy = u32(ry) / p.scale_${s};
  let sx = u32(rx) / p.scale_${s};
  if (sy >= p.h_${s} || sx >= p.w_${s}) { return vec4<f32>(0.0); }
  return ${io.load(`x${s}`, `((item * p.h_${s} + sy) * p.w_${s} + sx) * p.c4_${s} + g`)};
}`;
  const body = aligned
    ? `  // Ca is a multiple of 4: every output vec4 is one vec4 of a or of b (b's padded lanes are 0).
  var v: vec4<f32>;
  if (c < p.c4_a) { v = fetch_a(b, oy, ox, c); } else { v = fetch_b(b, oy, ox, c - p.c4_a); }
  ${io.store('y', 'i', 'v')}`
    : `  var v = vec4<f32>(0.0);
  for (var l = 0u; l < 4u; l++) {
    let k = c * 4u + l;
    if (k < p.ca) {
      v[l] = fetch_a(b, oy, ox, k / 4u)[k % 4u];
    } else if (k < p.ca + p.cb) {
      let kb = k - p.ca;
      v[l] = fetch_b(b, oy, ox, kb / 4u)[kb % 4u];
    }
  }
  ${io.store('y', 'i', 'v')}`;
  return `struct Params { count: u32, c4: u32, ho: u32, wo: u32, ca: u32, cb: u32,
  c4_a: u32, h_a: u32, w_a: u32, top_a: i32, left_a: i32, scale_a: u32,
  c4_b: u32, h_b: u32, w_b: u32, top_b: i32, left_b: i32, scale_b: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('xa', 1, 'read')}
${io.declare('xb', 2, 'read')}
${io.declare('y', 3, 'read_write')}

${fetch('a')}

${fetch('b')}

${linearEntry(WORKGROUP)}
${outputPixelIndex('p.c4')}
${body}
}`;
}

/** cat([place(first), place(second)], channels): see the module comment. */
export function concatChannels(graph: Graph, first: TensorValue, second: TensorValue, options: ConcatOptions, label: string): TensorValue {
  const pa = placement(options.first, 'first input', label);
  const pb = placement(options.second, 'second input', label);
  const [n, ha, wa, ca] = first.shape;
  const [nb, hb, wb, cb] = second.shape;
  if (n !== nb) {
    throw new InvalidInputError(`${label}: batch sizes differ (${formatShape(first.shape)} and ${formatShape(second.shape)})`);
  }
  const [ho, wo] = options.size ?? [ha * pa.scale, wa * pa.scale];
  if (!Number.isInteger(ho) || !Number.isInteger(wo) || ho < 1 || wo < 1) {
    throw new InvalidInputError(`${label}: output size ${ho}x${wo} must be two positive integers`);
  }
  const y = graph.tensor([n, ho, wo, ca + cb], label);
  const c4 = paddedChannels(ca + cb) / 4;
  const count = n * ho * wo * c4;
  const aligned = ca % 4 === 0;
  graph.add({
    label,
    kernel: kernelShader(`concat[${aligned ? 'vec4' : 'lanes'}]`, { family: 'concat', aligned }, (io) => concatWgsl(aligned, io)),
    uniforms: {
      count,
      c4,
      ho,
      wo,
      ca,
      cb,
      c4_a: paddedChannels(ca) / 4,
      h_a: ha,
      w_a: wa,
      top_a: pa.top,
      left_a: pa.left,
      scale_a: pa.scale,
      c4_b: paddedChannels(cb) / 4,
      h_b: hb,
      w_b: wb,
      top_b: pb.top,
      left_b: pb.left,
      scale_b: pb.scale,
    },
    bindings: { xa: first, xb: second, y },
    workgroups: Math.ceil(count / WORKGROUP),
    // A copy: the source pixels that land inside the output read once (upsampled ones too), the output written.
    cost: {
      flops: 0,
      bytes:
        n * placedExtent(ha, ho, pa.top, pa.scale) * placedExtent(wa, wo, pa.left, pa.scale) * ca * 4 +
        n * placedExtent(hb, ho, pb.top, pb.scale) * placedExtent(wb, wo, pb.left, pb.scale) * cb * 4 +
        logicalBytes(y.shape),
    },
  });
  return y;
}
