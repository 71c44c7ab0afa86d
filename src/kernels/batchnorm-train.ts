import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import { type Binding, bindingBytes, type Graph, type TensorValue } from '../gpu/graph';
import type { LazyShaderSource } from '../gpu/shader';
import { formatShape, paddedChannels, type Shape4, tensorElements } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { type Activation, activationAlpha, activationWgsl, NO_ACTIVATION } from './activation';
import {
  activationGradWgsl,
  channelPartialsWgsl,
  channelReduceWgsl,
  PARTIALS_WORKGROUP,
  type PartialsSpec,
  type ReduceSpec,
  statisticsChunks,
} from './batchnorm-train.wgsl';
import { kernelShader } from './kernel-source';
import { linearEntry } from './wgsl-common';

/**
 * nn.BatchNorm2d for training (docs/training.md §1.4), PyTorch 1.13 semantics:
 * - `batchNormTrainForward`: `train()` mode. Per channel over the M = N·H·W values, the mean μ and the biased
 *   variance σ²_b (two passes: Σ(x − s) for a per-channel shift s, then Σ(x − μ)², never E[x²] − μ²) normalise,
 *   y = act(γ·(x − μ)·invStd + β) with invStd = 1/√(σ²_b + eps); the running statistics are updated in place:
 *   rm ← (1 − m)·rm + m·μ, rv ← (1 − m)·rv + m·Σ(x − μ)²/(M − 1) (unbiased). m is a fixed momentum, or for
 *   `momentum=None` (PyTorch's cumulative moving average, m = 1/num_batches_tracked) read at run time from a small
 *   buffer the trainer writes before each step.
 * - `batchNormFrozenForward`: eval mode inside a training graph (γ, β and the running statistics read from their
 *   bindings on every run, as they change between steps): y = act(γ·(x − rm)/√(rv + eps) + β).
 * - `batchNormTrainBackward`: dβ = Σg, dγ = Σg·x̂, dx = γ·invStd·(g − dβ/M − x̂·dγ/M).
 * - `batchNormFrozenBackward`: eval mode (running statistics): dx = g·γ/√(rv + eps), dγ = Σg·(x − rm)/√(rv + eps),
 *   dβ = Σg.
 * A fused ReLU / LeakyReLU is undone in the backward from the forward's output y. Sums over pixels are parallel
 * and deterministic (batchnorm-train.wgsl.ts). Parameters are bound in PyTorch's layout (flat f32 [C], padded to
 * whole vec4s with zeros); their padded lanes stay 0, and gradients are overwritten, not accumulated.
 */
const WORKGROUP = 64;

/** Bytes of a run-time momentum binding: (m, 1 − m) as f32, both formed in float64 before rounding, as PyTorch does. */
export const MOMENTUM_FACTOR_BYTES = 8;

/** The activations whose backward the kernels fuse: what follows BatchNorm in DnCNN (ReLU) and PatchGAN (LeakyReLU). */
function fusableActivation(activation: Activation | undefined, label: string): Activation {
  const a = activation ?? NO_ACTIVATION;
  if (a.kind !== 'none' && a.kind !== 'relu' && a.kind !== 'leakyRelu') {
    throw new InvalidInputError(`${label}: BatchNorm training fuses only relu or leakyRelu, not '${a.kind}'`);
  }
  return a;
}

/** Throws unless `b` holds at least `paddedChannels(c)` floats (one per channel, vec4-padded). */
export function checkChannelBinding(label: string, what: string, b: Binding, c: number): void {
  const need = paddedChannels(c) * 4;
  const has = bindingBytes(b);
  if (has < need) throw new InvalidInputError(`${label}: ${what} spans ${has} bytes, expected ${need} for ${c} channels`);
}

/** Throws unless `t` has shape `shape`. */
export function checkShape(label: string, what: string, t: TensorValue, shape: Shape4): void {
  if (t.shape.some((d, i) => d !== shape[i])) {
    throw new InvalidInputError(`${label}: ${what} is ${formatShape(t.shape)}, expected ${formatShape(shape)}`);
  }
}

