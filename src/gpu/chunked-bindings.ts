/**
 * Tensors larger than one storage binding.
 *
 * A device caps how many bytes one storage binding may span (`maxStorageBufferBindingSize`: 128 MiB on lavapipe
 * and many phones) far below what it can allocate (`maxBufferSize`: 4 GiB on lavapipe). A 64-channel f32 map of a
 * 1024×768 image is 192 MiB, so networks at real image sizes need tensors that no single binding can reach.
 *
 * Instead of teaching every kernel about this, a kernel is written once against whole tensors, and when the plan
 * finds a tensor binding too large it rewrites that shader variant: the one `var<storage> x: array<vec4<f32>>`
 * becomes K bindings `x_c0 … x_cK-1`, each a window of the same buffer, and every `x[i]` read or `x[i] = v`
 * write becomes a call to an accessor that picks the window. Variants without oversized tensors are untouched, so
 * the common case costs nothing; the rewritten ones pay a compare per access.
 *
 * The rewrite understands exactly the forms our kernels use — `name[expr]` reads, `name[expr] = value;`
 * and compound assignments — and refuses anything else (`arrayLength(&name)`, component writes like
 * `name[i].x = v`, a local that shadows the binding) with an error, rather than producing a wrong shader.
 */
import { InvalidInputError } from '../errors';
import type { ShaderSource } from './shader';

export interface ChunkSpec {
  /** Number of windows (bindings) the tensor is split into; ≥ 2. */
  count: number;
  /** Elements (vec4<f32>) per window; the last window may be shorter. */
  chunkElements: number;
}

export interface ChunkedShader {
  source: ShaderSource;
  /** New binding name → the original binding name and which window of it. */
  origin: Map<string, { name: string; chunk: number }>;
}

export function chunkName(name: string, chunk: number): string {
  return `${name}_c${chunk}`;
}

/** Rewrites `source` so each tensor in `specs` is reached through `count` bindings. */
export function chunkShaderBindings(source: ShaderSource, specs: Record<string, ChunkSpec>): ChunkedShader {
  let code = source.code;
  const origin = new Map<string, { name: string; chunk: number }>();
  const names = Object.keys(specs);
  if (names.length === 0) return { source, origin };
  let nextBinding = maxBinding(code) + 1;
  const accessors: string[] = [];
  for (const name of names) {
    const spec = specs[name];
    if (!Number.isInteger(spec.count) || spec.count < 2 || !(spec.chunkElements > 0)) {
      throw new InvalidInputError(`chunking '${name}' of ${source.label}: bad spec ${JSON.stringify(spec)}`);
    }
    const decl = new RegExp(
      `@group\\(0\\)\\s*@binding\\((\\d+)\\)\\s*var<storage,\\s*(read|read_write)>\\s*${name}\\s*:\\s*array<vec4<f32>>\\s*;`,
    );
    const m = decl.exec(code);
    if (!m) throw new InvalidInputError(`chunking ${source.label}: no 'var<storage> ${name}: array<vec4<f32>>' binding`);
    const access = m[2];
    const decls: string[] = [];
    for (let k = 0; k < spec.count; k++) {
      const chunked = chunkName(name, k);
      origin.set(chunked, { name, chunk: k });
      decls.push(`@group(0) @binding(${nextBinding++}) var<storage, ${access}> ${chunked}: array<vec4<f32>>;`);
    }
    const before = code.slice(0, m.index);
    const after = code.slice(m.index + m[0].length);
    checkNoShadowing(before + after, name, source.label);
    code = rewriteAccesses(before, name, source.label) + decls.join('\n') + rewriteAccesses(after, name, source.label);
    accessors.push(accessorWgsl(name, spec, access === 'read_write'));
  }
  const chunksTag = names.map((n) => `${n}÷${specs[n].count}`).join(',');
  return {
    source: { ...source, label: `${source.label}[chunks ${chunksTag}]`, code: `${code}\n${accessors.join('\n')}\n` },
    origin,
  };
}

function maxBinding(code: string): number {
  let max = -1;
  for (const m of code.matchAll(/@binding\((\d+)\)/g)) max = Math.max(max, Number(m[1]));
  return max;
}

function checkNoShadowing(code: string, name: string, label: string): void {
  if (new RegExp(`\\b(let|var|const)\\s+${name}\\b`).test(code) || new RegExp(`[(,]\\s*${name}\\s*:`).test(code)) {
    throw new InvalidInputError(`chunking ${label}: a local or parameter shadows the binding '${name}'`);
  }
  if (new RegExp(`&\\s*${name}\\b`).test(code)) {
    throw new InvalidInputError(`chunking ${label}: '&${name}' (e.g. arrayLength) cannot be chunked`);
  }
}

/** Index of the bracket closing the one at `open` (brackets and parentheses nested). */
function matchingClose(code: string, open: number, label: string): number {
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    const c = code[i];
    if (c === '[' || c === '(') depth++;
    else if (c === ']' || c === ')') {
      depth--;
      if (depth === 0) return i;
    }
  }
  throw new InvalidInputError(`chunking ${label}: unbalanced brackets`);
}

/** End (index of the `;`) of the statement whose right-hand side starts at `from`. */
function statementEnd(code: string, from: number, label: string): number {
  let depth = 0;
  for (let i = from; i < code.length; i++) {
    const c = code[i];
    if (c === '[' || c === '(') depth++;
    else if (c === ']' || c === ')') depth--;
    else if (c === ';' && depth === 0) return i;
  }
  throw new InvalidInputError(`chunking ${label}: assignment without ';'`);
}

/** Replaces reads `name[i]` by `name_get(u32(i))` and writes `name[i] = v;` by `name_set(u32(i), v);`. */
function rewriteAccesses(code: string, name: string, label: string): string {
  const use = new RegExp(`(?<![\\w.])${name}\\s*\\[`, 'g');
  let out = '';
  let pos = 0;
  for (;;) {
    use.lastIndex = pos;
    const m = use.exec(code);
    if (!m) break;
    const open = m.index + m[0].length - 1;
    const close = matchingClose(code, open, label);
    const index = rewriteAccesses(code.slice(open + 1, close), name, label);
    out += code.slice(pos, m.index);
    const after = /^\s*(=(?!=)|[+\-*/]=)?/.exec(code.slice(close + 1))!;
    if (/^\s*\./.test(code.slice(close + 1)) && /^\s*\.\s*[xyzwrgba]+\s*[+\-*/]?=(?!=)/.test(code.slice(close + 1))) {
      throw new InvalidInputError(`chunking ${label}: component write '${name}[…].c = …' cannot be chunked`);
    }
    if (after[1]) {
      const rhsStart = close + 1 + after[0].length;
      const end = statementEnd(code, rhsStart, label);
      const rhs = rewriteAccesses(code.slice(rhsStart, end), name, label).trim();
      const op = after[1];
      const value = op === '=' ? rhs : `${name}_get(u32(${index})) ${op[0]} (${rhs})`;
      out += `${name}_set(u32(${index}), ${value})`;
      pos = end; // keeps the ';'
    } else {
      out += `${name}_get(u32(${index}))`;
      pos = close + 1;
    }
  }
  return out + code.slice(pos);
}

function accessorWgsl(name: string, spec: ChunkSpec, writable: boolean): string {
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
