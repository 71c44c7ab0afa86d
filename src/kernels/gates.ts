import { InvalidInputError } from '../errors';
import { logicalBytes } from '../gpu/cost';
import { type Graph, type TensorValue } from '../gpu/graph';
import { formatShape, paddedChannels } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { linearEntry } from './wgsl-common';
import { LINEAR_WORKGROUP_INDEX_WGSL, WORKGROUP_BUILTINS } from '../gpu/dispatch';

/**
 * Squeeze-and-excitation gates, as segmentation_models_pytorch's SCSEModule:
 *   cSE = sigmoid(W2·relu(W1·GAP(x) + b1) + b2)      per (batch item, channel); W1 [C/r, C], W2 [C, C/r]
 *   sSE = sigmoid(ws·x + bs)                         per pixel (a 1×1 conv C → 1)
 *   out = x·cSE + x·sSE   (SCSE)   or   x·cSE   (plain SE)
 * Two dispatches: `channelGate` (global average pool, both matvecs and the sigmoid; one workgroup per batch
 * item) writes the gate vector as an [n, 1, 1, C] tensor, and `applyGates` computes sSE per pixel and writes
 * the gated output in one pass.
 */

/** A PyTorch tensor as it comes out of a checkpoint: row-major data and its shape. */
export interface TorchTensorLike {
  data: ArrayLike<number>;
  shape: readonly number[];
}

/** The SCSE module's parameters, by their smp names (`cSE.1`, `cSE.3`, `sSE.0`). sSE is absent for plain SE. */
export interface SCSEWeights {
  /** cSE.1.weight [hidden, C, 1, 1] */
  cse1Weight: TorchTensorLike;
  /** cSE.1.bias [hidden] */
  cse1Bias: TorchTensorLike;
  /** cSE.3.weight [C, hidden, 1, 1] */
  cse2Weight: TorchTensorLike;
  /** cSE.3.bias [C] */
  cse2Bias: TorchTensorLike;
  /** sSE.0.weight [1, C, 1, 1] */
  sseWeight?: TorchTensorLike;
  /** sSE.0.bias [1] */
  sseBias?: TorchTensorLike;
}

export interface PackedGates {
  channels: number;
  hidden: number;
  /** Upload as the `channelGate` weights buffer. */
  channelGate: Float32Array;
  /** Upload as the `spatialGate` weights buffer (absent when the weights had no sSE). */
  spatialGate?: Float32Array;
}

/** Workgroup memory capacity of the channel-gate kernel: vec4s for the pooled vector, floats for the hidden. */
export const GATE_MAX_CHANNELS = 2048;
export const GATE_MAX_HIDDEN = 512;
const POOL_CAP4 = GATE_MAX_CHANNELS / 4;
const GATE_WORKGROUP = 128;
const APPLY_WORKGROUP = 64;

function checkTensor(t: TorchTensorLike, what: string, shape: number[]): void {
  const ok = t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]);
  // Also accept the squeezed [a, b] form of a 1×1 conv weight (a Linear-like export).
  const squeezedOk =
    shape.length === 4 && shape[2] === 1 && shape[3] === 1 && t.shape.length === 2 && t.shape[0] === shape[0] && t.shape[1] === shape[1];
  if (!ok && !squeezedOk) {
    throw new InvalidInputError(`${what} has shape ${formatShape(t.shape)}, expected ${formatShape(shape)}`);
  }
  const numel = shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== numel) throw new InvalidInputError(`${what} has ${t.data.length} values, expected ${numel}`);
}

/**
 * Packs the gate weights.
 * channelGate (vec4s): W1 rows (hidden × c4, lanes = 4 input channels), then W2 transposed (hidden × c4, lanes
 * = 4 output channels), then b2 (c4), then b1 (⌈hidden/4⌉). spatialGate: ws (c4 vec4s) then one vec4 (bs, 0, 0, 0).
 * Padded lanes are 0.
 */
