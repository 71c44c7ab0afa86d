import { GPUOperationError, RestoreError } from '../errors';
import type { GPUContext } from './context';
import { MapMode } from './flags';

/** One recorded compute dispatch. */
export interface Dispatch {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: readonly [number, number, number];
}

export interface SubmitOptions {
  /** Dispatches per command buffer: bounded so no single submission runs long enough to trip a driver watchdog. */
  perSubmit: number;
  /** Write timestamps 0 (start of the first pass) and 1 (end of the last pass) into this query set. */
  timestamps?: GPUQuerySet;
  /**
   * Profiling instead: every dispatch in a compute pass of its own, whose start and end write timestamps 2i and
   * 2i + 1 of this query set (2 · dispatches queries) for dispatch i. Pass boundaries cost a little, so this
   * attributes time rather than measuring the plain run.
   */
  timestampEachDispatch?: GPUQuerySet;
  /** Copies to record before the first pass (e.g. inputs already on the GPU). */
  before?: (encoder: GPUCommandEncoder) => void;
  /** Copies to record after the last pass (outputs to readback buffers, query resolution). */
  after?: (encoder: GPUCommandEncoder) => void;
}

/**
 * Records dispatches into one compute pass per command buffer, `perSubmit` dispatches each, and submits them in
 * order. Few command buffers keep CPU overhead low; the bound keeps each one short.
 */
export function submitDispatches(device: GPUDevice, dispatches: readonly Dispatch[], options: SubmitOptions): void {
  const per = options.perSubmit;
  const chunks = Math.max(1, Math.ceil(dispatches.length / per));
  for (let c = 0; c < chunks; c++) {
    const first = c === 0;
    const last = c === chunks - 1;
    const batch = dispatches.slice(c * per, (c + 1) * per);
    const encoder = device.createCommandEncoder({ label: `dispatches ${c + 1}/${chunks}` });
    if (first) options.before?.(encoder);
    const each = options.timestampEachDispatch;
    if (each) {
      batch.forEach((d, k) => {
        const i = c * per + k;
        const pass = encoder.beginComputePass({
          timestampWrites: { querySet: each, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
        });
        record(pass, d);
        pass.end();
      });
    } else {
      const descriptor: GPUComputePassDescriptor = {};
      if (options.timestamps && (first || last)) {
        descriptor.timestampWrites = {
          querySet: options.timestamps,
          ...(first ? { beginningOfPassWriteIndex: 0 } : {}),
          ...(last ? { endOfPassWriteIndex: 1 } : {}),
        };
      }
      const pass = encoder.beginComputePass(descriptor);
      for (const d of batch) record(pass, d);
      pass.end();
    }
    if (last) options.after?.(encoder);
    device.queue.submit([encoder.finish()]);
  }
}

function record(pass: GPUComputePassEncoder, d: Dispatch): void {
  pass.setPipeline(d.pipeline);
  pass.setBindGroup(0, d.bindGroup);
  pass.dispatchWorkgroups(...d.workgroups);
}

/**
 * Maps a MAP_READ buffer and copies `byteLength` bytes out. The copy is made from a view of the mapped range
 * before unmap (dawn.node pitfall 2: slicing the range and then unmapping crashed), and the wait fails with
 * DeviceLostError instead of hanging if the device goes away. A map that WebGPU aborts (the buffer destroyed or
 * unmapped meanwhile: a raw DOMException 'AbortError', often with an empty message) becomes a typed error.
 */
export async function readMapped(ctx: GPUContext, buffer: GPUBuffer, byteLength: number): Promise<ArrayBuffer> {
  try {
    await ctx.raceLost(buffer.mapAsync(MapMode.READ, 0, byteLength));
  } catch (e) {
    if (e instanceof RestoreError) throw e;
    const detail = e instanceof Error ? `${e.name}${e.message ? `: ${e.message}` : ''}` : String(e);
    throw new GPUOperationError('GPU_VALIDATION', `reading back '${buffer.label}'`, `the map was refused or aborted (${detail})`);
  }
  const out = new Uint8Array(byteLength);
  out.set(new Uint8Array(buffer.getMappedRange(0, byteLength)));
  buffer.unmap();
  return out.buffer;
}