function checkEps(label: string, eps: number): void {
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new InvalidInputError(`${label}: eps must be a finite number >= 0, got ${eps}`);
}

/** The gradient through the fused activation needs the forward's output; without one there is nothing to undo. */
function activationOutput(label: string, activation: Activation, y: TensorValue | undefined, x: TensorValue): TensorValue | undefined {
  if (activation.kind === 'none') return undefined;
  if (!y) throw new InvalidInputError(`${label}: the fused ${activation.kind} needs the forward output y`);
  checkShape(label, 'the forward output y', y, x.shape);
  return y;
}

/** One pass over the pixels (partials) and one over the chunks (reduce) for per-channel sums: see the .wgsl.ts file. */
export interface ChannelSums {
  label: string;
  /** The NHWC tensor whose pixels are summed over. */
  shape: Shape4;
  rows: number;
  /** The shader's part of the partials pass, and what it binds besides the partials tensor. */
  partials: Omit<PartialsSpec, 'rows'> & {
    key: Record<string, unknown>;
    uniforms: Record<string, number>;
    bindings: Record<string, Binding>;
  };
  reduce: Omit<ReduceSpec, 'rows'> & { key: Record<string, unknown>; uniforms: Record<string, number>; bindings: Record<string, Binding> };
  /** FLOPs per element of the partials pass, and the bytes it reads besides the partials. */
  flopsPerElement: number;
  bytesRead: number;
  /** Bytes the reduce pass reads and writes besides the partials. */
  reduceBytes: number;
}

/** Adds the two dispatches of a per-channel sum over every pixel of `shape`. */
export function addChannelSums(graph: Graph, s: ChannelSums): void {
  const [n, h, w, c] = s.shape;
  const pixels = n * h * w;
  const c4 = paddedChannels(c) / 4;
  const chunks = statisticsChunks(pixels, c4);
  const partial = graph.tensor([1, s.rows, chunks, c], `${s.label}.partials`);
  const partialBytes = s.rows * chunks * c * 4;
  const { key: pKey, uniforms: pUniforms, bindings: pBindings, ...pSpec } = s.partials;
  const partialsKernel: LazyShaderSource = kernelShader(
    `channel_partials[${Object.values(pKey).join(',')}]`,
    { family: 'channel_partials', rows: s.rows, ...pKey },
    (io) => channelPartialsWgsl({ rows: s.rows, ...pSpec }, io),
  );
  graph.add({
    label: `${s.label}.partials`,
    kernel: partialsKernel,
    uniforms: { pixels, c4, chunks, count: chunks * c4, ...pUniforms },
    bindings: { ...pBindings, partial },
    workgroups: Math.ceil((chunks * c4) / PARTIALS_WORKGROUP),
    cost: { flops: s.flopsPerElement * logicalElements(s.shape), bytes: s.bytesRead + partialBytes },
  });
  const { key: rKey, uniforms: rUniforms, bindings: rBindings, ...rSpec } = s.reduce;
  graph.add({
    label: `${s.label}.reduce`,
    kernel: kernelShader(`channel_reduce[${Object.values(rKey).join(',')}]`, { family: 'channel_reduce', rows: s.rows, ...rKey }, (io) =>
      channelReduceWgsl({ rows: s.rows, ...rSpec }, io),
    ),
    uniforms: { c4, chunks, c, ...rUniforms },
    bindings: { partial, ...rBindings },
    workgroups: c4,
    cost: { flops: partialBytes / 4, bytes: partialBytes + s.reduceBytes },
  });
}

const maskWgsl = (mask: boolean, v: string) =>
  mask
    ? `  let lane = k * 4u + vec4<u32>(0u, 1u, 2u, 3u);
  ${v} = select(vec4<f32>(0.0), ${v}, lane < vec4<u32>(p.c));\n`
    : '';

