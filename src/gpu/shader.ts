import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import { InvalidInputError } from '../errors';
import { type TensorAccess, WHOLE_BINDINGS } from './tensor-access';

/** One WGSL compute shader variant with its text (hand-written shaders; kernels use `LazyShaderSource`). */
export interface ShaderSource {
  /** Human-readable name of the variant, e.g. `conv2d[k3x3,px4,cb2,relu]`; also the cache key prefix. */
  label: string;
  code: string;
  entryPoint?: string;
}

/**
 * A shader variant whose WGSL text is generated only when the pipeline cache misses (pipelines.ts): building a
 * graph creates none, and a graph built again, or another layer with the same variant, finds its pipeline by
 * `key` without generating anything. Two sources with the same label, entry point and key must generate the
 * same text: kernels make the key from everything their generator reads — variant, epilogue, dtype
 * (src/kernels/kernel-source.ts). `generate` reaches every tensor binding through the accessors it is given
 * (tensor-access.ts): the plan passes one binding per tensor, or windows for tensors too large for one.
 */
export interface LazyShaderSource {
  label: string;
  key: string;
  entryPoint?: string;
  generate(access: TensorAccess): string;
}

/** What a graph node runs: a shader with its text, or one generated on demand. */
export type KernelSource = ShaderSource | LazyShaderSource;

export function isLazySource(source: KernelSource): source is LazyShaderSource {
  return typeof (source as LazyShaderSource).generate === 'function';
}

/** The pipeline cache's key of a source: its text, or its generator's key. */
export function sourceCacheKey(source: KernelSource): string {
  const entry = source.entryPoint ?? '';
  return isLazySource(source)
    ? `gen\u0000${source.label}\u0000${entry}\u0000${source.key}`
    : `code\u0000${source.label}\u0000${entry}\u0000${source.code}`;
}

/** The source with its text: generated (one binding per tensor unless `access` says otherwise), or as given. */
export function materializeSource(source: KernelSource, access: TensorAccess = WHOLE_BINDINGS): ShaderSource {
  if (!isLazySource(source)) return source;
  return { label: source.label, code: source.generate(access), ...(source.entryPoint ? { entryPoint: source.entryPoint } : {}) };
}

export type BindingKind = 'uniform' | 'read-only-storage' | 'storage';

export interface BindingInfo {
  name: string;
  binding: number;
  kind: BindingKind;
}

export interface UniformMember {
  name: string;
  offset: number;
  type: 'u32' | 'i32' | 'f32';
}

/**
 * What reflection tells us about a shader: its bindings by name (so dispatch code binds by name, and a
 * mismatch between TypeScript and WGSL is an error, not a silent wrong binding), the layout of its uniform
 * struct (so parameters are packed by member name at the offsets WGSL uses), and its workgroup size.
 */
export interface ReflectedShader {
  source: ShaderSource;
  entryPoint: string;
  bindings: BindingInfo[];
  uniform?: { binding: string; size: number; members: UniformMember[] };
  workgroupSize: [number, number, number];
}

export function reflectShader(source: ShaderSource): ReflectedShader {
  const reflect = new WgslReflect(source.code);
  const entry = source.entryPoint ? reflect.entry.compute.find((f) => f.name === source.entryPoint) : reflect.entry.compute[0];
  if (!entry) throw new InvalidInputError(`shader '${source.label}' has no compute entry point`);
  const bindings: BindingInfo[] = [];
  let uniform: ReflectedShader['uniform'];
  for (const v of reflect.uniforms) {
    if (v.group !== 0) continue;
    bindings.push({ name: v.name, binding: v.binding, kind: 'uniform' });
    const members = (v.members ?? []).map((m): UniformMember => {
      const t = m.type.name;
      if (t !== 'u32' && t !== 'i32' && t !== 'f32') {
        throw new InvalidInputError(`shader '${source.label}': uniform member ${m.name} has unsupported type ${t}`);
      }
      return { name: m.name, offset: m.offset, type: t };
    });
    uniform = { binding: v.name, size: Math.max(16, Math.ceil(v.size / 16) * 16), members };
  }
  for (const v of reflect.storage) {
    if (v.group !== 0) continue;
    bindings.push({ name: v.name, binding: v.binding, kind: v.access === 'read' ? 'read-only-storage' : 'storage' });
  }
  bindings.sort((a, b) => a.binding - b.binding);
  const ws = entry.workgroupSize ?? [1, 1, 1];
  return {
    source,
    entryPoint: entry.name,
    bindings,
    uniform,
    workgroupSize: [ws[0] ?? 1, ws[1] ?? 1, ws[2] ?? 1],
  };
}

/** Packs uniform values by member name; every member must be given, and nothing else. */
export function packUniforms(shader: ReflectedShader, values: Record<string, number>): ArrayBuffer {
  const u = shader.uniform;
  if (!u) throw new InvalidInputError(`shader '${shader.source.label}' has no uniform block`);
  const buffer = new ArrayBuffer(u.size);
  const view = new DataView(buffer);
  for (const m of u.members) {
    const v = values[m.name];
    if (v === undefined || !Number.isFinite(v)) {
      throw new InvalidInputError(`shader '${shader.source.label}': uniform '${m.name}' not given (or not finite)`);
    }
    if (m.type === 'f32') view.setFloat32(m.offset, v, true);
    else if (m.type === 'i32') view.setInt32(m.offset, v, true);
    else {
      if (v < 0 || !Number.isInteger(v)) {
        throw new InvalidInputError(`shader '${shader.source.label}': uniform '${m.name}' = ${v} is not a u32`);
      }
      view.setUint32(m.offset, v, true);
    }
  }
  const unknown = Object.keys(values).filter((k) => !u.members.some((m) => m.name === k));
  if (unknown.length > 0) {
    throw new InvalidInputError(`shader '${shader.source.label}': unknown uniform(s) ${unknown.join(', ')}`);
  }
  return buffer;
}
