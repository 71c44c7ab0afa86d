import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import { type Binding, bindingBytes, type Graph, type TensorValue } from '../gpu/graph';
import { formatShape, paddedChannels, type Shape4 } from '../gpu/tensor';
import {
  avgMaxPoolGradWgsl,
  CBAM_TRAIN_WORKGROUP as WG,
  channelMeanMaxGradWgsl,
  gateMulWgsl,
  mlpGateWgsl,
  mlpHiddenGradWgsl,
  mlpHiddenWgsl,
  mlpInputGradWgsl,
  mlpParamGradWgsl,
  pixelGateGradWgsl,
  pixelPartialsWgsl,
  sumChunksWgsl,
} from './cbam-backward.wgsl';
import { kernelShader } from './kernel-source';

/*
 * CBAM in a training graph (training.md §1.8; the reference is tools/torch/nets/sinsr.py's CBAM):
 *   pooled = [x.mean((2,3)), x.amax((2,3))]            globalAvgMaxPool (kernels/cbam.ts)   → avgMaxPoolBackward
 *   h      = W1·pooled + b1 (both rows)                cbamMlpHidden
 *   g_c    = σ(mlp(avg) + mlp(max))                    cbamMlpGate                          → cbamMlpBackward
 *   xc     = x·g_c                                     channelGateMul                       → channelGateBackward
 *   s      = cat(xc.mean(1), xc.amax(1))               channelMeanMax (kernels/channel-mean-max.ts) → channelMeanMaxBackward
 *   g_s    = σ(conv7×7(s))                             a Conv2d (its own training path)
 *   out    = xc·g_s                                    pixelGateMul                         → pixelGateBackward
 * Maxima follow torch.amax, the op the reference uses: its backward splits the gradient evenly among tied maxima
 * (unlike max_pool2d / adaptive_max_pool2d, which route it to the first). Sums over the pixels of an image are
 * split-K (chunks of PIXEL_CHUNK pixels, then the chunks in order): no atomics, bitwise reproducible.
 */

/** Pixels one split-K invocation sums. */
export const PIXEL_CHUNK = 128;

/** The channel MLP's parameters (or their gradients) in nn.Linear layout, as flat f32 ranges. */
export interface CbamMlpBindings {
  /** [hidden, C] */
  w1: Binding;
  /** [hidden] */
  b1: Binding;
  /** [C, hidden] */
  w2: Binding;
  /** [C] */
  b2: Binding;
}

function checkShape(label: string, what: string, t: TensorValue, shape: Shape4): void {
  if (t.shape.some((d, i) => d !== shape[i])) {
    throw new InvalidInputError(`${label}: ${what} is ${formatShape(t.shape)}, expected ${formatShape(shape)}`);
  }
}

function checkMlp(label: string, p: CbamMlpBindings, c: number, hidden: number): void {
  if (!Number.isInteger(hidden) || hidden < 1) throw new InvalidInputError(`${label}: hidden width ${hidden} must be a positive integer`);
  const sizes: [keyof CbamMlpBindings, number][] = [
    ['w1', hidden * c],
    ['b1', hidden],
    ['w2', c * hidden],
    ['b2', c],
  ];
  for (const [name, n] of sizes) {
    if (bindingBytes(p[name]) < n * 4) {
      throw new InvalidInputError(`${label}: ${name} spans ${bindingBytes(p[name])} bytes, expected ${n * 4} (C=${c}, hidden=${hidden})`);
    }
  }
}

const count4 = (shape: Shape4) => (shape[0] * shape[1] * shape[2] * paddedChannels(shape[3])) / 4;

/** y = x·gate for a per-channel gate [n, 1, 1, C] (CBAM's channel attention applied). */
export function channelGateMul(graph: Graph, x: TensorValue, gate: TensorValue, label: string): TensorValue {
  const [n, , , c] = x.shape;
  checkShape(label, 'channel gate', gate, [n, 1, 1, c]);
  return gateMul(graph, 'channel', x, gate, label);
}

/** y = x·gate for a per-pixel gate [n, h, w, 1] (CBAM's spatial attention applied). */
export function pixelGateMul(graph: Graph, x: TensorValue, gate: TensorValue, label: string): TensorValue {
  const [n, h, w] = x.shape;
  checkShape(label, 'pixel gate', gate, [n, h, w, 1]);
  return gateMul(graph, 'pixel', x, gate, label);
}