export function packGateWeights(w: SCSEWeights): PackedGates {
  if (w.cse1Weight.shape.length < 2)
    throw new InvalidInputError(`cSE.1.weight has shape ${formatShape(w.cse1Weight.shape)}, expected [hidden, C, 1, 1]`);
  const hidden = w.cse1Weight.shape[0];
  const c = w.cse1Weight.shape[1];
  if (c < 1 || hidden < 1)
    throw new InvalidInputError(`cSE.1.weight has shape ${formatShape(w.cse1Weight.shape)}, expected [hidden, C, 1, 1]`);
  if (c > GATE_MAX_CHANNELS) throw new InvalidInputError(`SCSE on ${c} channels: at most ${GATE_MAX_CHANNELS} are supported`);
  if (hidden > GATE_MAX_HIDDEN) throw new InvalidInputError(`SCSE hidden width ${hidden}: at most ${GATE_MAX_HIDDEN} is supported`);
  checkTensor(w.cse1Weight, 'cSE.1.weight', [hidden, c, 1, 1]);
  checkTensor(w.cse1Bias, 'cSE.1.bias', [hidden]);
  checkTensor(w.cse2Weight, 'cSE.3.weight', [c, hidden, 1, 1]);
  checkTensor(w.cse2Bias, 'cSE.3.bias', [c]);
  const c4 = paddedChannels(c) / 4;
  const cg = new Float32Array((2 * hidden * c4 + c4 + Math.ceil(hidden / 4)) * 4);
  const w2Off = hidden * c4 * 4;
  const b2Off = 2 * hidden * c4 * 4;
  const b1Off = b2Off + c4 * 4;
  for (let j = 0; j < hidden; j++) {
    for (let ch = 0; ch < c; ch++) {
      cg[j * c4 * 4 + ch] = w.cse1Weight.data[j * c + ch];
      cg[w2Off + j * c4 * 4 + ch] = w.cse2Weight.data[ch * hidden + j];
    }
    cg[b1Off + j] = w.cse1Bias.data[j];
  }
  for (let ch = 0; ch < c; ch++) cg[b2Off + ch] = w.cse2Bias.data[ch];
  const packed: PackedGates = { channels: c, hidden, channelGate: cg };
  if (w.sseWeight || w.sseBias) {
    if (!w.sseWeight || !w.sseBias) throw new InvalidInputError('sSE.0 needs both weight and bias');
    checkTensor(w.sseWeight, 'sSE.0.weight', [1, c, 1, 1]);
    checkTensor(w.sseBias, 'sSE.0.bias', [1]);
    const sg = new Float32Array((c4 + 1) * 4);
    for (let ch = 0; ch < c; ch++) sg[ch] = w.sseWeight.data[ch];
    sg[c4 * 4] = w.sseBias.data[0];
    packed.spatialGate = sg;
  }
  return packed;
}

export function channelGateWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  const WG = GATE_WORKGROUP;
  return `struct Params { n: u32, pixels: u32, c4: u32, c: u32, hidden: u32, slices: u32, inv_pixels: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
@group(0) @binding(2) var<storage, read> weights: array<vec4<f32>>;
${io.declare('gate', 3, 'read_write')}

var<workgroup> pooled: array<vec4<f32>, ${POOL_CAP4}>;
var<workgroup> hid: array<f32, ${GATE_MAX_HIDDEN}>;

${LINEAR_WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${WG})
fn main(${WORKGROUP_BUILTINS},
        @builtin(local_invocation_index) lid: u32) {
  let b = linear_workgroup_index(wid, nwg);
  if (b >= p.n) { return; }
  let c4 = p.c4;
  // Global average pool: (channel vec4, pixel slice) pairs, each summing every slices-th pixel; partial sums
  // go to pooled[slice · c4 + channel], then slice 0 gathers the others in place.
  let pairs = c4 * p.slices;
  let xbase = b * p.pixels * c4;
  for (var t = lid; t < pairs; t += ${WG}u) {
    let k = t % c4;
    var acc = vec4<f32>(0.0);
    for (var q = t / c4; q < p.pixels; q += p.slices) { acc += ${io.load('x', 'xbase + q * c4 + k')}; }
    pooled[t] = acc;
  }
  workgroupBarrier();
  for (var k = lid; k < c4; k += ${WG}u) {
    var acc = pooled[k];
    for (var s = 1u; s < p.slices; s++) { acc += pooled[s * c4 + k]; }
    pooled[k] = acc * p.inv_pixels;
  }
  workgroupBarrier();
  // hidden = relu(W1 · pooled + b1)
  let b1 = 2u * p.hidden * c4 + c4;
  for (var j = lid; j < p.hidden; j += ${WG}u) {
    var acc = vec4<f32>(0.0);
    for (var k = 0u; k < c4; k++) { acc += weights[j * c4 + k] * pooled[k]; }
    hid[j] = max(acc.x + acc.y + acc.z + acc.w + weights[b1 + j / 4u][j % 4u], 0.0);
  }
  workgroupBarrier();
  // gate = sigmoid(W2 · hidden + b2), padded lanes 0
  let w2 = p.hidden * c4;
  for (var k = lid; k < c4; k += ${WG}u) {
    var acc = weights[2u * w2 + k];
    for (var j = 0u; j < p.hidden; j++) { acc += hid[j] * weights[w2 + j * c4 + k]; }
    let g = 1.0 / (1.0 + exp(-acc));
    let lane = k * 4u + vec4<u32>(0u, 1u, 2u, 3u);
    ${io.store('gate', 'b * c4 + k', 'select(vec4<f32>(0.0), g, lane < vec4<u32>(p.c))')}
  }
}`;
}

