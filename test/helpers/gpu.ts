import type { GPUContext } from '../../src/gpu/context';
import { BufferUsage } from '../../src/gpu/flags';
import { readMapped } from '../../src/gpu/recorder';

/**
 * One GPU context per test file. In Node it comes from Dawn; in the browser suite from navigator.gpu. Tests
 * import `getTestContext` and never care which.
 */
let ctx: Promise<GPUContext> | undefined;

export function getTestContext(): Promise<GPUContext> {
  ctx ??= (async () => {
    if (typeof navigator !== 'undefined' && navigator.gpu) {
      const { requestContext } = await import('../../src/gpu/context');
      return requestContext(navigator.gpu, { debug: true });
    }
    const { createNodeContext } = await import('../../src/gpu/node-gpu');
    const context = await createNodeContext({ debug: true });
    // WEBGPU_RESTORE_FORCE_CHUNKS=3 runs every test with each tensor split across 3 bindings (gpu/tensor-access.ts).
    const forced = Number(process.env.WEBGPU_RESTORE_FORCE_CHUNKS ?? '');
    if (forced >= 2) context.forceBindingChunks = forced;
    return context;
  })();
  return ctx;
}

/** Reads a whole GPU buffer back as f32 (parameter arenas, gradients, optimizer state in tests). */
export async function readWhole(ctx: GPUContext, buffer: GPUBuffer): Promise<Float32Array> {
  const staging = ctx.createBuffer({ size: buffer.size, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST }, 'test readback');
  const encoder = ctx.device.createCommandEncoder();
  encoder.copyBufferToBuffer(buffer, 0, staging, 0, buffer.size);
  ctx.device.queue.submit([encoder.finish()]);
  const out = new Float32Array(await readMapped(ctx, staging, buffer.size));
  staging.destroy();
  return out;
}
