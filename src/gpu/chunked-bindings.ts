/**
 * Tensors larger than one binding, for shaders that do not take accessors.
 *
 * Kernels reach their tensors through the accessors the plan supplies (tensor-access.ts), which split a tensor
 * too large for one binding into windows. A hand-written `ShaderSource` (tests, benchmarks) has no such hook,
 * so when the plan finds one of its tensor bindings too large it rewrites that shader's text: the one
 * `var<storage> x: array<vec4<f32>>` becomes K bindings `x_c0 … x_cK-1`, each a window of the same buffer, and
 * every `x[i]` read or `x[i] = v` write becomes a call to the same accessors `windowedAccess` emits.
 *
 * The rewrite understands exactly the plain forms — `name[expr]` reads, `name[expr] = value;` and compound
 * assignments — and refuses anything else (`arrayLength(&name)`, component writes like `name[i].x = v`, a
 * local that shadows the binding) with an error, rather than producing a wrong shader.
 */
import { InvalidInputError } from '../errors';
import type { ShaderSource } from './shader';
import { type ChunkSpec, checkChunkSpec, chunkName, chunksTag, windowAccessorsWgsl } from './tensor-access';

export interface ChunkedShader {
  source: ShaderSource;
  /** New binding name → the original binding name and which window of it. */
  origin: Map<string, { name: string; chunk: number }>;
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
    checkChunkSpec(name, spec, source.label);
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
    accessors.push(windowAccessorsWgsl(name, spec, access === 'read_write'));
  }
  return {
    source: { ...source, label: `${source.label}[chunks ${chunksTag(specs)}]`, code: `${code}\n${accessors.join('\n')}\n` },
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
