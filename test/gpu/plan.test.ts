import { describe, expect, it } from 'vitest';
import { GPUOperationError, InvalidInputError, RestoreError } from '../../src/errors';
import { BufferPool } from '../../src/gpu/buffer-pool';
import type { GPUContext } from '../../src/gpu/context';
import { BufferUsage } from '../../src/gpu/flags';
import { Graph, type GraphNode, type TensorValue } from '../../src/gpu/graph';
import { createNodeContext } from '../../src/gpu/node-gpu';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, type Shape4, tensorBytes, tensorElements } from '../../src/gpu/tensor';
import { conv2d } from '../../src/kernels/conv2d';
import { packBias, packConv2dWeight } from '../../src/kernels/conv2d-geometry';
import { selectConv2dVariant } from '../../src/kernels/conv2d-variants';
import { networkFromCheckpoint } from '../../src/models/load';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { loadDnCNNFixture } from '../helpers/fixtures';
import { getTestContext } from '../helpers/gpu';
import { randomArray } from '../helpers/random';
import { conv2dRef } from '../helpers/reference';

const WG = 64;
/** y = x * gain + offset over vec4s; `count` vec4s. */
const AFFINE = {
  label: 'test-affine',
  code: `struct Params { count: u32, gain: f32, offset: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= p.count) { return; }
  y[i] = x[i] * p.gain + vec4<f32>(p.offset);
}`,
};

function affine(g: Graph, x: TensorValue, gain: number, offset: number, label: string, extra: Partial<GraphNode> = {}): TensorValue {
  const y = g.tensor(x.shape, label);
  const count = tensorElements(x.shape) / 4;
  g.add({
    label,
    kernel: AFFINE,
    uniforms: { count, gain, offset },
    bindings: { x, y },
    workgroups: [Math.ceil(count / WG), 1, 1],
    ...extra,
  });
  return y;
}

const SHAPE: Shape4 = [1, 5, 7, 4];

function inputData(seed = 1): Float32Array {
  return Float32Array.from(randomArray(tensorElements(SHAPE), seed));
}

