import { InvalidInputError, LimitExceededError } from '../errors';
import type { GPUContext } from './context';
import { writeBuffer } from './context';
import { BufferUsage } from './flags';
import type { BufferRange } from './graph';
import { readMapped } from './recorder';

/** One tensor of an arena: its key (a layer's Parameter object), element count and name for messages. */
export interface ArenaEntry {
  readonly key: object;
  readonly numel: number;
  readonly label: string;
}

/** Offsets of entries are multiples of this many bytes, the largest minStorageBufferOffsetAlignment WebGPU allows. */
export const ARENA_ALIGN_BYTES = 256;

const USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;

/**
 * Tensors that outlive a plan, packed one after another into one f32 buffer per role: a training run's parameters
 * (in PyTorch's layout, so checkpoints, gradient clipping and optimizers need no repacking), their gradients, each
 * optimizer state (Adam's m and v), BatchNorm running statistics. Each entry starts on a 256-byte boundary so a
 * kernel can bind it alone (`range`); the gaps hold zeros, have zero gradients, and so stay zero under every
 * optimizer, which lets one dispatch update a whole arena and one reduction take its norm.
 */
export class ParameterArena {
  private readonly offsets = new Map<object, { offset: number; numel: number; label: string }>();
  /** Elements the arena spans, gaps included. */
  readonly elements: number;
  private readonly buffers = new Map<string, GPUBuffer>();
  private disposed = false;

  constructor(
    private readonly ctx: GPUContext,
    readonly entries: readonly ArenaEntry[],
    readonly label: string,
  ) {
    let offset = 0;
    const alignElements = ARENA_ALIGN_BYTES / 4;
    for (const e of entries) {
      if (this.offsets.has(e.key)) throw new InvalidInputError(`${label}: '${e.label}' is in the arena twice`);
      if (!Number.isInteger(e.numel) || e.numel < 1) throw new InvalidInputError(`${label}: '${e.label}' has ${e.numel} elements`);
      this.offsets.set(e.key, { offset, numel: e.numel, label: e.label });
      offset += Math.ceil(e.numel / alignElements) * alignElements;
    }
    this.elements = Math.max(offset, alignElements);
    const max = Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize);
    if (this.elements * 4 > max) throw new LimitExceededError('maxStorageBufferBindingSize', this.elements * 4, max, label);
  }

  get bytes(): number {
    return this.elements * 4;
  }

  has(key: object): boolean {
    return this.offsets.has(key);
  }

  /** The arena's buffer for `role` ('value', 'grad', 'exp_avg', …), made (zero-filled) on first use. */
  buffer(role: string): GPUBuffer {
    if (this.disposed) throw new InvalidInputError(`${this.label} was disposed`);
    let b = this.buffers.get(role);
    if (!b) {
      b = this.ctx.createBuffer({ size: this.bytes, usage: USAGE }, `${this.label} ${role}`);
      this.buffers.set(role, b);
    }
    return b;
  }

  /** The whole buffer of `role` as a binding (one dispatch over every entry). */
  whole(role: string): BufferRange {
    return { buffer: this.buffer(role), offset: 0, size: this.bytes };
  }

  /** Where `key` sits: element offset and count. */
  entry(key: object): { offset: number; numel: number; label: string } {
    const e = this.offsets.get(key);
    if (!e) throw new InvalidInputError(`${this.label} holds no such tensor`);
    return e;
  }

  /** The bytes of `key` in the buffer of `role`, for a kernel that binds one tensor. */
  range(key: object, role: string): BufferRange {
    const { offset, numel } = this.entry(key);
    return { buffer: this.buffer(role), offset: offset * 4, size: Math.ceil(numel / 4) * 16 };
  }

  /**
   * The bytes of `role` spanned by `keys`, which must be consecutive entries of the arena (a parameter group):
   * one dispatch over them leaves the rest of the arena alone.
   */
  span(keys: readonly object[], role: string): { range: BufferRange; elements: number } {
    if (keys.length === 0) throw new InvalidInputError(`${this.label}: an empty span`);
    const alignElements = ARENA_ALIGN_BYTES / 4;
    const start = this.entry(keys[0]).offset;
    let end = start;
    for (const key of keys) {
      const { offset, numel, label } = this.entry(key);
      if (offset !== end) throw new InvalidInputError(`${this.label}: '${label}' does not follow the entry before it in the span`);
      end = offset + Math.ceil(numel / alignElements) * alignElements;
    }
    return { range: { buffer: this.buffer(role), offset: start * 4, size: (end - start) * 4 }, elements: end - start };
  }

  /** Uploads one entry's values (rounded to f32) into the buffer of `role`. */
  write(key: object, role: string, data: ArrayLike<number>): void {
    const { offset, numel, label } = this.entry(key);
    if (data.length !== numel) throw new InvalidInputError(`${this.label}: '${label}' needs ${numel} values, got ${data.length}`);
    writeBuffer(this.ctx.device, this.buffer(role), offset * 4, Float32Array.from(data));
  }

  /** Reads the buffer of `role` back and splits it per entry (in entry order). */
  async read(role: string): Promise<Map<object, Float32Array>> {
    const staging = this.ctx.createBuffer(
      { size: this.bytes, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST },
      `${this.label} readback`,
    );
    try {
      const encoder = this.ctx.device.createCommandEncoder();
      encoder.copyBufferToBuffer(this.buffer(role), 0, staging, 0, this.bytes);
      this.ctx.device.queue.submit([encoder.finish()]);
      const all = new Float32Array(await readMapped(this.ctx, staging, this.bytes));
      const out = new Map<object, Float32Array>();
      for (const [key, { offset, numel }] of this.offsets) out.set(key, all.slice(offset, offset + numel));
      return out;
    } finally {
      staging.destroy();
    }
  }

  /** Copies the buffer of `role` into that of `into` (same arena), recorded on `encoder`. */
  copy(encoder: GPUCommandEncoder, role: string, into: string): void {
    encoder.copyBufferToBuffer(this.buffer(role), 0, this.buffer(into), 0, this.bytes);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const b of this.buffers.values()) b.destroy();
    this.buffers.clear();
  }
}
