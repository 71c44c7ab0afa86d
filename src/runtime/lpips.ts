/**
 * LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric"; the `lpips`
 * package's `LPIPS(net, version='0.1')`), forward only, on the GPU: the ScalingLayer, the backbone's five feature
 * maps (vgg16 relu1_2 … relu5_3, alexnet relu1 … relu5), each unit-normalised over channels, their squared
 * difference weighted by the 1×1 head `lin{k}` (no bias), the spatial mean, summed over layers.
 *
 * Weights are the user's: torchvision's backbone state_dict (vgg16 or alexnet) and the package's heads file
 * (`lpips/weights/v0.1/vgg.pth`: `lin0.model.1.weight` … `lin4.model.1.weight`, [1, C_k, 1, 1]).
 */
import { DisposedError, InvalidInputError } from '../errors';
import { BYTES_OR_BUFFER, checkArgs, instanceOf, MAP } from '../check-args';
import { GPUContext } from '../gpu/context';
import { BufferUsage } from '../gpu/flags';
import { Graph } from '../gpu/graph';
import { Plan } from '../gpu/plan';
import { nchwToNhwcPadded, paddedChannels, type Shape4 } from '../gpu/tensor';
import { channelSums, sumTensors } from '../kernels/reduce';
import { isAnyRaster, rasterToFloat } from '../io/image';
import { checkImagePair, type MetricImage } from '../io/metrics';
import { ForwardBuilder } from '../layers/forward-builder';
import type { Module } from '../layers/module';
import { channelAffineConv, type FeatureBackbone, type FeatureNetwork, loadFeatureNetwork } from '../models/vgg';
import { readCheckpoint } from '../weights/checkpoint';
import { checkFinite, checkNoUnexpected, type StateDict, takeTensor } from '../weights/state-dict';
import { toFloat64 } from '../weights/tensor';
import { lpipsLayerDistance } from './lpips-kernel';

/** The `lpips` package's ScalingLayer constants (ImageNet statistics mapped to inputs in [−1, 1]). */
export const LPIPS_SHIFT = [-0.03, -0.088, -0.188] as const;
export const LPIPS_SCALE = [0.458, 0.448, 0.45] as const;

/** Indices in torchvision's `features` of the maps LPIPS compares (the ends of the package's slice1 … slice5). */
export const LPIPS_LAYERS: Record<'vgg16' | 'alexnet', readonly number[]> = {
  vgg16: [3, 8, 15, 22, 29],
  alexnet: [1, 4, 7, 9, 11],
};

export interface LpipsOptions {
  /**
   * The range of the inputs: 'unit' [0, 1] (the package's `normalize=True`, mapped to [−1, 1] first; the default)
   * or 'signed' [−1, 1] (its default `normalize=False`).
   */
  inputRange?: 'unit' | 'signed';
}

/** A batch in PyTorch's layout: [N, C, H, W] float32, C = 3 (or 1: a gray image is repeated to 3 channels). */
export interface LpipsBatch {
  shape: readonly [n: number, c: number, h: number, w: number];
  data: ArrayLike<number>;
}

/**
 * An LPIPS metric on one GPU context: the backbone and heads uploaded once, a plan compiled once per input shape
 * and range. `dispose()` frees them.
 */
export class Lpips {
  private readonly plans = new Map<string, Plan>();
  /** The ScalingLayer convolution of each plan: its weights stay on the GPU while the plan may run. */
  private readonly scalings: Module[] = [];
  private readonly headBuffers: GPUBuffer[];
  private disposed = false;

  private constructor(
    readonly ctx: GPUContext,
    private readonly net: FeatureNetwork,
    heads: readonly Float64Array[],
  ) {
    this.headBuffers = heads.map((h, k) => {
      const padded = new Float32Array(paddedChannels(h.length));
      padded.set(h);
      return ctx.createBufferWithData(padded, BufferUsage.STORAGE, `lpips lin${k}`);
    });
  }

  /** The backbone: 'vgg16' or 'alexnet'. */
  get backbone(): FeatureBackbone {
    return this.net.backbone;
  }

  /**
   * From state_dicts: torchvision's vgg16 or alexnet (`features.*`; the classifier is ignored) and the LPIPS heads.
   * Wrong, missing or misshapen keys fail with StateDictError naming the key.
   */
  static fromStateDicts(ctx: GPUContext, backbone: StateDict, heads: StateDict, names = { backbone: 'backbone', heads: 'heads' }): Lpips {
    checkArgs(
      'Lpips.fromStateDicts',
      [ctx, backbone, heads],
      [
        ['ctx', instanceOf(GPUContext)],
        ['backbone', MAP],
        ['heads', MAP],
      ],
    );
    checkFinite(backbone);
    checkFinite(heads);
    const net = loadFeatureNetwork(backbone, { name: names.backbone });
    if (net.backbone === 'vgg19') throw new InvalidInputError(`${names.backbone}: LPIPS uses vgg16 or alexnet, this is vgg19`);
    const layers = LPIPS_LAYERS[net.backbone];
    const keys = layers.map((_, k) => `lin${k}.model.1.weight`);
    const weights = layers.map((layer, k) => toFloat64(takeTensor(heads, keys[k], [1, net.features.channelsAt(layer), 1, 1])));
    checkNoUnexpected(heads, keys);
    return new Lpips(ctx, net, weights);
  }

