import { InvalidInputError } from '../errors';
import { logicalBytes } from '../gpu/cost';
import { type Binding, type Graph, type TensorValue } from '../gpu/graph';
import { formatShape } from '../gpu/tensor';
import { kernelShader } from './kernel-source';
import { checkQkv, WINDOW_ATTENTION_SHIFT } from './window-attention';
import {
  attentionColumnsBackwardWgsl,
  attentionRowsBackwardWgsl,
  biasGradPartialsWgsl,
  biasGradReduceWgsl,
  DT_WORKGROUP,
  TABLE,
} from './window-attention-backward.wgsl';
import { HEAD_DIM, TOKENS, WINDOW } from './window-attention.wgsl';
import { checkBindingHolds } from './weight-pack-gpu';

/** Windows whose pairs one invocation of the bias-gradient pass 1 sums (≤ 8·64 terms per table entry). */
const WINDOWS_PER_CHUNK = 8;

export interface WindowAttentionBackwardParams {
  /** The relative position bias [heads, 15, 15] the forward used (flat f32, PyTorch layout). */
  bias: Binding;
  heads: number;
  /** SW-MSA (roll by −4, region mask, roll back), as in the forward. */
  shifted: boolean;
  /** When given, the bias-table gradient [heads, 15, 15] is written (overwritten) here (flat f32, vec4-padded). */
  dBias?: Binding;
  label: string;
  /** Tests: windows per chunk of the bias-gradient reduction (default 8). */
  windowsPerChunk?: number;
}

/**
 * Backward of `windowAttention` (window-attention.ts, SCUNet's WMSA core, docs/training.md §1.9): from the
 * forward's input `qkv` [n, H, W, 3C] and the gradient `gy` [n, H, W, C] of its output, returns dqkv (same shape as
 * qkv; channels [dQ | dK | dV] at each token's original pixel) and, with `dBias`, writes the gradient of the
 * relative position bias table summed over images, windows and token pairs in a fixed order.
 *
 * The softmax is recomputed (nothing is kept from the forward but qkv): pass A, one invocation per query, writes dQ
 * and the scratch P and dS ([windows·heads, 64, 64] each); pass B, one invocation per key, writes dK and dV; the
 * bias gradient is a split reduction over chunks of windows (partials, then a fixed-order sum). No atomics.
 */
export function windowAttentionBackward(
  graph: Graph,
  qkv: TensorValue,
  gy: TensorValue,
  params: WindowAttentionBackwardParams,
): TensorValue {
  const { heads, label } = params;
  const [n, h, w] = qkv.shape;
  const c = checkQkv(qkv, heads, label);
  if (gy.shape.some((d, i) => d !== [n, h, w, c][i])) {
    throw new InvalidInputError(`${label}: output gradient ${formatShape(gy.shape)} must be ${formatShape([n, h, w, c])}`);
  }
  checkBindingHolds(params.bias, heads * TABLE, `${label}: bias`);
  // The reduce writes whole vec4s (padded lanes 0).
  if (params.dBias) checkBindingHolds(params.dBias, Math.ceil((heads * TABLE) / 4) * 4, `${label}: dBias`);
  const chunkWindows = params.windowsPerChunk ?? WINDOWS_PER_CHUNK;
  if (!Number.isInteger(chunkWindows) || chunkWindows < 1) {
    throw new InvalidInputError(`${label}: windowsPerChunk ${chunkWindows} must be a positive integer`);
  }
  const nwh = h / WINDOW;
  const nww = w / WINDOW;
  const windows = n * nwh * nww;
  const total = windows * heads;
  const uniforms = {
    n,
    h,
    w,
    nh: heads,
    nwh,
    nww,
    shift: params.shifted ? WINDOW_ATTENTION_SHIFT : 0,
    total,
    scale: HEAD_DIM ** -0.5,
    // A uniform loop bound, so CPU compilers do not unroll the 64 iterations (as in the forward).
    tokens: TOKENS,
  };
  const dqkv = graph.tensor(qkv.shape, `${label}.dqkv`);
  const probs = graph.tensor([1, total, TOKENS, TOKENS], `${label}.probs`);
  const dscores = graph.tensor([1, total, TOKENS, TOKENS], `${label}.dscores`);
  const pairs = total * TOKENS * TOKENS;
  const scratchBytes = 2 * pairs * 4;
  graph.add({
    label: `${label}.rows`,
    kernel: kernelShader('window-attention-backward[rows]', { family: 'window_attention_backward_rows' }, (io) =>
      attentionRowsBackwardWgsl(io),
    ),
    uniforms,
    bindings: { qkv, gy, rel_bias: params.bias, dqkv, probs, dscores },
    workgroups: total,
    // Three passes over the keys recompute the scores (2·d + 2 each) and dP (2·d, twice); dQ 2·d per pair.
    cost: {
      flops: pairs * (3 * (2 * HEAD_DIM + 2) + 4 * HEAD_DIM + 2 * HEAD_DIM + 8),
      bytes: logicalBytes(qkv.shape) + logicalBytes(gy.shape) + scratchBytes,
    },
  });
  graph.add({
    label: `${label}.columns`,
    kernel: kernelShader('window-attention-backward[columns]', { family: 'window_attention_backward_columns' }, (io) =>
      attentionColumnsBackwardWgsl(io),
    ),
    uniforms,
    bindings: { qkv, gy, probs, dscores, dqkv },
    workgroups: total,
    cost: { flops: pairs * 4 * HEAD_DIM, bytes: logicalBytes(qkv.shape) + logicalBytes(gy.shape) + scratchBytes + logicalBytes(qkv.shape) },
  });
  if (params.dBias) {
    const entries = heads * TABLE;
    const e4 = Math.ceil(entries / 4);
    const chunks = Math.ceil(windows / chunkWindows);
    const part = graph.tensor([1, 1, chunks, e4 * 4], `${label}.dbias partials`);
    graph.add({
      label: `${label}.dbias partials`,
      kernel: kernelShader('window-attention-backward[dbias partials]', { family: 'window_attention_dbias_partials' }, (io) =>
        biasGradPartialsWgsl(io),
      ),
      uniforms: { nh: heads, windows, chunk_windows: chunkWindows, e4, entries, count: chunks * e4 },
      bindings: { dscores, part },
      workgroups: Math.ceil((chunks * e4) / DT_WORKGROUP),
      cost: { flops: pairs, bytes: pairs * 4 + chunks * e4 * 16 },
    });
    graph.add({
      label: `${label}.dbias`,
      kernel: kernelShader('window-attention-backward[dbias reduce]', { family: 'window_attention_dbias_reduce' }, (io) =>
        biasGradReduceWgsl(io),
      ),
      uniforms: { chunks, e4, count: e4 },
      bindings: { part, d_table: params.dBias },
      workgroups: Math.ceil(e4 / DT_WORKGROUP),
      cost: { flops: chunks * e4 * 4, bytes: chunks * e4 * 16 + e4 * 16 },
    });
  }
  return dqkv;
}
