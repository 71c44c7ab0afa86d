import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import { type Graph, type TensorValue } from '../gpu/graph';
import { paddedChannels } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { linearEntry } from './wgsl-common';

/**
 * nn.LayerNorm(C) applied channels-last (SCUNet): for every pixel, the mean and the biased variance (÷C) over
 * its C logical channels, y = (x − mean)·rsqrt(var + eps)·weight + bias.
 *
 * Precision: not E[x²] − E[x]² (catastrophic cancellation on features with a large mean). Each pixel is
 * shifted by its first channel value s (x − s is exact in f32 for values of similar magnitude), then two
 * passes: m = mean(x − s), var = mean(((x − s) − m)²); the output uses ((x − s) − m), so the large common
 * offset never meets a rounding step.
 *
 * One invocation per pixel, looping over its channel vec4s three times (C up to ~512 in SCUNet).
 */
const WORKGROUP = 64;

/** weight and bias [C] → one buffer: `paddedChannels(C)` weights then `paddedChannels(C)` biases, padding 0. */
export function packLayerNormParams(
  weight: ArrayLike<number> | undefined,
  bias: ArrayLike<number> | undefined,
  channels: number,
): Float32Array {
  if (!Number.isInteger(channels) || channels < 1)
    throw new InvalidInputError(`LayerNorm channel count ${channels} must be a positive integer`);
  if (weight && weight.length !== channels)
    throw new InvalidInputError(`LayerNorm weight has ${weight.length} values, expected ${channels}`);
  if (bias && bias.length !== channels) throw new InvalidInputError(`LayerNorm bias has ${bias.length} values, expected ${channels}`);
  const cp = paddedChannels(channels);
  const out = new Float32Array(2 * cp);
  for (let i = 0; i < channels; i++) {
    out[i] = weight ? weight[i] : 1;
    out[cp + i] = bias ? bias[i] : 0;
  }
  return out;
}

export function layerNormWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  const x = (i: string) => io.load('x', i);
  return `struct Params { pixels: u32, c4: u32, c: u32, eps: f32, inv_c: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
@group(0) @binding(2) var<storage, read> params: array<vec4<f32>>;
${io.declare('y', 3, 'read_write')}

fn lane_mask(k: u32) -> vec4<f32> {
  let lane = k * 4u + vec4<u32>(0u, 1u, 2u, 3u);
  return select(vec4<f32>(0.0), vec4<f32>(1.0), lane < vec4<u32>(p.c));
}

${linearEntry(WORKGROUP, 'px', 'p.pixels')}
  let base = px * p.c4;
  let last = p.c4 - 1u;
  let s = ${x('base')}.x;
  // Pass 1: mean of (x − s). Full vec4s need no mask; the last one does (its padded lanes are 0 − s).
  var acc = vec4<f32>(0.0);
  for (var k = 0u; k < last; k++) { acc += ${x('base + k')} - s; }
  acc += (${x('base + last')} - s) * lane_mask(last);
  let m = (acc.x + acc.y + acc.z + acc.w) * p.inv_c;
  // Pass 2: biased variance of (x − s) − m.
  var sq = vec4<f32>(0.0);
  for (var k = 0u; k < last; k++) { let d = (${x('base + k')} - s) - m; sq += d * d; }
  let dl = ((${x('base + last')} - s) - m) * lane_mask(last);
  sq += dl * dl;
  let variance = (sq.x + sq.y + sq.z + sq.w) * p.inv_c;
  let r = 1.0 / sqrt(variance + p.eps);
  // Pass 3: normalise and apply the affine; padded weights and biases are 0, and the mask makes it exact.
  for (var k = 0u; k < last; k++) {
    ${io.store('y', 'base + k', `((${x('base + k')} - s) - m) * r * params[k] + params[p.c4 + k]`)}
  }
  let yl = ((${x('base + last')} - s) - m) * r * params[last] + params[p.c4 + last];
  ${io.store('y', 'base + last', 'select(vec4<f32>(0.0), yl, lane_mask(last) > vec4<f32>(0.5))')}
}`;
}

/**
 * Adds a channels-last LayerNorm over the input's C channels. `params` is a GPU buffer holding
 * `packLayerNormParams(weight, bias, C)`.
 */
export function layerNorm(graph: Graph, input: TensorValue, options: { params: GPUBuffer; eps?: number; label: string }): TensorValue {
  const [n, h, w, c] = input.shape;
  const eps = options.eps ?? 1e-5;
  if (!(eps >= 0) || !Number.isFinite(eps))
    throw new InvalidInputError(`${options.label}: LayerNorm eps must be a finite number >= 0, got ${eps}`);
  const cp = paddedChannels(c);
  if (options.params.size < 2 * cp * 4) {
    throw new InvalidInputError(
      `${options.label}: LayerNorm params buffer holds ${options.params.size} bytes, expected ${2 * cp * 4} for ${c} channels`,
    );
  }
  const pixels = n * h * w;
  const y = graph.tensor(input.shape, options.label);
  graph.add({
    label: options.label,
    kernel: kernelShader('layernorm', { family: 'layernorm' }, (io) => layerNormWgsl(io)),
    uniforms: { pixels, c4: cp / 4, c, eps, inv_c: 1 / c },
    bindings: { x: input, params: options.params, y },
    workgroups: Math.ceil(pixels / WORKGROUP),
    // 8 per element: the mean's add; the variance's subtract, square, add; the output's subtract, ·rsqrt, ·weight,
    // + bias (the per-pixel shift that keeps it precise, and the per-pixel rsqrt, are not counted).
    cost: { flops: 8 * logicalElements(input.shape), bytes: 2 * logicalBytes(input.shape) + 2 * c * 4 },
  });
  return y;
}