/**
 * Adds the channel-gate dispatch: cSE for every batch item, as an [n, 1, 1, C] tensor (padded lanes 0).
 * `weights` is a GPU buffer holding `packGateWeights(...).channelGate`.
 */
export function channelGate(graph: Graph, input: TensorValue, params: { weights: GPUBuffer; hidden: number; label: string }): TensorValue {
  const [n, h, w, c] = input.shape;
  const hidden = params.hidden;
  if (c > GATE_MAX_CHANNELS)
    throw new InvalidInputError(`${params.label}: SCSE on ${c} channels: at most ${GATE_MAX_CHANNELS} are supported`);
  if (!Number.isInteger(hidden) || hidden < 1 || hidden > GATE_MAX_HIDDEN) {
    throw new InvalidInputError(`${params.label}: SCSE hidden width ${hidden} must be an integer in 1..${GATE_MAX_HIDDEN}`);
  }
  const c4 = paddedChannels(c) / 4;
  const bytes = (2 * hidden * c4 + c4 + Math.ceil(hidden / 4)) * 16;
  if (params.weights.size < bytes) {
    throw new InvalidInputError(
      `${params.label}: channel-gate weights buffer holds ${params.weights.size} bytes, expected ${bytes} for C=${c}, hidden=${hidden}`,
    );
  }
  const pixels = h * w;
  const slices = Math.max(1, Math.min(Math.floor(POOL_CAP4 / c4), pixels));
  const gate = graph.tensor([n, 1, 1, c], `${params.label}.cse`);
  graph.add({
    label: `${params.label}.cse`,
    kernel: kernelShader('gates[channel]', { family: 'gates_channel' }, (io) => channelGateWgsl(io)),
    uniforms: { n, pixels, c4, c, hidden, slices, inv_pixels: 1 / pixels },
    bindings: { x: input, weights: params.weights, gate },
    workgroups: n,
    // Per image: the pool (an add per element, a ÷ per channel), W1 (2·C·hidden) + b1 + ReLU, W2 (2·hidden·C) + b2
    // + sigmoid; x, W1, b1, W2, b2 read once, the gate written.
    cost: {
      flops: n * (pixels * c + 4 * c * hidden + 2 * hidden + 3 * c),
      bytes: logicalBytes(input.shape) + (2 * hidden * c + hidden + c) * 4 + logicalBytes(gate.shape),
    },
  });
  return gate;
}