// ---------------------------------------------------------------------------------------------------------------
// Forward (train mode)
// ---------------------------------------------------------------------------------------------------------------

export function batchNormNormalizeWgsl(activation: Activation, mask: boolean, io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c4: u32, c: u32, alpha: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
${io.declare('mean', 2, 'read')}
${io.declare('inv_std', 3, 'read')}
@group(0) @binding(4) var<storage, read> weight: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> bias: array<vec4<f32>>;
${io.declare('y', 6, 'read_write')}

${activationWgsl(activation)}

${linearEntry(WORKGROUP)}
  let k = i % p.c4;
  var v = act((${io.load('x', 'i')} - ${io.load('mean', 'k')}) * ${io.load('inv_std', 'k')} * weight[k] + bias[k], p.alpha);
${maskWgsl(mask, 'v')}  ${io.store('y', 'i', 'v')}
}`;
}

/**
 * PyTorch 1.13 `nn.BatchNorm2d.train()` forward with the running-statistics update (in place, on the GPU).
 * Returns y and the batch mean and invStd ([1, 1, 1, C], padded lanes 0) that the backward needs.
 */
export function batchNormTrainForward(
  graph: Graph,
  x: TensorValue,
  params: {
    weight: Binding;
    bias: Binding;
    runningMean: Binding;
    runningVar: Binding;
    /**
     * PyTorch's momentum (the weight of the new batch), or a binding whose first two f32 hold (m, 1 − m), written
     * before each run: `momentum=None`, whose m = 1/num_batches_tracked changes every step and so cannot be a
     * uniform (a plan bakes those when it is compiled).
     */
    momentum: number | Binding;
    eps: number;
    activation?: Activation;
    label: string;
  },
): { y: TensorValue; mean: TensorValue; invStd: TensorValue } {
  const { label, momentum, eps } = params;
  const [n, h, w, c] = x.shape;
  const pixels = n * h * w;
  if (pixels < 2) {
    // PyTorch's wording: a batch statistic of one value has no variance to normalise by.
    throw new InvalidInputError(
      `${label}: Expected more than 1 value per channel when training, got input of shape ${formatShape(x.shape)} (N·H·W = 1)`,
    );
  }
  const runtimeMomentum = typeof momentum !== 'number';
  if (runtimeMomentum) {
    if (bindingBytes(momentum) < MOMENTUM_FACTOR_BYTES) {
      throw new InvalidInputError(
        `${label}: the momentum binding spans ${bindingBytes(momentum)} bytes, expected ${MOMENTUM_FACTOR_BYTES}`,
      );
    }
  } else if (!Number.isFinite(momentum)) throw new InvalidInputError(`${label}: momentum must be a finite number, got ${momentum}`);
  checkEps(label, eps);
  const activation = fusableActivation(params.activation, label);
  checkChannelBinding(label, 'weight', params.weight, c);
  checkChannelBinding(label, 'bias', params.bias, c);
  checkChannelBinding(label, 'runningMean', params.runningMean, c);
  checkChannelBinding(label, 'runningVar', params.runningVar, c);

  const mean = graph.tensor([1, 1, 1, c], `${label}.mean`);
  const invStd = graph.tensor([1, 1, 1, c], `${label}.inv_std`);
  const channelBytes = c * 4;
  // Pass 1: the mean. Each channel is shifted by its value at pixel 0, so the sum adds small numbers even when the
  // features have a large common offset.
  addChannelSums(graph, {
    label: `${label}.mean`,
    shape: x.shape,
    rows: 1,
    partials: {
      key: { op: 'bn_shifted_sum' },
      params: '',
      declarations: (io) => io.declare('x', 1, 'read'),
      setup: (io) => `  let shift = ${io.load('x', 'k')};`,
      terms: (io) => `    let q0 = ${io.load('x', 'e')} - shift;`,
      uniforms: {},
      bindings: { x },
    },
    reduce: {
      key: { op: 'bn_mean' },
      params: ', inv_m: f32',
      declarations: (io) => `${io.declare('x', 1, 'read')}\n${io.declare('mean', 2, 'read_write')}`,
      finish: (io) => `    let m = ${io.load('x', 'k')} + sum0 * p.inv_m;
    ${io.store('mean', 'k', 'select(vec4<f32>(0.0), m, lane_ok)')}`,
      uniforms: { inv_m: 1 / pixels },
      bindings: { x, mean },
    },
    flopsPerElement: 2,
    bytesRead: logicalBytes(x.shape),
    reduceBytes: 2 * channelBytes,
  });
  // Pass 2: Σ(x − μ)², then invStd and the running statistics (PyTorch's order: m·new + (1 − m)·old).
  addChannelSums(graph, {
    label: `${label}.variance`,
    shape: x.shape,
    rows: 1,
    partials: {
      key: { op: 'bn_squared_deviation' },
      params: '',
      declarations: (io) => `${io.declare('x', 1, 'read')}\n${io.declare('mean', 2, 'read')}`,
      setup: (io) => `  let mu = ${io.load('mean', 'k')};`,
      terms: (io) => `    let d = ${io.load('x', 'e')} - mu;
    let q0 = d * d;`,
      uniforms: {},
      bindings: { x, mean },
    },
    reduce: {
      key: { op: 'bn_inv_std_running', runtimeMomentum },
      params: `, inv_m: f32, inv_m1: f32, eps: f32${runtimeMomentum ? '' : ', momentum: f32, keep: f32'}`,
      declarations: (io) => `${io.declare('mean', 1, 'read')}
