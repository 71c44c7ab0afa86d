/**
 * What the pool needs of a device: buffer creation with its size checks (GPUContext has it). A narrow interface,
 * so the pool does not import the context that owns it.
 */
export interface BufferAllocator {
  createBuffer(descriptor: GPUBufferDescriptor, what: string): GPUBuffer;
}

/**
 * Reuses freed GPU buffers. Plans for different input shapes come and go (e.g. one per image size); without a
 * pool each would allocate and free hundreds of MiB. A buffer is reused for a request of the same usage whose
 * size is at most the buffer's and at least 3/4 of it, so little memory is wasted.
 */
export class BufferPool {
  private readonly free: GPUBuffer[] = [];
  private liveCount = 0;

  constructor(private readonly ctx: BufferAllocator) {}

  acquire(size: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer {
    // Compare with the rounded size new buffers get, so a buffer is always reusable for the request it was made for.
    const rounded = Math.ceil(size / 256) * 256;
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i];
      if (b.usage !== usage || b.size < size || b.size * 0.75 > rounded) continue;
      if (best < 0 || b.size < this.free[best].size) best = i;
    }
    const buffer = best >= 0 ? this.free.splice(best, 1)[0] : this.ctx.createBuffer({ size: rounded, usage }, label);
    this.liveCount++; // only once we have one: a refused createBuffer must not count as in use
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    this.liveCount--;
    this.free.push(buffer);
  }

  /** Buffers handed out and not yet released: tests use it to prove nothing leaks. */
  get inUse(): number {
    return this.liveCount;
  }

  get pooled(): number {
    return this.free.length;
  }

  trim(): void {
    for (const b of this.free.splice(0)) b.destroy();
  }
}
