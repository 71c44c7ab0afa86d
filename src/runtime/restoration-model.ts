import { AbortedError, DisposedError, InvalidInputError, LimitExceededError, RestoreError } from '../errors';
import type { GPUContext } from '../gpu/context';
import { Graph } from '../gpu/graph';
import { Plan } from '../gpu/plan';
import { type FloatImage, type RasterImage, validateFloat, validateRaster } from '../io/image';
import { type PercentileRange, runNormalization } from '../io/normalize';
import { ForwardBuilder } from '../layers/forward-builder';
import type { Network } from '../models/network';
import { checkRunOptions } from './check-run-options';
import {
  FloatInput,
  FloatOutput,
  floatPercentiles,
  type InputSource,
  type Normalization,
  type OutputSink,
  RasterInput,
  RasterOutput,
  rasterPercentiles,
} from './layout';
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

function costOf(plan: Plan): { flops: number; bytes: number } {
  const { flops, bytes } = plan.cost;
  return { flops, bytes };
}

/** Idle plans kept per input shape; older ones are disposed (their buffers go back to the pool). */
const MAX_CACHED_PLANS = 4;
/** Graphs kept per input shape (a tile shape's plan compiles again from its graph on the next tiled run). */
const MAX_CACHED_GRAPHS = 16;
/** Activation estimates kept per input shape. */
const MAX_CACHED_ESTIMATES = 256;

/** Makes the output of a run in the caller's layout, given the output image's size. */
type OutputFor<T> = (width: number, height: number, channels: number) => OutputSink<T>;

/** Puts `key` last in a map used as a least-recently-used list of at most `capacity` entries. */
function remember<V>(map: Map<string, V>, key: string, value: V, capacity: number): V {
  map.delete(key);
  map.set(key, value);
  for (const oldest of map.keys()) {
    if (map.size <= capacity) break;
    map.delete(oldest);
  }
  return value;
}

/**
 * A network bound to a GPU context. It compiles a plan per input shape on first use (pipelines, buffers,
 * bind groups), then each run only converts, uploads, dispatches, reads back and converts back (layout.ts: one
 * pass each way). Inputs are checked before any GPU work. A shape seen before builds no graph again: its graph
 * and activation estimate are kept, and its plan while it is among the last few used.
 */
