import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import type { Graph, TensorValue } from '../gpu/graph';
import { tensorElements } from '../gpu/tensor';
import { type TensorAccess, WHOLE_BINDINGS } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { linearEntry } from './wgsl-common';

/**
 * Activations fused into kernel epilogues. `alpha` is the LeakyReLU slope. Each has a WGSL body (applied to a
 * vec4) and a float64 CPU twin used by the tests' references.
 */
export type Activation =
  { kind: 'none' } | { kind: 'relu' } | { kind: 'leakyRelu'; alpha: number } | { kind: 'sigmoid' } | { kind: 'tanh' } | { kind: 'gelu' };

export const NO_ACTIVATION: Activation = { kind: 'none' };
export const RELU: Activation = { kind: 'relu' };

/** The WGSL function `act(v: vec4<f32>, alpha: f32) -> vec4<f32>` for a kernel variant. */
export function activationWgsl(a: Activation): string {
  switch (a.kind) {
    case 'none':
      return 'fn act(v: vec4<f32>, alpha: f32) -> vec4<f32> { return v; }';
    case 'relu':
      return 'fn act(v: vec4<f32>, alpha: f32) -> vec4<f32> { return max(v, vec4<f32>(0.0)); }';
    case 'leakyRelu':
      return 'fn act(v: vec4<f32>, alpha: f32) -> vec4<f32> { return select(v * alpha, v, v >= vec4<f32>(0.0)); }';
    case 'sigmoid':
      // 1/(1+exp(-v)) overflows harmlessly to 0 for very negative v (exp → inf, 1/inf = 0).
      return 'fn act(v: vec4<f32>, alpha: f32) -> vec4<f32> { return 1.0 / (1.0 + exp(-v)); }';
    case 'tanh':
      // WGSL tanh of large |v| can be NaN on some implementations (exp overflow); clamp first, tanh(±15) = ±1 in f32.
      return 'fn act(v: vec4<f32>, alpha: f32) -> vec4<f32> { return tanh(clamp(v, vec4<f32>(-15.0), vec4<f32>(15.0))); }';
    case 'gelu':
      // Exact GELU x·Φ(x) with erf from Abramowitz–Stegun 7.1.26 (max abs error 1.5e-7), since WGSL has no erf.
      // Names avoid x/y: shaders that include this have tensor bindings called x and y.
      return `fn erf4(u: vec4<f32>) -> vec4<f32> {
  let s = sign(u);
  let m = abs(u);
  let t = 1.0 / (1.0 + 0.3275911 * m);
  let e = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-m * m);
  return s * e;
}
fn act(v: vec4<f32>, alpha: f32) -> vec4<f32> { return 0.5 * v * (1.0 + erf4(v * 0.7071067811865476)); }`;
  }
}

/**
 * PReLU with learned slopes, one per channel: `act_prelu(v, slope)` for a vec4 of channels and the matching vec4
 * of a vec4-padded slope buffer. Kernels fuse it instead of `act` (it needs a per-channel operand, not `alpha`).
 */
export function preluWgsl(): string {
  return 'fn act_prelu(v: vec4<f32>, a: vec4<f32>) -> vec4<f32> { return select(v * a, v, v >= vec4<f32>(0.0)); }';
}

/** Float64 PReLU: max(0, v) + slope·min(0, v). */
export function applyPrelu64(v: number, slope: number): number {
  return v >= 0 ? v : v * slope;
}

/** Short tag used in shader labels. */
export function activationTag(a: Activation): string {
  return a.kind;
}

export function activationAlpha(a: Activation): number {
  return a.kind === 'leakyRelu' ? a.alpha : 0;
}

/** Float64 reference, with exact erf for GELU. */
export function applyActivation64(a: Activation, v: number): number {
  switch (a.kind) {
    case 'none':
      return v;
    case 'relu':
      return v > 0 ? v : 0;
    case 'leakyRelu':
      return v >= 0 ? v : v * a.alpha;
    case 'sigmoid':
      return 1 / (1 + Math.exp(-v));
    case 'tanh':
      return Math.tanh(v);
    case 'gelu':
      return 0.5 * v * (1 + erf64(v / Math.SQRT2));
  }
}

export function parseActivation(name: string, alpha = 0.01): Activation {
  switch (name) {
    case 'none':
    case 'relu':
    case 'sigmoid':
    case 'tanh':
    case 'gelu':
      return { kind: name };
    case 'leakyRelu':
      return { kind: 'leakyRelu', alpha };
    default:
      throw new InvalidInputError(`unknown activation '${name}'`);
  }
}

/** erf to ~1e-15 by its Maclaurin series (|x| < 3) or the continued fraction of erfc (|x| >= 3). */
export function erf64(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 200; n++) {
      term *= (-ax * ax) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x²)/(x√π) · 1/(1 + 1/(2x²)/(1 + 2/(2x²)/(1 + ...))) via Lentz-free backward recursion.
  let f = 0;
  for (let k = 60; k >= 1; k--) f = k / 2 / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return Math.sign(x) * (1 - erfc);
}

const APPLY_WORKGROUP = 64;

function applyActivationWgsl(activation: Activation, io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, alpha: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
${io.declare('y', 2, 'read_write')}

${activationWgsl(activation)}

${linearEntry(APPLY_WORKGROUP)}
  ${io.store('y', 'i', `act(${io.load('x', 'i')}, p.alpha)`)}
}`;
}

/**
 * y = act(x) as a dispatch of its own (the epilogues' `act`): for training, where an activation whose backward
 * needs its input (exact GELU) cannot be fused, since the fused kernel would not keep the pre-activation. Every
 * activation maps 0 to 0 except sigmoid, so padded channels stay 0 for all others; sigmoid is refused here.
 */
export function applyActivation(graph: Graph, activation: Activation, x: TensorValue, label: string): TensorValue {
  if (activation.kind === 'sigmoid') throw new InvalidInputError(`${label}: sigmoid(0) ≠ 0 would fill the padded channels`);
  const y = graph.tensor(x.shape, label);
  const count = tensorElements(x.shape) / 4;
  graph.add({
    label,
    kernel: kernelShader(`activation[${activation.kind}]`, { family: 'activation_apply', epilogue: activation.kind }, (io) =>
      applyActivationWgsl(activation, io),
    ),
    uniforms: { count, alpha: activationAlpha(activation) },
    bindings: { x, y },
    workgroups: Math.ceil(count / APPLY_WORKGROUP),
    cost: { flops: logicalElements(x.shape), bytes: 2 * logicalBytes(x.shape) },
  });
  return y;
}
