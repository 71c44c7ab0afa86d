/** A readback that WebGPU aborts fails with a typed error, not a raw DOMException with an empty message. */
import { describe, expect, it } from 'vitest';
import { RestoreError } from '../../src/errors';
import { BufferUsage } from '../../src/gpu/flags';
import { readMapped } from '../../src/gpu/recorder';
import { getTestContext } from '../helpers/gpu';

describe('readMapped', () => {
  it('a buffer destroyed while its map is pending gives GPU_VALIDATION naming the buffer', async () => {
    const ctx = await getTestContext();
    const buffer = ctx.createBuffer({ size: 256, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST }, 'doomed readback');
    const reading = readMapped(ctx, buffer, 256);
    buffer.destroy();
    const error = await reading.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RestoreError);
    expect((error as RestoreError).code).toBe('GPU_VALIDATION');
    expect((error as RestoreError).message).toContain('doomed readback');
  });
});