export function applyGatesWgsl(spatial: boolean, io: TensorAccess = WHOLE_BINDINGS): string {
  const WG = APPLY_WORKGROUP;
  const head = `struct Params { pixels_per_item: u32, total: u32, c4: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
${io.declare('gate', 2, 'read')}
`;
  if (!spatial) {
    // Plain SE: one invocation per vec4, total = number of vec4s.
    return `${head}${io.declare('y', 3, 'read_write')}

${linearEntry(WG, 'i', 'p.total')}
  let b = i / (p.pixels_per_item * p.c4);
  ${io.store('y', 'i', `${io.load('x', 'i')} * ${io.load('gate', 'b * p.c4 + i % p.c4')}`)}
}`;
  }
  // SCSE: one invocation per pixel, total = number of pixels.
  return `${head}@group(0) @binding(3) var<storage, read> sse: array<vec4<f32>>;
${io.declare('y', 4, 'read_write')}

${linearEntry(WG, 'px', 'p.total')}
  let base = px * p.c4;
  let gbase = (px / p.pixels_per_item) * p.c4;
  var acc = vec4<f32>(0.0);
  for (var k = 0u; k < p.c4; k++) { acc += ${io.load('x', 'base + k')} * sse[k]; }
  let s = 1.0 / (1.0 + exp(-(acc.x + acc.y + acc.z + acc.w + sse[p.c4].x)));
  for (var k = 0u; k < p.c4; k++) {
    let v = ${io.load('x', 'base + k')};
    ${io.store('y', 'base + k', `v * ${io.load('gate', 'gbase + k')} + v * s`)}
  }
}`;
}

/**
 * Adds the apply dispatch: `x·gate + x·sSE(x)` when `spatialGate` (a GPU buffer holding
 * `packGateWeights(...).spatialGate`) is given, else plain SE `x·gate`. `gate` is `channelGate`'s output.
 * Padded channels stay 0 because x is 0 there.
 */
export function applyGates(
  graph: Graph,
  input: TensorValue,
  gate: TensorValue,
  params: { spatialGate?: GPUBuffer; label: string },
): TensorValue {
  const [n, h, w, c] = input.shape;
  if (gate.shape[0] !== n || gate.shape[1] !== 1 || gate.shape[2] !== 1 || gate.shape[3] !== c) {
    throw new InvalidInputError(
      `${params.label}: gate shape ${formatShape(gate.shape)} does not match input ${formatShape(input.shape)} (expected [${n}, 1, 1, ${c}])`,
    );
  }
  const c4 = paddedChannels(c) / 4;
  const spatial = params.spatialGate !== undefined;
  if (params.spatialGate && params.spatialGate.size < (c4 + 1) * 16) {
    throw new InvalidInputError(
      `${params.label}: spatial-gate weights buffer holds ${params.spatialGate.size} bytes, expected ${(c4 + 1) * 16} for C=${c}`,
    );
  }
  const pixels = h * w;
  const total = spatial ? n * pixels : n * pixels * c4;
  const y = graph.tensor(input.shape, params.label);
  graph.add({
    label: params.label,
    kernel: kernelShader(`gates[apply,${spatial ? 'scse' : 'se'}]`, { family: 'gates_apply', spatial }, (io) =>
      applyGatesWgsl(spatial, io),
    ),
    uniforms: { pixels_per_item: pixels, total, c4 },
    bindings: spatial ? { x: input, gate, sse: params.spatialGate as GPUBuffer, y } : { x: input, gate, y },
    workgroups: Math.ceil(total / APPLY_WORKGROUP),
    // SE: x·gate per element. SCSE: per pixel the sSE dot product (2·C) + bias + sigmoid, then x·cSE + x·sSE (3)
    // per element. x, the gate (and the sSE weights and bias) read once, y written once.
    cost: {
      flops: spatial ? n * pixels * (2 * c + 2 + 3 * c) : n * pixels * c,
      bytes: 2 * logicalBytes(input.shape) + logicalBytes(gate.shape) + (spatial ? (c + 1) * 4 : 0),
    },
  });
  return y;
}

/**
 * The whole SCSE (or plain SE, `spatial: false`) block: channelGate then applyGates. Buffers hold the arrays
 * from `packGateWeights`; `spatialGate` is required unless `spatial` is false.
 */
export function scse(
  graph: Graph,
  input: TensorValue,
  params: { channelGate: GPUBuffer; spatialGate?: GPUBuffer; hidden: number; spatial?: boolean; label: string },
): TensorValue {
  const spatial = params.spatial ?? true;
  if (spatial && !params.spatialGate) {
    throw new InvalidInputError(`${params.label}: SCSE needs the spatial-gate (sSE) weights buffer; pass spatial: false for plain SE`);
  }
  const gate = channelGate(graph, input, { weights: params.channelGate, hidden: params.hidden, label: params.label });
  return applyGates(graph, input, gate, { spatialGate: spatial ? params.spatialGate : undefined, label: params.label });
}
