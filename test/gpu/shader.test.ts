import { describe, expect, it } from 'vitest';
import { InvalidInputError, RestoreError, ShaderCompilationError } from '../../src/errors';
import { packUniforms, reflectShader } from '../../src/gpu/shader';
import { getTestContext } from '../helpers/gpu';

const SHADER = `
struct Params {
  count: u32,
  offset: i32,
  gain: f32,
  stride: u32,
  bias: f32,
}
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage> b: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(1) @binding(0) var<storage, read> other: array<f32>;

@compute @workgroup_size(8, 4)
fn first(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x * p.stride + u32(p.offset);
  if (i >= p.count) { return; }
  y[i] = a[i] * p.gain + b[i] + vec4<f32>(p.bias + other[0]);
}

@compute @workgroup_size(16)
fn second(@builtin(global_invocation_id) gid: vec3<u32>) {
  y[gid.x] = a[gid.x];
}
`;

describe('reflectShader', () => {
  const shader = reflectShader({ label: 'reflect-test', code: SHADER });

  it('lists group-0 bindings by name and kind, sorted by binding number', () => {
    expect(shader.bindings).toEqual([
      { name: 'p', binding: 0, kind: 'uniform' },
      { name: 'a', binding: 1, kind: 'read-only-storage' },
      { name: 'b', binding: 2, kind: 'read-only-storage' }, // var<storage> defaults to read
      { name: 'y', binding: 3, kind: 'storage' },
    ]);
  });

  it('lays out the uniform struct at WGSL offsets, size rounded up to 16 bytes', () => {
    expect(shader.uniform?.binding).toBe('p');
    expect(shader.uniform?.members).toEqual([
      { name: 'count', offset: 0, type: 'u32' },
      { name: 'offset', offset: 4, type: 'i32' },
      { name: 'gain', offset: 8, type: 'f32' },
      { name: 'stride', offset: 12, type: 'u32' },
      { name: 'bias', offset: 16, type: 'f32' },
    ]);
    expect(shader.uniform?.size).toBe(32);
  });

  it('takes the first compute entry point, or the named one, with its workgroup size', () => {
    expect(shader.entryPoint).toBe('first');
    expect(shader.workgroupSize).toEqual([8, 4, 1]);
    const second = reflectShader({ label: 'reflect-test', code: SHADER, entryPoint: 'second' });
    expect(second.entryPoint).toBe('second');
    expect(second.workgroupSize).toEqual([16, 1, 1]);
  });

  it('a missing entry point is an InvalidInputError naming the shader', () => {
    expect(() => reflectShader({ label: 'no-entry', code: SHADER, entryPoint: 'third' })).toThrow(InvalidInputError);
    expect(() => reflectShader({ label: 'no-entry', code: SHADER, entryPoint: 'third' })).toThrow(/no-entry/);
  });

  it('a uniform member of an unsupported type is rejected, naming it', () => {
    const code = `struct P { size: vec2<u32> }
@group(0) @binding(0) var<uniform> p: P;
@compute @workgroup_size(1) fn main() { _ = p.size; }`;
    expect(() => reflectShader({ label: 'vec-uniform', code })).toThrow(InvalidInputError);
    expect(() => reflectShader({ label: 'vec-uniform', code })).toThrow(/size.*vec2/);
  });
});

