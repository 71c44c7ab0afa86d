import { InvalidInputError } from '../errors';
import type { GPUContext } from '../gpu/context';
import { BufferUsage } from '../gpu/flags';
import type { TensorValue } from '../gpu/graph';
import { conv2d } from '../kernels/conv2d';
import { conv2dInputGrad } from '../kernels/conv2d-backward';
import { type Conv2dGeometry, conv2dOutputShape, packConv2dWeight } from '../kernels/conv2d-geometry';
import { selectConv2dVariant } from '../kernels/conv2d-variants';
import type { ForwardBuilder, ForwardOptions } from './forward-builder';
import { Module } from './module';
import { MaxPool2d } from './spatial';

interface BlurWeights {
  packed: GPUBuffer;
  flat: GPUBuffer;
}

/** The constant blur kernels by context and channel count (a few hundred bytes each; freed with the device). */
const blurCache = new WeakMap<GPUContext, Map<number, BlurWeights>>();

/** Pascal's [1, 2, 1]ᵀ[1, 2, 1] / 16, row-major: exact in f32, so PyTorch's normalised kernel equals it bitwise. */
const PASCAL_3X3 = [1, 2, 1, 2, 4, 2, 1, 2, 1].map((v) => v / 16);

/**
 * N2V2's anti-aliased pooling (CAREamics' MaxBlurPool, after Kornia's): local maxima over 2×2 windows at stride 1
 * (F.max_pool2d(k 2, s 1, p 0): H → H − 1), then a depthwise blur with the fixed Pascal kernel, zero padding 1,
 * stride 2 (→ ⌊H / 2⌋, as MaxPool2d(2) gives). The blur kernel is a non-persistent buffer in PyTorch, so the module
 * has no state_dict entries. Both steps are existing kernels (max pool with argmax, depthwise conv2d), and so are
 * their backwards (the argmax gather, the depthwise input-gradient gather), recorded when training; the blur
 * learns nothing.
 *
 * The channel count is fixed at construction because the blur weights are uploaded per channel; CAREamics shares
 * one instance across levels, which is the same computation.
 */
export class MaxBlurPool extends Module {
  override get supportsTraining(): boolean {
    return true;
  }

  private readonly maxPool = new MaxPool2d({ kernel: 2, stride: 1 });
  readonly geometry: Conv2dGeometry;

  constructor(readonly channels: number) {
    super();
    this.geometry = {
      inChannels: channels,
      outChannels: channels,
      kernelSize: [3, 3],
      stride: 2,
      padding: [1, 1],
      dilation: 1,
      groups: channels,
    };
  }

  protected override internals(): Module<any, any>[] {
    return [this.maxPool];
  }

  /**
   * The blur in the depthwise kernel's layout (forward) and in PyTorch's [C, 1, 3, 3] (its input gradient). They
   * never change, so they are kept per context and channel count rather than as this module's resources: a
   * training plan holds them across `release()` (which re-folding the trained weights calls), and every
   * MaxBlurPool of that width shares them.
   */
  private blurWeights(ctx: GPUContext): BlurWeights {
    let byChannels = blurCache.get(ctx);
    if (!byChannels) blurCache.set(ctx, (byChannels = new Map<number, BlurWeights>()));
    let weights = byChannels.get(this.channels);
    if (!weights) {
      const flat = new Float64Array(this.channels * 9);
      for (let c = 0; c < this.channels; c++) flat.set(PASCAL_3X3, c * 9);
      weights = {
        packed: ctx.createBufferWithData(packConv2dWeight(flat, this.geometry), BufferUsage.STORAGE, 'max blur pool kernel'),
        flat: ctx.createBufferWithData(Float32Array.from(flat), BufferUsage.STORAGE, 'max blur pool kernel (PyTorch layout)'),
      };
      byChannels.set(this.channels, weights);
    }
    return weights;
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'max_blur_pool';
    this.checkOptions(options, label);
    const [n, h, w, c] = x.shape;
    if (c !== this.channels) throw new InvalidInputError(`${label} expects ${this.channels} channels, got ${c}`);
    if (h < 2 || w < 2) throw new InvalidInputError(`${label}: a ${w}×${h} map is too small for 2×2 max pooling`);
    const maxima = this.maxPool.forward(b, x, { label: `${label}.max` });
    const { packed, flat } = this.blurWeights(b.ctx);
    const g = this.geometry;
    const [, , wo] = conv2dOutputShape([n, h - 1, w - 1, c], g);
    const blurLabel = `${label}.blur`;
    const y = conv2d(b.graph, maxima, {
      weight: packed,
      geometry: g,
      variant: selectConv2dVariant(b.ctx, g, wo),
      label: blurLabel,
      bindingLimits: { maxBytes: b.ctx.storageBindingLimit, align: b.ctx.limits.minStorageBufferOffsetAlignment },
    });
    b.training?.tape.record(blurLabel, [maxima], [y], false, (t) => {
      t.addGrad(maxima, conv2dInputGrad(b.graph, b.ctx, t.gradOf(y)!, flat, g, maxima.shape, `${blurLabel} backward`));
    });
    return y;
  }
}
