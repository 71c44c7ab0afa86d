import { BufferUsage } from './flags';
import { GPUTensor } from './gpu-tensor';
import { type Dispatch, readMapped, submitDispatches } from './recorder';
import { DisposedError, GPUUnavailableError, InvalidInputError, LimitExceededError } from '../errors';
import { chunkShaderBindings } from './chunked-bindings';
import type { BufferPool } from './buffer-pool';
import type { GPUContext } from './context';
import { writeBuffer } from './context';
import { dispatchGrid } from './dispatch';
import {
  boundTensor,
  type Graph,
  type GraphCost,
  graphCost,
  type GraphNode,
  isBufferRange,
  isTensorSlice,
  isTensorValue,
  type TensorValue,
} from './graph';
import { assignBuffers, type LiveInterval } from './liveness';
import type { CompiledKernel } from './pipelines';
import { type DispatchProfile, timeEachDispatch } from './profile';
import { isLazySource, type KernelSource, packUniforms } from './shader';
import { type ChunkSpec, chunkName, chunksTag, windowedAccess } from './tensor-access';
import { formatShape, tensorBytes, tensorElements } from './tensor';

export interface PlanOptions {
  /** Dispatches per command buffer: bounded so no single submission runs long enough to trip a driver watchdog. */
  dispatchesPerSubmit?: number;
  pool?: BufferPool;
}

export interface RunResult {
  outputs: Float32Array[];
  /** GPU time of all dispatches in ms, from timestamp queries, when the device has them and timing was asked. */
  gpuMs?: number;
}

const STORAGE_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;

/**
 * A graph compiled for one input shape: pipelines created (in parallel, cached per variant), activation buffers
 * assigned by liveness and taken from a pool, uniforms and bind groups made once. `run` then only uploads the
 * input, records the dispatches into a few command buffers, and reads the outputs back.
 */
export class Plan {
  private queue: Promise<unknown> = Promise.resolve();
  /** Runs (or profiles) started and not settled: their buffers must outlive them. */
  private busy = 0;
  private disposed = false;
  private released = false;

  private constructor(
    private readonly ctx: GPUContext,
    readonly graph: Graph,
    private readonly steps: { node: GraphNode; kernel: CompiledKernel; bindGroup: GPUBindGroup; grid: [number, number, number] }[],
    private readonly bufferOf: Map<number, GPUBuffer>,
    private readonly slots: GPUBuffer[],
    private readonly uniformBuffers: GPUBuffer[],
    private readonly staging: GPUBuffer[],
    private readonly pool: BufferPool,
    private readonly dispatchesPerSubmit: number,
    private readonly query: { set: GPUQuerySet; resolve: GPUBuffer; read: GPUBuffer } | undefined,
  ) {}

  /**
   * Activation bytes a plan of `graph` would hold (after liveness sharing), without compiling or allocating:
   * callers use it to choose a tile size that fits a memory budget.
   */
  static activationBytes(graph: Graph): number {
    const intervals = liveIntervals(graph, undefined, undefined);
    return assignBuffers(intervals).slotBytes.reduce((a, b) => a + b, 0);
  }

  static async compile(ctx: GPUContext, graph: Graph, options: PlanOptions = {}): Promise<Plan> {
    ctx.throwIfFailed();
    if (graph.outputs.length === 0) throw new InvalidInputError('graph has no outputs');
    const prepared = graph.nodes.map((n) => prepareBindings(ctx, n));
    // Linear workgroup counts spread over this device's grid (dispatch.ts).
    const grids = graph.nodes.map((n) => dispatchGrid(n.workgroups, ctx.workgroupsPerDimensionLimit, n.label));
    const kernels = await Promise.all(prepared.map((p) => ctx.pipelines.get(p.source)));
    const intervals = liveIntervals(graph, kernels, prepared);
    const { slotOf, slotBytes } = assignBuffers(intervals);
    const pool = options.pool ?? ctx.buffers;
    // Whatever is acquired or created below goes back if a later step throws (bad binding, limit exceeded, ...).
    const slots: GPUBuffer[] = [];
    const uniformBuffers: GPUBuffer[] = [];
    const owned: GPUBuffer[] = [];
    try {
      for (const [i, bytes] of slotBytes.entries()) slots.push(pool.acquire(bytes, STORAGE_USAGE, `activation slot ${i}`));
      return await Plan.build(ctx, graph, kernels, prepared, grids, slotOf, slots, uniformBuffers, owned, pool, options);
    } catch (e) {
      for (const b of slots) pool.release(b);
      for (const b of [...uniformBuffers, ...owned]) b.destroy();
      throw e;
    }
  }

