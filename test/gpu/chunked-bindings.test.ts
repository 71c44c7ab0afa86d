import { describe, expect, it } from 'vitest';
import { chunkShaderBindings } from '../../src/gpu/chunked-bindings';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { reflectShader } from '../../src/gpu/shader';
import { binary, binaryWgsl } from '../../src/kernels/elementwise';
import { networkFromCheckpoint } from '../../src/models/load';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { loadDnCNNFixture } from '../helpers/fixtures';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';

describe('chunkShaderBindings (WGSL rewrite)', () => {
  it('splits a binding into windows and routes reads and writes through accessors', () => {
    const src = { label: 'binary[add]', code: binaryWgsl('add') };
    const { source, origin } = chunkShaderBindings(src, { a: { count: 3, chunkElements: 16 }, y: { count: 2, chunkElements: 32 } });
    expect(source.label).toBe('binary[add][chunks a÷3,y÷2]');
    expect(source.code).not.toMatch(/\ba\s*\[/);
    expect(source.code).toContain('y_set(u32(i), a_get(u32(i)) + b[i])');
    expect([...origin.entries()]).toEqual([
      ['a_c0', { name: 'a', chunk: 0 }],
      ['a_c1', { name: 'a', chunk: 1 }],
      ['a_c2', { name: 'a', chunk: 2 }],
      ['y_c0', { name: 'y', chunk: 0 }],
      ['y_c1', { name: 'y', chunk: 1 }],
    ]);
    // The result is valid WGSL with the bindings reflection expects.
    const names = reflectShader(source).bindings.map((b) => b.name);
    expect(names).toEqual(['p', 'b', 'a_c0', 'a_c1', 'a_c2', 'y_c0', 'y_c1']);
  });

  it('rewrites compound assignments and nested indices', () => {
    const code = `@group(0) @binding(0) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
fn f(i: u32) { y[x[i].x_idx] += x[y[i + 1u].w]; }`;
    const { source } = chunkShaderBindings({ label: 't', code }, { y: { count: 2, chunkElements: 4 } });
    expect(source.code).toContain('y_set(u32(x[i].x_idx), y_get(u32(x[i].x_idx)) + (x[y_get(u32(i + 1u)).w]))');
  });

  it('refuses forms it cannot rewrite safely', () => {
    const decl = '@group(0) @binding(0) var<storage, read_write> y: array<vec4<f32>>;\n';
    const spec = { y: { count: 2, chunkElements: 4 } };
    expect(() => chunkShaderBindings({ label: 't', code: `${decl}fn f() { y[0].x = 1.0; }` }, spec)).toThrow(/component write/);
    expect(() => chunkShaderBindings({ label: 't', code: `${decl}fn f() { let n = arrayLength(&y); }` }, spec)).toThrow(/arrayLength/);
    expect(() => chunkShaderBindings({ label: 't', code: `${decl}fn f(y: u32) { }` }, spec)).toThrow(/shadows/);
    expect(() => chunkShaderBindings({ label: 't', code: decl }, { z: spec.y })).toThrow(/no 'var<storage> z/);
  });
});

describe('tensors larger than one binding, on the GPU', () => {
  it('a binding limit below the tensor size splits it, and the result is unchanged', async () => {
    const ctx = await getTestContext();
    const shape = [1, 37, 53, 8] as const;
    const n = 37 * 53 * 8;
    const a = Float32Array.from(randomArray(n, 1));
    const b = Float32Array.from(randomArray(n, 2));
    const g = new Graph();
    const ta = g.input([...shape]);
    const tb = g.input([...shape]);
    g.output(binary(g, 'sub', ta, tb, 'a-b'));
    ctx.bindingLimitOverride = 24 * 1024; // 3 windows of each 62 KB tensor
    try {
      const plan = await Plan.compile(ctx, g);
      plan.poison();
      const { outputs } = await plan.run([a, b]);
      plan.dispose();
      expect(ctx.pipelines.labels()).toContain('binary[sub][chunks a÷3,b÷3,y÷3]');
      const ref = a.map((v, i) => v - b[i]);
      expect(relL2(outputs[0], ref)).toBe(0);
    } finally {
      ctx.bindingLimitOverride = undefined;
    }
  });

  it('a limit that would need more bindings than the device has fails with LIMIT_EXCEEDED', async () => {
    const ctx = await getTestContext();
    const g = new Graph();
    const ta = g.input([1, 64, 64, 4]);
    g.output(binary(g, 'add', ta, ta, 'a+a'));
    ctx.bindingLimitOverride = 256;
    try {
      await expect(Plan.compile(ctx, g)).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
    } finally {
      ctx.bindingLimitOverride = undefined;
    }
  });

  it('DnCNN with every tensor split across bindings still matches PyTorch', async () => {
    const ctx = await getTestContext();
    const f = loadDnCNNFixture('tiny_r_gray');
    const model = new RestorationModel(ctx, networkFromCheckpoint(f.weights), 'tiny');
    const [, c, h, w] = f.inputShape;
    ctx.forceBindingChunks = 3;
    try {
      const { image } = await model.runFloat({ width: w, height: h, channels: c, data: f.input });
      expect(relL2(image.data, f.output)).toBeLessThanOrEqual(1e-4);
      expect(ctx.pipelines.labels().some((l) => l.startsWith('conv2d') && l.includes('[chunks x÷3'))).toBe(true);
    } finally {
      ctx.forceBindingChunks = undefined;
      model.dispose();
    }
  });

  it('DnCNN with a binding limit of a few rows runs its convolutions in row bands and still matches PyTorch', async () => {
    const ctx = await getTestContext();
    const f = loadDnCNNFixture('tiny_r_gray');
    const model = new RestorationModel(ctx, networkFromCheckpoint(f.weights), 'tiny banded');
    const [, c, h, w] = f.inputShape;
    ctx.bindingLimitOverride = 2048; // 8-channel rows of 17 pixels are 544 bytes
    try {
      const { image, stats } = await model.runFloat({ width: w, height: h, channels: c, data: f.input });
      expect(relL2(image.data, f.output)).toBeLessThanOrEqual(1e-4);
      expect(stats.dispatches).toBeGreaterThan(5 * 3); // 5 convolutions, each in several bands
    } finally {
      ctx.bindingLimitOverride = undefined;
      model.dispose();
    }
  });
});
