import { InvalidInputError } from '../errors';
import { logicalBytes } from '../gpu/cost';
import { type Graph, type TensorValue } from '../gpu/graph';
import { formatShape, paddedChannels } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { linearEntry } from './wgsl-common';

/**
 * Elementwise work on channel slices of wider tensors, for dense blocks whose pieces share one concatenation
 * buffer: `y[:, out+c] = a[:, c] (+ alpha · b[:, c])` for c < channels, where `a` and `b` are read from their first
 * `channels` channels and `y` is written from channel `outOffset` (a multiple of 4) of `out`.
 * - `copyChannels`: place a whole tensor into a slice of a wider one (a concatenation piece produced by an op
 *   that cannot write at a channel offset itself: pooling, depth_to_space).
 * - `scaledAddChannels`: `x + alpha · r` (ESRGAN's RRDB residual `RDB3(…)·0.2 + x`, with x the prefix of a
 *   concatenation buffer) straight into the next buffer.
 * Lanes of the last vec4 past `channels` are written 0, so padded and gap channels stay 0.
 */
const WORKGROUP = 64;

export function channelSliceWgsl(withB: boolean, io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c4: u32, channels: u32, a_c4: u32, b_c4: u32, y_c4: u32, y_off4: u32, alpha: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('a', 1, 'read')}
${withB ? `${io.declare('b', 2, 'read')}\n` : ''}${io.declare('y', 3, 'read_write')}

${linearEntry(WORKGROUP)}
  let k = i % p.c4;
  let pix = i / p.c4;
  var v = ${io.load('a', 'pix * p.a_c4 + k')}${withB ? ` + p.alpha * ${io.load('b', 'pix * p.b_c4 + k')}` : ''};
  let lane = k * 4u + vec4<u32>(0u, 1u, 2u, 3u);
  v = select(vec4<f32>(0.0), v, lane < vec4<u32>(p.channels));
  ${io.store('y', 'pix * p.y_c4 + p.y_off4 + k', 'v')}
}`;
}

function sameSpatial(a: TensorValue, b: TensorValue): boolean {
  return a.shape[0] === b.shape[0] && a.shape[1] === b.shape[1] && a.shape[2] === b.shape[2];
}

function slice(
  graph: Graph,
  a: TensorValue,
  b: TensorValue | undefined,
  alpha: number,
  channels: number,
  out: TensorValue | undefined,
  outOffset: number,
  label: string,
): TensorValue {
  if (!Number.isInteger(channels) || channels < 1)
    throw new InvalidInputError(`${label}: channel count ${channels} must be a positive integer`);
  for (const [t, what] of [
    [a, 'input'],
    [b, 'second input'],
  ] as const) {
    if (!t) continue;
    if (t.shape[3] < channels) throw new InvalidInputError(`${label}: ${what} ${formatShape(t.shape)} has fewer than ${channels} channels`);
    if (!sameSpatial(t, a)) throw new InvalidInputError(`${label}: ${what} ${formatShape(t.shape)} does not match ${formatShape(a.shape)}`);
  }
  const [n, h, w] = a.shape;
  const y = out ?? graph.tensor([n, h, w, outOffset + channels], label);
  if (!sameSpatial(y, a)) throw new InvalidInputError(`${label}: output ${formatShape(y.shape)} does not match ${formatShape(a.shape)}`);
  if (!Number.isInteger(outOffset) || outOffset < 0 || outOffset % 4 !== 0 || outOffset + channels > y.shape[3]) {
    throw new InvalidInputError(
      `${label}: channel offset ${outOffset} (+${channels}) must be a multiple of 4 inside ${y.shape[3]} channels`,
    );
  }
  if (y.id === a.id || y.id === b?.id) throw new InvalidInputError(`${label}: the output cannot also be an input`);
  if (!Number.isFinite(alpha)) throw new InvalidInputError(`${label}: alpha ${alpha} is not finite`);
  const c4 = paddedChannels(channels) / 4;
  const count = n * h * w * c4;
  graph.add({
    label,
    kernel: kernelShader(`channel_slice[${b ? 'scaled_add' : 'copy'}]`, { family: 'channel_slice', withB: b !== undefined }, (io) =>
      channelSliceWgsl(b !== undefined, io),
    ),
    uniforms: {
      count,
      c4,
      channels,
      a_c4: paddedChannels(a.shape[3]) / 4,
      b_c4: b ? paddedChannels(b.shape[3]) / 4 : 0,
      y_c4: paddedChannels(y.shape[3]) / 4,
      y_off4: outOffset / 4,
      alpha,
    },
    bindings: b ? { a, b, y } : { a, y },
    workgroups: Math.ceil(count / WORKGROUP),
    // `channels` channels of a (and of b) read, as many written; a + alpha·b is 2 FLOPs per element.
    cost: { flops: b ? 2 * n * h * w * channels : 0, bytes: (b ? 3 : 2) * logicalBytes(a.shape, channels) },
  });
  return y;
}

/** Copies all channels of `src` into channels [dstOffset, dstOffset + C) of `dst` (same n, h, w). */
export function copyChannels(graph: Graph, src: TensorValue, dst: TensorValue, dstOffset: number, label: string): TensorValue {
  return slice(graph, src, undefined, 0, src.shape[3], dst, dstOffset, label);
}

/**
 * `x[:, :channels] + alpha · r[:, :channels]`, written to channels [outOffset, outOffset + channels) of `out`, or
 * to a new [n, h, w, channels] tensor.
 */
export function scaledAddChannels(
  graph: Graph,
  x: TensorValue,
  r: TensorValue,
  alpha: number,
  channels: number,
  label: string,
  out?: { tensor: TensorValue; offset: number },
): TensorValue {
  return slice(graph, x, r, alpha, channels, out?.tensor, out?.offset ?? 0, label);
}
