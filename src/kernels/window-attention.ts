import { InvalidInputError } from '../errors';
import type { AdapterDescription } from '../gpu/adapter-info';
import { logicalBytes } from '../gpu/cost';
import { type Graph, type TensorValue, workgroupGrid } from '../gpu/graph';
import { formatShape } from '../gpu/tensor';
import {
  HEAD_DIM,
  TOKENS,
  WINDOW,
  type WindowAttentionVariant,
  windowAttentionLabel,
  windowAttentionWgsl,
} from './window-attention.wgsl';

export type { WindowAttentionVariant } from './window-attention.wgsl';
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

/**
 * lavapipe (2 cores), 128×128 map, 1 head, SW, GPU timestamps (WMSA_BENCH=1 npx vitest run
 * test/kernels/window-attention.test.ts -t timing): workgroup ≈ 150 ms, direct rows1 ≈ 215 ms, direct rows2
 * ≈ 115 ms. Larger `rows` cost far more LLVM compile time on lavapipe (first compile, before Mesa's shader
 * cache: workgroup 0.6 s, rows1 3.7 s, rows2 13 s, rows4 28 s, rows8 70 s), so software adapters get rows2.
 * Hardware GPUs get the workgroup-memory kernel (untuned so far: no hardware adapter was available).
 */
export function selectWindowAttentionVariant(adapter: AdapterDescription): WindowAttentionVariant {
  if (variantOverride) return variantOverride;
  if (adapter.isSoftware) return { mode: 'direct', rows: 2 };
  return { mode: 'workgroup', rows: 1 };
}

let variantOverride: WindowAttentionVariant | undefined;

/** Forces one variant for every window attention (benchmarks); `undefined` restores the selector. */
export function overrideWindowAttentionVariant(v: WindowAttentionVariant | undefined): void {
  variantOverride = v;
}

/**
 * Variants the tests check besides the selector's picks (rows ≥ 4 work but take 30–70 s to compile on
 * lavapipe, too slow for the suite).
 */
export const WINDOW_ATTENTION_TEST_VARIANTS: WindowAttentionVariant[] = [
  { mode: 'workgroup', rows: 1 },
  { mode: 'direct', rows: 1 },
  { mode: 'direct', rows: 2 },
];

function checkVariant(v: WindowAttentionVariant): void {
  if (v.mode === 'workgroup' ? v.rows !== 1 : !(Number.isInteger(v.rows) && v.rows >= 1 && TOKENS % v.rows === 0)) {
    throw new InvalidInputError(`window attention variant ${JSON.stringify(v)}: rows must be 1 (workgroup) or divide 64 (direct)`);
  }
}

export interface WindowAttentionParams {
  /** The packed relative position bias [heads, 15, 15] (packRelativePositionBias), f32. */
  bias: GPUBuffer;
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
export function windowAttention(
  graph: Graph,
  qkv: TensorValue,
  params: WindowAttentionParams,
  output?: TensorValue,
  maxWorkgroupsPerDimension = 65535,
): TensorValue {
  const { heads, variant, label } = params;
  checkVariant(variant);
  const [n, h, w, c3] = qkv.shape;
  if (!Number.isInteger(heads) || heads < 1 || c3 !== 3 * heads * HEAD_DIM) {
    throw new InvalidInputError(`${label}: qkv ${formatShape(qkv.shape)} must have 3·${heads}·${HEAD_DIM} channels`);
  }
  if (h % WINDOW !== 0 || w % WINDOW !== 0) {
    throw new InvalidInputError(`${label}: feature map ${h}x${w} is not a multiple of the ${WINDOW}x${WINDOW} window`);
  }
  const c = heads * HEAD_DIM;
  const out = output ?? graph.tensor([n, h, w, c], label);
  if (out.shape.some((d, i) => d !== [n, h, w, c][i])) {
    throw new InvalidInputError(`${label}: output ${formatShape(out.shape)} must be ${formatShape([n, h, w, c])}`);
  }
  const nwh = h / WINDOW;
  const nww = w / WINDOW;
  const total = n * nwh * nww * heads;
  graph.add({
    label,
    kernel: { label: windowAttentionLabel(variant), code: windowAttentionWgsl(variant) },
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
    workgroups: workgroupGrid(total, maxWorkgroupsPerDimension),
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
