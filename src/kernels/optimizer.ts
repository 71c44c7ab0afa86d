/**
 * Optimizer updates on the GPU with PyTorch 1.13's semantics (torch/optim/{sgd,adam,adamw}.py, `foreach=None`:
 * the single-tensor path), over flat f32 buffers: a whole parameter arena (gpu/parameter-arena.ts) in one
 * dispatch, or one entry of it. The arena's gaps hold 0 with a 0 gradient and 0 state, and every update below
 * keeps such an element exactly 0.
 *
 * What changes every step (the lr from the schedule, Adam's bias corrections, SGD's first-step flag) cannot be
 * a uniform, which a plan bakes when it is compiled: each update reads it from a small storage buffer
 * (`scalars`, OPTIMIZER_SCALARS_BYTES) that the trainer writes before every step with `sgdScalars` /
 * `adamScalars`. These form the values in float64 exactly as PyTorch's Python code does and round them to f32,
 * as PyTorch casts a Python scalar to the f32 tensor's dtype. Hyper-parameters fixed for a run (betas, eps,
 * momentum, dampening, weight decay, Nesterov) are uniforms or shape the shader.
 */
import { invalidArgument } from '../check-args';
import { InvalidInputError } from '../errors';
import { type Binding, bindingBytes, type Graph } from '../gpu/graph';

import { kernelShader } from './kernel-source';
import { adamWgsl, OPTIMIZER_WORKGROUP, sgdWgsl } from './optimizer.wgsl';

/** Bytes of the per-step scalars buffer of every update (one vec4 of f32). */
export const OPTIMIZER_SCALARS_BYTES = 16;

/** torch.optim.SGD's options (lr is required there too). `maximize` is not supported. */
export interface SgdOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
  maximize?: false;
}

/** torch.optim.Adam / AdamW's options. `amsgrad` is not supported. */
export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: false;
}

export type ResolvedSgdOptions = Required<Omit<SgdOptions, 'maximize'>>;
export type ResolvedAdamOptions = Required<Omit<AdamOptions, 'amsgrad'>>;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A number ≥ 0 and finite (PyTorch checks `x < 0`; NaN and ∞ are refused here as well). */
function nonNegative(where: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw invalidArgument(where, name, 'a finite number >= 0', value);
  return value;
}

/** A beta in [0, 1), as PyTorch's Adam checks `0.0 <= betas[i] < 1.0`. */
function beta(where: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0 && value < 1)) throw invalidArgument(where, name, 'a number in [0, 1)', value);
  return value;
}

/** Validates like torch.optim.SGD's constructor: InvalidInputError naming the bad option. */
export function checkSgdOptions(options: SgdOptions): void {
  resolveSgdOptions(options);
}

/** The options checked (checkSgdOptions) with PyTorch's defaults filled in. */
export function resolveSgdOptions(options: SgdOptions): ResolvedSgdOptions {
  const where = 'SGD';
  if (!isRecord(options)) throw invalidArgument(where, 'options', 'an options object with lr', options);
  const lr = nonNegative(where, 'lr', options.lr);
  const momentum = nonNegative(where, 'momentum', options.momentum ?? 0);
  // PyTorch does not check dampening; a finite number keeps 1 − dampening meaningful.
  const dampening = options.dampening ?? 0;
  if (typeof dampening !== 'number' || !Number.isFinite(dampening)) throw invalidArgument(where, 'dampening', 'a finite number', dampening);
  const weightDecay = nonNegative(where, 'weightDecay', options.weightDecay ?? 0);
  const nesterov = options.nesterov ?? false;
  if (typeof nesterov !== 'boolean') throw invalidArgument(where, 'nesterov', 'a boolean', nesterov);
  if (nesterov && (momentum <= 0 || dampening !== 0)) {
    throw new InvalidInputError(`${where}: nesterov needs momentum > 0 and dampening 0, got momentum ${momentum}, dampening ${dampening}`);
  }
  if (options.maximize !== undefined && options.maximize !== false) {
    throw invalidArgument(where, 'maximize', 'false (maximize is not supported)', options.maximize);
  }
  return { lr, momentum, dampening, weightDecay, nesterov };
}

/** Validates like torch.optim.Adam (`decoupled` false) or AdamW (`decoupled` true): InvalidInputError naming the bad option. */
export function checkAdamOptions(options: AdamOptions, decoupled: boolean): void {
  resolveAdamOptions(options, decoupled);
}

