import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import { type Graph, type TensorValue } from '../gpu/graph';
import { formatShape, paddedChannels, type Shape4 } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { type Pool2dOptions, pool2dOutputShape } from './pool';
import { linearEntry } from './wgsl-common';

/**
 * Training side of pooling (training.md §1.6), PyTorch 1.13 semantics, NHWC vec4 channel groups:
 * - `maxPool2dWithIndices`: the forward of nn.MaxPool2d(return_indices=True). `indices` (same shape as y) holds,
 *   per element, the flat index iy·W + ix of the window's argmax inside its H×W input plane, as PyTorch's
 *   indices do, stored as an f32-exact integer (so planes up to 2²⁴ pixels). The argmax follows PyTorch's CPU and
 *   CUDA kernels: start at the first real tap, replace when `v > max || isnan(v)`, so ties keep the first tap in
 *   row-major window order and the last NaN of a window wins. Padded channels of y and of indices are 0.
 * - `maxPool2dBackward`: dx gathers, per input pixel, the gy of every window (in output row-major order) whose
 *   stored argmax is that pixel; overlapping windows (k3 s2 p1) may send several.
 * - `avgPool2dBackward`: dx gathers gy / divisor of every window covering the pixel, the divisor as the forward
 *   computes it (count_include_pad, ceil_mode).
 * - `globalAvgPool2dBackward`: AdaptiveAvgPool2d(1): dx = gy / (H·W) broadcast over the plane.
 * All are gathers (one invocation per dx vec4, fixed summation order): no atomics, bitwise reproducible.
 */
const WORKGROUP = 64;

/** Largest plane whose flat indices f32 holds exactly. */
const MAX_INDEXED_PLANE = 2 ** 24;

interface PoolPairs {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
}

