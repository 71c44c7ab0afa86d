import { describe, expect, it } from 'vitest';
import { LimitExceededError } from '../../src/errors';
import { BufferUsage } from '../../src/gpu/flags';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { binaryWgsl } from '../../src/kernels/elementwise';
import { networkFromCheckpoint } from '../../src/models/load';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { loadDnCNNFixture } from '../helpers/fixtures';
import { getTestContext } from '../helpers/gpu';
import { randomArray } from '../helpers/random';

function thrown(fn: () => unknown): unknown {
  try {
    const r = fn();
    if (r && typeof (r as GPUBuffer).destroy === 'function') (r as GPUBuffer).destroy(); // it should not have been made
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('device limits', () => {
  it('a buffer above maxBufferSize is a LimitExceededError naming the limit and the buffer', async () => {
    const ctx = await getTestContext();
    const max = ctx.limits.maxBufferSize;
    const e = thrown(() => ctx.createBuffer({ size: max + 4, usage: BufferUsage.COPY_DST }, 'giant test buffer'));
    expect(e).toBeInstanceOf(LimitExceededError);
    const err = e as LimitExceededError;
    expect(err.code).toBe('LIMIT_EXCEEDED');
    // Either the largest buffer, or the bindings needed to reach a tensor that big in windows.
    expect(['maxBufferSize', 'maxStorageBuffersPerShaderStage']).toContain(err.limit);
    expect(err.requested).toBe(max + 4);
    expect(err.allowed).toBe(max);
    expect(err.message).toMatch(/maxBufferSize/);
    expect(err.message).toMatch(/giant test buffer/);
    ctx.throwIfFailed(); // refused before reaching the device
  });

  it('a storage buffer larger than one binding can be made (plans bind it in windows); a plan binding such a constant buffer is refused', async () => {
    const ctx = await getTestContext();
    const maxBinding = ctx.limits.maxStorageBufferBindingSize;
    if (maxBinding + 16 > ctx.limits.maxBufferSize) return; // nothing between the two limits on this device
    const wide = ctx.createBuffer({ size: maxBinding + 16, usage: BufferUsage.STORAGE | BufferUsage.COPY_DST }, 'wide');
    expect(wide.size).toBe(maxBinding + 16);
    // A weight buffer is bound whole: past the binding limit the plan refuses it by name.
    const g = new Graph();
    const x = g.input([1, 4, 4, 4]);
    const y = g.tensor([1, 4, 4, 4], 'y');
    g.add({
      label: 'wide weights',
      kernel: { label: 'binary[add]', code: binaryWgsl('add') },
      uniforms: { count: 16 },
      bindings: { a: x, b: wide, y },
      workgroups: [1, 1, 1],
    });
    g.output(y);
    const e = await Plan.compile(ctx, g).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(LimitExceededError);
    expect((e as LimitExceededError).limit).toBe('maxStorageBufferBindingSize');
    expect((e as LimitExceededError).message).toMatch(/wide weights binding 'b'/);
    wide.destroy();
    ctx.throwIfFailed();
  });

  it('an image too large for the device fails with LIMIT_EXCEEDED naming the image size; the model still works', async () => {
    const ctx = await getTestContext();
    const f = loadDnCNNFixture('tiny_r_gray');
    expect(f.config.nc).toBe(8);
    const model = new RestorationModel(ctx, networkFromCheckpoint(f.weights), 'tiny_r_gray');
    const before = ctx.buffers.inUse;
    // Hidden activations are nc = 8 float channels: 32 bytes a pixel. Pick a size just past the largest buffer
    // (tensors larger than one binding are fine: they are bound in windows; `run` would tile this image).
    const width = 4096;
    const height = Math.floor(ctx.limits.maxBufferSize / (32 * width)) + 8;
    expect(32 * width * height).toBeGreaterThan(ctx.limits.maxBufferSize);
    let error: unknown;
    const t0 = performance.now();
    try {
      await model.warmup(height, width); // compiles the plan for that size without allocating an image
    } catch (e) {
      error = e;
    }
    expect(performance.now() - t0).toBeLessThan(20_000);
    expect(error).toBeInstanceOf(LimitExceededError);
    const err = error as LimitExceededError;
    expect(err.code).toBe('LIMIT_EXCEEDED');
    // Either the largest buffer, or the bindings needed to reach a tensor that big in windows.
    expect(['maxBufferSize', 'maxStorageBuffersPerShaderStage']).toContain(err.limit);
    expect(err.requested).toBeGreaterThan(err.allowed);
    expect(err.message).toContain(`${width}×${height}`);
    expect(err.message).toContain('tiny_r_gray');
    expect(ctx.buffers.inUse, 'nothing held by the failed plan').toBe(before);
    ctx.throwIfFailed();

    // The same model on a small image still works, and the failed size is not cached as a broken plan.
    const data = Float32Array.from(randomArray(16 * 16, 21)).map((v) => 0.5 + 0.4 * v);
    const { image } = await model.runFloat({ width: 16, height: 16, channels: 1, data });
    expect(image.data.length).toBe(256);
    expect(image.data.every(Number.isFinite)).toBe(true);
    await expect(model.warmup(height, width)).rejects.toBeInstanceOf(LimitExceededError);
    model.dispose();
    await new Promise((r) => setTimeout(r, 0));
    expect(ctx.buffers.inUse).toBe(before);
  });
});
