import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import { type Graph, type TensorValue } from '../gpu/graph';
import { paddedChannels, type Shape4 } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { linearEntry, outputPixelIndex } from './wgsl-common';

/**
 * Spatial resampling of NHWC vec4 channel groups, as F.interpolate / nn.Upsample:
 * - `nearest` (legacy 'nearest', not 'nearest-exact'): PyTorch's nearest_idx: out = in copies, out = 2·in takes
 *   `dst >> 1` (whatever the scale factor), else `src = min(⌊dst · r⌋, in − 1)` in f32.
 * - `bilinear`, align_corners=True: `src = dst · (in − 1) / (out − 1)` (out = 1 → 0).
 * - `bilinear`, align_corners=False: `src = max(0, (dst + 0.5) · in / out − 0.5)`, upper neighbour clamped at in − 1.
 *
 * Target: either `size` [h, w] or `scaleFactor` (out = ⌊in · s⌋). The ratio r is PyTorch's (UpSample.h): 1 / s
 * when a scale factor is given (recompute_scale_factor unset), else in / out; (in − 1) / (out − 1) for
 * align_corners; out = in is the identity. Same rules as the backward (resample-backward.ts).
 * Padded channels stay 0: every output lane is a convex combination of the same lane of the input.
 */
export type ResampleMode = 'nearest' | 'bilinear';

export interface ResampleOptions {
  mode: ResampleMode;
  /** Output size [h, w]; give this or `scaleFactor`. */
  size?: readonly [number, number];
  /** Scale factor, square or [sH, sW]; output = ⌊in · s⌋. */
  scaleFactor?: number | readonly [number, number];
  /** Only for bilinear; default false (PyTorch's default). */
  alignCorners?: boolean;
}

const WORKGROUP = 64;

export function resampleOutputShape(input: Shape4, opts: ResampleOptions, label = 'resample'): Shape4 {
  const [n, h, w, c] = input;
  if (opts.mode !== 'nearest' && opts.mode !== 'bilinear') {
    throw new InvalidInputError(`${label}: unknown resample mode '${String(opts.mode)}'`);
  }
  if (opts.mode === 'nearest' && opts.alignCorners !== undefined) {
    throw new InvalidInputError(`${label}: alignCorners only applies to bilinear resampling`);
  }
  if ((opts.size === undefined) === (opts.scaleFactor === undefined)) {
    throw new InvalidInputError(`${label}: give exactly one of size and scaleFactor`);
  }
  let ho: number;
  let wo: number;
  if (opts.size !== undefined) {
    [ho, wo] = opts.size;
    if (!Number.isInteger(ho) || !Number.isInteger(wo) || ho < 1 || wo < 1) {
      throw new InvalidInputError(`${label}: output size ${JSON.stringify(opts.size)} must be two positive integers`);
    }
  } else {
    const s = opts.scaleFactor!;
    const [sh, sw] = typeof s === 'number' ? [s, s] : s;
    if (!(sh > 0) || !(sw > 0) || !Number.isFinite(sh) || !Number.isFinite(sw)) {
      throw new InvalidInputError(`${label}: scale factor ${JSON.stringify(s)} must be positive and finite`);
    }
    ho = Math.floor(h * sh);
    wo = Math.floor(w * sw);
    if (ho < 1 || wo < 1) {
      throw new InvalidInputError(`${label}: scale factor ${JSON.stringify(s)} on a ${h}x${w} input leaves no output`);
    }
  }
  return [n, ho, wo, c];
}

export function nearestWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c4: u32, h: u32, w: u32, ho: u32, wo: u32, ratio_y: f32, ratio_x: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
${io.declare('y', 2, 'read_write')}

fn nearest_src(o: u32, n: u32, out: u32, ratio: f32) -> u32 {
  if (out == n) { return o; }
  if (out == 2u * n) { return o >> 1u; }
  return min(u32(floor(f32(o) * ratio)), n - 1u);
}

