import { checkRunOptions } from '../check-run-options';
import { AbortedError, DisposedError, InvalidInputError, LimitExceededError, RestoreError } from '../errors';
import type { GPUContext } from '../gpu/context';
import { Graph } from '../gpu/graph';
import { Plan } from '../gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw } from '../gpu/tensor';
import { type FloatImage, floatToRaster, type RasterImage, rasterToFloat, validateFloat, validateRaster } from '../io/image';
import { normalizeForRun, type PercentileRange } from '../io/normalize';
import type { Network } from './network';
import { PlanCache } from './plan-cache';
import { FeatherBlender } from './tile-blend';
import { planTiles, type Tile, tilingFor } from './tiling';

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
  /** Peak activation memory of a plan (the largest, when tiled). */
  activationBytes: number;
  /** Tiles the image ran as (1: whole). */
  tiles: number;
  /** Counted FLOPs and minimum bytes moved by the dispatches run, over all tiles (gpu/cost.ts). */
  flops: number;
  bytes: number;
}

export interface RunOptions {
  /**
   * Tile core side in input pixels: run as tiles of about this size (tiling.ts). 0 never tiles; undefined tiles
   * only when the whole image would need more than `maxActivationBytes`, or the device refuses it.
   */
  tileSize?: number;
  /** Activation memory one plan may use before the image is tiled (default 1 GiB). */
  maxActivationBytes?: number;
  /** Called after each tile (once for an untiled run). */
  onProgress?: (progress: { done: number; total: number }) => void;
  /** Stops the run between tiles with AbortedError; the run's GPU buffers are released. */
  signal?: AbortSignal;
  /**
   * Percentile normalisation (CSBDeep style), off by default: the input's `low` and `high` percentiles (0..100,
   * e.g. 1 and 99.8; per channel, over the whole image given) map to 0 and 1 (−1 and 1 for networks trained on
   * [−1, 1]) before the network, and the output is mapped back with the inverse (then clamped and rounded by
   * `run` as usual). Invalid percentiles fail with InvalidInputError before any GPU work. See io/normalize.ts.
   */
  normalize?: PercentileRange;
}

const DEFAULT_ACTIVATION_BUDGET = 1 << 30;
/** Auto tiling never goes below this core size. */
const MIN_AUTO_TILE = 64;

function checkAborted(signal: AbortSignal | undefined, name: string): void {
  if (signal?.aborted) throw new AbortedError(`running model '${name}'`, { cause: signal.reason });
}

/** Rows [y0, y1) and columns [x0, x1) of a planar CHW image. */
function cropChw(data: Float32Array, c: number, h: number, w: number, y0: number, y1: number, x0: number, x1: number): Float32Array {
  const tw = x1 - x0;
  const th = y1 - y0;
  const out = new Float32Array(c * th * tw);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < th; y++) {
      const src = (ch * h + y0 + y) * w + x0;
      out.set(data.subarray(src, src + tw), (ch * th + y) * tw);
    }
  }
  return out;
}

/** Copies a rows × cols block at (sy, sx) of a CHW tile into (dy, dx) of a CHW image. */
function pasteChw(
  dst: Float32Array, dh: number, dw: number, src: Float32Array, sh: number, sw: number, c: number,
  sy: number, sx: number, dy: number, dx: number, rows: number, cols: number,
): void {
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < rows; y++) {
      const from = (ch * sh + sy + y) * sw + sx;
      dst.set(src.subarray(from, from + cols), (ch * dh + dy + y) * dw + dx);
    }
  }
}

function costOf(plan: Plan): { flops: number; bytes: number } {
  const { flops, bytes } = plan.cost;
  return { flops, bytes };
}

/** Idle plans kept per input shape; older ones are disposed (their buffers go back to the pool). */
const MAX_CACHED_PLANS = 4;

/**
 * A network bound to a GPU context. It compiles a plan per input shape on first use (pipelines, buffers,
 * bind groups), then each run only uploads, dispatches and reads back. Inputs are checked before any GPU work.
 */
export class RestorationModel {
  private readonly plans = new PlanCache(MAX_CACHED_PLANS, (height, width) => this.compile(height, width));
  /** Calls that have started and not settled: dispose() releases the weights only after them. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private disposed = false;
  private closed: Promise<void> | undefined;

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
  async run(image: RasterImage, options: RunOptions = {}): Promise<RasterImage> {
    checkRunOptions('run', options);
    validateRaster(image);
    this.checkChannels(image.channels, image.bitDepth === 16 ? '16-bit image' : 'image');
    const symmetric = this.network.valueRange === 'symmetric';
    const input = rasterToFloat(image);
    if (symmetric) input.data = input.data.map((v) => 2 * v - 1);
    const out = await this.runFloat(input, options);
    if (symmetric) out.image.data = out.image.data.map((v) => (v + 1) / 2);
    return floatToRaster(out.image, image.bitDepth);
  }

  /**
   * Runs on a planar CHW float image (PyTorch layout, values nominally in [0,1]); no clamping of the output.
   * Images whose activations would exceed `maxActivationBytes` (or `tileSize`, when given) run as tiles
   * (tiling.ts): exact for convolutional networks, approximate for SCUNet.
   */
  runFloat(image: FloatImage, options: RunOptions = {}): Promise<{ image: FloatImage; stats: RunStats }> {
    return this.track(() => this.runFloatNow(image, options));
  }

