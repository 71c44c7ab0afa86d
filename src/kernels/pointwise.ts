import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import { type Graph, type TensorValue } from '../gpu/graph';
import { formatShape, paddedChannels, tensorElements } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { linearEntry } from './wgsl-common';

/**
 * Unary and scaled-residual elementwise ops (one invocation per vec4):
 * - `clamp`: y = min(max(x, lo), hi)
 * - `affine`: y = a·x + b (ESRGAN's residual scale ×0.2 is a = 0.2, b = 0)
 * - `scaledAdd`: y = x + alpha·r
 * Padded channels must stay exactly 0. Where an op maps 0 to something else (clamp with lo > 0 or hi < 0,
 * affine with b ≠ 0) and the channel count is not a multiple of 4, the variant masks the padded lanes using the
 * logical channel count.
 */
const WORKGROUP = 64;

type PointwiseOp = 'clamp' | 'affine' | 'scaledAdd';

/** The op on vec4 `x` (and `r`). */
const EXPR: Record<PointwiseOp, (x: string, r: string) => string> = {
  clamp: (x) => `clamp(${x}, vec4<f32>(p.lo), vec4<f32>(p.hi))`,
  affine: (x) => `${x} * p.a + vec4<f32>(p.b)`,
  scaledAdd: (x, r) => `${x} + ${r} * p.a`,
};

export function pointwiseWgsl(op: PointwiseOp, mask: boolean, io: TensorAccess = WHOLE_BINDINGS): string {
  const second = op === 'scaledAdd' ? `${io.declare('r', 3, 'read')}\n` : '';
  const yBinding = op === 'scaledAdd' ? 4 : 3;
  const maskCode = mask
    ? `  let lane = (i % p.c4) * 4u + vec4<u32>(0u, 1u, 2u, 3u);
  v = select(vec4<f32>(0.0), v, lane < vec4<u32>(p.c));
`
    : '';
  return `struct Params { count: u32, c4: u32, c: u32, lo: f32, hi: f32, a: f32, b: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
${second}${io.declare('y', yBinding, 'read_write')}

${linearEntry(WORKGROUP)}
  var v = ${EXPR[op](io.load('x', 'i'), io.load('r', 'i'))};
${maskCode}  ${io.store('y', 'i', 'v')}
}`;
}

function addNode(
  graph: Graph,
  op: PointwiseOp,
  x: TensorValue,
  r: TensorValue | undefined,
  values: { lo?: number; hi?: number; a?: number; b?: number },
  zeroPreserving: boolean,
  label: string,
): TensorValue {
  const c = x.shape[3];
  const mask = !zeroPreserving && c % 4 !== 0;
  const y = graph.tensor(x.shape, label);
  const count = tensorElements(x.shape) / 4;
  graph.add({
    label,
    kernel: kernelShader(`pointwise[${op}${mask ? ',mask' : ''}]`, { family: 'pointwise', op, mask }, (io) => pointwiseWgsl(op, mask, io)),
    uniforms: {
      count,
      c4: paddedChannels(c) / 4,
      c,
      lo: values.lo ?? 0,
      hi: values.hi ?? 0,
      a: values.a ?? 0,
      b: values.b ?? 0,
    },
    bindings: r ? { x, r, y } : { x, y },
    workgroups: Math.ceil(count / WORKGROUP),
    // Two operations per element for each op (clamp: max and min; affine: ·a + b; scaledAdd: ·alpha + x).
    cost: { flops: 2 * logicalElements(x.shape), bytes: (r ? 3 : 2) * logicalBytes(x.shape) },
  });
  return y;
}

function checkNumber(value: number, what: string, label: string, allowInfinite = false): void {
  if (Number.isNaN(value) || (!allowInfinite && !Number.isFinite(value))) {
    throw new InvalidInputError(`${label}: ${what} must be a finite number, got ${value}`);
  }
}

/** f32 range, so ±Infinity bounds (one-sided clamps) survive the uniform packing as ±inf. */
const F32_MAX = 3.4028234663852886e38;

/** `y = clamp(x, lo, hi)`; either bound may be ±Infinity for a one-sided clamp. */
export function clamp(graph: Graph, x: TensorValue, lo: number, hi: number, label: string): TensorValue {
  checkNumber(lo, 'clamp min', label, true);
  checkNumber(hi, 'clamp max', label, true);
  if (lo > hi) throw new InvalidInputError(`${label}: clamp min ${lo} is greater than max ${hi}`);
  // WGSL clamp(e, lo, hi) with lo > hi is undefined, so never pass an inverted pair; bounds beyond f32 range
  // become ±F32_MAX (the same clamp for every finite f32).
  const l = Math.max(lo, -F32_MAX);
  const h = Math.min(hi, F32_MAX);
  return addNode(graph, 'clamp', x, undefined, { lo: l, hi: h }, l <= 0 && h >= 0, label);
}

/** `y = a·x + b` (ESRGAN's ×0.2 residual scale: a = 0.2, b = 0). */
export function affine(graph: Graph, x: TensorValue, a: number, b: number, label: string): TensorValue {
  checkNumber(a, 'scale', label);
  checkNumber(b, 'shift', label);
  return addNode(graph, 'affine', x, undefined, { a, b }, b === 0, label);
}

/** `y = x + alpha·r` (scaled residual add of two tensors of the same shape). */
export function scaledAdd(graph: Graph, x: TensorValue, r: TensorValue, alpha: number, label: string): TensorValue {
  if (x.shape.some((d, i) => d !== r.shape[i])) {
    throw new InvalidInputError(`${label}: shapes ${formatShape(x.shape)} and ${formatShape(r.shape)} differ`);
  }
  checkNumber(alpha, 'alpha', label);
  return addNode(graph, 'scaledAdd', x, r, { a: alpha }, true, label);
}