/**
 * The options checked (checkAdamOptions) with PyTorch's defaults filled in: weight decay 0 for Adam, 1e-2 for
 * AdamW (`decoupled`).
 */
export function resolveAdamOptions(options: AdamOptions, decoupled: boolean): ResolvedAdamOptions {
  const where = decoupled ? 'AdamW' : 'Adam';
  if (options !== undefined && !isRecord(options)) throw invalidArgument(where, 'options', 'an options object', options);
  const o = options ?? {};
  const lr = nonNegative(where, 'lr', o.lr ?? 1e-3);
  const eps = nonNegative(where, 'eps', o.eps ?? 1e-8);
  const betas = o.betas ?? [0.9, 0.999];
  if (!Array.isArray(betas) || betas.length !== 2) throw invalidArgument(where, 'betas', 'an array of two numbers', betas);
  const b1 = beta(where, 'betas[0]', betas[0]);
  const b2 = beta(where, 'betas[1]', betas[1]);
  const weightDecay = nonNegative(where, 'weightDecay', o.weightDecay ?? (decoupled ? 1e-2 : 0));
  if (o.amsgrad !== undefined && o.amsgrad !== false)
    throw invalidArgument(where, 'amsgrad', 'false (amsgrad is not supported)', o.amsgrad);
  return { lr, betas: [b1, b2], eps, weightDecay };
}

function checkStep(where: string, lr: number, step: number): void {
  nonNegative(where, 'lr', lr);
  if (!Number.isInteger(step) || step < 1) throw invalidArgument(where, 'step', 'an integer >= 1 (the step about to be taken)', step);
}

/**
 * The per-step scalars of `sgdUpdate` for step `step` (1-based) at the group's current `lr`: [−lr, 1 on the first
 * step (PyTorch creates the momentum buffer as a copy of d then) else 0, 0, 0], as f32.
 */
export function sgdScalars(options: SgdOptions, lr: number, step: number): Float32Array {
  resolveSgdOptions(options);
  checkStep('sgdScalars', lr, step);
  return Float32Array.of(-lr, step === 1 ? 1 : 0, 0, 0);
}

/**
 * The per-step scalars of `adamUpdate` for step `step` (1-based, PyTorch's state['step'] after its += 1) at the
 * group's current `lr`, formed in float64 as `_single_tensor_adam(w)` does, then f32:
 * [−lr/(1 − β1^t), √(1 − β2^t), 1 − lr·wd (AdamW; 1 for Adam), 0].
 */
export function adamScalars(options: AdamOptions, lr: number, step: number, decoupled: boolean): Float32Array {
  const o = resolveAdamOptions(options, decoupled);
  checkStep('adamScalars', lr, step);
  const [beta1, beta2] = o.betas;
  const biasCorrection1 = 1 - beta1 ** step;
  const biasCorrection2 = 1 - beta2 ** step;
  const stepSize = lr / biasCorrection1;
  return Float32Array.of(-stepSize, Math.sqrt(biasCorrection2), decoupled ? 1 - lr * o.weightDecay : 1, 0);
}

/** Checks that `elements` is a count and every binding spans its vec4s; returns the vec4 count. */
export function checkFlatBindings(label: string, elements: number, bindings: Record<string, Binding | undefined>): number {
  if (!Number.isInteger(elements) || elements < 1) throw invalidArgument(label, 'elements', 'an integer >= 1', elements);
  const vec4s = Math.ceil(elements / 4);
  for (const [name, b] of Object.entries(bindings)) {
    if (b === undefined) continue;
    const bytes = bindingBytes(b);
    if (bytes < vec4s * 16) {
      throw new InvalidInputError(`${label}: ${name} spans ${bytes} bytes, ${elements} elements need ${vec4s * 16} (whole vec4s)`);
    }
  }
  return vec4s;
}

function checkScalars(label: string, scalars: Binding | undefined): Binding {
  if (scalars === undefined) throw new InvalidInputError(`${label}: the scalars buffer was not given`);
  if (bindingBytes(scalars) < OPTIMIZER_SCALARS_BYTES) {
    throw new InvalidInputError(`${label}: scalars spans ${bindingBytes(scalars)} bytes, needs ${OPTIMIZER_SCALARS_BYTES}`);
  }
  return scalars;
}

/**
 * One torch.optim.SGD step of `elements` f32 values (rounded up to whole vec4s, whose tail must be padding: 0
 * with a 0 gradient). `momentumBuffer` is needed exactly when momentum ≠ 0; `scalars` holds `sgdScalars`.
 */
