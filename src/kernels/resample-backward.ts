import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import { type Graph, type TensorValue } from '../gpu/graph';
import { formatShape, paddedChannels, type Shape4 } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { type ResampleOptions, resampleOutputShape } from './resample';
import { linearEntry } from './wgsl-common';

/**
 * Backward of F.interpolate / nn.Upsample (training.md §1.7) with PyTorch 1.13's index rules, per axis, in f32 as
 * PyTorch's CPU kernels compute them (UpSample.h):
 * - the ratio r is `(in − 1) / (out − 1)` (0 when out = 1) for bilinear align_corners=True; otherwise `1 / s` when
 *   the forward was given a scale factor s (recompute_scale_factor unset), else `in / out`. The two differ for
 *   non-integer factors (in 5, ×1.5: 1/1.5 against 5/7).
 * - legacy 'nearest': `src = min(⌊dst · r⌋, in − 1)`, except out = in (identity) and out = 2·in (`dst >> 1`),
 *   which nearest_idx special-cases whatever the scale factor.
 * - bilinear: out = in is the identity; else `src = r·dst` (align_corners) or `max(r·(dst + ½) − ½, 0)`,
 *   `i0 = ⌊src⌋`, `i1 = i0 + (i0 < in − 1)`, `λ1 = clamp(src − i0, 0, 1)`, `λ0 = 1 − λ1`; the output sends
 *   `λ·g` to each of its ≤ 2×2 sources (both weights to one pixel at the border).
 * Each dx element is a gather: its candidate outputs form a contiguous range per axis (src is monotonic in dst),
 * bounded loosely from the inverse map and then tested with the exact forward rule, so rounding in the bounds
 * never drops or adds a term. Terms are summed in row-major output order; padded channels stay 0 (gy's are).
 */
const WORKGROUP = 64;

/** How one axis maps output indices to input indices (the WGSL `mode_*` uniform). */
const AXIS_IDENTITY = 0;
const AXIS_HALF = 1;
const AXIS_RATIO = 2;

interface AxisRule {
  mode: number;
  /** f32 ratio r (input index per output index). */
  ratio: number;
}

function scaleFactors(opts: ResampleOptions): [number, number] | undefined {
  const s = opts.scaleFactor;
  if (s === undefined) return undefined;
  return typeof s === 'number' ? [s, s] : [s[0], s[1]];
}

function axisRule(opts: ResampleOptions, inSize: number, outSize: number, scale: number | undefined): AxisRule {
  if (outSize === inSize) return { mode: AXIS_IDENTITY, ratio: 1 };
  if (opts.mode === 'nearest') {
    if (outSize === 2 * inSize) return { mode: AXIS_HALF, ratio: 0.5 };
    return { mode: AXIS_RATIO, ratio: Math.fround(scale !== undefined ? 1 / scale : inSize / outSize) };
  }
  if (opts.alignCorners ?? false) return { mode: AXIS_RATIO, ratio: Math.fround(outSize > 1 ? (inSize - 1) / (outSize - 1) : 0) };
  return { mode: AXIS_RATIO, ratio: Math.fround(scale !== undefined ? 1 / scale : inSize / outSize) };
}

/**
 * WGSL for one axis `a` (y or x): `src_a(o)` and `weight_a(o, i)` (what output o sends input i), and `range_a(i)`:
 * a half-open range of outputs that holds every o with a nonzero weight to i.
 */
function axisWgsl(mode: 'nearest' | 'bilinear', a: 'y' | 'x', inName: string, outName: string): string {
  const m = `p.mode_${a}`;
  const r = `p.ratio_${a}`;
  if (mode === 'nearest') {
    return `fn weight_${a}(o: i32, i: i32) -> f32 {
  var s = o;
  if (${m} == ${AXIS_HALF}u) { s = o >> 1u; }
  if (${m} == ${AXIS_RATIO}u) { s = min(i32(floor(f32(o) * ${r})), ${inName} - 1); }
  return select(0.0, 1.0, s == i);
}

fn range_${a}(i: i32) -> vec2<i32> {
  if (${m} == ${AXIS_IDENTITY}u) { return vec2<i32>(i, i + 1); }
  if (${m} == ${AXIS_HALF}u) { return vec2<i32>(2 * i, 2 * i + 2); }
  // ⌊o·r⌋ = i for o ∈ [i/r, (i+1)/r); the last input also takes every clamped output.
  let lo = clamp(floor(f32(i) / ${r}) - 1.0, 0.0, f32(${outName}));
  var hi = clamp(ceil(f32(i + 1) / ${r}) + 1.0, 0.0, f32(${outName}));
  if (i == ${inName} - 1) { hi = f32(${outName}); }
  return vec2<i32>(i32(lo), i32(hi));
}`;
  }
  return `fn weight_${a}(o: i32, i: i32) -> f32 {
  if (${m} == ${AXIS_IDENTITY}u) { return select(0.0, 1.0, o == i); }
  let src = max((f32(o) + p.offset) * ${r} - p.offset, 0.0);
  let i0 = min(i32(src), ${inName} - 1);
  let i1 = select(i0, i0 + 1, i0 < ${inName} - 1);
  let l1 = clamp(src - f32(i0), 0.0, 1.0);
  return select(0.0, 1.0 - l1, i0 == i) + select(0.0, l1, i1 == i);
}

fn range_${a}(i: i32) -> vec2<i32> {
  if (${m} == ${AXIS_IDENTITY}u) { return vec2<i32>(i, i + 1); }
  // r = 0 (align_corners, one output): every output reads input 0.
  if (${r} == 0.0) { return vec2<i32>(0, ${outName}); }
  // Weight to i needs src ∈ (i − 1, i + 1) (or src ≥ in − 1 for the last input).
  let lo = clamp(floor((f32(i - 1) + p.offset) / ${r} - p.offset) - 1.0, 0.0, f32(${outName}));
  var hi = clamp(ceil((f32(i + 1) + p.offset) / ${r} - p.offset) + 1.0, 0.0, f32(${outName}));
  if (i == ${inName} - 1) { hi = f32(${outName}); }
  return vec2<i32>(i32(lo), i32(hi));
}`;
}

