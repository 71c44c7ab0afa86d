import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import { type Graph, type TensorValue } from '../gpu/graph';
import { formatShape, paddedChannels } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { linearEntry } from './wgsl-common';

/**
 * The mean and the maximum over the channels of every pixel: [n, h, w, C] → [n, h, w, 2], channel 0 the mean and
 * channel 1 the max (CBAM's spatial-attention input, `cat(x.mean(1), x.amax(1))`). With `gate` ([n, 1, 1, C])
 * the reduction runs over `x · gate` without materialising it (CBAM applies the channel gate first).
 * The max covers the C logical channels only: padded lanes (0) are masked out, since every real value may be
 * negative. One invocation per pixel.
 */
const WORKGROUP = 64;

export function channelMeanMaxWgsl(gated: boolean, io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, pixels_per_item: u32, c4: u32, c: u32, inv_c: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
${gated ? `${io.declare('gate', 2, 'read')}\n` : ''}${io.declare('y', 3, 'read_write')}

${linearEntry(WORKGROUP)}
  let base = i * p.c4;
  ${gated ? 'let gbase = (i / p.pixels_per_item) * p.c4;' : ''}
  var sum = vec4<f32>(0.0);
  var mx = vec4<f32>(-3.0e38);
  for (var k = 0u; k < p.c4; k++) {
    let v = ${io.load('x', 'base + k')}${gated ? ` * ${io.load('gate', 'gbase + k')}` : ''};
    sum += v;
    let lane = k * 4u + vec4<u32>(0u, 1u, 2u, 3u);
    mx = max(mx, select(vec4<f32>(-3.0e38), v, lane < vec4<u32>(p.c)));
  }
  let s = (sum.x + sum.y) + (sum.z + sum.w);
  let m = max(max(mx.x, mx.y), max(mx.z, mx.w));
  ${io.store('y', 'i', 'vec4<f32>(s * p.inv_c, m, 0.0, 0.0)')}
}`;
}

/** [n, h, w, C] (optionally times a per-channel `gate` [n, 1, 1, C]) → [n, h, w, 2]: mean, max over channels. */
export function channelMeanMax(graph: Graph, x: TensorValue, label: string, gate?: TensorValue): TensorValue {
  const [n, h, w, c] = x.shape;
  if (gate && (gate.shape[0] !== n || gate.shape[1] !== 1 || gate.shape[2] !== 1 || gate.shape[3] !== c)) {
    throw new InvalidInputError(
      `${label}: gate ${formatShape(gate.shape)} does not match input ${formatShape(x.shape)} (expected [${n}, 1, 1, ${c}])`,
    );
  }
  const y = graph.tensor([n, h, w, 2], label);
  const count = n * h * w;
  graph.add({
    label,
    kernel: kernelShader(`channel_mean_max${gate ? '[gated]' : ''}`, { family: 'channel_mean_max', gated: gate !== undefined }, (io) =>
      channelMeanMaxWgsl(gate !== undefined, io),
    ),
    uniforms: { count, pixels_per_item: h * w, c4: paddedChannels(c) / 4, c, inv_c: 1 / c },
    bindings: gate ? { x, gate, y } : { x, y },
    workgroups: Math.ceil(count / WORKGROUP),
    // Per input element an add and a max (and the gate's multiply); per pixel the mean's ÷C.
    cost: {
      flops: logicalElements(x.shape) * (gate ? 3 : 2) + count,
      bytes: logicalBytes(x.shape) + (gate ? logicalBytes(gate.shape) : 0) + logicalBytes(y.shape),
    },
  });
  return y;
}