  private async runFloatNow(image: FloatImage, options: RunOptions): Promise<{ image: FloatImage; stats: RunStats }> {
    this.throwIfDisposed();
    checkRunOptions('runFloat', options);
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
    checkAborted(options.signal, this.name);
    if (options.normalize === undefined) return this.runNetwork(image, options);
    // Statistics over the whole image, before any tiling, so that every tile sees the same map.
    const symmetric = this.network.valueRange === 'symmetric';
    const normalized = normalizeForRun(image, options.normalize, { outChannels: this.network.outChannels, symmetric });
    const out = await this.runNetwork(normalized.image, options);
    return { image: normalized.invert(out.image), stats: out.stats };
  }

  /** The network on a checked image: whole, or in tiles when it is too large (or `tileSize` says so). */
  private async runNetwork(image: FloatImage, options: RunOptions): Promise<{ image: FloatImage; stats: RunStats }> {
    if (options.tileSize !== undefined && options.tileSize !== 0) return this.runTiled(image, options.tileSize, options);
    const budget = options.maxActivationBytes ?? DEFAULT_ACTIVATION_BUDGET;
    if (options.tileSize === undefined && this.estimateBytes(image.height, image.width) > budget) {
      return this.runTiledShrinking(image, this.autoTileSize(image, budget), options);
    }
    try {
      const result = await this.runWhole(image);
      options.onProgress?.({ done: 1, total: 1 });
      return result;
    } catch (e) {
      // A device that cannot hold the whole image (a limit, or out of memory) gets tiles, unless told not to.
      const tooBig = e instanceof LimitExceededError || (e instanceof RestoreError && e.code === 'GPU_OUT_OF_MEMORY');
      if (!tooBig || options.tileSize === 0 || Math.max(image.width, image.height) <= MIN_AUTO_TILE) throw e;
      // A plan that compiled but could not run must not keep its activation buffers while the tiles run.
      this.plans.drop(image.height, image.width);
      return this.runTiledShrinking(image, Math.max(MIN_AUTO_TILE, Math.floor(Math.max(image.width, image.height) / 2)), options);
    }
  }

  /** Automatic tiles: when the device refuses a tile size (a limit, or out of memory), halve it and start over. */
  private async runTiledShrinking(image: FloatImage, tileSize: number, options: RunOptions): Promise<{ image: FloatImage; stats: RunStats }> {
    for (let size = tileSize; ; size = Math.floor(size / 2)) {
      try {
        return await this.runTiled(image, size, options);
      } catch (e) {
        const tooBig = e instanceof LimitExceededError || (e instanceof RestoreError && e.code === 'GPU_OUT_OF_MEMORY');
        if (!tooBig || size / 2 < MIN_AUTO_TILE) throw e;
      }
    }
  }

  private runWhole(image: FloatImage): Promise<{ image: FloatImage; stats: RunStats }> {
    return this.plans.use(image.height, image.width, async (plan) => {
      this.throwIfDisposed();
      const shape = plan.graph.inputs[0].shape;
      const t0 = performance.now();
      const { outputs, gpuMs } = await plan.run([nchwToNhwcPadded(image.data, shape)], { timing: true });
      const wallMs = performance.now() - t0;
      const outShape = plan.graph.outputs[0].shape;
      return {
        image: { width: outShape[2], height: outShape[1], channels: outShape[3], data: nhwcPaddedToNchw(outputs[0], outShape) },
        stats: { gpuMs, wallMs, dispatches: plan.dispatchCount, activationBytes: plan.activationBytes, tiles: 1, ...costOf(plan) },
      };
    });
  }

  /** Activation bytes of a whole-image plan at this size, without compiling it. */
  private estimateBytes(height: number, width: number): number {
    return Plan.activationBytes(this.buildGraph(height, width));
  }

  /** The largest power-of-two core (≤ 1024) whose tile window fits the budget. */
  private autoTileSize(image: FloatImage, budget: number): number {
    const spec = tilingFor(this.network);
    for (let core = 1024; core >= MIN_AUTO_TILE; core /= 2) {
      const side = (n: number) => Math.min(n, core + 2 * Math.ceil(spec.halo / spec.alignment) * spec.alignment);
      if (this.estimateBytes(side(image.height), side(image.width)) <= budget) return core;
    }
    throw new LimitExceededError('activation memory', this.estimateBytes(MIN_AUTO_TILE, MIN_AUTO_TILE), budget, `model '${this.name}' on tiles of ${MIN_AUTO_TILE} px`);
  }