  private static async build(
    ctx: GPUContext,
    graph: Graph,
    kernels: CompiledKernel[],
    prepared: PreparedNode[],
    grids: [number, number, number][],
    slotOf: Map<number, number>,
    slots: GPUBuffer[],
    uniformBuffers: GPUBuffer[],
    owned: GPUBuffer[],
    pool: BufferPool,
    options: PlanOptions,
  ): Promise<Plan> {
    const bufferOf = new Map<number, GPUBuffer>();
    for (const [id, slot] of slotOf) bufferOf.set(id, slots[slot]);

    const steps = await ctx.withErrorScopes('creating bind groups', () =>
      graph.nodes.map((node, i) => {
        const kernel = kernels[i];
        const entries: GPUBindGroupEntry[] = [];
        for (const b of kernel.shader.bindings) {
          if (b.kind === 'uniform') {
            const data = packUniforms(kernel.shader, node.uniforms);
            const ub = ctx.createBufferWithData(new Uint8Array(data), BufferUsage.UNIFORM, `${node.label} uniforms`);
            uniformBuffers.push(ub);
            entries.push({ binding: b.binding, resource: { buffer: ub } });
            continue;
          }
          const origin = prepared[i].origin.get(b.name);
          const name = origin?.name ?? b.name;
          const bound = node.bindings[name];
          if (!bound) throw new InvalidInputError(`${node.label}: shader binding '${name}' was not given`);
          if (isTensorSlice(bound)) {
            const buffer = bufferOf.get(bound.tensor.id)!;
            if (bound.offset < 0 || bound.size <= 0 || bound.offset + bound.size > tensorBytes(bound.tensor.shape)) {
              throw new InvalidInputError(`${node.label}: slice ${bound.offset}+${bound.size} outside '${bound.tensor.label}'`);
            }
            entries.push({ binding: b.binding, resource: { buffer, offset: bound.offset, size: bound.size } });
            continue;
          }
          if (isBufferRange(bound)) {
            if (bound.offset < 0 || bound.size <= 0 || bound.offset + bound.size > bound.buffer.size) {
              throw new InvalidInputError(`${node.label}: range ${bound.offset}+${bound.size} outside '${bound.buffer.label}'`);
            }
            entries.push({ binding: b.binding, resource: { buffer: bound.buffer, offset: bound.offset, size: bound.size } });
            continue;
          }
          const buffer = isTensorValue(bound) ? bufferOf.get(bound.id)! : bound;
          const total = isTensorValue(bound) ? tensorBytes(bound.shape) : buffer.size;
          if (origin) {
            // One window of a tensor too large for a single binding.
            const chunkBytes = prepared[i].chunks[name].chunkElements * 16;
            const offset = origin.chunk * chunkBytes;
            entries.push({ binding: b.binding, resource: { buffer, offset, size: Math.min(chunkBytes, total - offset) } });
            continue;
          }
          // Activations past the limit were split above; a constant buffer (weights) must fit as it is.
          const max = ctx.limits.maxStorageBufferBindingSize;
          if (total > max) throw new LimitExceededError('maxStorageBufferBindingSize', total, max, `${node.label} binding '${name}'`);
          entries.push({ binding: b.binding, resource: { buffer, offset: 0, size: total } });
        }
        const extra = Object.keys(node.bindings).filter(
          (k) => !kernel.shader.bindings.some((b) => (prepared[i].origin.get(b.name)?.name ?? b.name) === k),
        );
        if (extra.length > 0) throw new InvalidInputError(`${node.label}: shader has no binding(s) ${extra.join(', ')}`);
        const bindGroup = ctx.device.createBindGroup({ label: node.label, layout: kernel.bindGroupLayout, entries });
        return { node, kernel, bindGroup, grid: grids[i] };
      }),
    );
    const staging: GPUBuffer[] = [];
    for (const t of graph.outputs) {
      const b = ctx.createBuffer({ size: tensorBytes(t.shape), usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST }, `${t.label} readback`);
      staging.push(b);
      owned.push(b);
    }
    let query: { set: GPUQuerySet; resolve: GPUBuffer; read: GPUBuffer } | undefined;
    if (ctx.hasTimestamps) {
      const resolve = ctx.createBuffer({ size: 16, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC }, 'timestamps');
      owned.push(resolve);
      const read = ctx.createBuffer({ size: 16, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST }, 'timestamps readback');
      owned.push(read);
      query = { set: ctx.device.createQuerySet({ type: 'timestamp', count: 2 }), resolve, read };
    }
    return new Plan(ctx, graph, steps, bufferOf, slots, uniformBuffers, staging, pool, options.dispatchesPerSubmit ?? 32, query);
  }

