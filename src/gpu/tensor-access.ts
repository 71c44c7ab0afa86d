/**
 * How a shader reaches its tensors: accessors the plan supplies.
 *
 * A device caps how many bytes one storage binding may span (`maxStorageBufferBindingSize`: 128 MiB on lavapipe
 * and many phones) far below what it can allocate (`maxBufferSize`: 4 GiB on lavapipe). A 64-channel f32 map of a
 * 1024×768 image is 192 MiB, so networks at real image sizes need tensors that no single binding can reach.
 *
 * Kernels are written once, against whole tensors, but they never spell a tensor binding or an access to it
 * themselves: their WGSL generator takes a `TensorAccess` and asks it for the declaration of each tensor binding
 * (`declare`), for every read (`load`) and for every write (`store`). The plan picks the accessors when it
 * compiles a node (and generates the text only on a pipeline-cache miss, shader.ts):
 * - `WHOLE_BINDINGS`, one binding per tensor: `var<storage> x: array<vec4<f32>>`, `x[i]`, `x[i] = v;` — the
 *   text a hand-written kernel would have, so the common case costs nothing;
 * - `windowedAccess(specs)` for a node whose tensors exceed the binding limit: each named tensor becomes K
 *   bindings `x_c0 … x_cK-1`, windows of the same buffer, reached through `x_get(i)` / `x_set(i, v)`, which pick
 *   the window with a compare per access. Tensors not named keep one binding.
 * Shaders that do not take accessors (hand-written `ShaderSource`s in tests and benchmarks) are rewritten
 * instead (chunked-bindings.ts), which understands only the plain forms above.
 */
import { InvalidInputError } from '../errors';

export type TensorAccessMode = 'read' | 'read_write';

export interface TensorAccess {
  /** The declaration(s) of tensor binding `name` (array<vec4<f32>>) at `@binding(binding)` of group 0. */
  declare(name: string, binding: number, mode: TensorAccessMode): string;
  /** A WGSL expression reading vec4 `index` (a u32 or i32 expression) of tensor `name`. */
  load(name: string, index: string): string;
  /** A WGSL statement (with its `;`) writing `value` to vec4 `index` of tensor `name`. */
  store(name: string, index: string, value: string): string;
}

/** One binding per tensor: plain WGSL indexing. */
export const WHOLE_BINDINGS: TensorAccess = {
  declare: (name, binding, mode) => `@group(0) @binding(${binding}) var<storage, ${mode}> ${name}: array<vec4<f32>>;`,
  load: (name, index) => `${name}[${index}]`,
  store: (name, index, value) => `${name}[${index}] = ${value};`,
};

export interface ChunkSpec {
  /** Number of windows (bindings) the tensor is split into; ≥ 2. */
  count: number;
  /** Elements (vec4<f32>) per window; the last window may be shorter. */
  chunkElements: number;
}

/** The binding name of window `chunk` of tensor `name`. */
export function chunkName(name: string, chunk: number): string {
  return `${name}_c${chunk}`;
}

/** `a÷3,y÷2`: the windows of a node's split tensors, as pipeline labels show them. */
export function chunksTag(specs: Record<string, ChunkSpec>): string {
  return Object.keys(specs)
    .map((n) => `${n}÷${specs[n].count}`)
    .join(',');
}

export function checkChunkSpec(name: string, spec: ChunkSpec, what: string): void {
  if (!Number.isInteger(spec.count) || spec.count < 2 || !(spec.chunkElements > 0)) {
    throw new InvalidInputError(`chunking '${name}' of ${what}: bad spec ${JSON.stringify(spec)}`);
  }
}

/**
 * Kernels declare their bindings at numbers below this; the windows of split tensors get numbers from here on,
 * so they never collide with a kernel's own.
 */
export const FIRST_WINDOW_BINDING = 64;

/**
 * Accessors for a node whose tensors in `specs` are split into windows; other tensors keep one binding. Each
 * call of a shader generator needs a fresh one (it numbers the windows' bindings as they are declared).
 */
export function windowedAccess(specs: Record<string, ChunkSpec>): TensorAccess {
  let nextBinding = FIRST_WINDOW_BINDING;
  const declared = new Set<string>();
  return {
    declare(name, binding, mode) {
      if (binding >= FIRST_WINDOW_BINDING) {
        throw new InvalidInputError(`tensor binding '${name}' at ${binding}: kernels bind below ${FIRST_WINDOW_BINDING}`);
      }
      const spec = specs[name];
      if (!spec) return WHOLE_BINDINGS.declare(name, binding, mode);
      checkChunkSpec(name, spec, 'a shader');
      declared.add(name);
      const windows: string[] = [];
      for (let k = 0; k < spec.count; k++) {
        windows.push(`@group(0) @binding(${nextBinding++}) var<storage, ${mode}> ${chunkName(name, k)}: array<vec4<f32>>;`);
      }
      return `${windows.join('\n')}\n${windowAccessorsWgsl(name, spec, mode === 'read_write')}`;
    },
    load(name, index) {
      return specs[name] ? `${name}_get(u32(${index}))` : WHOLE_BINDINGS.load(name, index);
    },
    store(name, index, value) {
      return specs[name] ? `${name}_set(u32(${index}), ${value});` : WHOLE_BINDINGS.store(name, index, value);
    },
  };
}

/** `name_get(i)` (and `name_set(i, v)` when writable): element i of a tensor split into windows of `spec`. */
export function windowAccessorsWgsl(name: string, spec: ChunkSpec, writable: boolean): string {
  const c = spec.chunkElements;
  const reads: string[] = [];
  const writes: string[] = [];
  for (let k = 0; k < spec.count; k++) {
    const base = k * c;
    const local = base === 0 ? 'i' : `i - ${base}u`;
    const chunk = chunkName(name, k);
    if (k < spec.count - 1) {
      reads.push(`  if (i < ${base + c}u) { return ${chunk}[${local}]; }`);
      writes.push(`  if (i < ${base + c}u) { ${chunk}[${local}] = v; return; }`);
    } else {
      reads.push(`  return ${chunk}[${local}];`);
      writes.push(`  ${chunk}[${local}] = v;`);
    }
  }
  const get = `fn ${name}_get(i: u32) -> vec4<f32> {\n${reads.join('\n')}\n}`;
  const set = writable ? `\nfn ${name}_set(i: u32, v: vec4<f32>) {\n${writes.join('\n')}\n}` : '';
  return get + set;
}