  /**
   * Runs tile by tile (see tiling.ts), grouped by window size so that one plan at a time holds activation
   * memory; each group's plan is disposed when its tiles are done, or when the run fails or is aborted.
   */
  private async runTiled(image: FloatImage, tileSize: number, options: RunOptions): Promise<{ image: FloatImage; stats: RunStats }> {
    const spec = tilingFor(this.network);
    const tiles = planTiles(image.width, image.height, tileSize, spec);
    const groups = new Map<string, Tile[]>();
    for (const t of tiles) {
      const key = `${t.wy1 - t.wy0}x${t.wx1 - t.wx0}`;
      groups.set(key, [...(groups.get(key) ?? []), t]);
    }
    const s = this.network.scale;
    const oc = this.network.outChannels;
    const ow = image.width * s;
    const oh = image.height * s;
    const out = new Float32Array(oc * ow * oh);
    // Exact tilings paste cores; approximate ones blend whole windows with ramps over the halo (tile-blend.ts).
    const blender = spec.exact ? undefined : new FeatherBlender(out, oc, oh, ow, image, s, Math.max(1, spec.halo * s));
    const stats: RunStats = { wallMs: 0, dispatches: 0, activationBytes: 0, tiles: tiles.length, flops: 0, bytes: 0 };
    let gpuMs: number | undefined = 0;
    let done = 0;
    // Largest windows first: a device that refuses this tile size does so before any progress is reported.
    const area = (t: Tile) => (t.wy1 - t.wy0) * (t.wx1 - t.wx0);
    const ordered = [...groups.values()].sort((a, b) => area(b[0]) - area(a[0]));
    for (const group of ordered) {
      checkAborted(options.signal, this.name);
      this.throwIfDisposed();
      const { wy0, wy1, wx0, wx1 } = group[0];
      const plan = await this.compile(wy1 - wy0, wx1 - wx0);
      try {
        stats.activationBytes = Math.max(stats.activationBytes, plan.activationBytes);
        for (const t of group) {
          checkAborted(options.signal, this.name);
          this.throwIfDisposed();
          const window = cropChw(image.data, image.channels, image.height, image.width, t.wy0, t.wy1, t.wx0, t.wx1);
          const shape = plan.graph.inputs[0].shape;
          const t0 = performance.now();
          const { outputs, gpuMs: ms } = await plan.run([nchwToNhwcPadded(window, shape)], { timing: true });
          stats.wallMs += performance.now() - t0;
          stats.dispatches += plan.dispatchCount;
          stats.flops += costOf(plan).flops;
          stats.bytes += costOf(plan).bytes;
          gpuMs = ms !== undefined && gpuMs !== undefined ? gpuMs + ms : undefined;
          const outShape = plan.graph.outputs[0].shape;
          const tileOut = nhwcPaddedToNchw(outputs[0], outShape);
          if (blender) blender.add(t, tileOut, outShape[1], outShape[2]);
          else pasteChw(out, oh, ow, tileOut, outShape[1], outShape[2], oc, (t.y0 - t.wy0) * s, (t.x0 - t.wx0) * s, t.y0 * s, t.x0 * s, (t.y1 - t.y0) * s, (t.x1 - t.x0) * s);
          options.onProgress?.({ done: ++done, total: tiles.length });
        }
      } finally {
        plan.dispose();
      }
    }
    blender?.finish();
    if (gpuMs !== undefined) stats.gpuMs = gpuMs;
    return { image: { width: ow, height: oh, channels: oc, data: out }, stats };
  }

  /** Compiles (and caches) the plan for an input size ahead of the first run. */
  warmup(height: number, width: number): Promise<void> {
    return this.track(async () => {
      this.throwIfDisposed();
      await this.plans.use(height, width, async () => undefined);
    });
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

  private buildGraph(height: number, width: number): Graph {
    const graph = new Graph();
    const x = graph.input([1, height, width, this.network.inChannels], 'image');
    graph.output(this.network.forward(this.ctx, graph, x));
    return graph;
  }

  private async compile(height: number, width: number): Promise<Plan> {
    const graph = this.buildGraph(height, width);
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

  /**
   * Frees the model's GPU memory (plans and weights). New calls fail with DisposedError at once; calls in flight
   * stop at their next tile with DisposedError, or finish their single run, and the memory is released after
   * the last of them has settled (the returned promise resolves then).
   */
  dispose(): Promise<void> {
    if (!this.closed) {
      this.disposed = true;
      this.closed = Promise.allSettled([...this.inFlight]).then(async () => {
        await this.plans.clear();
        this.network.release();
      });
    }
    return this.closed;
  }

  private throwIfDisposed(): void {
    if (this.disposed) throw new DisposedError(`model '${this.name}'`);
  }

  /** Runs a call, counted in flight until it settles. */
  private track<T>(call: () => Promise<T>): Promise<T> {
    const p = call();
    this.inFlight.add(p);
    const untrack = () => this.inFlight.delete(p);
    p.then(untrack, untrack);
    return p;
  }
}