describe('packUniforms', () => {
  const shader = reflectShader({ label: 'pack-test', code: SHADER });
  const good = { count: 4_000_000_000, offset: -7, gain: 0.1, stride: 3, bias: -2.5 };

  it('writes each member at its offset with its type (little-endian)', () => {
    const buf = packUniforms(shader, good);
    expect(buf.byteLength).toBe(32);
    const v = new DataView(buf);
    expect(v.getUint32(0, true)).toBe(4_000_000_000);
    expect(v.getInt32(4, true)).toBe(-7);
    expect(v.getFloat32(8, true)).toBe(Math.fround(0.1));
    expect(v.getUint32(12, true)).toBe(3);
    expect(v.getFloat32(16, true)).toBe(-2.5);
    // The tail padding stays zero.
    for (let o = 20; o < 32; o += 4) expect(v.getUint32(o, true)).toBe(0);
  });

  it('does not depend on the order of the values object', () => {
    const reversed = Object.fromEntries(Object.entries(good).reverse());
    expect(new Uint8Array(packUniforms(shader, reversed))).toEqual(new Uint8Array(packUniforms(shader, good)));
  });

  it('a missing member is an InvalidInputError naming it', () => {
    const { gain: _, ...missing } = good;
    expect(() => packUniforms(shader, missing)).toThrow(InvalidInputError);
    expect(() => packUniforms(shader, missing)).toThrow(/'gain'/);
  });

  it('a non-finite value is rejected', () => {
    expect(() => packUniforms(shader, { ...good, gain: Number.NaN })).toThrow(InvalidInputError);
    expect(() => packUniforms(shader, { ...good, bias: Infinity })).toThrow(/bias/);
  });

  it('an unknown member is an InvalidInputError naming it', () => {
    expect(() => packUniforms(shader, { ...good, scale: 2 })).toThrow(InvalidInputError);
    expect(() => packUniforms(shader, { ...good, scale: 2 })).toThrow(/scale/);
  });

  it('a negative or fractional u32 is rejected; i32 takes negatives', () => {
    expect(() => packUniforms(shader, { ...good, count: 1.5 })).toThrow(InvalidInputError);
    expect(() => packUniforms(shader, { ...good, stride: -1 })).toThrow(/stride/);
    expect(() => packUniforms(shader, { ...good, offset: -2_000_000_000 })).not.toThrow();
  });

  it('a shader without a uniform block cannot take uniforms', () => {
    const plain = reflectShader({
      label: 'no-uniform',
      code: `@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(1) fn main() { y[0] = 1.0; }`,
    });
    expect(plain.uniform).toBeUndefined();
    expect(() => packUniforms(plain, {})).toThrow(InvalidInputError);
  });
});

const VALID = `@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(1) fn main() { y[0] = 1.0; }`;

async function compileError(label: string, code: string): Promise<ShaderCompilationError> {
  const ctx = await getTestContext();
  let error: unknown;
  try {
    await ctx.pipelines.get({ label, code });
  } catch (e) {
    error = e;
  }
  expect(error, `${label} should not compile`).toBeInstanceOf(ShaderCompilationError);
  return error as ShaderCompilationError;
}

describe('shader compilation errors', () => {
  it('a type error rejects with SHADER_COMPILATION, the label and a line:col diagnostic', async () => {
    const code = `@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(1) fn main() {
  let x: f32 = 1u;
  y[0] = x;
}`;
    const e = await compileError('bad-type-shader', code);
    expect(e.code).toBe('SHADER_COMPILATION');
    expect(e.label).toBe('bad-type-shader');
    expect(e.message).toContain("'bad-type-shader'");
    expect(e.messages.length).toBeGreaterThan(0);
    expect(e.message).toMatch(/\b3:\d+\b/); // the error is on line 3
  });

  it('a syntax error rejects with SHADER_COMPILATION too (not a parser exception)', async () => {
    const code = `@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(1) fn main( {
  y[0] = 1.0;
}`;
    const e = await compileError('bad-syntax-shader', code);
    expect(e).toBeInstanceOf(RestoreError);
    expect(e.code).toBe('SHADER_COMPILATION');
    expect(e.message).toContain("'bad-syntax-shader'");
    expect(e.message).toMatch(/\b2:\d+\b/);
  });

  it('an unknown identifier names it', async () => {
    const code = `@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(1) fn main() { y[0] = undefined_thing; }`;
    const e = await compileError('bad-ident-shader', code);
    expect(e.message).toMatch(/undefined_thing/);
  });

  it('does not poison the cache or the device: a retry fails the same way, a valid shader compiles', async () => {
    const ctx = await getTestContext();
    const bad = { label: 'poison-test', code: 'fn main() -> i32 { return 1.0; }\n@compute @workgroup_size(1) fn entry() {}' };
    const before = ctx.pipelines.size;
    await expect(ctx.pipelines.get(bad)).rejects.toBeInstanceOf(ShaderCompilationError);
    expect(ctx.pipelines.size).toBe(before); // the failed entry was dropped
    await expect(ctx.pipelines.get(bad)).rejects.toBeInstanceOf(ShaderCompilationError); // compiled again, not a stale promise
    const good = await ctx.pipelines.get({ label: 'poison-test', code: VALID });
    expect(good.pipeline).toBeDefined();
    expect(good.shader.bindings.map((b) => b.name)).toEqual(['y']);
    expect(ctx.pipelines.size).toBe(before + 1);
    expect(await ctx.pipelines.get({ label: 'poison-test', code: VALID })).toBe(good); // cached
    ctx.throwIfFailed(); // nothing left over from the failures
  });
});
