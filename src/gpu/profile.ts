import type { GPUContext } from './context';
import { BufferUsage } from './flags';
import { type Dispatch, readMapped, submitDispatches } from './recorder';

/** One dispatch of a profiled run: its node's label, its shader variant, its GPU time and its counted cost. */
export interface DispatchProfile {
  label: string;
  /** The shader variant's label, e.g. `conv2d[k3x3,px16,cb4,...]`. */
  kernel: string;
  ms: number;
  /** Counted FLOPs and minimum bytes (gpu/cost.ts); undefined for a node without a cost. */
  flops?: number;
  bytes?: number;
}

/** WebGPU caps a query set at 4096 queries: 2048 dispatches, two timestamps each, per set. */
const MAX_QUERIES_PER_SET = 4096;
const DISPATCHES_PER_SET = MAX_QUERIES_PER_SET / 2;

/**
 * Runs `dispatches` once, each in a compute pass of its own between two timestamps, and returns each one's GPU
 * time in ms. Dispatches are submitted in groups of one query set each (2048); `before` records into the first
 * command buffer (input copies). The device must have 'timestamp-query'. Negative intervals (the spec allows
 * timestamps to go backwards) count as 0.
 */
export async function timeEachDispatch(
  ctx: GPUContext,
  dispatches: readonly Dispatch[],
  options: { perSubmit: number; before?: (encoder: GPUCommandEncoder) => void },
): Promise<number[]> {
  const sets: { set: GPUQuerySet; resolve: GPUBuffer; read: GPUBuffer; count: number }[] = [];
  try {
    for (let first = 0; first < dispatches.length; first += DISPATCHES_PER_SET) {
      const group = dispatches.slice(first, first + DISPATCHES_PER_SET);
      const count = 2 * group.length;
      const bytes = count * 8;
      const entry = {
        set: ctx.device.createQuerySet({ type: 'timestamp', count, label: `profile timestamps ${first}` }),
        resolve: ctx.createBuffer({ size: bytes, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC }, 'profile timestamps'),
        read: ctx.createBuffer({ size: bytes, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST }, 'profile timestamps readback'),
        count,
      };
      sets.push(entry);
      submitDispatches(ctx.device, group, {
        perSubmit: options.perSubmit,
        timestampEachDispatch: entry.set,
        before: first === 0 ? options.before : undefined,
        after: (encoder) => {
          encoder.resolveQuerySet(entry.set, 0, count, entry.resolve, 0);
          encoder.copyBufferToBuffer(entry.resolve, 0, entry.read, 0, bytes);
        },
      });
    }
    const ms: number[] = [];
    for (const s of sets) {
      const t = new BigUint64Array(await readMapped(ctx, s.read, s.count * 8));
      for (let i = 0; i < s.count; i += 2) ms.push(t[i + 1] > t[i] ? Number(t[i + 1] - t[i]) / 1e6 : 0);
    }
    ctx.throwIfFailed();
    return ms;
  } finally {
    for (const s of sets) {
      s.set.destroy();
      s.resolve.destroy();
      s.read.destroy();
    }
  }
}

/** Profiles grouped by shader variant, largest total time first. */
export interface KernelSummary {
  kernel: string;
  dispatches: number;
  ms: number;
  flops: number;
  bytes: number;
  /** Dispatches of this variant without a cost. */
  uncounted: number;
}

export function summarizeByKernel(
  profile: readonly DispatchProfile[],
  keyOf: (p: DispatchProfile) => string = (p) => p.kernel,
): KernelSummary[] {
  const byKernel = new Map<string, KernelSummary>();
  for (const p of profile) {
    const key = keyOf(p);
    const s = byKernel.get(key) ?? { kernel: key, dispatches: 0, ms: 0, flops: 0, bytes: 0, uncounted: 0 };
    s.dispatches++;
    s.ms += p.ms;
    if (p.flops === undefined || p.bytes === undefined) s.uncounted++;
    else {
      s.flops += p.flops;
      s.bytes += p.bytes;
    }
    byKernel.set(key, s);
  }
  return [...byKernel.values()].sort((a, b) => b.ms - a.ms);
}