  /** Bytes of activation memory the plan holds (after liveness sharing). */
  get activationBytes(): number {
    return this.slots.reduce((s, b) => s + b.size, 0);
  }

  get dispatchCount(): number {
    return this.steps.length;
  }

  /** Counted FLOPs and minimum bytes of one run, summed over the dispatches (gpu/cost.ts). */
  get cost(): GraphCost {
    return graphCost(this.graph);
  }

  /**
   * Runs the graph on its inputs, in order: NHWC-padded arrays, or tensors already on this device. Runs on one
   * plan are serialised (they share its buffers).
   */
  run(inputs: (Float32Array | GPUTensor)[], options: { timing?: boolean } = {}): Promise<RunResult> {
    return this.enqueue(() => this.runNow(inputs, options.timing ?? false));
  }

  /** Runs `work` after every run queued before it; a disposal meanwhile waits for it to finish. */
  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(async () => {
      this.busy++;
      try {
        return await work();
      } finally {
        this.busy--;
        if (this.disposed && this.busy === 0) this.release();
      }
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runNow(inputs: (Float32Array | GPUTensor)[], timing: boolean): Promise<RunResult> {
    const ctx = this.ctx;
    const g = this.graph;
    const gpuInputs = this.stageInputs(inputs);
    const useTimestamps = timing && this.query !== undefined;
    const submit = () =>
      submitDispatches(ctx.device, this.dispatches(), {
        perSubmit: this.dispatchesPerSubmit,
        timestamps: useTimestamps ? this.query.set : undefined,
        before: (encoder) => this.copyGpuInputs(encoder, gpuInputs),
        after: (encoder) => {
          g.outputs.forEach((t, i) => encoder.copyBufferToBuffer(this.bufferOf.get(t.id)!, 0, this.staging[i], 0, tensorBytes(t.shape)));
          if (useTimestamps) {
            encoder.resolveQuerySet(this.query.set, 0, 2, this.query.resolve, 0);
            encoder.copyBufferToBuffer(this.query.resolve, 0, this.query.read, 0, 16);
          }
        },
      });
    if (ctx.debug) await ctx.withErrorScopes(`running plan (${this.steps.length} dispatches)`, submit);
    else submit();

    const outputs: Float32Array[] = [];
    for (let i = 0; i < g.outputs.length; i++) {
      outputs.push(new Float32Array(await readMapped(ctx, this.staging[i], tensorBytes(g.outputs[i].shape))));
    }
    let gpuMs: number | undefined;
    if (useTimestamps) {
      const t = new BigUint64Array(await readMapped(ctx, this.query.read, 16));
      gpuMs = Number(t[1] - t[0]) / 1e6;
    }
    ctx.throwIfFailed();
    return { outputs, gpuMs };
  }

  /**
   * Runs the graph once with a timestamp pair around every dispatch (each in a compute pass of its own) and
   * returns, per dispatch in order, its label, shader variant, GPU time and counted cost. Needs a device with
   * 'timestamp-query'. Pass boundaries add a little time of their own; outputs are left in the plan's buffers.
   */
  profile(inputs: (Float32Array | GPUTensor)[]): Promise<DispatchProfile[]> {
    return this.enqueue(() => this.profileNow(inputs));
  }

  private async profileNow(inputs: (Float32Array | GPUTensor)[]): Promise<DispatchProfile[]> {
    if (!this.ctx.hasTimestamps) {
      throw new GPUUnavailableError(`per-dispatch profiling needs 'timestamp-query', which ${this.ctx.adapterName} was not given`);
    }
    const gpuInputs = this.stageInputs(inputs);
    const time = () =>
      timeEachDispatch(this.ctx, this.dispatches(), {
        perSubmit: this.dispatchesPerSubmit,
        before: (encoder) => this.copyGpuInputs(encoder, gpuInputs),
      });
    const ms = this.ctx.debug ? await this.ctx.withErrorScopes(`profiling plan (${this.steps.length} dispatches)`, time) : await time();
    return this.steps.map(({ node }, i) => ({
      label: node.label,
      kernel: node.kernel.label,
      ms: ms[i],
      ...(node.cost ? { flops: node.cost.flops, bytes: node.cost.bytes } : {}),
    }));
  }

  private dispatches(): Dispatch[] {
    return this.steps.map((s) => ({ pipeline: s.kernel.pipeline, bindGroup: s.bindGroup, workgroups: s.grid }));
  }

  /**
   * Checks the inputs against the graph's, uploads the arrays into their activation buffers, and returns the
   * inputs already on the GPU (copied by `copyGpuInputs` at the start of the run's first command buffer).
   */
  private stageInputs(inputs: (Float32Array | GPUTensor)[]): [TensorValue, GPUTensor][] {
    if (this.disposed) throw new DisposedError('plan');
    const ctx = this.ctx;
    ctx.throwIfFailed();
    const g = this.graph;
    if (inputs.length !== g.inputs.length) {
      throw new InvalidInputError(`plan expects ${g.inputs.length} input(s), got ${inputs.length}`);
    }
    const gpuInputs: [TensorValue, GPUTensor][] = [];
    g.inputs.forEach((t, i) => {
      const input = inputs[i];
      if (input instanceof GPUTensor) {
        if (input.shape.some((d, k) => d !== t.shape[k])) {
          throw new InvalidInputError(`input '${t.label}' is ${formatShape(t.shape)}, the GPU tensor given is ${formatShape(input.shape)}`);
        }
        if (input.ctx !== ctx) throw new InvalidInputError(`input '${t.label}' lives on another device`);
        gpuInputs.push([t, input]);
        return;
      }
      const expected = tensorElements(t.shape);
      if (input.length !== expected) {
        throw new InvalidInputError(
          `input '${t.label}' ${formatShape(t.shape)} needs ${expected} values (NHWC, channels padded to 4), got ${input.length}`,
        );
      }
      writeBuffer(ctx.device, this.bufferOf.get(t.id)!, 0, input);
    });
    return gpuInputs;
  }

  private copyGpuInputs(encoder: GPUCommandEncoder, gpuInputs: [TensorValue, GPUTensor][]): void {
    for (const [t, tensor] of gpuInputs) encoder.copyBufferToBuffer(tensor.buffer, 0, this.bufferOf.get(t.id)!, 0, tensorBytes(t.shape));
  }

  /**
   * Fills every activation buffer with `value`. Tests poison with NaN before a run, so an element a kernel
   * forgot to write shows up as NaN instead of a plausible leftover.
   */
  poison(value = Number.NaN): void {
    for (const b of this.slots) writeBuffer(this.ctx.device, b, 0, new Float32Array(b.size / 4).fill(value));
  }

  /**
   * Returns activation buffers to the pool and frees the plan's own buffers. Runs queued after this fail with
   * DisposedError; a run already under way finishes first, and the buffers are released when it has settled —
   * never while the GPU may still be using them.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.busy === 0) this.release();
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    for (const b of this.slots) this.pool.release(b);
    for (const b of [...this.uniformBuffers, ...this.staging]) b.destroy();
    if (this.query) {
      this.query.set.destroy();
      this.query.resolve.destroy();
      this.query.read.destroy();
    }
  }
}

/**
 * A node's shader once its tensors larger than one storage binding are split into windows (tensor-access.ts):
 * the source the pipeline cache compiles, and which window of which tensor each new binding is.
 */
interface PreparedNode {
  source: KernelSource;
  origin: Map<string, { name: string; chunk: number }>;
  chunks: Record<string, ChunkSpec>;
}

function prepareBindings(ctx: GPUContext, node: GraphNode): PreparedNode {
  const limit = ctx.storageBindingLimit;
  // Windows start at multiples of the offset alignment and hold whole vec4s.
  const align = Math.max(16, ctx.limits.minStorageBufferOffsetAlignment);
  const chunks: Record<string, ChunkSpec> = {};
  for (const [name, bound] of Object.entries(node.bindings)) {
    if (!isTensorValue(bound)) continue;
    const bytes = tensorBytes(bound.shape);
    const forced = ctx.forceBindingChunks;
    const chunkBytes = forced
      ? Math.min(Math.ceil(bytes / forced / align) * align, Math.floor(limit / align) * align)
      : Math.floor(limit / align) * align;
    if (bytes <= limit && !(forced && chunkBytes < bytes)) continue;
    chunks[name] = { count: Math.ceil(bytes / chunkBytes), chunkElements: chunkBytes / 16 };
  }
  const origin = new Map<string, { name: string; chunk: number }>();
  if (Object.keys(chunks).length === 0) return { source: node.kernel, origin, chunks };
  // Checked before the pipeline is made: past the limit, creating its layout is a validation error.
  const storageBindings = Object.values(chunks).reduce((n, c) => n + c.count - 1, Object.keys(node.bindings).length);
  const max = ctx.limits.maxStorageBuffersPerShaderStage;
  if (storageBindings > max) {
    const split = Object.entries(chunks)
      .map(([k, c]) => `'${k}' into ${c.count}`)
      .join(', ');
    throw new LimitExceededError('maxStorageBuffersPerShaderStage', storageBindings, max, `${node.label} (splitting ${split} bindings)`);
  }
  for (const [name, spec] of Object.entries(chunks)) {
    for (let k = 0; k < spec.count; k++) origin.set(chunkName(name, k), { name, chunk: k });
  }
  return { source: windowedSource(node.kernel, chunks), origin, chunks };
}

/**
 * The variant of `source` with the tensors in `chunks` split into windows: a generated shader gets windowed
 * accessors (and the split in its cache key, still generated only on a miss); a hand-written one is rewritten.
 */
function windowedSource(source: KernelSource, chunks: Record<string, ChunkSpec>): KernelSource {
  if (!isLazySource(source)) return chunkShaderBindings(source, chunks).source;
  return {
    label: `${source.label}[chunks ${chunksTag(chunks)}]`,
    key: `${source.key}\u0000chunks ${JSON.stringify(chunks)}`,
    ...(source.entryPoint ? { entryPoint: source.entryPoint } : {}),
    generate: () => source.generate(windowedAccess(chunks)),
  };
}

/**
 * First and last step each activation is used. With compiled kernels, only bindings the shader really has count
 * (and their read/write kind decides what is a write); without (for estimates), every binding of the node counts,
 * and a tensor's first use is taken as its write.
 */
function liveIntervals(graph: Graph, kernels: CompiledKernel[] | undefined, prepared: PreparedNode[] | undefined): LiveInterval[] {
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  const byId = new Map<number, TensorValue>();
  for (const t of graph.inputs) {
    first.set(t.id, -1);
    byId.set(t.id, t);
  }
  graph.nodes.forEach((node, i) => {
    const uses = kernels
      ? kernels[i].shader.bindings.map((b) => ({ binding: node.bindings[prepared![i].origin.get(b.name)?.name ?? b.name], kind: b.kind }))
      : Object.values(node.bindings).map((binding) => ({ binding, kind: 'storage' as const }));
    for (const b of uses) {
      const bound = b.binding && boundTensor(b.binding);
      if (!bound) continue;
      byId.set(bound.id, bound);
      if (b.kind === 'storage') {
        if (!first.has(bound.id)) first.set(bound.id, i);
      } else if (!first.has(bound.id)) {
        throw new InvalidInputError(`${node.label}: reads tensor '${bound.label}' before anything writes it`);
      }
      last.set(bound.id, i);
    }
  });
  for (const t of graph.outputs) {
    if (!first.has(t.id)) throw new InvalidInputError(`graph output '${t.label}' is never written`);
    last.set(t.id, graph.nodes.length);
  }
  return [...first.keys()].map((id) => ({
    id,
    bytes: tensorBytes(byId.get(id)!.shape),
    first: first.get(id)!,
    last: last.get(id) ?? first.get(id)!,
  }));
}