${io.declare('inv_std', 2, 'read_write')}
@group(0) @binding(3) var<storage, read_write> running_mean: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> running_var: array<vec4<f32>>;
${runtimeMomentum ? '@group(0) @binding(5) var<storage, read> momentum_factor: array<f32>;' : ''}`,
      finish: (io) => `    let inv = 1.0 / sqrt(sum0 * p.inv_m + p.eps);
    ${io.store('inv_std', 'k', 'select(vec4<f32>(0.0), inv, lane_ok)')}
    let m = ${runtimeMomentum ? 'momentum_factor[0]' : 'p.momentum'};
    let keep = ${runtimeMomentum ? 'momentum_factor[1]' : 'p.keep'};
    let rm = running_mean[k];
    let rv = running_var[k];
    running_mean[k] = select(rm, m * ${io.load('mean', 'k')} + keep * rm, lane_ok);
    running_var[k] = select(rv, m * (sum0 * p.inv_m1) + keep * rv, lane_ok);`,
      uniforms: {
        inv_m: 1 / pixels,
        inv_m1: 1 / (pixels - 1),
        eps,
        ...(typeof momentum === 'number' ? { momentum, keep: 1 - momentum } : {}),
      },
      bindings: {
        mean,
        inv_std: invStd,
        running_mean: params.runningMean,
        running_var: params.runningVar,
        ...(typeof momentum === 'number' ? {} : { momentum_factor: momentum }),
      },
    },
    flopsPerElement: 3,
    bytesRead: logicalBytes(x.shape),
    reduceBytes: 6 * channelBytes,
  });

  const mask = c % 4 !== 0;
  const y = graph.tensor(x.shape, label);
  const count = tensorElements(x.shape) / 4;
  graph.add({
    label,
    kernel: kernelShader(
      `bn_train_normalize[${activation.kind}${mask ? ',mask' : ''}]`,
      { family: 'bn_train_normalize', epilogue: { activation: activation.kind, mask } },
      (io) => batchNormNormalizeWgsl(activation, mask, io),
    ),
    uniforms: { count, c4: paddedChannels(c) / 4, c, alpha: activationAlpha(activation) },
    bindings: { x, mean, inv_std: invStd, weight: params.weight, bias: params.bias, y },
    workgroups: Math.ceil(count / WORKGROUP),
    // (x − μ)·invStd·γ + β (4) and the activation (1) per element.
    cost: {
      flops: logicalElements(x.shape) * (activation.kind === 'none' ? 4 : 5),
      bytes: 2 * logicalBytes(x.shape) + 4 * channelBytes,
    },
  });
  return { y, mean, invStd };
}

// ---------------------------------------------------------------------------------------------------------------
// Forward (eval mode in a training graph: 'frozen' BatchNorm)
// ---------------------------------------------------------------------------------------------------------------

export function batchNormFrozenNormalizeWgsl(activation: Activation, mask: boolean, io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c4: u32, c: u32, alpha: f32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> running_mean: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> running_var: array<vec4<f32>>;
${io.declare('y', 6, 'read_write')}

${activationWgsl(activation)}

${linearEntry(WORKGROUP)}
  let k = i % p.c4;
  // x − rm first (not x·scale + shift): exact where x is close to the running mean.
  let scale = weight[k] * (1.0 / sqrt(running_var[k] + p.eps));
  var v = act((${io.load('x', 'i')} - running_mean[k]) * scale + bias[k], p.alpha);
${maskWgsl(mask, 'v')}  ${io.store('y', 'i', 'v')}
}`;
}