export function resampleBackwardWgsl(mode: 'nearest' | 'bilinear', io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c4: u32, h: i32, w: i32, ho: i32, wo: i32,
  mode_y: u32, mode_x: u32, ratio_y: f32, ratio_x: f32${mode === 'bilinear' ? ', offset: f32' : ''} }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('gy', 1, 'read')}
${io.declare('dx', 2, 'read_write')}

${axisWgsl(mode, 'y', 'p.h', 'p.ho')}

${axisWgsl(mode, 'x', 'p.w', 'p.wo')}

${linearEntry(WORKGROUP)}
  let c = i % p.c4;
  let pix = i / p.c4;
  let ix = i32(pix % u32(p.w));
  let iy = i32((pix / u32(p.w)) % u32(p.h));
  let b = pix / u32(p.w * p.h);
  let ry = range_y(iy);
  let rx = range_x(ix);
  var acc = vec4<f32>(0.0);
  for (var oy = ry.x; oy < ry.y; oy++) {
    let wy = weight_y(oy, iy);
    if (wy == 0.0) { continue; }
    let row = (b * u32(p.ho) + u32(oy)) * u32(p.wo);
    for (var ox = rx.x; ox < rx.y; ox++) {
      let wx = weight_x(ox, ix);
      if (wx == 0.0) { continue; }
      acc += (wy * wx) * ${io.load('gy', '(row + u32(ox)) * p.c4 + c')};
    }
  }
  ${io.store('dx', 'i', 'acc')}
}`;
}

/**
 * dx [inputShape] of `resample(x, opts)` (F.interpolate with size or scale_factor, 'nearest' or 'bilinear',
 * align_corners) from gy, with PyTorch's ratio rules (see the module comment).
 */
export function resampleBackward(graph: Graph, gy: TensorValue, inputShape: Shape4, opts: ResampleOptions, label: string): TensorValue {
  const outShape = resampleOutputShape(inputShape, opts, label);
  if (!gy.shape.every((d, i) => d === outShape[i])) {
    throw new InvalidInputError(
      `${label}: gradient ${formatShape(gy.shape)} does not match the ${opts.mode} resample output ${formatShape(outShape)} of input ${formatShape(inputShape)}`,
    );
  }
  const [n, h, w, c] = inputShape;
  const [, ho, wo] = outShape;
  const scales = scaleFactors(opts);
  const ry = axisRule(opts, h, ho, scales?.[0]);
  const rx = axisRule(opts, w, wo, scales?.[1]);
  const dx = graph.tensor(inputShape, label);
  const c4 = paddedChannels(c) / 4;
  const count = n * h * w * c4;
  const uniforms: Record<string, number> = {
    count,
    c4,
    h,
    w,
    ho,
    wo,
    mode_y: ry.mode,
    mode_x: rx.mode,
    ratio_y: ry.ratio,
    ratio_x: rx.ratio,
  };
  if (opts.mode === 'bilinear') uniforms.offset = (opts.alignCorners ?? false) ? 0 : 0.5;
  graph.add({
    label,
    kernel: kernelShader(`resample_backward[${opts.mode}]`, { family: 'resample_backward', mode: opts.mode }, (io) =>
      resampleBackwardWgsl(opts.mode, io),
    ),
    uniforms,
    bindings: { gy, dx },
    workgroups: Math.ceil(count / WORKGROUP),
    // Nearest adds each gy element once; bilinear sends it to 4 taps (a weight product, a multiply and an add each).
    cost: {
      flops: opts.mode === 'nearest' ? logicalElements(outShape) : 12 * logicalElements(outShape),
      bytes: logicalBytes(outShape) + logicalBytes(inputShape),
    },
  });
  return dx;
}

/** Backward of `upsampleNearest(x, target)`: nn.Upsample(scale_factor | size, mode='nearest'). */
export function upsampleNearestBackward(
  graph: Graph,
  gy: TensorValue,
  inputShape: Shape4,
  target: { scaleFactor: number | readonly [number, number] } | { size: readonly [number, number] },
  label: string,
): TensorValue {
  return resampleBackward(graph, gy, inputShape, { mode: 'nearest', ...target }, label);
}

/** Backward of `upsampleBilinear(x, target, alignCorners)`: nn.Upsample(…, mode='bilinear', align_corners). */
export function upsampleBilinearBackward(
  graph: Graph,
  gy: TensorValue,
  inputShape: Shape4,
  target: { scaleFactor: number | readonly [number, number] } | { size: readonly [number, number] },
  alignCorners: boolean,
  label: string,
): TensorValue {
  return resampleBackward(graph, gy, inputShape, { mode: 'bilinear', ...target, alignCorners }, label);
}