const asPair = (v: number | readonly [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

/** The geometry with defaults filled in; pool2dOutputShape has already validated it (and throws typed errors). */
function pairs(opts: Pool2dOptions): PoolPairs {
  const kernel = asPair(opts.kernel);
  return { kernel, stride: asPair(opts.stride ?? kernel), padding: asPair(opts.padding ?? 0) };
}

function sameShape(a: Shape4, b: Shape4): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function checkGradShape(label: string, gy: TensorValue, expected: Shape4, inputShape: Shape4, what: string): void {
  if (!sameShape(gy.shape, expected)) {
    throw new InvalidInputError(
      `${label}: gradient ${formatShape(gy.shape)} does not match the ${what} output ${formatShape(expected)} of input ${formatShape(inputShape)}`,
    );
  }
}

function geometryUniforms(inputShape: Shape4, outShape: Shape4, g: PoolPairs) {
  return {
    c4: paddedChannels(inputShape[3]) / 4,
    c: inputShape[3],
    h: inputShape[1],
    w: inputShape[2],
    ho: outShape[1],
    wo: outShape[2],
    kh: g.kernel[0],
    kw: g.kernel[1],
    sh: g.stride[0],
    sw: g.stride[1],
    ph: g.padding[0],
    pw: g.padding[1],
  };
}

const GEOMETRY_PARAMS = 'c4: u32, c: u32, h: i32, w: i32, ho: i32, wo: i32, kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32';

/** `real`: which lanes of vec4 group `c` are logical channels (padded lanes must be written 0). */
const REAL_LANES = 'let real = (c * 4u + vec4<u32>(0u, 1u, 2u, 3u)) < vec4<u32>(p.c);';

export function maxPoolWithIndicesWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, ${GEOMETRY_PARAMS} }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
${io.declare('y', 2, 'read_write')}
${io.declare('indices', 3, 'read_write')}

fn is_nan4(v: vec4<f32>) -> vec4<bool> {
  // From the bits: WGSL lets compilers assume finite floats, so v != v may fold to false.
  return (bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
}

${linearEntry(WORKGROUP)}
  let c = i % p.c4;
  let pix = i / p.c4;
  let ox = i32(pix % u32(p.wo));
  let oy = i32((pix / u32(p.wo)) % u32(p.ho));
  let b = pix / u32(p.wo * p.ho);
  let y0 = oy * p.sh - p.ph;
  let x0 = ox * p.sw - p.pw;
  let ky0 = max(0, -y0);
  let ky1 = min(p.kh, p.h - y0);
  let kx0 = max(0, -x0);
  let kx1 = min(p.kw, p.w - x0);
  let plane = b * u32(p.h * p.w);
  // PyTorch starts from −inf with the first real tap as the index; starting from that tap's value is the same
  // (it wins against −inf unless it is −inf itself, which then keeps the index anyway) without an inf literal.
  let first = (y0 + ky0) * p.w + x0 + kx0;
  var best = ${io.load('x', '(plane + u32(first)) * p.c4 + c')};
  var arg = vec4<f32>(f32(first));
  for (var ky = ky0; ky < ky1; ky++) {
    for (var kx = kx0; kx < kx1; kx++) {
      let tap = (y0 + ky) * p.w + x0 + kx;
      let v = ${io.load('x', '(plane + u32(tap)) * p.c4 + c')};
      let take = (v > best) | is_nan4(v);
      best = select(best, v, take);
      arg = select(arg, vec4<f32>(f32(tap)), take);
    }
  }
  ${REAL_LANES}
  ${io.store('y', 'i', 'select(vec4<f32>(0.0), best, real)')}
  ${io.store('indices', 'i', 'select(vec4<f32>(0.0), arg, real)')}
}`;
}

/**
 * nn.MaxPool2d(kernel, stride, padding, ceil_mode, return_indices=True) (dilation 1): y as `maxPool2d` computes
 * it, and the argmax of each window (see the module comment for the index encoding).
 */
export function maxPool2dWithIndices(
  graph: Graph,
  x: TensorValue,
  opts: Pool2dOptions,
  label: string,
): { y: TensorValue; indices: TensorValue } {
  const outShape = pool2dOutputShape(x.shape, opts, label);
  const [n, h, w] = x.shape;
  if (h * w > MAX_INDEXED_PLANE) {
    throw new InvalidInputError(`${label}: a ${h}x${w} plane has more pixels than f32 indices can name exactly (${MAX_INDEXED_PLANE})`);
  }
  const g = pairs(opts);
  const y = graph.tensor(outShape, label);
  const indices = graph.tensor(outShape, `${label}.indices`);
  const uniforms = geometryUniforms(x.shape, outShape, g);
  const count = n * outShape[1] * outShape[2] * uniforms.c4;
  graph.add({
    label,
    kernel: kernelShader('max_pool2d_with_indices', { family: 'max_pool2d_with_indices' }, (io) => maxPoolWithIndicesWgsl(io)),
    uniforms: { count, ...uniforms },
    bindings: { x, y, indices },
    workgroups: Math.ceil(count / WORKGROUP),
    // kH·kW compares per output element; x read once, y and the indices written.
    cost: {
      flops: logicalElements(outShape) * g.kernel[0] * g.kernel[1],
      bytes: logicalBytes(x.shape) + 2 * logicalBytes(outShape),
    },
  });
  return { y, indices };
}

export type PoolBackwardOp = 'max' | 'avg';

/**
 * dx of max or average pooling. Input pixel (iy, ix) lies in the windows of output rows
 * oy ∈ [⌈(iy + pH − kH + 1) / sH⌉, ⌊(iy + pH) / sH⌋] (clipped to the output), likewise for columns; they are
 * summed in row-major output order.
 */
export function poolBackwardWgsl(op: PoolBackwardOp, io: TensorAccess = WHOLE_BINDINGS): string {
  const term =
    op === 'max'
      ? `let hit = ${io.load('indices', 'o')} == vec4<f32>(f32(here));
      acc += select(vec4<f32>(0.0), ${io.load('gy', 'o')}, hit);`
      : `let y0 = oy * p.sh - p.ph;
      let x0 = ox * p.sw - p.pw;
      // The forward's divisor: the window clipped to the padded input, or to the input itself.
      let padded = (min(y0 + p.kh, p.h + p.ph) - y0) * (min(x0 + p.kw, p.w + p.pw) - x0);
      let inside = (min(y0 + p.kh, p.h) - max(y0, 0)) * (min(x0 + p.kw, p.w) - max(x0, 0));
      acc += ${io.load('gy', 'o')} / f32(select(inside, padded, p.include_pad != 0u));`;
  return `struct Params { count: u32, ${GEOMETRY_PARAMS}${op === 'avg' ? ', include_pad: u32' : ''} }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('gy', 1, 'read')}
${op === 'max' ? io.declare('indices', 2, 'read') : ''}
${io.declare('dx', 3, 'read_write')}

fn first_window(i: i32, k: i32, s: i32, pad: i32) -> i32 {
  let a = i + pad - k + 1;
  return select(0, (a + s - 1) / s, a > 0);
}