  /** From the bytes of the two .pth (or safetensors) files. */
  static fromCheckpoints(
    ctx: GPUContext,
    backbone: Uint8Array | ArrayBuffer,
    heads: Uint8Array | ArrayBuffer,
    names = { backbone: 'backbone', heads: 'heads' },
  ): Lpips {
    checkArgs(
      'Lpips.fromCheckpoints',
      [ctx, backbone, heads],
      [
        ['ctx', instanceOf(GPUContext)],
        ['backbone', BYTES_OR_BUFFER],
        ['heads', BYTES_OR_BUFFER],
      ],
    );
    return Lpips.fromStateDicts(
      ctx,
      readCheckpoint(backbone, { name: names.backbone }),
      readCheckpoint(heads, { name: names.heads }),
      names,
    );
  }

  /** The distance of each image pair of two batches of one shape. */
  async distances(a: LpipsBatch, b: LpipsBatch, options: LpipsOptions = {}): Promise<Float64Array> {
    if (this.disposed) throw new DisposedError('Lpips');
    const [n, c, h, w] = a.shape;
    if (a.shape.length !== 4 || a.shape.some((d, i) => d !== b.shape[i] || !Number.isInteger(d) || d < 1)) {
      throw new InvalidInputError(
        `lpips: the batches' shapes differ or are not [N, C, H, W]: ${a.shape.join('×')} and ${b.shape.join('×')}`,
      );
    }
    if (c !== 1 && c !== 3) throw new InvalidInputError(`lpips: images need 3 channels (or 1, repeated), got ${c}`);
    const numel = n * c * h * w;
    if (a.data.length !== numel || b.data.length !== numel) {
      throw new InvalidInputError(`lpips: ${a.shape.join('×')} needs ${numel} values, got ${a.data.length} and ${b.data.length}`);
    }
    const range = options.inputRange ?? 'unit';
    if (range !== 'unit' && range !== 'signed')
      throw new InvalidInputError(`lpips: inputRange must be 'unit' or 'signed', got ${String(range)}`);
    const shape: Shape4 = [n, h, w, c];
    const plan = await this.plan(shape, range);
    const { outputs } = await plan.run([nchwToNhwcPadded(a.data, shape), nchwToNhwcPadded(b.data, shape)]);
    return Float64Array.from(outputs[0].subarray(0, n));
  }

  private async plan(shape: Shape4, range: 'unit' | 'signed'): Promise<Plan> {
    const key = `${shape.join('x')}:${range}`;
    let plan = this.plans.get(key);
    if (plan) return plan;
    const features = this.net.features;
    const layers = LPIPS_LAYERS[this.net.backbone as 'vgg16' | 'alexnet'];
    features.checkInputSize(shape[1], shape[2], Math.max(...layers), 'lpips');
    // normalize=True: x ↦ 2x − 1; then the ScalingLayer (x − shift) / scale, as one frozen 1×1 convolution.
    const [a, b] = range === 'unit' ? [2, -1] : [1, 0];
    const scaling = channelAffineConv(
      shape[3],
      LPIPS_SCALE.map((s) => a / s),
      LPIPS_SHIFT.map((t, i) => (b - t) / LPIPS_SCALE[i]),
    );
    const graph = new Graph();
    const builder = new ForwardBuilder(this.ctx, graph);
    const run = (x: ReturnType<Graph['input']>, which: string) =>
      features.extract(builder, scaling.forward(builder, x, { label: `lpips ${which} scaling` }), layers, { label: `lpips ${which}` });
    const f0 = run(graph.input(shape, 'a'), 'a');
    const f1 = run(graph.input(shape, 'b'), 'b');
    const perLayer = layers.map((_, k) => {
      const d = lpipsLayerDistance(graph, f0[k], f1[k], this.headBuffers[k], `lpips lin${k}`);
      return channelSums(graph, d, `lpips lin${k} spatial mean`, { scale: 1 / (d.shape[1] * d.shape[2]) });
    });
    graph.output(sumTensors(graph, perLayer, 'lpips sum over layers'));
    this.scalings.push(scaling);
    plan = await Plan.compile(this.ctx, graph);
    this.plans.set(key, plan);
    return plan;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of this.plans.values()) p.dispose();
    this.plans.clear();
    for (const b of this.headBuffers) b.destroy();
    for (const m of this.scalings) m.release();
    this.net.release();
  }
}

/** An image as a [1, C, H, W] batch in [0, 1]: integer samples divided by their maximum, float ones as they are. */
function asBatch(img: MetricImage): LpipsBatch {
  const planar = isAnyRaster(img) ? rasterToFloat(img) : img;
  return { shape: [1, planar.channels, planar.height, planar.width], data: planar.data };
}

/**
 * The LPIPS distance of two images of one size (RGB, or gray repeated to 3 channels; alpha ignored), read in
 * [0, 1] as the package's `normalize=True`: 8- and 16-bit samples divided by their maximum, float samples as they
 * are. Throws InvalidInputError for images of different sizes or too small for the backbone's last layer.
 */
export async function lpips(model: Lpips, a: MetricImage, b: MetricImage): Promise<number> {
  checkImagePair('lpips', a, b);
  const [d] = await model.distances(asBatch(a), asBatch(b));
  return d;
}