/**
 * nn.BatchNorm2d in eval mode inside a training graph (PyTorch: `bn.eval()` while the rest of the model trains,
 * the usual setup for fine-tuning with small batches): y = act(γ·(x − rm)/√(rv + eps) + β). Unlike the inference
 * kernel (batchnorm.ts), which folds scale and shift on the CPU once, γ and β change every step, so everything
 * is read from the bindings on every run. The running statistics are only read. Backward:
 * `batchNormFrozenBackward`.
 */
export function batchNormFrozenForward(
  graph: Graph,
  x: TensorValue,
  params: {
    weight: Binding;
    bias: Binding;
    runningMean: Binding;
    runningVar: Binding;
    eps: number;
    activation?: Activation;
    label: string;
  },
): TensorValue {
  const { label, eps } = params;
  const c = x.shape[3];
  checkEps(label, eps);
  const activation = fusableActivation(params.activation, label);
  checkChannelBinding(label, 'weight', params.weight, c);
  checkChannelBinding(label, 'bias', params.bias, c);
  checkChannelBinding(label, 'runningMean', params.runningMean, c);
  checkChannelBinding(label, 'runningVar', params.runningVar, c);
  const mask = c % 4 !== 0;
  const y = graph.tensor(x.shape, label);
  const count = tensorElements(x.shape) / 4;
  graph.add({
    label,
    kernel: kernelShader(
      `bn_frozen_normalize[${activation.kind}${mask ? ',mask' : ''}]`,
      { family: 'bn_frozen_normalize', epilogue: { activation: activation.kind, mask } },
      (io) => batchNormFrozenNormalizeWgsl(activation, mask, io),
    ),
    uniforms: { count, c4: paddedChannels(c) / 4, c, alpha: activationAlpha(activation), eps },
    bindings: {
      x,
      weight: params.weight,
      bias: params.bias,
      running_mean: params.runningMean,
      running_var: params.runningVar,
      y,
    },
    workgroups: Math.ceil(count / WORKGROUP),
    // (x − rm)·scale + β (3) and the activation (1) per element; the per-channel scale not counted.
    cost: {
      flops: logicalElements(x.shape) * (activation.kind === 'none' ? 3 : 4),
      bytes: 2 * logicalBytes(x.shape) + 4 * c * 4,
    },
  });
  return y;
}

// ---------------------------------------------------------------------------------------------------------------
// Backward
// ---------------------------------------------------------------------------------------------------------------

/**
 * The partials of Σg and Σg·x̂ per channel, g the upstream gradient through the fused activation, x̂ from the batch
 * statistics (`frozen` false: tensors `mean`, `inv_std`) or the running ones (`frozen`: `running_mean`,
 * `running_var`, eps).
 */