${linearEntry(WORKGROUP)}
  let c = i % p.c4;
  let pix = i / p.c4;
  let ix = i32(pix % u32(p.w));
  let iy = i32((pix / u32(p.w)) % u32(p.h));
  let b = pix / u32(p.w * p.h);
  let here = iy * p.w + ix;
  let oy0 = first_window(iy, p.kh, p.sh, p.ph);
  let oy1 = min(p.ho - 1, (iy + p.ph) / p.sh);
  let ox0 = first_window(ix, p.kw, p.sw, p.pw);
  let ox1 = min(p.wo - 1, (ix + p.pw) / p.sw);
  var acc = vec4<f32>(0.0);
  for (var oy = oy0; oy <= oy1; oy++) {
    for (var ox = ox0; ox <= ox1; ox++) {
      let o = ((b * u32(p.ho) + u32(oy)) * u32(p.wo) + u32(ox)) * p.c4 + c;
      ${term}
    }
  }
  ${REAL_LANES}
  ${io.store('dx', 'i', 'select(vec4<f32>(0.0), acc, real)')}
}`;
}

function poolBackward(
  graph: Graph,
  op: PoolBackwardOp,
  gy: TensorValue,
  indices: TensorValue | undefined,
  inputShape: Shape4,
  opts: Pool2dOptions,
  label: string,
): TensorValue {
  const outShape = pool2dOutputShape(inputShape, opts, label);
  const what = op === 'max' ? 'max pool' : 'avg pool';
  checkGradShape(label, gy, outShape, inputShape, what);
  if (indices && !sameShape(indices.shape, outShape)) {
    throw new InvalidInputError(
      `${label}: indices ${formatShape(indices.shape)} do not match the max pool output ${formatShape(outShape)}`,
    );
  }
  const g = pairs(opts);
  const dx = graph.tensor(inputShape, label);
  const uniforms = geometryUniforms(inputShape, outShape, g);
  const count = inputShape[0] * inputShape[1] * inputShape[2] * uniforms.c4;
  // Each output element reaches kH·kW input pixels: one add per contribution (and one ÷ for avg).
  const contributions = logicalElements(outShape) * g.kernel[0] * g.kernel[1];
  graph.add({
    label,
    kernel: kernelShader(`pool2d_backward[${op}]`, { family: 'pool2d_backward', op }, (io) => poolBackwardWgsl(op, io)),
    uniforms: op === 'avg' ? { count, ...uniforms, include_pad: opts.countIncludePad === false ? 0 : 1 } : { count, ...uniforms },
    bindings: indices ? { gy, indices, dx } : { gy, dx },
    workgroups: Math.ceil(count / WORKGROUP),
    cost: {
      flops: contributions * (op === 'avg' ? 2 : 1),
      bytes: (op === 'max' ? 2 : 1) * logicalBytes(outShape) + logicalBytes(inputShape),
    },
  });
  return dx;
}

/**
 * dx [inputShape] of nn.MaxPool2d from gy and the `indices` of `maxPool2dWithIndices` (same options): each gy
 * element goes to its window's argmax.
 */
export function maxPool2dBackward(
  graph: Graph,
  gy: TensorValue,
  indices: TensorValue,
  inputShape: Shape4,
  opts: Pool2dOptions,
  label: string,
): TensorValue {
  return poolBackward(graph, 'max', gy, indices, inputShape, opts, label);
}

/** dx [inputShape] of nn.AvgPool2d(kernel, stride, padding, ceil_mode, count_include_pad): gy / divisor per window. */
export function avgPool2dBackward(graph: Graph, gy: TensorValue, inputShape: Shape4, opts: Pool2dOptions, label: string): TensorValue {
  return poolBackward(graph, 'avg', gy, undefined, inputShape, opts, label);
}

export function globalAvgPoolBackwardWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c4: u32, plane: u32, fplane: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('gy', 1, 'read')}
${io.declare('dx', 2, 'read_write')}

${linearEntry(WORKGROUP)}
  let c = i % p.c4;
  let b = i / (p.c4 * p.plane);
  // gy's padded lanes are 0, so dx's are too.
  ${io.store('dx', 'i', `${io.load('gy', 'b * p.c4 + c')} / p.fplane`)}
}`;
}

/** dx [inputShape] of nn.AdaptiveAvgPool2d(1) from gy [n, 1, 1, c]: gy / (H·W) at every pixel. */
export function globalAvgPool2dBackward(graph: Graph, gy: TensorValue, inputShape: Shape4, label: string): TensorValue {
  const [n, h, w, c] = inputShape;
  checkGradShape(label, gy, [n, 1, 1, c], inputShape, 'global average pool');
  const dx = graph.tensor(inputShape, label);
  const c4 = paddedChannels(c) / 4;
  const count = n * h * w * c4;
  graph.add({
    label,
    kernel: kernelShader('global_avg_pool_backward', { family: 'global_avg_pool_backward' }, (io) => globalAvgPoolBackwardWgsl(io)),
    uniforms: { count, c4, plane: h * w, fplane: h * w },
    bindings: { gy, dx },
    workgroups: Math.ceil(count / WORKGROUP),
    // One ÷ per dx element; gy read, dx written.
    cost: { flops: logicalElements(inputShape), bytes: logicalBytes(gy.shape) + logicalBytes(inputShape) },
  });
  return dx;
}
