import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import { type Graph, type TensorValue } from '../gpu/graph';
import { formatShape, paddedChannels, type Shape4 } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { linearEntry } from './wgsl-common';
import { LINEAR_WORKGROUP_INDEX_WGSL, WORKGROUP_BUILTINS } from '../gpu/dispatch';

/**
 * Pooling over NHWC vec4 channel groups, PyTorch semantics (dilation 1, floor or ceil mode):
 * - `maxPool2d`: padding counts as −inf (a large negative sentinel: PyTorch's constraint padding ≤ kernel/2 means
 *   every window holds at least one real pixel, so the sentinel never reaches the output). NaN propagates as in
 *   PyTorch's kernel (`val > max || isnan(val)`).
 * - `avgPool2d`: count_include_pad=True (the default) divides by the window clipped to the padded input (kH·kW
 *   except for ceil-mode windows hanging past it); count_include_pad=False by the real pixels in the window.
 * - `globalAvgPool2d`: AdaptiveAvgPool2d(1) → [n, 1, 1, c], one workgroup per (image, vec4 group) reducing the
 *   plane in f32 (64 strided partial sums, then a tree).
 * Padded channels stay 0: every output lane is a max/mean over the same lane of the input, which is 0 there.
 */
export interface Pool2dOptions {
  /** Kernel size, square or [kH, kW]. */
  kernel: number | readonly [number, number];
  /** Stride, square or [sH, sW]; defaults to the kernel size (as in PyTorch). */
  stride?: number | readonly [number, number];
  /** Zero (avg) / −inf (max) padding on each side, square or [pH, pW]; default 0. */
  padding?: number | readonly [number, number];
  /** PyTorch ceil_mode: a last, partial window is kept when it starts inside the input or the left padding. */
  ceilMode?: boolean;
  /** Average pooling only (PyTorch default true): whether padded zeros count in the divisor. */
  countIncludePad?: boolean;
}

const WORKGROUP = 64;
const REDUCE_WORKGROUP = 64;

function pair(v: number | readonly [number, number], what: string, label: string): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (p.length !== 2 || !p.every((d) => Number.isInteger(d))) {
    throw new InvalidInputError(`${label}: ${what} ${JSON.stringify(v)} must be an integer or a pair of integers`);
  }
  return p;
}

interface PoolGeometry {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
}

function poolGeometry(opts: Pool2dOptions, label: string): PoolGeometry {
  const kernel = pair(opts.kernel, 'kernel', label);
  const stride = pair(opts.stride ?? kernel, 'stride', label);
  const padding = pair(opts.padding ?? 0, 'padding', label);
  if (kernel.some((k) => k < 1)) throw new InvalidInputError(`${label}: kernel ${kernel.join('x')} must be positive`);
  if (stride.some((s) => s < 1)) throw new InvalidInputError(`${label}: stride ${stride.join('x')} must be positive`);
  if (padding.some((p) => p < 0)) throw new InvalidInputError(`${label}: padding ${padding.join('x')} must not be negative`);
  if (padding[0] > kernel[0] / 2 || padding[1] > kernel[1] / 2) {
    throw new InvalidInputError(`${label}: padding ${padding.join('x')} must be at most half the kernel size ${kernel.join('x')}`);
  }
  return { kernel, stride, padding };
}

/**
 * Output size along one axis as PyTorch's pooling_output_shape computes it: ⌊(in + 2p − k) / s⌋ + 1, or with
 * ceil mode ⌈…⌉ + 1 minus one when the last window would start in the right padding.
 */
