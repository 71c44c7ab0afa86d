import { describe, expect, it } from 'vitest';
import { LimitExceededError } from '../../src/errors';
import { BufferUsage } from '../../src/gpu/flags';
import { networkFromCheckpoint } from '../../src/models/load';
import { RestorationModel } from '../../src/models/restoration-model';
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
    expect(err.limit).toBe('maxBufferSize');
    expect(err.requested).toBe(max + 4);
    expect(err.allowed).toBe(max);
    expect(err.message).toMatch(/maxBufferSize/);
    expect(err.message).toMatch(/giant test buffer/);
    ctx.throwIfFailed(); // refused before reaching the device
  });

  it('a storage buffer above maxStorageBufferBindingSize is refused; the same size without STORAGE is not checked against it', async (t) => {
    const ctx = await getTestContext();
    const maxBinding = ctx.limits.maxStorageBufferBindingSize;
    if (maxBinding + 4 > ctx.limits.maxBufferSize) t.skip(); // the buffer limit would answer first
    const size = maxBinding + 4;
    const e = thrown(() => ctx.createBuffer({ size, usage: BufferUsage.STORAGE | BufferUsage.COPY_DST }, 'wide activation'));
    expect(e).toBeInstanceOf(LimitExceededError);
    expect((e as LimitExceededError).limit).toBe('maxStorageBufferBindingSize');
    expect((e as LimitExceededError).message).toMatch(/maxStorageBufferBindingSize.*\d+/);
    expect((e as LimitExceededError).message).toMatch(/wide activation/);
    // Exactly at the limit is allowed (not allocated here: only the check is exercised through a tiny buffer).
    const small = ctx.createBuffer({ size: 256, usage: BufferUsage.STORAGE }, 'small');
    expect(small.size).toBe(256);
    small.destroy();
    ctx.throwIfFailed();
  });

  it('an image too large for the device fails with LIMIT_EXCEEDED naming the image size; the model still works', async () => {
    const ctx = await getTestContext();
    const f = loadDnCNNFixture('tiny_r_gray');
    expect(f.config.nc).toBe(8);
    const model = new RestorationModel(ctx, networkFromCheckpoint(f.weights), 'tiny_r_gray');
    const before = ctx.buffers.inUse;
    // Hidden activations are nc = 8 float channels: 32 bytes a pixel. Pick a size just past the binding limit.
    const width = 4096;
    const height = Math.floor(ctx.limits.maxStorageBufferBindingSize / (32 * width)) + 8;
    expect(32 * width * height).toBeGreaterThan(ctx.limits.maxStorageBufferBindingSize);
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
    expect(['maxStorageBufferBindingSize', 'maxBufferSize']).toContain(err.limit);
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