export class RestorationModel {
  private readonly plans = new PlanCache(MAX_CACHED_PLANS, (height, width) => this.compile(height, width));
  /** Graphs by input shape `${height}x${width}`, least recently used first. */
  private readonly graphs = new Map<string, Graph>();
  /** Activation bytes of a whole-image plan by input shape, least recently used first. */
  private readonly estimates = new Map<string, number>();
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
    return this.track(async () => {
      this.throwIfDisposed();
      checkAborted(options.signal, this.name);
      // Codes map to [0, 1] ([-1, 1] for symmetric networks), then through the normalisation if asked, on the
      // way into the network's layout; the output comes back the same way (layout.ts).
      const symmetric = this.network.valueRange === 'symmetric';
      const norm = this.normalization(image.channels, options.normalize, () => rasterPercentiles(image, symmetric));
      const input = new RasterInput(image, symmetric, norm);
      const out = await this.runNetwork(input, (w, h, c) => new RasterOutput(w, h, c, image.bitDepth, symmetric, norm), options);
      return out.output.finish();
    });
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
    const data = image.data;
    for (let i = 0; i < data.length; i++) {
      if (Number.isFinite(data[i])) continue;
      const plane = image.width * image.height;
      const c = Math.floor(i / plane);
      const y = Math.floor((i % plane) / image.width);
      const x = i % image.width;
      throw new InvalidInputError(`input has a non-finite value (${data[i]}) at channel ${c}, row ${y}, column ${x}`);
    }
    checkAborted(options.signal, this.name);
    const norm = this.normalization(image.channels, options.normalize, () => floatPercentiles(image));
    const out = await this.runNetwork(new FloatInput(image, norm), (w, h, c) => new FloatOutput(w, h, c, norm), options);
    return { image: out.output.finish(), stats: out.stats };
  }

  /**
   * The maps of `RunOptions.normalize` (io/normalize.ts): statistics over the whole image, before any tiling, so
   * that every tile sees the same map.
   */
  private normalization(
    channels: number,
    option: PercentileRange | undefined,
    percentilesOf: () => (channel: number | 'all', ps: readonly number[]) => number[],
  ): Normalization | undefined {
    if (option === undefined) return undefined;
    const network = { outChannels: this.network.outChannels, symmetric: this.network.valueRange === 'symmetric' };
    return runNormalization(channels, option, network, percentilesOf());
  }

  /** The network on a checked image: whole, or in tiles when it is too large (or `tileSize` says so). */
  private async runNetwork<T>(
    input: InputSource,
    output: OutputFor<T>,
    options: RunOptions,
  ): Promise<{ output: OutputSink<T>; stats: RunStats }> {
    if (options.tileSize !== undefined && options.tileSize !== 0) return this.runTiled(input, output, options.tileSize, options);
    const budget = options.maxActivationBytes ?? DEFAULT_ACTIVATION_BUDGET;
    if (options.tileSize === undefined && this.estimateBytes(input.height, input.width) > budget) {
      return this.runTiledShrinking(input, output, this.autoTileSize(input, budget), options);
    }
    try {
      const result = await this.runWhole(input, output);
      options.onProgress?.({ done: 1, total: 1 });
      return result;
    } catch (e) {
      // A device that cannot hold the whole image (a limit, or out of memory) gets tiles, unless told not to.
      const tooBig = e instanceof LimitExceededError || (e instanceof RestoreError && e.code === 'GPU_OUT_OF_MEMORY');
      if (!tooBig || options.tileSize === 0 || Math.max(input.width, input.height) <= MIN_AUTO_TILE) throw e;
      // A plan that compiled but could not run must not keep its activation buffers while the tiles run.
      this.plans.drop(input.height, input.width);
      return this.runTiledShrinking(input, output, Math.max(MIN_AUTO_TILE, Math.floor(Math.max(input.width, input.height) / 2)), options);
    }
  }

  /** Automatic tiles: when the device refuses a tile size (a limit, or out of memory), halve it and start over. */
  private async runTiledShrinking<T>(
    input: InputSource,
    output: OutputFor<T>,
    tileSize: number,
    options: RunOptions,
  ): Promise<{ output: OutputSink<T>; stats: RunStats }> {
    for (let size = tileSize; ; size = Math.floor(size / 2)) {
      try {
        return await this.runTiled(input, output, size, options);
      } catch (e) {
        const tooBig = e instanceof LimitExceededError || (e instanceof RestoreError && e.code === 'GPU_OUT_OF_MEMORY');
        if (!tooBig || size / 2 < MIN_AUTO_TILE) throw e;
      }
    }
  }

  private runWhole<T>(input: InputSource, output: OutputFor<T>): Promise<{ output: OutputSink<T>; stats: RunStats }> {
    return this.plans.use(input.height, input.width, async (plan) => {
      this.throwIfDisposed();
      const t0 = performance.now();
      const { outputs, gpuMs } = await plan.run([input.pack(0, input.height, 0, input.width)], { timing: true });
      const wallMs = performance.now() - t0;
      const [, oh, ow, oc] = plan.graph.outputs[0].shape;
      const sink = output(ow, oh, oc);
      sink.paste(outputs[0], ow, 0, 0, 0, 0, oh, ow);
      return {
        output: sink,
        stats: { gpuMs, wallMs, dispatches: plan.dispatchCount, activationBytes: plan.activationBytes, tiles: 1, ...costOf(plan) },
      };
    });
  }

  /** Activation bytes of a whole-image plan at this size, without compiling it (once per shape). */
  private estimateBytes(height: number, width: number): number {
    const key = `${height}x${width}`;
    const known = this.estimates.get(key);
    const bytes = known ?? Plan.activationBytes(this.graphFor(height, width));
    return remember(this.estimates, key, bytes, MAX_CACHED_ESTIMATES);
  }

  /** The largest power-of-two core (≤ 1024) whose tile window fits the budget. */
  private autoTileSize(image: { width: number; height: number }, budget: number): number {
    const spec = tilingFor(this.network);
    for (let core = 1024; core >= MIN_AUTO_TILE; core /= 2) {
      const side = (n: number) => Math.min(n, core + 2 * Math.ceil(spec.halo / spec.alignment) * spec.alignment);
      if (this.estimateBytes(side(image.height), side(image.width)) <= budget) return core;
    }
    throw new LimitExceededError(
      'activation memory',
      this.estimateBytes(MIN_AUTO_TILE, MIN_AUTO_TILE),
      budget,
      `model '${this.name}' on tiles of ${MIN_AUTO_TILE} px`,
    );
  }

  /**
   * Runs tile by tile (see tiling.ts), grouped by window size so that one plan at a time holds activation
   * memory; each group's plan is disposed when its tiles are done, or when the run fails or is aborted. Each
   * window goes from the caller's image straight into the plan's input, and each core (or, for approximate
   * tilings, each blended window) straight into the output (layout.ts).
   */
  private async runTiled<T>(
    input: InputSource,
    output: OutputFor<T>,
    tileSize: number,
    options: RunOptions,
  ): Promise<{ output: OutputSink<T>; stats: RunStats }> {
    const spec = tilingFor(this.network);
    const tiles = planTiles(input.width, input.height, tileSize, spec);
    const groups = new Map<string, Tile[]>();
    for (const t of tiles) {
      const key = `${t.wy1 - t.wy0}x${t.wx1 - t.wx0}`;
      groups.set(key, [...(groups.get(key) ?? []), t]);
    }
    const s = this.network.scale;
    const oc = this.network.outChannels;
    const ow = input.width * s;
    const oh = input.height * s;
    const sink = output(ow, oh, oc);
    // Exact tilings paste cores; approximate ones blend whole windows with ramps over the halo (tile-blend.ts).
    const blender = spec.exact ? undefined : new FeatherBlender(sink.blendSums(), oc, oh, ow, input, s, Math.max(1, spec.halo * s));
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
        const cost = costOf(plan);
        for (const t of group) {
          checkAborted(options.signal, this.name);
          this.throwIfDisposed();
          const window = input.pack(t.wy0, t.wy1, t.wx0, t.wx1);
          const t0 = performance.now();
          const { outputs, gpuMs: ms } = await plan.run([window], { timing: true });
          stats.wallMs += performance.now() - t0;
          stats.dispatches += plan.dispatchCount;
          stats.flops += cost.flops;
          stats.bytes += cost.bytes;
          gpuMs = ms !== undefined && gpuMs !== undefined ? gpuMs + ms : undefined;
          const [, th, tw] = plan.graph.outputs[0].shape;
          if (blender) blender.add(t, outputs[0], th, tw);
          else sink.paste(outputs[0], tw, (t.y0 - t.wy0) * s, (t.x0 - t.wx0) * s, t.y0 * s, t.x0 * s, (t.y1 - t.y0) * s, (t.x1 - t.x0) * s);
          options.onProgress?.({ done: ++done, total: tiles.length });
        }
      } finally {
        plan.dispose();
      }
    }
    if (blender) sink.fromBlend(blender.sums, blender.weights);
    if (gpuMs !== undefined) stats.gpuMs = gpuMs;
    return { output: sink, stats };
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

  /** The graph for an input size: built once per shape (while among the last MAX_CACHED_GRAPHS used). */
  private graphFor(height: number, width: number): Graph {
    const key = `${height}x${width}`;
    return remember(this.graphs, key, this.graphs.get(key) ?? this.buildGraph(height, width), MAX_CACHED_GRAPHS);
  }

  /** The only place the network builds a graph. */
  private buildGraph(height: number, width: number): Graph {
    const graph = new Graph();
    const x = graph.input([1, height, width, this.network.inChannels], 'image');
    graph.output(this.network.forward(new ForwardBuilder(this.ctx, graph), x));
    return graph;
  }

  private async compile(height: number, width: number): Promise<Plan> {
    const graph = this.graphFor(height, width);
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
        this.graphs.clear();
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
