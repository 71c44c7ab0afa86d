import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { linearEntry } from './wgsl-common';

/**
 * WGSL of the optimizer updates, one invocation per vec4 of a flat f32 buffer (a whole parameter arena or one
 * entry of it). Each line follows PyTorch 1.13's `_single_tensor_*` functions op by op, in f32, with the
 * roundings its CPU kernels make (checked bitwise against torch on an AVX2 build):
 * - `t.add(u, alpha=a)` is one fused multiply-add, fma(u, a, t); so is the `value·t1·t2 + self` of `addcmul_`,
 *   fma(value·t1, t2, self), its first product rounded;
 * - `mul_` then `add_` are two roundings; `addcdiv_(t1, t2, value)` is self + (value·t1)/t2, unfused;
 * - Python scalars reach the kernels as f32 (the tensor's dtype), after being formed in float64.
 * WGSL may evaluate fma unfused on some devices; the difference is an f32 rounding.
 */

export const OPTIMIZER_WORKGROUP = 64;

export interface SgdVariant {
  weightDecay: boolean;
  momentum: boolean;
  nesterov: boolean;
}

/**
 * torch.optim.SGD: d = g (+ wd·θ); with momentum, buf = d on the step that creates it (no dampening), else
 * buf = μ·buf + (1 − dampening)·d, and d = d + μ·buf (Nesterov) or buf; θ = θ − lr·d.
 */
export function sgdWgsl(v: SgdVariant, io: TensorAccess = WHOLE_BINDINGS): string {
  const momentum = v.momentum
    ? `
  var buf = d;
  if (s.y == 0.0) {
    buf = fma(d, vec4<f32>(p.one_minus_dampening), ${io.load('momentum_buffer', 'i')} * p.momentum);
  }
  ${io.store('momentum_buffer', 'i', 'buf')}
  ${v.nesterov ? 'd = fma(buf, vec4<f32>(p.momentum), d);' : 'd = buf;'}`
    : '';
  return `struct Params { count: u32, weight_decay: f32, momentum: f32, one_minus_dampening: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('param', 1, 'read_write')}
${io.declare('grad', 2, 'read')}
${io.declare('scalars', 3, 'read')}
${v.momentum ? io.declare('momentum_buffer', 4, 'read_write') : ''}

${linearEntry(OPTIMIZER_WORKGROUP)}
  // x: −lr; y: 1 on the step that creates the momentum buffer (sgdScalars).
  let s = ${io.load('scalars', '0u')};
  let theta = ${io.load('param', 'i')};
  var d = ${io.load('grad', 'i')};
  ${v.weightDecay ? 'd = fma(theta, vec4<f32>(p.weight_decay), d);' : ''}${momentum}
  ${io.store('param', 'i', 'fma(d, vec4<f32>(s.x), theta)')}
}`;
}

export interface AdamVariant {
  /** AdamW: θ·(1 − lr·wd) before the moments; Adam: g + wd·θ (only when wd ≠ 0). */
  decoupled: boolean;
  weightDecay: boolean;
  /**
   * eps = 0: where v and so the denominator are 0 (an element whose gradient has always been 0, as in the gaps
   * of an arena), PyTorch computes 0/0 = NaN; the update there is taken as 0 instead, so the gaps stay 0.
   */
  zeroEps: boolean;
}

/**
 * torch.optim.Adam / AdamW: m = β1·m + (1 − β1)·g; v = β2·v + (1 − β2)·g²; denom = √v/√bc2 + eps;
 * θ = θ + (−lr/bc1)·m/denom, with g + wd·θ first (Adam) or θ·(1 − lr·wd) first (AdamW).
 */
export function adamWgsl(v: AdamVariant, io: TensorAccess = WHOLE_BINDINGS): string {
  let decay = '';
  if (v.decoupled) decay = 'theta = theta * s.z;';
  else if (v.weightDecay) decay = 'g = fma(theta, vec4<f32>(p.weight_decay), g);';
  return `struct Params { count: u32, beta1: f32, one_minus_beta1: f32, beta2: f32, one_minus_beta2: f32, eps: f32, weight_decay: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('param', 1, 'read_write')}
${io.declare('grad', 2, 'read')}
${io.declare('scalars', 3, 'read')}
${io.declare('exp_avg', 4, 'read_write')}
${io.declare('exp_avg_sq', 5, 'read_write')}

${linearEntry(OPTIMIZER_WORKGROUP)}
  // x: −lr/bc1; y: √bc2; z: 1 − lr·wd (AdamW) (adamScalars).
  let s = ${io.load('scalars', '0u')};
  var theta = ${io.load('param', 'i')};
  var g = ${io.load('grad', 'i')};
  ${decay}
  let m = fma(g, vec4<f32>(p.one_minus_beta1), ${io.load('exp_avg', 'i')} * p.beta1);
  let v = fma(g * p.one_minus_beta2, g, ${io.load('exp_avg_sq', 'i')} * p.beta2);
  ${io.store('exp_avg', 'i', 'm')}
  ${io.store('exp_avg_sq', 'i', 'v')}
  let denom = sqrt(v) / s.y + p.eps;
  var step = (s.x * m) / denom;
  ${v.zeroEps ? 'step = select(step, vec4<f32>(0.0), denom == vec4<f32>(0.0));' : ''}
  ${io.store('param', 'i', 'theta + step')}
}`;
}
