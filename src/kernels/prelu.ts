import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import { type Binding, bindingBytes, type Graph, type TensorValue } from '../gpu/graph';
import { paddedChannels, tensorElements } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { linearEntry } from './wgsl-common';

/**
 * Standalone PReLU forward (PyTorch nn.PReLU): y = x where x > 0, a·x elsewhere (x = 0 included, as PyTorch).
 * Inference runs PReLU in the epilogue of the convolution before it; training needs it as a step of its own,
 * because its backward (activation-backward.ts `preluBackward`) reads the pre-activation input, and because
 * SRResNet's upsample blocks apply it after a PixelShuffle.
 */
const WORKGROUP = 64;

export interface PreluForwardOptions {
  /** One slope for every channel (PyTorch PReLU(num_parameters=1)): `slopes` holds it at index 0. */
  sharedSlope?: boolean;
}

export function preluForwardWgsl(shared: boolean, io: TensorAccess = WHOLE_BINDINGS): string {
  const slope = shared ? 'vec4<f32>(slopes[0].x)' : 'slopes[i % p.c4]';
  // The slopes are a parameter (a BufferRange of the training arena), never chunked: a plain array binding.
  return `struct Params { count: u32, c4: u32, c: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
@group(0) @binding(2) var<storage, read> slopes: array<vec4<f32>>;
${io.declare('y', 3, 'read_write')}

${linearEntry(WORKGROUP)}
  let v = ${io.load('x', 'i')};
  let a = ${slope};
  // Padded lanes are written as 0 whatever the slope is (a shared slope is broadcast to them too).
  let real = (i % p.c4) * 4u + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.c);
  ${io.store('y', 'i', 'select(vec4<f32>(0.0), select(a * v, v, v > vec4<f32>(0.0)), real)')}
}`;
}

/**
 * `y = prelu(x; slopes)` on an NHWC-padded tensor. `slopes` is the PyTorch parameter, flat f32 padded to whole
 * vec4s: [1] with `sharedSlope`, else [C] (one per channel of `x`).
 */
export function preluForward(graph: Graph, x: TensorValue, slopes: Binding, label: string, options: PreluForwardOptions = {}): TensorValue {
  const shared = options.sharedSlope ?? false;
  const c = x.shape[3];
  const slopeBytes = shared ? 16 : paddedChannels(c) * 4;
  if (bindingBytes(slopes) < slopeBytes) {
    throw new InvalidInputError(
      `${label}: slopes span ${bindingBytes(slopes)} bytes, ${shared ? 'a shared slope needs' : `${c} channel slopes need`} ${slopeBytes}`,
    );
  }
  const y = graph.tensor(x.shape, label);
  const count = tensorElements(x.shape) / 4;
  graph.add({
    label,
    kernel: kernelShader(`prelu[${shared ? 'shared' : 'channels'}]`, { family: 'prelu_forward', shared }, (io) =>
      preluForwardWgsl(shared, io),
    ),
    uniforms: { count, c4: paddedChannels(c) / 4, c },
    bindings: { x, slopes, y },
    workgroups: Math.ceil(count / WORKGROUP),
    // One operation per element (as the fused activations count); x read, y written, the slopes read once.
    cost: { flops: logicalElements(x.shape), bytes: 2 * logicalBytes(x.shape) + (shared ? 1 : c) * 4 },
  });
  return y;
}
