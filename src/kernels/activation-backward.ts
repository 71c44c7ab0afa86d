import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import { type Binding, bindingBytes, type Graph, type TensorValue } from '../gpu/graph';
import { formatShape, paddedChannels, tensorElements } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { type Activation, activationAlpha, activationWgsl } from './activation';
import { kernelShader } from './kernel-source';
import { REAL_LANES_WGSL, realLaneParams, reduceRows } from './reduce';
import { linearEntry } from './wgsl-common';

/**
 * Backward of the element-wise activations (training.md §1.3), with PyTorch 1.13's values at the kinks:
 * relu'(0) = 0, leaky_relu'(0) = α, prelu'(0) = a. The gradient is 0 wherever the upstream gradient is, so padded
 * channels (0 in `gy`) stay 0.
 */
const WORKGROUP = 64;

/**
 * What the backward of `activation` needs kept from the forward pass: the output y for ReLU, LeakyReLU, sigmoid
 * and tanh (PyTorch keeps y too, and a fused conv epilogue has no x to keep), the input x for exact GELU, nothing
 * for the identity.
 */
export function activationSaves(activation: Activation): 'input' | 'output' | 'nothing' {
  switch (activation.kind) {
    case 'none':
      return 'nothing';
    case 'gelu':
      return 'input';
    case 'relu':
    case 'leakyRelu':
    case 'sigmoid':
    case 'tanh':
      return 'output';
  }
}

/** `fn dact(g, s, alpha)`: the input gradient from upstream gradient g and the saved vec4 s. */
function derivativeWgsl(activation: Activation): string {
  const head = 'fn dact(g: vec4<f32>, s: vec4<f32>, alpha: f32) -> vec4<f32>';
  switch (activation.kind) {
    case 'none':
      return `${head} { return g; }`;
    case 'relu':
      // y > 0 exactly where x > 0; at x = 0 PyTorch's threshold_backward passes nothing.
      return `${head} { return select(vec4<f32>(0.0), g, s > vec4<f32>(0.0)); }`;
    case 'leakyRelu':
      // With α ≥ 0, y > 0 exactly where x > 0, and y = 0 only at x = 0, which gets α (PyTorch: x > 0 ? g : αg).
      return `${head} { return select(g * alpha, g, s > vec4<f32>(0.0)); }`;
    case 'sigmoid':
      return `${head} { return g * s * (1.0 - s); }`;
    case 'tanh':
      return `${head} { return g * (1.0 - s * s); }`;
    case 'gelu':
      // d/dx x·Φ(x) = Φ(x) + x·φ(x), Φ with the same A&S erf as the forward (activation.ts), φ = e^{−x²/2}/√(2π).
      return `${activationWgsl(activation)}
${head} {
  let cdf = 0.5 * (1.0 + erf4(s * 0.7071067811865476));
  let pdf = exp(-0.5 * s * s) * 0.3989422804014327;
  return g * (cdf + s * pdf);
}`;
  }
}

export function activationBackwardWgsl(activation: Activation, io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, alpha: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('gy', 1, 'read')}
${io.declare('saved', 2, 'read')}
${io.declare('dx', 3, 'read_write')}

${derivativeWgsl(activation)}

