import { InvalidInputError } from '../errors';
import type { GPUContext } from '../gpu/context';
import { BufferUsage } from '../gpu/flags';
import type { TensorValue } from '../gpu/graph';
import { conv2d } from '../kernels/conv2d';
import { type Conv2dGeometry, checkConv2dGroups, conv2dOutputShape, packBias, packConv2dWeight } from '../kernels/conv2d-geometry';
import { selectConv2dVariant } from '../kernels/conv2d-variants';
import { conv2dTrainingForward } from './conv2d-training';
import type { ForwardBuilder, ForwardOptions } from './forward-builder';
import { Module, type Parameter, parameter, requireData } from './module';

export interface Conv2dOptions {
  stride?: number;
  padding?: number | readonly [number, number];
  dilation?: number;
  /** PyTorch groups (default 1): depthwise when groups = Cin = Cout, else Cin/groups and Cout/groups multiples of 4. */
  groups?: number;
  bias?: boolean;
  /**
   * Read only the first `inChannels` channels of a wider input (groups = 1): a dense block's layer reading the
   * prefix of its concatenation buffer without a copy.
   */
  readsInputPrefix?: boolean;
}

/**
 * nn.Conv2d. Parameters `weight` [Cout, Cin/groups, kH, kW] and `bias` [Cout] as in PyTorch; a BatchNorm folded
 * into it (`absorbChannelAffine`) changes the weights it uploads, not its parameters. `forward` fuses the
 * epilogue (activation or PReLU, scale, residual add) and can write into a channel slice.
 */
export class Conv2d extends Module {
  override get fusesEpilogue(): boolean {
    return true;
  }

  override get supportsTraining(): boolean {
    return true;
  }

  override get writesChannelSlice(): boolean {
    return true;
  }

  readonly weight: Parameter;
  readonly bias: Parameter | undefined;
  readonly geometry: Conv2dGeometry;
  private readonly readsInputPrefix: boolean;

  /** Whether it reads only the first `inChannels` channels of a wider input. */
  get readsPrefix(): boolean {
    return this.readsInputPrefix;
  }

  /** The BatchNorm folded into this convolution, applied to the loaded weights at upload. */
  private folded: { scale: Float64Array; shift: Float64Array } | undefined;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number | readonly [number, number],
    options: Conv2dOptions = {},
  ) {
    super();
    const k = typeof kernelSize === 'number' ? ([kernelSize, kernelSize] as const) : kernelSize;
    const pad = options.padding ?? 0;
    this.geometry = {
      inChannels,
      outChannels,
      kernelSize: k,
      stride: options.stride ?? 1,
      padding: typeof pad === 'number' ? [pad, pad] : pad,
      dilation: options.dilation ?? 1,
      groups: options.groups ?? 1,
    };
    checkConv2dGroups(this.geometry);
    this.readsInputPrefix = options.readsInputPrefix ?? false;
    this.weight = parameter([outChannels, inChannels / (options.groups ?? 1), k[0], k[1]]);
    this.bias = (options.bias ?? true) ? parameter([outChannels]) : undefined;
  }

  override parameters(): Record<string, Parameter> {
    return this.bias ? { weight: this.weight, bias: this.bias } : { weight: this.weight };
  }

  /**
   * Folds y = conv(x)·scale + shift (an eval-mode BatchNorm after it) into the weights it uploads, in float64:
   *   W' = W·scale (per output channel),  b' = b·scale + shift.
   * The convolution gains a bias if it had none; its loaded parameters stay as they were.
   */
  override absorbChannelAffine(scale: Float64Array, shift: Float64Array): boolean {
    if (scale.length !== this.outChannels || shift.length !== this.outChannels) {
      throw new InvalidInputError(`a ${scale.length}-channel BatchNorm cannot fold into conv ${this.inChannels}→${this.outChannels}`);
    }
    this.folded = { scale, shift };
    this.releaseOwn();
    return true;
  }

  override unfold(): void {
    this.folded = undefined;
    this.releaseOwn();
  }

  /** The weights and bias the kernel runs: the loaded ones, with a folded BatchNorm applied. */
  private effectiveWeights(): { weight: Float64Array; bias: Float64Array | undefined } {
    const w = requireData(this.weight, 'Conv2d weight');
    const b = this.bias ? requireData(this.bias, 'Conv2d bias') : undefined;
    if (!this.folded) return { weight: w, bias: b };
    const { scale, shift } = this.folded;
    const perOut = w.length / this.outChannels;
    const weight = new Float64Array(w.length);
    const bias = new Float64Array(this.outChannels);
    for (let o = 0; o < this.outChannels; o++) {
      for (let i = 0; i < perOut; i++) weight[o * perOut + i] = w[o * perOut + i] * scale[o];
      bias[o] = (b ? b[o] : 0) * scale[o] + shift[o];
    }
    return { weight, bias };
  }

  /** The packed weights on `ctx`, uploaded once per context. */
  private uploaded(ctx: GPUContext): { weight: GPUBuffer; bias: GPUBuffer | undefined } {
    return this.onDevice(ctx, () => {
      const { weight, bias } = this.effectiveWeights();
      const label = `conv ${this.inChannels}→${this.outChannels}`;
      return {
        weight: ctx.createBufferWithData(packConv2dWeight(weight, this.geometry), BufferUsage.STORAGE, `${label} weight`),
        bias: bias ? ctx.createBufferWithData(packBias(bias, this.outChannels), BufferUsage.STORAGE, `${label} bias`) : undefined,
      };
    });
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'conv2d';
    if (b.training) return conv2dTrainingForward(b, this, x, options, label);
    const ctx = b.ctx;
    const { weight, bias } = this.uploaded(ctx);
    if (this.readsInputPrefix ? x.shape[3] < this.inChannels : x.shape[3] !== this.inChannels) {
      throw new InvalidInputError(`${label} expects ${this.inChannels} channels, got ${x.shape[3]}`);
    }
    const [n, h, w] = x.shape;
    const [, , wo] = conv2dOutputShape([n, h, w, this.inChannels], this.geometry);
    return conv2d(
      b.graph,
      x,
      {
        weight,
        bias,
        geometry: this.geometry,
        variant: selectConv2dVariant(ctx, this.geometry, wo),
        label,
        readInputPrefix: this.readsInputPrefix,
        bindingLimits: { maxBytes: ctx.storageBindingLimit, align: ctx.limits.minStorageBufferOffsetAlignment },
      },
      { ...options.epilogue, outChannelOffset: options.output?.channelOffset },
      options.output?.tensor,
    );
  }
}
