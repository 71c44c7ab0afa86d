import { DisposedError, InvalidInputError, LimitExceededError } from '../errors';
import type { GPUContext } from '../gpu/context';
import { Graph } from '../gpu/graph';
import { Plan } from '../gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw } from '../gpu/tensor';
import { type FloatImage, floatToRaster, type RasterImage, rasterToFloat, validateFloat, validateRaster } from '../io/image';
import type { Network } from './network';

export interface ModelInfo {
  name: string;
  architecture: string;
  inChannels: number;
  outChannels: number;
  scale: number;
}

export interface RunStats {
  /** GPU time of the network's dispatches (timestamp queries), when the device has them. */
  gpuMs?: number;
  /** Wall time of the GPU part: upload, dispatches, readback. */
  wallMs: number;
  dispatches: number;
  activationBytes: number;
}

/** Plans kept per input shape; older ones are disposed (their buffers go back to the pool). */
const MAX_CACHED_PLANS = 4;

/**
 * A network bound to a GPU context. It compiles a plan per input shape on first use (pipelines, buffers,
 * bind groups), then each run only uploads, dispatches and reads back. Inputs are checked before any GPU work.
 */
export class RestorationModel {
  private readonly plans = new Map<string, Promise<Plan>>();
  private disposed = false;

  constructor(
    readonly ctx: GPUContext,
    readonly network: Network,
    readonly name: string,
  ) {}

  get info(): ModelInfo {
    const n = this.network;
    return { name: this.name, architecture: n.architecture, inChannels: n.inChannels, outChannels: n.outChannels, scale: n.scale };
  }

  /** Runs on an integer image and returns one of the same bit depth (clamped to [0,1], rounded half to even). */
  async run(image: RasterImage): Promise<RasterImage> {
    validateRaster(image);
    this.checkChannels(image.channels, image.bitDepth === 16 ? '16-bit image' : 'image');
    const out = await this.runFloat(rasterToFloat(image));
    return floatToRaster(out.image, image.bitDepth);
  }

  /** Runs on a planar CHW float image (PyTorch layout, values nominally in [0,1]); no clamping of the output. */
  async runFloat(image: FloatImage): Promise<{ image: FloatImage; stats: RunStats }> {
    if (this.disposed) throw new DisposedError(`model '${this.name}'`);
    validateFloat(image);
    this.checkChannels(image.channels, 'image');
    const bad = image.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      const plane = image.width * image.height;
      const c = Math.floor(bad / plane);
      const y = Math.floor((bad % plane) / image.width);
      const x = bad % image.width;
      throw new InvalidInputError(`input has a non-finite value (${image.data[bad]}) at channel ${c}, row ${y}, column ${x}`);
    }
    const plan = await this.planFor(image.height, image.width);
    const shape = plan.graph.inputs[0].shape;
    const t0 = performance.now();
    const { outputs, gpuMs } = await plan.run([nchwToNhwcPadded(image.data, shape)], { timing: true });
    const wallMs = performance.now() - t0;
    const outShape = plan.graph.outputs[0].shape;
    return {
      image: { width: outShape[2], height: outShape[1], channels: outShape[3], data: nhwcPaddedToNchw(outputs[0], outShape) },
      stats: { gpuMs, wallMs, dispatches: plan.dispatchCount, activationBytes: plan.activationBytes },
    };
  }

  /** Compiles (and caches) the plan for an input size ahead of the first run. */
  warmup(height: number, width: number): Promise<void> {
    return this.planFor(height, width).then(() => undefined);
  }

  private checkChannels(channels: number, what: string): void {
    const want = this.network.inChannels;
    if (channels === want) return;
    const kind = (c: number) => (c === 1 ? 'grayscale' : c === 3 ? 'RGB' : `${c}-channel`);
    throw new InvalidInputError(
      `model '${this.name}' expects a ${kind(want)} ${what} (${want} channel${want > 1 ? 's' : ''}), ` +
        `but got ${kind(channels)} (${channels} channel${channels > 1 ? 's' : ''}); convert it first`,
    );
  }

  private planFor(height: number, width: number): Promise<Plan> {
    const key = `${height}x${width}`;
    let plan = this.plans.get(key);
    if (plan) {
      // Move to the back: most recently used.
      this.plans.delete(key);
      this.plans.set(key, plan);
      return plan;
    }
    plan = this.compile(height, width);
    this.plans.set(key, plan);
    plan.catch(() => this.plans.delete(key));
    while (this.plans.size > MAX_CACHED_PLANS) {
      const [oldKey, old] = this.plans.entries().next().value!;
      this.plans.delete(oldKey);
      void old.then((p) => p.dispose(), () => undefined);
    }
    return plan;
  }

  private async compile(height: number, width: number): Promise<Plan> {
    const graph = new Graph();
    const x = graph.input([1, height, width, this.network.inChannels], 'image');
    graph.output(this.network.forward(this.ctx, graph, x));
    try {
      return await Plan.compile(this.ctx, graph);
    } catch (e) {
      if (e instanceof LimitExceededError) {
        throw new LimitExceededError(
          e.limit,
          e.requested,
          e.allowed,
          `a ${width}×${height} image with model '${this.name}' (an activation buffer)`,
        );
      }
      throw e;
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of this.plans.values()) void p.then((plan) => plan.dispose(), () => undefined);
    this.plans.clear();
    this.network.release();
  }
}