function gradientPartials(activation: Activation, withY: boolean, frozen: boolean): Omit<PartialsSpec, 'rows'> {
  return {
    params: frozen ? ', alpha: f32, eps: f32' : ', alpha: f32',
    declarations: (io) =>
      [
        io.declare('gy', 1, 'read'),
        withY ? io.declare('y', 2, 'read') : '',
        io.declare('x', 3, 'read'),
        frozen
          ? `@group(0) @binding(4) var<storage, read> running_mean: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> running_var: array<vec4<f32>>;`
          : `${io.declare('mean', 4, 'read')}\n${io.declare('inv_std', 5, 'read')}`,
        activationGradWgsl(activation),
      ].join('\n'),
    setup: (io) =>
      frozen
        ? `  let mu = running_mean[k];
  let inv = 1.0 / sqrt(running_var[k] + p.eps);`
        : `  let mu = ${io.load('mean', 'k')};
  let inv = ${io.load('inv_std', 'k')};`,
    terms: (io) => `    let q0 = act_grad(${io.load('gy', 'e')}, ${withY ? io.load('y', 'e') : 'vec4<f32>(0.0)'}, p.alpha);
    let q1 = q0 * ((${io.load('x', 'e')} - mu) * inv);`,
  };
}

export function batchNormTrainDxWgsl(activation: Activation, withY: boolean, mask: boolean, io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c4: u32, c: u32, alpha: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('gy', 1, 'read')}
${withY ? io.declare('y', 2, 'read') : ''}
${io.declare('x', 3, 'read')}
${io.declare('coef', 4, 'read')}
${io.declare('dx', 5, 'read_write')}

${activationGradWgsl(activation)}

${linearEntry(WORKGROUP)}
  let k = i % p.c4;
  let g = act_grad(${io.load('gy', 'i')}, ${withY ? io.load('y', 'i') : 'vec4<f32>(0.0)'}, p.alpha);
  // coef rows (batchNormTrainBackward): γ·invStd, invStd·dγ/M, dβ/M, μ.
  let centred = ${io.load('x', 'i')} - ${io.load('coef', '3u * p.c4 + k')};
  var v = ${io.load('coef', 'k')} * ((g - ${io.load('coef', '2u * p.c4 + k')}) - centred * ${io.load('coef', 'p.c4 + k')});
${maskWgsl(mask, 'v')}  ${io.store('dx', 'i', 'v')}
}`;
}

/**
 * Backward of `batchNormTrainForward`: writes dγ and dβ (overwriting `dWeight`, `dBias`) and returns dx. With a
 * fused activation, pass it and the forward output `y`.
 */
export function batchNormTrainBackward(
  graph: Graph,
  gy: TensorValue,
  x: TensorValue,
  saved: { mean: TensorValue; invStd: TensorValue },
  params: { weight: Binding; dWeight: Binding; dBias: Binding; activation?: Activation; y?: TensorValue; label: string },
): TensorValue {
  const { label } = params;
  const c = x.shape[3];
  checkShape(label, 'the gradient gy', gy, x.shape);
  checkShape(label, 'the saved mean', saved.mean, [1, 1, 1, c]);
  checkShape(label, 'the saved invStd', saved.invStd, [1, 1, 1, c]);
  const activation = fusableActivation(params.activation, label);
  const y = activationOutput(label, activation, params.y, x);
  checkChannelBinding(label, 'weight', params.weight, c);
  checkChannelBinding(label, 'dWeight', params.dWeight, c);
  checkChannelBinding(label, 'dBias', params.dBias, c);
  const [n, h, w] = x.shape;
  const pixels = n * h * w;
  const alpha = activationAlpha(activation);
  const withY = y !== undefined;
  const channelBytes = c * 4;
  // Per channel, what dx = γ·invStd·((g − dβ/M) − (x − μ)·invStd·dγ/M) needs, in one tensor so the dx pass binds few
  // buffers: γ·invStd, invStd·dγ/M, dβ/M, μ.
  const coef = graph.tensor([1, 1, 4, c], `${label}.coef`);
  addChannelSums(graph, {
    label: `${label}.dparams`,
    shape: x.shape,
    rows: 2,
    partials: {
      key: { op: 'bn_grad_sums', activation: activation.kind, withY, frozen: false },
      ...gradientPartials(activation, withY, false),
      uniforms: { alpha },
      bindings: { gy, ...(y ? { y } : {}), x, mean: saved.mean, inv_std: saved.invStd },
    },
    reduce: {
      key: { op: 'bn_train_dparams' },
      params: ', inv_m: f32',
      declarations: (io) => `@group(0) @binding(1) var<storage, read> weight: array<vec4<f32>>;
