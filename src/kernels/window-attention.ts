import { InvalidInputError } from '../errors';
import { logicalBytes } from '../gpu/cost';
import { type Binding, type Graph, type TensorValue } from '../gpu/graph';
import { formatShape } from '../gpu/tensor';
import { kernelShader } from './kernel-source';
import type { WindowAttentionVariant } from './window-attention-variants';
import { HEAD_DIM, TOKENS, WINDOW, windowAttentionLabel, windowAttentionWgsl } from './window-attention.wgsl';

/*
 * Graph emission of SCUNet's window attention core, and the packing of its relative position bias. The variant
 * table lives in window-attention-variants.ts.
 */
export { HEAD_DIM as WINDOW_ATTENTION_HEAD_DIM, WINDOW as WINDOW_ATTENTION_SIZE } from './window-attention.wgsl';

/** The shift of SCUNet's SW blocks (window_size // 2). */
export const WINDOW_ATTENTION_SHIFT = WINDOW / 2;
/** Number of relative offsets per axis, 2·8 − 1. */
const REL = 2 * WINDOW - 1;

/**
 * The relative position bias `msa.relative_position_params` [nh, 15, 15] as the kernel reads it: unchanged,
 * f32, row-major, indexed [h, r_q − r_k + 7, c_q − c_k + 7] with q the query token.
 */
export function packRelativePositionBias(params: ArrayLike<number>, heads: number): Float32Array {
  if (params.length !== heads * REL * REL) {
    throw new InvalidInputError(`relative position bias has ${params.length} values, expected ${heads}x${REL}x${REL}`);
  }
  return Float32Array.from(params);
}

/** Throws an InvalidInputError unless the kernel can run this variant. */
export function checkWindowAttentionVariant(v: WindowAttentionVariant): void {
  if (v.mode === 'workgroup' ? v.rows !== 1 : !(Number.isInteger(v.rows) && v.rows >= 1 && TOKENS % v.rows === 0)) {
    throw new InvalidInputError(`window attention variant ${JSON.stringify(v)}: rows must be 1 (workgroup) or divide 64 (direct)`);
  }
}

export interface WindowAttentionParams {
  /** The packed relative position bias [heads, 15, 15] (packRelativePositionBias), f32. */
  bias: Binding;
  heads: number;
  /** SW-MSA: roll by (−4, −4) before, region mask, roll back by (+4, +4); all in the index math. */
  shifted: boolean;
  variant: WindowAttentionVariant;
  label: string;
}

/**
 * SCUNet's WMSA attention core on 8×8 windows. `qkv` is the output of the embedding Linear, NHWC
 * [n, H, W, 3C] with channels [Q heads | K heads | V heads], C = heads·32, H and W multiples of 8. The result
 * is [n, H, W, C] (head h in channels h·32 … h·32+31) before the output projection, with every token at its
 * original (unrolled) position: for `shifted`, roll(+4,+4) of the window attention of roll(qkv, −4, −4).
 * C is a multiple of 32, so the tensors have no padded channels.
 */
/** Checks the fused q, k, v map of `heads` heads on whole windows; returns the output channels (heads·32). */
export function checkQkv(qkv: TensorValue, heads: number, label: string): number {
  const [, h, w, c3] = qkv.shape;
  if (!Number.isInteger(heads) || heads < 1 || c3 !== 3 * heads * HEAD_DIM) {
    throw new InvalidInputError(`${label}: qkv ${formatShape(qkv.shape)} must have 3·${heads}·${HEAD_DIM} channels`);
  }
  if (h % WINDOW !== 0 || w % WINDOW !== 0) {
    throw new InvalidInputError(`${label}: feature map ${h}x${w} is not a multiple of the ${WINDOW}x${WINDOW} window`);
  }
  return heads * HEAD_DIM;
}

export function windowAttention(graph: Graph, qkv: TensorValue, params: WindowAttentionParams, output?: TensorValue): TensorValue {
  const { heads, label } = params;
  const variant = { ...params.variant };
  checkWindowAttentionVariant(variant);
  const [n, h, w] = qkv.shape;
  const c = checkQkv(qkv, heads, label);
  const out = output ?? graph.tensor([n, h, w, c], label);
  if (out.shape.some((d, i) => d !== [n, h, w, c][i])) {
    throw new InvalidInputError(`${label}: output ${formatShape(out.shape)} must be ${formatShape([n, h, w, c])}`);
  }
  const nwh = h / WINDOW;
  const nww = w / WINDOW;
  const total = n * nwh * nww * heads;
  graph.add({
    label,
    kernel: kernelShader(windowAttentionLabel(variant), { family: 'window_attention', variant }, (io) => windowAttentionWgsl(variant, io)),
    uniforms: {
      n,
      h,
      w,
      nh: heads,
      nwh,
      nww,
      shift: params.shifted ? WINDOW_ATTENTION_SHIFT : 0,
      total,
      scale: HEAD_DIM ** -0.5,
      // The key-loop bound as a uniform, so CPU compilers do not unroll the 64 iterations (minutes of LLVM).
      tokens: TOKENS,
    },
    bindings: { qkv, rel_bias: params.bias, y: out },
    workgroups: total,
    // Per (window, head), T = 64 tokens of d = 32: QKᵀ and AV 2·T²·d each; per score the bias add and the
    // softmax's max, subtract, exp and sum (5·T²); the query scale and the output normalisation (T·d each).
    // The online softmax's rescaling (direct variant) is not counted. qkv and the bias table read once.
    cost: {
      flops: total * (4 * TOKENS * TOKENS * HEAD_DIM + 5 * TOKENS * TOKENS + 2 * TOKENS * HEAD_DIM),
      bytes: logicalBytes(qkv.shape) + heads * REL * REL * 4 + logicalBytes(out.shape),
    },
  });
  return out;
}