export function sgdUpdate(
  graph: Graph,
  buffers: { param: Binding; grad: Binding; momentumBuffer?: Binding; scalars: Binding },
  options: SgdOptions,
  elements: number,
  label: string,
): void {
  const o = resolveSgdOptions(options);
  const momentum = o.momentum !== 0;
  if (momentum && !buffers.momentumBuffer) throw new InvalidInputError(`${label}: momentum ${o.momentum} needs a momentumBuffer`);
  if (!momentum && buffers.momentumBuffer) throw new InvalidInputError(`${label}: a momentumBuffer was given but momentum is 0`);
  const count = checkFlatBindings(label, elements, { param: buffers.param, grad: buffers.grad, momentumBuffer: buffers.momentumBuffer });
  const scalars = checkScalars(label, buffers.scalars);
  const variant = { weightDecay: o.weightDecay !== 0, momentum, nesterov: o.nesterov };
  const tag = [variant.weightDecay ? 'wd' : '', momentum ? (o.nesterov ? 'nesterov' : 'momentum') : ''].filter(Boolean).join(',');
  graph.add({
    label,
    kernel: kernelShader(`sgd${tag ? `[${tag}]` : ''}`, { family: 'sgd', variant }, (io) => sgdWgsl(variant, io)),
    uniforms: { count, weight_decay: o.weightDecay, momentum: o.momentum, one_minus_dampening: 1 - o.dampening },
    bindings: { param: buffers.param, grad: buffers.grad, scalars, ...(momentum ? { momentum_buffer: buffers.momentumBuffer! } : {}) },
    workgroups: Math.ceil(count / OPTIMIZER_WORKGROUP),
    // Per element: weight decay 2, momentum 3 (+2 Nesterov), the step 2; θ and g read, θ written, buf read and written.
    cost: {
      flops: elements * ((variant.weightDecay ? 2 : 0) + (momentum ? (o.nesterov ? 5 : 3) : 0) + 2),
      bytes: elements * 4 * (3 + (momentum ? 2 : 0)),
    },
  });
}

/**
 * One torch.optim.Adam (`decoupled` false) or AdamW (`decoupled` true) step of `elements` f32 values (rounded up
 * to whole vec4s whose tail is padding), in `_single_tensor_adam(w)`'s op order in f32: Adam adds wd·θ to the
 * gradient, AdamW first scales θ by 1 − lr·wd; then m and v, denom = √v/√bc2 + eps, and
 * θ += ((−lr/bc1)·m)/denom (addcdiv_ multiplies by its value before dividing). `scalars` holds `adamScalars`.
 */
export function adamUpdate(
  graph: Graph,
  buffers: { param: Binding; grad: Binding; expAvg: Binding; expAvgSq: Binding; scalars: Binding },
  options: AdamOptions,
  decoupled: boolean,
  elements: number,
  label: string,
): void {
  const o = resolveAdamOptions(options, decoupled);
  const count = checkFlatBindings(label, elements, {
    param: buffers.param,
    grad: buffers.grad,
    expAvg: buffers.expAvg,
    expAvgSq: buffers.expAvgSq,
  });
  const scalars = checkScalars(label, buffers.scalars);
  const variant = { decoupled, weightDecay: o.weightDecay !== 0, zeroEps: o.eps === 0 };
  const tag = [decoupled ? 'w' : '', !decoupled && variant.weightDecay ? 'wd' : '', variant.zeroEps ? 'eps0' : ''].filter(Boolean);
  const [beta1, beta2] = o.betas;
  graph.add({
    label,
    kernel: kernelShader(`adam${tag.length ? `[${tag.join(',')}]` : ''}`, { family: 'adam', variant }, (io) => adamWgsl(variant, io)),
    uniforms: {
      count,
      beta1,
      one_minus_beta1: 1 - beta1,
      beta2,
      one_minus_beta2: 1 - beta2,
      eps: o.eps,
      weight_decay: o.weightDecay,
    },
    bindings: { param: buffers.param, grad: buffers.grad, scalars, exp_avg: buffers.expAvg, exp_avg_sq: buffers.expAvgSq },
    workgroups: Math.ceil(count / OPTIMIZER_WORKGROUP),
    // Per element: decay 1–2, m 3, v 4, denom 3, step 3; θ, g, m, v read, θ, m, v written.
    cost: { flops: elements * (13 + (decoupled || variant.weightDecay ? 2 : 0)), bytes: elements * 4 * 7 },
  });
}