${io.declare('mean', 2, 'read')}
${io.declare('inv_std', 3, 'read')}
@group(0) @binding(4) var<storage, read_write> d_weight: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> d_bias: array<vec4<f32>>;
${io.declare('coef', 6, 'read_write')}`,
      finish: (io) => `    let zero = vec4<f32>(0.0);
    d_bias[k] = select(zero, sum0, lane_ok);
    d_weight[k] = select(zero, sum1, lane_ok);
    let inv = ${io.load('inv_std', 'k')};
    ${io.store('coef', 'k', 'select(zero, weight[k] * inv, lane_ok)')}
    ${io.store('coef', 'p.c4 + k', 'select(zero, inv * (sum1 * p.inv_m), lane_ok)')}
    ${io.store('coef', '2u * p.c4 + k', 'select(zero, sum0 * p.inv_m, lane_ok)')}
    ${io.store('coef', '3u * p.c4 + k', io.load('mean', 'k'))}`,
      uniforms: { inv_m: 1 / pixels },
      bindings: { weight: params.weight, mean: saved.mean, inv_std: saved.invStd, d_weight: params.dWeight, d_bias: params.dBias, coef },
    },
    // The activation's gradient, x − μ, ·invStd, ·g and two adds.
    flopsPerElement: 6,
    bytesRead: (withY ? 3 : 2) * logicalBytes(x.shape),
    reduceBytes: 8 * channelBytes,
  });

  const mask = c % 4 !== 0;
  const dx = graph.tensor(x.shape, `${label}.dx`);
  const count = tensorElements(x.shape) / 4;
  graph.add({
    label: `${label}.dx`,
    kernel: kernelShader(
      `bn_train_dx[${activation.kind}${mask ? ',mask' : ''}]`,
      { family: 'bn_train_dx', epilogue: { activation: activation.kind, withY, mask } },
      (io) => batchNormTrainDxWgsl(activation, withY, mask, io),
    ),
    uniforms: { count, c4: paddedChannels(c) / 4, c, alpha },
    bindings: { gy, ...(y ? { y } : {}), x, coef, dx },
    workgroups: Math.ceil(count / WORKGROUP),
    // The activation's gradient and γ·invStd·((g − dβ/M) − (x − μ)·invStd·dγ/M) (5).
    cost: { flops: 6 * logicalElements(x.shape), bytes: (withY ? 4 : 3) * logicalBytes(x.shape) + 4 * channelBytes },
  });
  return dx;
}

export function batchNormFrozenDxWgsl(activation: Activation, withY: boolean, mask: boolean, io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c4: u32, c: u32, alpha: f32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('gy', 1, 'read')}
${withY ? io.declare('y', 2, 'read') : ''}
@group(0) @binding(3) var<storage, read> weight: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> running_var: array<vec4<f32>>;
${io.declare('dx', 5, 'read_write')}

${activationGradWgsl(activation)}

${linearEntry(WORKGROUP)}
  let k = i % p.c4;
  let g = act_grad(${io.load('gy', 'i')}, ${withY ? io.load('y', 'i') : 'vec4<f32>(0.0)'}, p.alpha);
  var v = g * (weight[k] * (1.0 / sqrt(running_var[k] + p.eps)));
${maskWgsl(mask, 'v')}  ${io.store('dx', 'i', 'v')}
}`;
}

/**
 * Backward of eval-mode ("frozen") BatchNorm2d, which normalised with the running statistics: returns dx and,
 * where their bindings are given, writes dγ and dβ (overwriting them).
 */