function gateMul(graph: Graph, kind: 'channel' | 'pixel', x: TensorValue, gate: TensorValue, label: string): TensorValue {
  const y = graph.tensor(x.shape, label);
  const count = count4(x.shape);
  graph.add({
    label,
    kernel: kernelShader(`cbam_gate_mul[${kind}]`, { family: 'cbam_gate_mul', kind }, (io) => gateMulWgsl(kind, io)),
    uniforms: { count, c4: paddedChannels(x.shape[3]) / 4, pixels: x.shape[1] * x.shape[2] },
    bindings: { x, gate, y },
    workgroups: Math.ceil(count / WG),
    cost: { flops: logicalElements(x.shape), bytes: 2 * logicalBytes(x.shape) + logicalBytes(gate.shape) },
  });
  return y;
}

/** The hidden pre-activations of the shared MLP for both pooled rows: [n, 1, 2, C] → [n, 1, 2, hidden]. */
export function cbamMlpHidden(graph: Graph, pooled: TensorValue, mlp: CbamMlpBindings, hidden: number, label: string): TensorValue {
  const [n, , , c] = pooled.shape;
  checkShape(label, 'pooled', pooled, [n, 1, 2, c]);
  checkMlp(label, mlp, c, hidden);
  const h = graph.tensor([n, 1, 2, hidden], `${label}.hidden`);
  const count = count4(h.shape);
  graph.add({
    label: `${label}.hidden`,
    kernel: kernelShader('cbam_mlp_hidden', { family: 'cbam_mlp_hidden' }, (io) => mlpHiddenWgsl(io)),
    uniforms: { count, c, c4: paddedChannels(c) / 4, hidden, h4: paddedChannels(hidden) / 4 },
    bindings: { pooled, w1: mlp.w1, b1: mlp.b1, h },
    workgroups: Math.ceil(count / WG),
    cost: { flops: 2 * n * 2 * hidden * c, bytes: logicalBytes(pooled.shape) + 4 * hidden * (c + 1) + logicalBytes(h.shape) },
  });
  return h;
}

/** g_c = σ(mlp(avg) + mlp(max)) from the hidden pre-activations: [n, 1, 1, C]. */
export function cbamMlpGate(graph: Graph, h: TensorValue, mlp: CbamMlpBindings, channels: number, label: string): TensorValue {
  const [n, , , hidden] = h.shape;
  checkShape(label, 'hidden', h, [n, 1, 2, hidden]);
  checkMlp(label, mlp, channels, hidden);
  const gate = graph.tensor([n, 1, 1, channels], `${label}.gate`);
  const count = count4(gate.shape);
  graph.add({
    label: `${label}.gate`,
    kernel: kernelShader('cbam_mlp_gate', { family: 'cbam_mlp_gate' }, (io) => mlpGateWgsl(io)),
    uniforms: { count, c: channels, c4: paddedChannels(channels) / 4, hidden, h4: paddedChannels(hidden) / 4 },
    bindings: { h, w2: mlp.w2, b2: mlp.b2, gate },
    workgroups: Math.ceil(count / WG),
    cost: {
      flops: 2 * n * 2 * hidden * channels + 4 * n * channels,
      bytes: logicalBytes(h.shape) + 4 * channels * (hidden + 1) + logicalBytes(gate.shape),
    },
  });
  return gate;
}

/**
 * Backward of cbamMlpHidden + cbamMlpGate from the gate's gradient: writes the four parameter gradients into
 * `grads` (overwriting) when given, and returns d pooled [n, 1, 2, C].
 */