async function compileError(ctx: GPUContext, g: Graph, pool: BufferPool): Promise<unknown> {
  try {
    const plan = await Plan.compile(ctx, g, { pool });
    plan.dispose();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('Plan: a chain of dispatches', () => {
  it('computes the chain, with two activation slots for any length', async () => {
    const ctx = await getTestContext();
    const pool = new BufferPool(ctx);
    const g = new Graph();
    const x = g.input(SHAPE);
    const steps: [number, number][] = [
      [2, 1],
      [-0.5, 0.25],
      [3, -1],
      [1.5, 0],
      [-1, 2],
    ];
    let t = x;
    steps.forEach(([gain, offset], i) => (t = affine(g, t, gain, offset, `step ${i}`)));
    g.output(t);
    const plan = await Plan.compile(ctx, g, { pool });
    plan.poison();
    const input = inputData();
    const { outputs } = await plan.run([input]);
    const expected = input.map((v) => steps.reduce((acc, [gain, offset]) => Math.fround(Math.fround(acc * gain) + offset), v));
    expect(outputs).toHaveLength(1);
    for (let i = 0; i < expected.length; i++) expect(outputs[0][i]).toBeCloseTo(expected[i], 5);
    // Liveness: input and five intermediates share two buffers (each rounded up to 256 bytes by the pool).
    const slot = Math.ceil(tensorBytes(SHAPE) / 256) * 256;
    expect(plan.activationBytes).toBe(2 * slot);
    expect(plan.dispatchCount).toBe(steps.length);
    // A second run with other data gives the new answer (nothing stale).
    const input2 = inputData(2);
    const again = await plan.run([input2]);
    expect(again.outputs[0][3]).toBeCloseTo(
      steps.reduce((acc, [gain, offset]) => acc * gain + offset, input2[3]),
      4,
    );
    plan.dispose();
    expect(pool.inUse).toBe(0);
    pool.trim();
  });

  it('splits long chains into several submissions with the same result', async () => {
    const ctx = await getTestContext();
    const g = new Graph();
    let t = g.input(SHAPE);
    for (let i = 0; i < 7; i++) t = affine(g, t, 1, 1, `add one ${i}`);
    g.output(t);
    const plan = await Plan.compile(ctx, g, { dispatchesPerSubmit: 2 });
    const input = inputData(3);
    const { outputs } = await plan.run([input]);
    plan.dispose();
    for (let i = 0; i < input.length; i++) expect(outputs[0][i]).toBeCloseTo(input[i] + 7, 5);
  });
});

describe('Plan: graph and input errors', () => {
  it('a binding the shader declares but the node does not give is an InvalidInputError naming it', async () => {
    const ctx = await getTestContext();
    const pool = new BufferPool(ctx);
    const g = new Graph();
    const x = g.input(SHAPE);
    const y = g.tensor(SHAPE, 'y');
    g.add({ label: 'forgetful node', kernel: AFFINE, uniforms: { count: 35, gain: 1, offset: 0 }, bindings: { y }, workgroups: [1, 1, 1] });
    g.output(y);
    void x;
    const e = await compileError(ctx, g, pool);
    expect(e).toBeInstanceOf(InvalidInputError);
    expect((e as Error).message).toMatch(/forgetful node/);
    expect((e as Error).message).toMatch(/'x'/);
    expect(pool.inUse, 'a failed compile returns its buffers').toBe(0);
    pool.trim();
  });

  it('a binding the shader does not have is an error naming it', async () => {
    const ctx = await getTestContext();
    const pool = new BufferPool(ctx);
    const g = new Graph();
    const x = g.input(SHAPE);
    const z = g.tensor(SHAPE, 'z');
    const y = affine(g, x, 1, 0, 'greedy node');
    g.nodes[0].bindings.bogus = z;
    g.output(y);
    const e = await compileError(ctx, g, pool);
    expect(e).toBeInstanceOf(InvalidInputError);
    expect((e as Error).message).toMatch(/greedy node.*bogus/);
    expect(pool.inUse).toBe(0);
    pool.trim();
  });

  it('a uniform the shader does not have (or a missing one) is an error', async () => {
    const ctx = await getTestContext();
    const pool = new BufferPool(ctx);
    const cases: Record<string, number>[] = [
      { count: 35, gain: 1, offset: 0, extra: 1 },
      { count: 35, gain: 1 },
    ];
    for (const uniforms of cases) {
      const g = new Graph();
      const x = g.input(SHAPE);
      g.output(affine(g, x, 1, 0, 'uniform node', { uniforms }));
      const e = await compileError(ctx, g, pool);
      expect(e).toBeInstanceOf(InvalidInputError);
      expect((e as Error).message).toMatch(/extra|offset/);
    }
    expect(pool.inUse).toBe(0);
    pool.trim();
  });

  it('reading a tensor nothing wrote is an error naming it', async () => {
    const ctx = await getTestContext();
    const pool = new BufferPool(ctx);
    const g = new Graph();
    g.input(SHAPE);
    const ghost = g.tensor(SHAPE, 'ghost tensor');
    g.output(affine(g, ghost, 1, 0, 'reads ghost'));
    const e = await compileError(ctx, g, pool);
    expect(e).toBeInstanceOf(RestoreError);
    expect((e as Error).message).toMatch(/ghost tensor/);
    expect(pool.inUse).toBe(0);
  });

  it('an output nothing writes, or no output at all, is an error', async () => {
    const ctx = await getTestContext();
    const pool = new BufferPool(ctx);
    const g = new Graph();
    const x = g.input(SHAPE);
    affine(g, x, 1, 0, 'node');
    g.output(g.tensor(SHAPE, 'orphan'));
    expect(await compileError(ctx, g, pool)).toBeInstanceOf(InvalidInputError);
    const empty = new Graph();
    affine(empty, empty.input(SHAPE), 1, 0, 'node');
    expect(await compileError(ctx, empty, pool)).toBeInstanceOf(InvalidInputError);
    expect(pool.inUse).toBe(0);
  });

  it('wrong number or length of inputs to run() is an InvalidInputError; the plan still works afterwards', async () => {
    const ctx = await getTestContext();
    const g = new Graph();
    g.output(affine(g, g.input(SHAPE, 'picture'), 2, 0, 'double'));
    const plan = await Plan.compile(ctx, g);
    const input = inputData(4);
    await expect(plan.run([])).rejects.toBeInstanceOf(InvalidInputError);
    await expect(plan.run([input, input])).rejects.toThrow(/1 input/);
    await expect(plan.run([input.subarray(1)])).rejects.toBeInstanceOf(InvalidInputError);
    await expect(plan.run([input.subarray(1)])).rejects.toThrow(/picture/);
    const { outputs } = await plan.run([input]);
    expect(outputs[0][5]).toBeCloseTo(input[5] * 2, 6);
    plan.dispose();
    await expect(plan.run([input])).rejects.toBeInstanceOf(RestoreError);
  });
});

describe('GPU validation errors do not pass silently', () => {
  // The shader asks for a fixed-size array of 64 vec4s (1 KiB); binding 16 bytes is invalid at dispatch time.
  const FIXED = {
    label: 'test-fixed-table',
    code: `@group(0) @binding(0) var<storage, read> table: array<vec4<f32>, 64>;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@compute @workgroup_size(1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) { y[gid.x] = x[gid.x] + table[gid.x % 64u]; }`,
  };

  function graphWithSmallTable(ctx: GPUContext): { graph: Graph; table: GPUBuffer } {
    const table = ctx.createBufferWithData(new Float32Array(4), BufferUsage.STORAGE, 'too small table');
    const g = new Graph();
    const x = g.input([1, 1, 2, 4]);
    const y = g.tensor([1, 1, 2, 4], 'y');
    g.add({ label: 'small table', kernel: FIXED, uniforms: {}, bindings: { table, x, y }, workgroups: [2, 1, 1] });
    g.output(y);
    return { graph: g, table };
  }

  it('in a debug context, a dispatch with a too-small binding rejects with GPU_VALIDATION', async () => {
    const ctx = await getTestContext();
    expect(ctx.debug).toBe(true);
    const { graph, table } = graphWithSmallTable(ctx);
    let error: unknown;
    try {
      const plan = await Plan.compile(ctx, graph);
      try {
        await plan.run([new Float32Array(8)]);
      } finally {
        plan.dispose();
      }
    } catch (e) {
      error = e;
    }
    table.destroy();
    expect(error).toBeInstanceOf(GPUOperationError);
    expect((error as GPUOperationError).code).toBe('GPU_VALIDATION');
    expect(() => ctx.throwIfFailed()).not.toThrow(); // the scope caught it; the context is still usable
  });

  it('without debug, the error surfaces through uncapturederror as GPU_VALIDATION', async () => {
    const ctx = await createNodeContext({ debug: false, timestamps: false });
    try {
      const { graph, table } = graphWithSmallTable(ctx);
      let error: unknown;
      try {
        const plan = await Plan.compile(ctx, graph);
        await plan.run([new Float32Array(8)]);
        plan.dispose();
        await ctx.device.queue.onSubmittedWorkDone();
        await new Promise((r) => setTimeout(r, 20));
        ctx.throwIfFailed();
      } catch (e) {
        error = e;
      }
      table.destroy();
      expect(error).toBeInstanceOf(GPUOperationError);
      expect((error as GPUOperationError).code).toBe('GPU_VALIDATION');

      // A raw invalid call outside any scope is recorded too, and reported once.
      ctx.device.createBuffer({ size: 16, usage: BufferUsage.MAP_READ | BufferUsage.STORAGE });
      await ctx.device.queue.onSubmittedWorkDone();
      await new Promise((r) => setTimeout(r, 20));
      expect(() => ctx.throwIfFailed()).toThrow(GPUOperationError);
      expect(() => ctx.throwIfFailed()).not.toThrow();
    } finally {
      ctx.dispose();
    }
  });
});

describe('buffer pool', () => {
  function chainGraph(shape: Shape4, n: number): Graph {
    const g = new Graph();
    let t = g.input(shape);
    for (let i = 0; i < n; i++) t = affine(g, t, 1, 0, `copy ${i}`);
    g.output(t);
    return g;
  }

  it('plan.dispose() returns every buffer; a second plan of the same shape reuses them', async () => {
    const ctx = await getTestContext();
    const pool = new BufferPool(ctx);
    const p1 = await Plan.compile(ctx, chainGraph(SHAPE, 3), { pool });
    expect(pool.inUse).toBe(2);
    expect(pool.pooled).toBe(0);
    p1.dispose();
    p1.dispose(); // twice is harmless
    expect(pool.inUse).toBe(0);
    expect(pool.pooled).toBe(2);

    const created: string[] = [];
    const original = ctx.createBuffer.bind(ctx);
    ctx.createBuffer = (d, what) => (created.push(what), original(d, what));
    try {
      const p2 = await Plan.compile(ctx, chainGraph(SHAPE, 4), { pool });
      expect(pool.inUse).toBe(2);
      expect(pool.pooled).toBe(0);
      expect(
        created.filter((w) => /activation/.test(w)),
        'no new activation buffers',
      ).toEqual([]);
      const input = inputData(5);
      const { outputs } = await p2.run([input]);
      expect(outputs[0]).toEqual(input);
      p2.dispose();
    } finally {
      ctx.createBuffer = original;
    }
    expect(pool.inUse).toBe(0);
    pool.trim();
    expect(pool.pooled).toBe(0);
  });

  it('a much smaller request does not take a big pooled buffer', async () => {
    const ctx = await getTestContext();
    const pool = new BufferPool(ctx);
    const big = pool.acquire(4096, BufferUsage.STORAGE, 'big');
    pool.release(big);
    const small = pool.acquire(256, BufferUsage.STORAGE, 'small');
    expect(small).not.toBe(big);
    expect(small.size).toBeLessThan(4096);
    const again = pool.acquire(4000, BufferUsage.STORAGE, 'again');
    expect(again).toBe(big);
    pool.release(small);
    pool.release(again);
    expect(pool.inUse).toBe(0);
    pool.trim();
  });

  it('a model returns its buffers to the context pool on dispose()', async () => {
    const ctx = await getTestContext();
    const f = loadDnCNNFixture('tiny_r_gray');
    const before = ctx.buffers.inUse;
    const model = new RestorationModel(ctx, networkFromCheckpoint(f.weights), 'tiny');
    const image = { width: 9, height: 6, channels: 1, data: Float32Array.from(randomArray(54, 6)) };
    await model.runFloat(image);
    await model.runFloat({ ...image, width: 6, height: 9 }); // a second plan
    expect(ctx.buffers.inUse).toBeGreaterThan(before);
    model.dispose();
    await new Promise((r) => setTimeout(r, 0));
    expect(ctx.buffers.inUse).toBe(before);
    await expect(model.runFloat(image)).rejects.toHaveProperty('code', 'DISPOSED');
  });
});

describe('padded channels', () => {
  it('a 3-channel conv with sigmoid writes exact zeros in the padded 4th channel', async () => {
    const ctx = await getTestContext();
    const geometry = {
      inChannels: 2,
      outChannels: 3,
      kernelSize: [3, 3] as [number, number],
      stride: 1,
      padding: [1, 1] as [number, number],
      dilation: 1,
    };
    const [h, w] = [6, 5];
    const x = randomArray(2 * h * w, 11);
    const wt = randomArray(3 * 2 * 9, 12, 0.3);
    const b = randomArray(3, 13, 0.5);
    const weight = ctx.createBufferWithData(packConv2dWeight(wt, geometry), BufferUsage.STORAGE, 'w');
    const bias = ctx.createBufferWithData(packBias(b, 3), BufferUsage.STORAGE, 'b');
    const g = new Graph();
    const input = g.input([1, h, w, 2]);
    const variant = selectConv2dVariant(ctx, geometry);
    const y = conv2d(g, input, { weight, bias, geometry, variant, label: 'conv' }, { activation: { kind: 'sigmoid' } });
    g.output(y);
    const plan = await Plan.compile(ctx, g);
    plan.poison(Number.NaN);
    const { outputs } = await plan.run([nchwToNhwcPadded(x, [1, h, w, 2])]);
    plan.dispose();
    weight.destroy();
    bias.destroy();
    const out = outputs[0];
    expect(out.length).toBe(h * w * 4);
    for (let p = 0; p < h * w; p++) expect(Object.is(out[p * 4 + 3], 0), `pixel ${p} channel 3 = ${out[p * 4 + 3]}`).toBe(true);
    const ref = conv2dRef(x, [1, 2, h, w], wt, b, 3, [3, 3], 1, [1, 1], 1, { kind: 'sigmoid' });
    const got = nhwcPaddedToNchw(out, y.shape);
    for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(ref.y[i], 5);
  });
});
