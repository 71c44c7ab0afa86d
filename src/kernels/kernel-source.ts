import type { LazyShaderSource } from '../gpu/shader';
import type { TensorAccess } from '../gpu/tensor-access';

/**
 * What names a kernel's WGSL text: the pipeline cache finds a compiled pipeline by it and generates the text only
 * on a miss (gpu/shader.ts). It must hold every input of the generator.
 */
export interface ShaderKeyParts {
  /** The generator (e.g. `conv2d`, `dwconv2d`), so keys of different generators never meet. */
  family: string;
  /** The tiling parameters. */
  variant?: unknown;
  /** What is fused after the main computation (bias, activation, residual, ...). */
  epilogue?: unknown;
  /** The tensors' element type: f32 for every kernel so far. */
  dtype?: 'f32';
  /** Anything else the text bakes in. */
  [other: string]: unknown;
}

/**
 * A graph node's shader: `label` for people (profiles, pipeline listings), a key made from `parts`, and the
 * generator, which reaches every tensor binding through the accessors the plan passes (gpu/tensor-access.ts).
 */
export function kernelShader(label: string, parts: ShaderKeyParts, generate: (io: TensorAccess) => string): LazyShaderSource {
  return { label, key: stableJson({ dtype: 'f32', ...parts }), generate };
}

/** JSON with object keys sorted, so equal parts give equal keys whatever order they were written in. */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