export function batchNormFrozenBackward(
  graph: Graph,
  gy: TensorValue,
  x: TensorValue,
  params: {
    weight: Binding;
    bias?: Binding;
    runningMean: Binding;
    runningVar: Binding;
    eps: number;
    dWeight?: Binding;
    dBias?: Binding;
    activation?: Activation;
    y?: TensorValue;
    label: string;
  },
): TensorValue {
  const { label, eps, dWeight, dBias } = params;
  const c = x.shape[3];
  checkShape(label, 'the gradient gy', gy, x.shape);
  checkEps(label, eps);
  const activation = fusableActivation(params.activation, label);
  const y = activationOutput(label, activation, params.y, x);
  checkChannelBinding(label, 'weight', params.weight, c);
  if (params.bias) checkChannelBinding(label, 'bias', params.bias, c);
  checkChannelBinding(label, 'runningMean', params.runningMean, c);
  checkChannelBinding(label, 'runningVar', params.runningVar, c);
  if (dWeight) checkChannelBinding(label, 'dWeight', dWeight, c);
  if (dBias) checkChannelBinding(label, 'dBias', dBias, c);
  const alpha = activationAlpha(activation);
  const withY = y !== undefined;
  const channelBytes = c * 4;

  const mask = c % 4 !== 0;
  const dx = graph.tensor(x.shape, `${label}.dx`);
  const count = tensorElements(x.shape) / 4;
  graph.add({
    label: `${label}.dx`,
    kernel: kernelShader(
      `bn_frozen_dx[${activation.kind}${mask ? ',mask' : ''}]`,
      { family: 'bn_frozen_dx', epilogue: { activation: activation.kind, withY, mask } },
      (io) => batchNormFrozenDxWgsl(activation, withY, mask, io),
    ),
    uniforms: { count, c4: paddedChannels(c) / 4, c, alpha, eps },
    bindings: { gy, ...(y ? { y } : {}), weight: params.weight, running_var: params.runningVar, dx },
    workgroups: Math.ceil(count / WORKGROUP),
    // The activation's gradient and g·γ·invStd (per channel, the rsqrt not counted).
    cost: { flops: 2 * logicalElements(x.shape), bytes: (withY ? 3 : 2) * logicalBytes(x.shape) + 2 * channelBytes },
  });

  if (dWeight || dBias) {
    addChannelSums(graph, {
      label: `${label}.dparams`,
      shape: x.shape,
      rows: 2,
      partials: {
        key: { op: 'bn_grad_sums', activation: activation.kind, withY, frozen: true },
        ...gradientPartials(activation, withY, true),
        uniforms: { alpha, eps },
        bindings: { gy, ...(y ? { y } : {}), x, running_mean: params.runningMean, running_var: params.runningVar },
      },
      reduce: {
        key: { op: 'bn_frozen_dparams', dWeight: dWeight !== undefined, dBias: dBias !== undefined },
        params: '',
        declarations: () =>
          [
            dWeight ? '@group(0) @binding(1) var<storage, read_write> d_weight: array<vec4<f32>>;' : '',
            dBias ? '@group(0) @binding(2) var<storage, read_write> d_bias: array<vec4<f32>>;' : '',
          ].join('\n'),
        finish: () =>
          [
            dWeight ? '    d_weight[k] = select(vec4<f32>(0.0), sum1, lane_ok);' : '',
            dBias ? '    d_bias[k] = select(vec4<f32>(0.0), sum0, lane_ok);' : '',
          ].join('\n'),
        uniforms: {},
        bindings: { ...(dWeight ? { d_weight: dWeight } : {}), ...(dBias ? { d_bias: dBias } : {}) },
      },
      flopsPerElement: 6,
      bytesRead: (withY ? 3 : 2) * logicalBytes(x.shape) + 2 * channelBytes,
      reduceBytes: 2 * channelBytes,
    });
  }
  return dx;
}