export function cbamMlpBackward(
  graph: Graph,
  gGate: TensorValue,
  gate: TensorValue,
  h: TensorValue,
  pooled: TensorValue,
  mlp: CbamMlpBindings,
  grads: CbamMlpBindings | undefined,
  label: string,
): TensorValue {
  const [n, , , c] = gate.shape;
  const hidden = h.shape[3];
  checkShape(label, 'gate', gate, [n, 1, 1, c]);
  checkShape(label, 'gate gradient', gGate, [n, 1, 1, c]);
  checkShape(label, 'hidden', h, [n, 1, 2, hidden]);
  checkShape(label, 'pooled', pooled, [n, 1, 2, c]);
  checkMlp(label, mlp, c, hidden);
  if (grads) checkMlp(`${label} (gradients)`, grads, c, hidden);
  const dims = { c, c4: paddedChannels(c) / 4, hidden, h4: paddedChannels(hidden) / 4 };
  const dh = graph.tensor([n, 1, 2, hidden], `${label}.dh`);
  const nh = count4(dh.shape);
  graph.add({
    label: `${label}.dh`,
    kernel: kernelShader('cbam_mlp_hidden_grad', { family: 'cbam_mlp_hidden_grad' }, (io) => mlpHiddenGradWgsl(io)),
    uniforms: { count: nh, ...dims },
    bindings: { g_gate: gGate, gate, h, w2: mlp.w2, dh },
    workgroups: Math.ceil(nh / WG),
    cost: { flops: 2 * n * 2 * hidden * c, bytes: 2 * logicalBytes(gate.shape) + 4 * c * hidden + 2 * logicalBytes(h.shape) },
  });
  if (grads) {
    const total = 2 * hidden * c + hidden + c;
    graph.add({
      label: `${label}.dparams`,
      kernel: kernelShader('cbam_mlp_param_grad', { family: 'cbam_mlp_param_grad' }, (io) => mlpParamGradWgsl(io)),
      uniforms: { count: total, ...dims, items: n },
      bindings: { g_gate: gGate, gate, h, dh, pooled, dw1: grads.w1, db1: grads.b1, dw2: grads.w2, db2: grads.b2 },
      workgroups: Math.ceil(total / WG),
      cost: {
        flops: 4 * n * total,
        bytes: 4 * total + 2 * logicalBytes(h.shape) + logicalBytes(pooled.shape) + 2 * logicalBytes(gate.shape),
      },
    });
  }
  const dpooled = graph.tensor([n, 1, 2, c], `${label}.dpooled`);
  const np = count4(dpooled.shape);
  graph.add({
    label: `${label}.dpooled`,
    kernel: kernelShader('cbam_mlp_input_grad', { family: 'cbam_mlp_input_grad' }, (io) => mlpInputGradWgsl(io)),
    uniforms: { count: np, ...dims },
    bindings: { dh, w1: mlp.w1, dpooled },
    workgroups: Math.ceil(np / WG),
    cost: { flops: 2 * n * 2 * hidden * c, bytes: logicalBytes(dh.shape) + 4 * c * hidden + logicalBytes(dpooled.shape) },
  });
  return dpooled;
}

/** Σ over each image's pixels of `term` (split-K, fixed order): [n, h, w, C] → [n, 1, 1, C]. */
function pixelSum(graph: Graph, term: 'product' | 'ties', a: TensorValue, second: TensorValue, label: string): TensorValue {
  const [n, h, w, c] = a.shape;
  const c4 = paddedChannels(c) / 4;
  const pixels = h * w;
  const chunks = Math.ceil(pixels / PIXEL_CHUNK);
  const partial = graph.tensor([n, chunks, 1, c], `${label}.partials`);
  const np = n * chunks * c4;
  graph.add({
    label: `${label}.partials`,
    kernel: kernelShader(`cbam_pixel_partials[${term}]`, { family: 'cbam_pixel_partials', term }, (io) => pixelPartialsWgsl(term, io)),
    uniforms: { count: np, c4, pixels, chunk: PIXEL_CHUNK, chunks },
    bindings: term === 'product' ? { a, b: second, partial } : { a, pooled: second, partial },
    workgroups: Math.ceil(np / WG),
    cost: {
      flops: 2 * logicalElements(a.shape),
      bytes: (term === 'product' ? 2 : 1) * logicalBytes(a.shape) + logicalBytes(partial.shape),
    },
  });
  const y = graph.tensor([n, 1, 1, c], label);
  const ns = n * c4;
  graph.add({
    label,
    kernel: kernelShader('cbam_sum_chunks', { family: 'cbam_sum_chunks' }, (io) => sumChunksWgsl(io)),
    uniforms: { count: ns, c4, c, chunks },
    bindings: { partial, y },
    workgroups: Math.ceil(ns / WG),
    cost: { flops: logicalElements(partial.shape), bytes: logicalBytes(partial.shape) + logicalBytes(y.shape) },
  });
  return y;
}

/**
 * dx of globalAvgMaxPool (`pooled` = [mean, amax] over each image's pixels, [n, 1, 2, C]) from d pooled: the mean's
 * gradient spread as g/(h·w), the max's split evenly among the pixels holding the maximum (torch.amax).
 */
