import { InvalidInputError } from '../errors';
import type { GPUContext } from '../gpu/context';
import { BufferUsage } from '../gpu/flags';
import type { Graph, TensorValue } from '../gpu/graph';
import {
  type ConvTranspose2dEpilogue,
  type ConvTranspose2dGeometry,
  checkConvTranspose2dGeometry,
  convTranspose2d,
  packConvTranspose2dBias,
  packConvTranspose2dWeight,
  selectConvTranspose2dVariant,
} from '../kernels/conv-transpose2d';
import { Module, type Parameter, parameter, requireData } from './module';

export interface ConvTranspose2dOptions {
  stride?: number;
  padding?: number | readonly [number, number];
  outputPadding?: number | readonly [number, number];
  bias?: boolean;
}

const pair = (v: number | readonly [number, number]): readonly [number, number] => (typeof v === 'number' ? [v, v] : v);

/**
 * nn.ConvTranspose2d (dilation 1, groups 1). Parameters `weight` [Cin, Cout, kH, kW] (transposed relative to
 * Conv2d, as in PyTorch) and `bias` [Cout].
 */
export class ConvTranspose2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | undefined;
  readonly geometry: ConvTranspose2dGeometry;
  private gpu: { ctx: GPUContext; weight: GPUBuffer; bias?: GPUBuffer } | undefined;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number | readonly [number, number],
    options: ConvTranspose2dOptions = {},
  ) {
    super();
    const k = pair(kernelSize);
    this.geometry = {
      inChannels,
      outChannels,
      kernelSize: k,
      stride: options.stride ?? 1,
      padding: pair(options.padding ?? 0),
      outputPadding: pair(options.outputPadding ?? 0),
    };
    checkConvTranspose2dGeometry(this.geometry);
    this.weight = parameter([inChannels, outChannels, k[0], k[1]]);
    this.bias = (options.bias ?? true) ? parameter([outChannels]) : undefined;
  }

  override parameters(): Record<string, Parameter> {
    return this.bias ? { weight: this.weight, bias: this.bias } : { weight: this.weight };
  }

  /** Packs the weights into the kernel layout and uploads them once per context. */
  upload(ctx: GPUContext): void {
    if (this.gpu?.ctx === ctx) return;
    this.release();
    const w = requireData(this.weight, 'ConvTranspose2d weight');
    const b = this.bias ? requireData(this.bias, 'ConvTranspose2d bias') : undefined;
    const label = `convT ${this.inChannels}→${this.outChannels}`;
    this.gpu = {
      ctx,
      weight: ctx.createBufferWithData(packConvTranspose2dWeight(w, this.geometry), BufferUsage.STORAGE, `${label} weight`),
      bias: b ? ctx.createBufferWithData(packConvTranspose2dBias(b, this.outChannels), BufferUsage.STORAGE, `${label} bias`) : undefined,
    };
  }

  /**
   * Adds the dispatch; with `output` (and `epilogue.outChannelOffset`) it writes into a channel slice of that
   * wider tensor instead of a new one.
   */
  forward(
    ctx: GPUContext,
    graph: Graph,
    x: TensorValue,
    epilogue: ConvTranspose2dEpilogue = {},
    label = 'convTranspose2d',
    output?: TensorValue,
  ): TensorValue {
    this.upload(ctx);
    if (x.shape[3] !== this.inChannels) {
      throw new InvalidInputError(`${label} expects ${this.inChannels} channels, got ${x.shape[3]}`);
    }
    return convTranspose2d(
      graph,
      x,
      {
        weight: this.gpu!.weight,
        bias: this.gpu!.bias,
        geometry: this.geometry,
        variant: selectConvTranspose2dVariant(ctx.adapter, this.geometry, x.shape[2]),
        label,
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
