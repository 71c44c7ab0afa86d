import { InvalidInputError } from '../errors';
import { type Graph, type TensorValue } from '../gpu/graph';
import { formatShape, paddedChannels } from '../gpu/tensor';
import { kernelShader } from './kernel-source';
import { type VariantSourceArg, variantSource } from './variant-source';
import { type MatmulVariant, matmulLabel, matmulVariantTags, matmulWgsl } from './matmul.wgsl';

export type { MatmulVariant } from './matmul.wgsl';
export { matmulVariantTags, matmulWorkgroupBytes } from './matmul.wgsl';

/**
 * Matrices are activations in the library's layout: a tensor [n, h, w, c] is the row-major matrix of n·h·w rows
 * and c columns, each row padded with zeros to a multiple of 4 floats (the NHWC convention of src/gpu/tensor.ts).
 * So A is any tensor with K channels, B any tensor whose n·h·w is K (usually [1, 1, K, N]), and C gets A's
 * n, h, w and N channels. Any N works: the kernel computes whole vec4s, and since B's and the bias's padded
 * lanes are 0, so are C's. Any K works: the padded lanes of A's last vec4 are never multiplied with a row of B.
 */
export function matmulShapes(a: TensorValue, b: TensorValue): { m: number; k: number; n: number } {
  const [an, ah, aw, k] = a.shape;
  const [bn, bh, bw, n] = b.shape;
  if (bn * bh * bw !== k) {
    throw new InvalidInputError(
      `matmul: A ${formatShape(a.shape)} has K = ${k} columns but B ${formatShape(b.shape)} has ${bn * bh * bw} rows`,
    );
  }
  return { m: an * ah * aw, k, n };
}

/** Throws an InvalidInputError unless the variant's parameters are usable. */
export function checkMatmulVariant(v: MatmulVariant): void {
  const positive = [v.rows, v.cols, v.wgX, v.wgY].every((x) => Number.isInteger(x) && x >= 1);
  if (!positive) throw new InvalidInputError(`matmul variant ${matmulVariantTags(v)}: rows, cols, wgX, wgY must be positive integers`);
  if (v.sharedK !== undefined && (!Number.isInteger(v.sharedK) || v.sharedK < 4 || v.sharedK % 4 !== 0)) {
    throw new InvalidInputError(`matmul variant ${matmulVariantTags(v)}: sharedK must be a positive multiple of 4`);
  }
}

/**
 * Adds C = A·B (+ bias) to `graph`. `bias` is a GPU buffer of N values padded to a multiple of 4 with zeros
 * (`packBias` in conv2d.ts). Work-group memory and invocation counts are the device's to check: callers that
 * try arbitrary variants should compare `matmulWorkgroupBytes(v)` and wgX·wgY with its limits first.
 */
export function matmul(
  graph: Graph,
  a: TensorValue,
  b: TensorValue,
  params: { bias?: GPUBuffer; variant: MatmulVariant; label: string },
): TensorValue {
  const v = params.variant;
  checkMatmulVariant(v);
  const { m, k, n } = matmulShapes(a, b);
  const out = graph.tensor([a.shape[0], a.shape[1], a.shape[2], n], params.label);
  const k4 = paddedChannels(k) / 4;
  const n4 = paddedChannels(n) / 4;
  const colBlocks = Math.ceil(n4 / (v.wgX * v.cols));
  const rowBlocks = Math.ceil(m / (v.wgY * v.rows));
  const key = { hasBias: params.bias !== undefined };
  graph.add({
    label: params.label,
    kernel: kernelShader(matmulLabel(key, v), { family: 'matmul', variant: v, epilogue: key }, (io) => matmulWgsl(key, v, io)),
    uniforms: {
      m,
      k,
      k4,
      n4,
      col_blocks: colBlocks,
      row_blocks: rowBlocks,
      k_whole4: Math.floor(k / 4),
      k_rem: k % 4,
    },
    bindings: { lhs: a, rhs: b, ...(params.bias ? { bias: params.bias } : {}), dst: out },
    workgroups: colBlocks * rowBlocks,
  });
  return out;
}

/** Parses `r4,c4,wg1x64` or `r8,c2,wg8x8,sk16` (the tags of a shader label) into a variant. */
export function parseMatmulVariant(text: string): MatmulVariant {
  const v: MatmulVariant = { rows: 0, cols: 0, wgX: 0, wgY: 0 };
  for (const raw of text.split(',')) {
    const part = raw.trim();
    const tile = /^(r|c|sk)(\d+)$/.exec(part);
    const wg = /^wg(\d+)x(\d+)$/.exec(part);
    if (tile) {
      const x = Number(tile[2]);
      if (tile[1] === 'r') v.rows = x;
      else if (tile[1] === 'c') v.cols = x;
      else v.sharedK = x;
    } else if (wg) {
      v.wgX = Number(wg[1]);
      v.wgY = Number(wg[2]);
    } else throw new InvalidInputError(`bad matmul variant tag '${part}' in '${text}' (expected e.g. r4,c4,wg1x64 or r8,c2,wg8x8,sk16)`);
  }
  checkMatmulVariant(v);
  return v;
}

/**
 * The variant for an adapter (a context, or any `{ adapter }`). Software adapters: the best of the roofline
 * benchmark's variants (MATMUL_BENCH_VARIANTS, bench/roofline-lib.ts) on lavapipe (npm run bench:roofline,
 * 2-core VM, rounds interleaved): at 1024³ r8,c1,wg64x1 (A workgroup-uniform, lanes over
 * columns) 10.6–11.5 GFLOP/s, r16,c4,wg1x32 10.6–11.0, r4,c2,wg1x64 9.2, r4,c4,wg1x64 6.0–6.4, staged 16×16
 * tiles 4–6.5. Hardware GPUs: the classic staged 8×8 workgroup with 8×8 outputs per invocation, untuned so far
 * (no GPU measured yet).
 */
export function selectMatmulVariant(source: VariantSourceArg): MatmulVariant {
  const { adapter } = variantSource(source);
  if (adapter.isSoftware) return { rows: 8, cols: 1, wgX: 64, wgY: 1 };
  return { rows: 8, cols: 2, wgX: 8, wgY: 8, sharedK: 16 };
}