export function poolOutputSize(inSize: number, kernel: number, stride: number, pad: number, ceilMode = false): number {
  const span = inSize + 2 * pad - kernel;
  let out = (ceilMode ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  if (ceilMode && (out - 1) * stride >= inSize + pad) out--;
  return out;
}

/** Output shape of maxPool2d/avgPool2d, as PyTorch computes it (floor mode); throws if geometry is invalid. */
export function pool2dOutputShape(input: Shape4, opts: Pool2dOptions, label = 'pool2d'): Shape4 {
  const g = poolGeometry(opts, label);
  const [n, h, w, c] = input;
  if (h + 2 * g.padding[0] < g.kernel[0] || w + 2 * g.padding[1] < g.kernel[1]) {
    throw new InvalidInputError(
      `${label}: kernel ${g.kernel.join('x')} with padding ${g.padding.join('x')} does not fit a ${h}x${w} input`,
    );
  }
  const ho = poolOutputSize(h, g.kernel[0], g.stride[0], g.padding[0], opts.ceilMode);
  const wo = poolOutputSize(w, g.kernel[1], g.stride[1], g.padding[1], opts.ceilMode);
  return [n, ho, wo, c];
}

export type PoolOp = 'max' | 'avg';

export function pool2dWgsl(op: PoolOp, io: TensorAccess = WHOLE_BINDINGS): string {
  const init = op === 'max' ? 'vec4<f32>(-3.0e38)' : 'vec4<f32>(0.0)';
  // Max: PyTorch's update rule, so a NaN wins and then stays. WGSL lets compilers assume finite floats (v != v
  // folds to false) and leaves max() with NaN undefined, so NaN is recognised from its bits.
  const acc =
    op === 'max'
      ? `let v = ${io.load('x', 'base + u32(ix) * p.c4')};\n      acc = select(acc, v, (v > acc) | is_nan4(v));`
      : `acc += ${io.load('x', 'base + u32(ix) * p.c4')};`;
  // Avg divisor: the window clipped to the padded input (count_include_pad) or to the input itself.
  const result =
    op === 'max'
      ? 'acc'
      : 'acc / f32(select((ky1 - ky0) * (kx1 - kx0), (min(y0 + p.kh, p.h + p.ph) - y0) * (min(x0 + p.kw, p.w + p.pw) - x0), p.include_pad != 0u))';
  return `struct Params { count: u32, c4: u32, h: i32, w: i32, ho: u32, wo: u32,
  kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32, include_pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
${io.declare('y', 2, 'read_write')}

fn is_nan4(v: vec4<f32>) -> vec4<bool> {
  return (bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
}

${linearEntry(WORKGROUP)}
  let c = i % p.c4;
  let pix = i / p.c4;
  let ox = i32(pix % p.wo);
  let oy = i32((pix / p.wo) % p.ho);
  let b = pix / (p.wo * p.ho);
  let y0 = oy * p.sh - p.ph;
  let x0 = ox * p.sw - p.pw;
  // Padding taps are skipped: −inf never wins a max, and a padded zero adds nothing to the sum.
  let ky0 = max(0, -y0);
  let ky1 = min(p.kh, p.h - y0);
  let kx0 = max(0, -x0);
  let kx1 = min(p.kw, p.w - x0);
  var acc = ${init};
  for (var ky = ky0; ky < ky1; ky++) {
    let base = (b * u32(p.h) + u32(y0 + ky)) * u32(p.w) * p.c4 + c;
    for (var kx = kx0; kx < kx1; kx++) {
      let ix = x0 + kx;
      ${acc}
    }
  }
  ${io.store('y', 'i', result)}
}`;
}

function pool2d(graph: Graph, op: PoolOp, x: TensorValue, opts: Pool2dOptions, label: string): TensorValue {
  const g = poolGeometry(opts, label);
  const outShape = pool2dOutputShape(x.shape, opts, label);
  const [n, h, w, ch] = x.shape;
  const [, ho, wo] = outShape;
  const y = graph.tensor(outShape, label);
  const c4 = paddedChannels(ch) / 4;
  const count = n * ho * wo * c4;
  graph.add({
    label,
    kernel: kernelShader(`pool2d[${op}]`, { family: 'pool2d', op }, (io) => pool2dWgsl(op, io)),
    uniforms: {
      count,
      c4,
      h,
      w,
      ho,
      wo,
      kh: g.kernel[0],
      kw: g.kernel[1],
      sh: g.stride[0],
      sw: g.stride[1],
      ph: g.padding[0],
      pw: g.padding[1],
      include_pad: op === 'avg' && opts.countIncludePad === false ? 0 : 1,
    },
    bindings: { x, y },
    workgroups: Math.ceil(count / WORKGROUP),
    // kH·kW compares (max) or adds (avg, + the ÷) per output element, whole windows counted even where they
    // overhang the padding; the input read once.
    cost: {
      flops: logicalElements(outShape) * (g.kernel[0] * g.kernel[1] + (op === 'avg' ? 1 : 0)),
      bytes: logicalBytes(x.shape) + logicalBytes(outShape),
    },
  });
  return y;
}

/** nn.MaxPool2d(kernel, stride, padding, ceil_mode) (dilation 1); padding acts as −inf. */
export function maxPool2d(graph: Graph, x: TensorValue, opts: Pool2dOptions, label: string): TensorValue {
  return pool2d(graph, 'max', x, opts, label);
}

/** nn.AvgPool2d(kernel, stride, padding, ceil_mode, count_include_pad). */
export function avgPool2d(graph: Graph, x: TensorValue, opts: Pool2dOptions, label: string): TensorValue {
  return pool2d(graph, 'avg', x, opts, label);
}

export function globalAvgPoolWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { groups: u32, c4: u32, plane: u32, fplane: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
${io.declare('y', 2, 'read_write')}

var<workgroup> partial: array<vec4<f32>, ${REDUCE_WORKGROUP}>;

${LINEAR_WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${REDUCE_WORKGROUP})
fn main(${WORKGROUP_BUILTINS},
        @builtin(local_invocation_index) lid: u32) {
  // One workgroup per (image, vec4 group); the grid may be padded, so the guard is uniform per workgroup.
  let g = linear_workgroup_index(wid, nwg);
  let live = g < p.groups;
  var acc = vec4<f32>(0.0);
  if (live) {
    let c = g % p.c4;
    let base = (g / p.c4) * p.plane * p.c4 + c;
    for (var k = lid; k < p.plane; k += ${REDUCE_WORKGROUP}u) {
      acc += ${io.load('x', 'base + k * p.c4')};
    }
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var s = ${REDUCE_WORKGROUP / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  if (live && lid == 0u) { ${io.store('y', 'g', 'partial[0] / p.fplane')} }
}`;
}

/** nn.AdaptiveAvgPool2d(1): the mean over H·W of each channel → [n, 1, 1, c]. */
export function globalAvgPool2d(graph: Graph, x: TensorValue, label: string): TensorValue {
  const [n, h, w, c] = x.shape;
  if (h * w < 1) throw new InvalidInputError(`${label}: empty input ${formatShape(x.shape)}`);
  const y = graph.tensor([n, 1, 1, c], label);
  const c4 = paddedChannels(c) / 4;
  const groups = n * c4;
  graph.add({
    label,
    kernel: kernelShader('global_avg_pool', { family: 'global_avg_pool' }, (io) => globalAvgPoolWgsl(io)),
    uniforms: { groups, c4, plane: h * w, fplane: h * w },
    bindings: { x, y },
    workgroups: groups,
    // One add per input element, one ÷ per output element.
    cost: { flops: logicalElements(x.shape) + n * c, bytes: logicalBytes(x.shape) + logicalBytes(y.shape) },
  });
  return y;
}
