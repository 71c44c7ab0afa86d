import { DisposedError } from '../errors';
import type { GPUContext } from './context';
import { writeBuffer } from './context';
import { BufferUsage } from './flags';
import { readMapped } from './recorder';
import { checkShape4, nchwToNhwcPadded, nhwcPaddedToNchw, type Shape4, tensorBytes } from './tensor';

/**
 * An activation that lives on the GPU: NHWC f32, channels padded to 4 (zeros in the padding). Plans accept it
 * as an input, so data already on the device (another model's output, an app's buffer) need not round-trip
 * through the CPU. Its public face is PyTorch's NCHW: `fromNCHW` / `toNCHW`.
 */
export class GPUTensor {
  private disposed = false;

  private constructor(
    readonly ctx: GPUContext,
    readonly shape: Shape4,
    readonly buffer: GPUBuffer,
  ) {}

  /** Uploads NCHW data; `shape` is NHWC [n, h, w, c]. */
  static fromNCHW(ctx: GPUContext, data: ArrayLike<number>, shape: Shape4, label = 'tensor'): GPUTensor {
    checkShape4(shape, label);
    const packed = nchwToNhwcPadded(data, shape);
    const buffer = ctx.createBuffer(
      { size: tensorBytes(shape), usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST },
      label,
    );
    writeBuffer(ctx.device, buffer, 0, packed);
    return new GPUTensor(ctx, shape, buffer);
  }

  /** Reads the tensor back as NCHW float32. */
  async toNCHW(): Promise<Float32Array> {
    if (this.disposed) throw new DisposedError('GPUTensor');
    const bytes = tensorBytes(this.shape);
    const staging = this.ctx.createBuffer({ size: bytes, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST }, 'tensor readback');
    try {
      const encoder = this.ctx.device.createCommandEncoder();
      encoder.copyBufferToBuffer(this.buffer, 0, staging, 0, bytes);
      this.ctx.device.queue.submit([encoder.finish()]);
      return nhwcPaddedToNchw(new Float32Array(await readMapped(this.ctx, staging, bytes)), this.shape);
    } finally {
      staging.destroy();
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.buffer.destroy();
  }
}