${linearEntry(WORKGROUP)}
  ${io.store('dx', 'i', `dact(${io.load('gy', 'i')}, ${io.load('saved', 'i')}, p.alpha)`)}
}`;
}

function checkSameShape(a: TensorValue, b: TensorValue, what: string, label: string): void {
  if (a.shape.some((d, i) => d !== b.shape[i])) {
    throw new InvalidInputError(`${label}: ${what} ${formatShape(b.shape)} does not match the gradient ${formatShape(a.shape)}`);
  }
}

/**
 * dx of `activation` from the upstream gradient `gy` and what `activationSaves` says to keep (`saved`: y, or x
 * for GELU; ignored for 'none', whose gradient is `gy` itself, returned without a dispatch).
 */
export function activationBackward(graph: Graph, activation: Activation, gy: TensorValue, saved: TensorValue, label: string): TensorValue {
  if (activation.kind === 'none') return gy;
  if (activation.kind === 'leakyRelu' && !(activation.alpha >= 0 && Number.isFinite(activation.alpha))) {
    // From y alone the sign of x is lost when α < 0 (PyTorch refuses that case for its in-place form too).
    throw new InvalidInputError(`${label}: LeakyReLU backward from the output needs a finite slope α ≥ 0, got ${activation.alpha}`);
  }
  checkSameShape(gy, saved, `saved ${activationSaves(activation)} '${saved.label}'`, label);
  const dx = graph.tensor(gy.shape, label);
  const count = tensorElements(gy.shape) / 4;
  graph.add({
    label,
    kernel: kernelShader(`activation_backward[${activation.kind}]`, { family: 'activation_backward', epilogue: activation.kind }, (io) =>
      activationBackwardWgsl(activation, io),
    ),
    uniforms: { count, alpha: activationAlpha(activation) },
    bindings: { gy, saved, dx },
    workgroups: Math.ceil(count / WORKGROUP),
    // One operation per element (as the forward activations count), gy and the saved tensor read, dx written.
    cost: { flops: logicalElements(gy.shape), bytes: 3 * logicalBytes(gy.shape) },
  });
  return dx;
}

export interface PreluBackwardOptions {
  /** The module has one slope for every channel (PyTorch PReLU(num_parameters=1)): da is summed over channels. */
  sharedSlope?: boolean;
}

/**
 * PReLU backward (PyTorch nn.PReLU): dx = g where x > 0, a·g elsewhere (x = 0 included); da = Σ_{x ≤ 0} g·x per
 * channel over N·H·W, or over everything into one value for a shared slope. `slopes` holds the PyTorch parameter
 * (flat f32, padded to a vec4 with zeros); `dSlopes` (same layout) is overwritten, its padding with zeros. The da
 * sum is the two-pass deterministic reduction of reduce.ts, fused with dx into its first pass.
 */
export function preluBackward(
  graph: Graph,
  gy: TensorValue,
  x: TensorValue,
  slopes: Binding,
  dSlopes: Binding,
  label: string,
  options: PreluBackwardOptions = {},
): TensorValue {
  checkSameShape(gy, x, `input '${x.label}'`, label);
  const shared = options.sharedSlope ?? false;
  const [n, h, w, c] = gy.shape;
  const slopeBytes = shared ? 16 : paddedChannels(c) * 4;
  for (const [name, b] of [
    ['slopes', slopes],
    ['dSlopes', dSlopes],
  ] as const) {
    if (bindingBytes(b) < slopeBytes) {
      throw new InvalidInputError(
        `${label}: ${name} spans ${bindingBytes(b)} bytes, ${shared ? 'a shared slope' : `${c} channel slopes`} need ${slopeBytes}`,
      );
    }
  }
  const dx = graph.tensor(gy.shape, label);
  const c4 = paddedChannels(c) / 4;
  reduceRows(graph, {
    // Per channel: rows are pixels of c4 groups. Shared: every vec4 is a row of one group.
    rows: shared ? n * h * w * c4 : n * h * w,
    groups: shared ? 1 : c4,
    body: {
      tag: shared ? 'prelu_backward_shared' : 'prelu_backward',
      key: { prelu: shared ? 'shared' : 'channels' },
      bindings: {
        gy: { binding: gy, mode: 'read' },
        x: { binding: x, mode: 'read' },
        slopes: { binding: slopes, mode: 'read' },
        dx: { binding: dx, mode: 'read_write' },
      },
      params: realLaneParams(gy.shape),
      statements: (io) => `let g = ${io.load('gy', 'i')};
      let v = ${io.load('x', 'i')};
      let a = ${shared ? `vec4<f32>(${io.load('slopes', '0u')}.x)` : io.load('slopes', 'i % p.c4')};
      let positive = v > vec4<f32>(0.0);
      ${io.store('dx', 'i', 'select(a * g, g, positive)')}
      term = select(g * v, vec4<f32>(0.0), positive | !(${REAL_LANES_WGSL}));`,
      // Per element: the select's multiply and da's multiply-add; gy and x read, dx written.
      cost: { flops: 3 * logicalElements(gy.shape), bytes: 3 * logicalBytes(gy.shape) + c * 4 },
    },
    finish: shared ? { kind: 'collapse', coefficients: [1, 1, 1, 1] } : { kind: 'channels', channels: c, scale: 1 },
    into: dSlopes,
    label: `${label} dSlopes`,
  });
  return dx;
}
