import { type VariantSourceArg, variantSource } from './variant-source';

/**
 * How the attention of one (window, head) is spread over invocations.
 * - `workgroup`: one workgroup of 64 invocations per (window, head); each invocation stages its token's K and V
 *   rows in workgroup memory (2 × 8 KB), then computes one query row. For GPUs.
 * - `direct`: no workgroup memory and no barrier; one workgroup of 64/rows invocations per (window, head), each
 *   computing `rows` query rows and reading K/V straight from storage. The K/V addresses depend only on the
 *   workgroup and the loop counter, so CPU adapters can load them once per SIMD group, and each loaded vec4 is
 *   used `rows` times. For CPU adapters.
 */
export interface WindowAttentionVariant {
  mode: 'workgroup' | 'direct';
  /** Query rows per invocation: 1 for `workgroup`; a divisor of 64 for `direct`. */
  rows: number;
}

declare module '../gpu/context' {
  interface VariantOverrides {
    /** Forces this variant on every window attention: benchmarks. */
    windowAttention?: WindowAttentionVariant;
  }
}

/**
 * lavapipe (2 cores), 128×128 map, 1 head, SW, GPU timestamps (WMSA_BENCH=1 npx vitest run
 * test/kernels/window-attention.test.ts -t timing): workgroup ≈ 150 ms, direct rows1 ≈ 215 ms, direct rows2
 * ≈ 115 ms. Larger `rows` cost far more LLVM compile time on lavapipe (first compile, before Mesa's shader
 * cache: workgroup 0.6 s, rows1 3.7 s, rows2 13 s, rows4 28 s, rows8 70 s), so software adapters get rows2.
 * Hardware GPUs get the workgroup-memory kernel (untuned so far: no hardware adapter was available). A variant
 * forced on the context (`ctx.variantOverrides.windowAttention`) wins.
 */
export function selectWindowAttentionVariant(source: VariantSourceArg): WindowAttentionVariant {
  const { adapter, overrides } = variantSource(source);
  if (overrides.windowAttention) return overrides.windowAttention;
  if (adapter.isSoftware) return { mode: 'direct', rows: 2 };
  return { mode: 'workgroup', rows: 1 };
}