export function avgMaxPoolBackward(graph: Graph, dPooled: TensorValue, x: TensorValue, pooled: TensorValue, label: string): TensorValue {
  const [n, h, w, c] = x.shape;
  checkShape(label, 'pooled', pooled, [n, 1, 2, c]);
  checkShape(label, 'pooled gradient', dPooled, [n, 1, 2, c]);
  const ties = pixelSum(graph, 'ties', x, pooled, `${label}.ties`);
  const dx = graph.tensor(x.shape, `${label}.dx`);
  const count = count4(x.shape);
  graph.add({
    label: `${label}.dx`,
    kernel: kernelShader('cbam_avg_max_pool_grad', { family: 'cbam_avg_max_pool_grad' }, (io) => avgMaxPoolGradWgsl(io)),
    uniforms: { count, c4: paddedChannels(c) / 4, pixels: h * w, c, plane: h * w },
    bindings: { dpooled: dPooled, x, pooled, ties, dx },
    workgroups: Math.ceil(count / WG),
    cost: { flops: 3 * logicalElements(x.shape), bytes: 2 * logicalBytes(x.shape) + 2 * logicalBytes(pooled.shape) },
  });
  return dx;
}

/** Backward of channelGateMul (y = x·gate, gate [n, 1, 1, C]): dx = g·gate, dgate = Σ_pixels g·x (split-K). */
export function channelGateBackward(
  graph: Graph,
  g: TensorValue,
  x: TensorValue,
  gate: TensorValue,
  label: string,
): { dx: TensorValue; dGate: TensorValue } {
  const [n, , , c] = x.shape;
  checkShape(label, 'gradient', g, x.shape);
  checkShape(label, 'channel gate', gate, [n, 1, 1, c]);
  const dx = gateMul(graph, 'channel', g, gate, `${label}.dx`);
  return { dx, dGate: pixelSum(graph, 'product', g, x, `${label}.dgate`) };
}

/** Backward of pixelGateMul (y = x·gate, gate [n, h, w, 1]): dx = g·gate, dgate = Σ_channels g·x. */
export function pixelGateBackward(
  graph: Graph,
  g: TensorValue,
  x: TensorValue,
  gate: TensorValue,
  label: string,
): { dx: TensorValue; dGate: TensorValue } {
  const [n, h, w] = x.shape;
  checkShape(label, 'gradient', g, x.shape);
  checkShape(label, 'pixel gate', gate, [n, h, w, 1]);
  const dx = graph.tensor(x.shape, `${label}.dx`);
  const dGate = graph.tensor(gate.shape, `${label}.dgate`);
  const count = n * h * w;
  graph.add({
    label,
    kernel: kernelShader('cbam_pixel_gate_grad', { family: 'cbam_pixel_gate_grad' }, (io) => pixelGateGradWgsl(io)),
    uniforms: { count, c4: paddedChannels(x.shape[3]) / 4 },
    bindings: { g, x, gate, dx, dgate: dGate },
    workgroups: Math.ceil(count / WG),
    cost: { flops: 3 * logicalElements(x.shape), bytes: 3 * logicalBytes(x.shape) + 2 * logicalBytes(gate.shape) },
  });
  return { dx, dGate };
}

/**
 * dx of channelMeanMax (cat(x.mean(1), x.amax(1)), [n, h, w, 2]) from its gradient: d_mean/C to every channel,
 * d_max split evenly among the channels holding the pixel's maximum (torch.amax).
 */
export function channelMeanMaxBackward(graph: Graph, d: TensorValue, x: TensorValue, label: string): TensorValue {
  const [n, h, w, c] = x.shape;
  checkShape(label, 'gradient', d, [n, h, w, 2]);
  const dx = graph.tensor(x.shape, label);
  const count = n * h * w;
  graph.add({
    label,
    kernel: kernelShader('cbam_channel_mean_max_grad', { family: 'cbam_channel_mean_max_grad' }, (io) => channelMeanMaxGradWgsl(io)),
    uniforms: { count, c4: paddedChannels(c) / 4, c, channels: c },
    bindings: { d, x, dx },
    workgroups: Math.ceil(count / WG),
    cost: { flops: 4 * logicalElements(x.shape), bytes: 2 * logicalBytes(x.shape) + logicalBytes(d.shape) },
  });
  return dx;
}
