import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import { type Graph, type TensorValue } from '../gpu/graph';
import { paddedChannels, tensorElements } from '../gpu/tensor';
import { type Activation, activationAlpha, activationTag, activationWgsl, NO_ACTIVATION } from './activation';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { linearEntry } from './wgsl-common';

/**
 * Standalone eval-mode BatchNorm2d (for where no convolution precedes it, so it cannot be folded into one):
 * y = act(x·scale + shift) per channel, with scale/shift folded from the BatchNorm statistics at load time.
 */
const WORKGROUP = 64;

export interface AffineChannels {
  scale: Float64Array;
  shift: Float64Array;
}

/**
 * y = (x−μ)·γ/√(σ²+ε) + β as y = x·scale + shift, computed in float64:
 *   scale = γ/√(σ²+ε),  shift = β − μ·scale.
 * `weight`/`bias` may be omitted (affine=False: γ = 1, β = 0).
 */
export function foldBatchNormToAffine(
  weight: ArrayLike<number> | undefined,
  bias: ArrayLike<number> | undefined,
  mean: ArrayLike<number>,
  variance: ArrayLike<number>,
  eps: number,
): AffineChannels {
  const c = mean.length;
  if (variance.length !== c) {
    throw new InvalidInputError(`BatchNorm running_var has ${variance.length} values, running_mean has ${c}`);
  }
  if (weight && weight.length !== c) throw new InvalidInputError(`BatchNorm weight has ${weight.length} values, expected ${c}`);
  if (bias && bias.length !== c) throw new InvalidInputError(`BatchNorm bias has ${bias.length} values, expected ${c}`);
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new InvalidInputError(`BatchNorm eps must be a finite number >= 0, got ${eps}`);
  const scale = new Float64Array(c);
  const shift = new Float64Array(c);
  for (let i = 0; i < c; i++) {
    const denom = variance[i] + eps;
    if (!(denom > 0)) {
      throw new InvalidInputError(`BatchNorm channel ${i}: running_var + eps = ${denom} is not positive`);
    }
    const s = (weight ? weight[i] : 1) / Math.sqrt(denom);
    scale[i] = s;
    shift[i] = (bias ? bias[i] : 0) - mean[i] * s;
  }
  return { scale, shift };
}

/** scale and shift → one buffer: `paddedChannels(C)` scales then `paddedChannels(C)` shifts, padding 0. */
export function packAffineChannels(affine: AffineChannels): Float32Array {
  const c = affine.scale.length;
  if (affine.shift.length !== c) {
    throw new InvalidInputError(`affine scale has ${c} values but shift has ${affine.shift.length}`);
  }
  const cp = paddedChannels(c);
  const out = new Float32Array(2 * cp);
  for (let i = 0; i < c; i++) {
    out[i] = affine.scale[i];
    out[cp + i] = affine.shift[i];
  }
  return out;
}

export function batchNormWgsl(activation: Activation, mask: boolean, io: TensorAccess = WHOLE_BINDINGS): string {
  const maskCode = mask
    ? `  let lane = k * 4u + vec4<u32>(0u, 1u, 2u, 3u);
  v = select(vec4<f32>(0.0), v, lane < vec4<u32>(p.c));
`
    : '';
  return `struct Params { count: u32, c4: u32, c: u32, alpha: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
@group(0) @binding(2) var<storage, read> affine: array<vec4<f32>>;
${io.declare('y', 3, 'read_write')}

${activationWgsl(activation)}

${linearEntry(WORKGROUP)}
  let k = i % p.c4;
  var v = act(${io.load('x', 'i')} * affine[k] + affine[p.c4 + k], p.alpha);
${maskCode}  ${io.store('y', 'i', 'v')}
}`;
}

/**
 * Adds `y = act(x·scale + shift)` per channel. `affine` is a GPU buffer holding `packAffineChannels(...)` for
 * the input's channel count.
 */
export function batchNorm(
  graph: Graph,
  input: TensorValue,
  params: { affine: GPUBuffer; activation?: Activation; label: string },
): TensorValue {
  const c = input.shape[3];
  const cp = paddedChannels(c);
  if (params.affine.size < 2 * cp * 4) {
    throw new InvalidInputError(
      `${params.label}: affine buffer holds ${params.affine.size} bytes, expected ${2 * cp * 4} for ${c} channels`,
    );
  }
  const activation = params.activation ?? NO_ACTIVATION;
  // Padded scale and shift are 0, so the padded lanes compute act(0): 0 for every activation except sigmoid
  // (0.5). The mask is one select, so it is applied whenever there are padded lanes.
  const mask = c % 4 !== 0;
  const y = graph.tensor(input.shape, params.label);
  const count = tensorElements(input.shape) / 4;
  graph.add({
    label: params.label,
    kernel: kernelShader(
      `batchnorm[${activationTag(activation)}${mask ? ',mask' : ''}]`,
      { family: 'batchnorm', epilogue: { activation: activation.kind, mask } },
      (io) => batchNormWgsl(activation, mask, io),
    ),
    uniforms: { count, c4: cp / 4, c, alpha: activationAlpha(activation) },
    bindings: { x: input, affine: params.affine, y },
    workgroups: Math.ceil(count / WORKGROUP),
    // x·scale + shift (2) and the activation (1) per element; x, scale and shift read, y written once.
    cost: {
      flops: logicalElements(input.shape) * (activation.kind === 'none' ? 2 : 3),
      bytes: 2 * logicalBytes(input.shape) + 2 * c * 4,
    },
  });
  return y;
}