${linearEntry(WORKGROUP)}
${outputPixelIndex('p.c4')}
  let iy = nearest_src(oy, p.h, p.ho, p.ratio_y);
  let ix = nearest_src(ox, p.w, p.wo, p.ratio_x);
  ${io.store('y', 'i', io.load('x', '((b * p.h + iy) * p.w + ix) * p.c4 + c'))}
}`;
}

export function bilinearWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  const x = (i: string) => io.load('x', i);
  return `struct Params { count: u32, c4: u32, h: u32, w: u32, ho: u32, wo: u32,
  scale_y: f32, scale_x: f32, offset: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
${io.declare('y', 2, 'read_write')}

${linearEntry(WORKGROUP)}
${outputPixelIndex('p.c4')}
  // offset = 0.5 for align_corners=False (half-pixel centres), 0 for align_corners=True.
  let sy = max((f32(oy) + p.offset) * p.scale_y - p.offset, 0.0);
  let sx = max((f32(ox) + p.offset) * p.scale_x - p.offset, 0.0);
  let y0 = min(u32(sy), p.h - 1u);
  let x0 = min(u32(sx), p.w - 1u);
  let y1 = min(y0 + 1u, p.h - 1u);
  let x1 = min(x0 + 1u, p.w - 1u);
  let ly = sy - f32(y0);
  let lx = sx - f32(x0);
  let r0 = (b * p.h + y0) * p.w;
  let r1 = (b * p.h + y1) * p.w;
  let top = (1.0 - lx) * ${x('(r0 + x0) * p.c4 + c')} + lx * ${x('(r0 + x1) * p.c4 + c')};
  let bot = (1.0 - lx) * ${x('(r1 + x0) * p.c4 + c')} + lx * ${x('(r1 + x1) * p.c4 + c')};
  ${io.store('y', 'i', '(1.0 - ly) * top + ly * bot')}
}`;
}

/** F.interpolate(x, size | scale_factor, mode, align_corners) for 'nearest' and 'bilinear'. */
export function resample(graph: Graph, x: TensorValue, opts: ResampleOptions, label: string): TensorValue {
  const outShape = resampleOutputShape(x.shape, opts, label);
  const [n, h, w, ch] = x.shape;
  const [, ho, wo] = outShape;
  const y = graph.tensor(outShape, label);
  const c4 = paddedChannels(ch) / 4;
  const count = n * ho * wo * c4;
  const workgroups = Math.ceil(count / WORKGROUP);
  // Nearest copies; bilinear does three linear interpolations (2 multiplies + 1 add each) per output element.
  // The input is counted whole (a downsampling nearest reads less of it).
  const bytes = logicalBytes(x.shape) + logicalBytes(outShape);
  const s = opts.scaleFactor;
  const scales = s === undefined ? undefined : typeof s === 'number' ? [s, s] : s;
  // PyTorch's compute_scales_value: 1 / s when a scale factor was given, else in / out (f32).
  const plainRatio = (i: number, o: number, factor: number | undefined) => Math.fround(factor !== undefined ? 1 / factor : i / o);
  if (opts.mode === 'nearest') {
    graph.add({
      label,
      kernel: kernelShader('resample[nearest]', { family: 'resample_nearest' }, (io) => nearestWgsl(io)),
      uniforms: { count, c4, h, w, ho, wo, ratio_y: plainRatio(h, ho, scales?.[0]), ratio_x: plainRatio(w, wo, scales?.[1]) },
      bindings: { x, y },
      workgroups,
      cost: { flops: 0, bytes },
    });
  } else {
    const align = opts.alignCorners ?? false;
    // out = in is PyTorch's identity copy (ratio 1 gives it for both offsets).
    const ratio = (i: number, o: number, factor: number | undefined) =>
      o === i ? 1 : align ? (o > 1 ? (i - 1) / (o - 1) : 0) : plainRatio(i, o, factor);
    graph.add({
      label,
      kernel: kernelShader('resample[bilinear]', { family: 'resample_bilinear' }, (io) => bilinearWgsl(io)),
      uniforms: {
        count,
        c4,
        h,
        w,
        ho,
        wo,
        scale_y: ratio(h, ho, scales?.[0]),
        scale_x: ratio(w, wo, scales?.[1]),
        offset: align ? 0 : 0.5,
      },
      bindings: { x, y },
      workgroups,
      cost: { flops: 9 * logicalElements(outShape), bytes },
    });
  }
  return y;
}

/** nn.Upsample(scale_factor=factor | size, mode='nearest'). */
export function upsampleNearest(
  graph: Graph,
  x: TensorValue,
  target: { scaleFactor: number | readonly [number, number] } | { size: readonly [number, number] },
  label: string,
): TensorValue {
  return resample(graph, x, { mode: 'nearest', ...target }, label);
}

/** nn.Upsample(scale_factor=factor | size, mode='bilinear', align_corners=alignCorners). */
export function upsampleBilinear(
  graph: Graph,
  x: TensorValue,
  target: { scaleFactor: number | readonly [number, number] } | { size: readonly [number, number] },
  alignCorners: boolean,
  label: string,
): TensorValue {
  return resample(graph, x, { mode: 'bilinear', ...target, alignCorners }, label);
}
