import { InvalidInputError } from '../errors';
import type { GPUContext } from '../gpu/context';
import { BufferUsage } from '../gpu/flags';
import type { Graph, TensorValue } from '../gpu/graph';
import {
  type Conv2dEpilogue,
  type Conv2dGeometry,
  checkConv2dGroups,
  conv2d,
  conv2dOutputShape,
  packBias,
  packConv2dWeight,
  selectConv2dVariant,
} from '../kernels/conv2d';
import { Module, type Parameter, parameter, requireData } from './module';

export interface Conv2dOptions {
  stride?: number;
  padding?: number | readonly [number, number];
  dilation?: number;
  /** PyTorch groups (default 1): depthwise when groups = Cin = Cout, else Cin/groups and Cout/groups multiples of 4. */
  groups?: number;
  bias?: boolean;
}

/**
 * nn.Conv2d. Parameters `weight` [Cout, Cin/groups, kH, kW] and `bias` [Cout] as in PyTorch; a folded
 * BatchNorm replaces both (and adds a bias) before upload. `forward` fuses the epilogue (activation or PReLU,
 * scale, residual add, channel offset; see `Conv2dEpilogue`).
 */
export class Conv2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | undefined;
  readonly geometry: Conv2dGeometry;
  private folded: { weight: Float64Array; bias: Float64Array } | undefined;
  private gpu: { ctx: GPUContext; weight: GPUBuffer; bias?: GPUBuffer } | undefined;

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
    this.weight = parameter([outChannels, inChannels / (options.groups ?? 1), k[0], k[1]]);
    this.bias = (options.bias ?? true) ? parameter([outChannels]) : undefined;
  }

  override parameters(): Record<string, Parameter> {
    return this.bias ? { weight: this.weight, bias: this.bias } : { weight: this.weight };
  }

  /** Replaces the effective weights by BatchNorm-folded ones (the loaded parameters stay as they were). */
  setFolded(weight: Float64Array, bias: Float64Array): void {
    this.folded = { weight, bias };
    this.release();
  }

  /** Packs the effective weights into the kernel layout and uploads them once per context. */
  upload(ctx: GPUContext): void {
    if (this.gpu?.ctx === ctx) return;
    this.release();
    const w = this.folded?.weight ?? requireData(this.weight, 'Conv2d weight');
    const b = this.folded?.bias ?? (this.bias ? requireData(this.bias, 'Conv2d bias') : undefined);
    const label = `conv ${this.inChannels}→${this.outChannels}`;
    this.gpu = {
      ctx,
      weight: ctx.createBufferWithData(packConv2dWeight(w, this.geometry), BufferUsage.STORAGE, `${label} weight`),
      bias: b ? ctx.createBufferWithData(packBias(b, this.outChannels), BufferUsage.STORAGE, `${label} bias`) : undefined,
    };
  }

  /**
   * Adds the dispatch. With `output` (and `epilogue.outChannelOffset`) it writes into a channel slice of that
   * wider tensor instead of a new one; with `readInputPrefix` it reads the first `inChannels` channels of a wider
   * `x` (both for dense-block concatenation without copies).
   */
  forward(
    ctx: GPUContext,
    graph: Graph,
    x: TensorValue,
    epilogue: Conv2dEpilogue = {},
    label = 'conv2d',
    output?: TensorValue,
    readInputPrefix = false,
  ): TensorValue {
    this.upload(ctx);
    if (readInputPrefix ? x.shape[3] < this.inChannels : x.shape[3] !== this.inChannels) {
      throw new InvalidInputError(`${label} expects ${this.inChannels} channels, got ${x.shape[3]}`);
    }
    const [n, h, w] = x.shape;
    const [, , wo] = conv2dOutputShape([n, h, w, this.inChannels], this.geometry);
    return conv2d(
      graph,
      x,
      {
        weight: this.gpu!.weight,
        bias: this.gpu!.bias,
        geometry: this.geometry,
        variant: selectConv2dVariant(ctx.adapter, this.geometry, wo),
        label,
        readInputPrefix,
        bindingLimits: { maxBytes: ctx.storageBindingLimit, align: ctx.limits.minStorageBufferOffsetAlignment },
      },
      epilogue,
      output,
      ctx.limits.maxComputeWorkgroupsPerDimension,
    );
  }

  release(): void {
    this.gpu?.weight.destroy();
    this.gpu?.bias?.destroy();
    this.gpu = undefined;
  }
}
