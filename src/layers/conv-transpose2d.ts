import { InvalidInputError } from '../errors';
import type { GPUContext } from '../gpu/context';
import { BufferUsage } from '../gpu/flags';
import type { TensorValue } from '../gpu/graph';
import { convTranspose2d } from '../kernels/conv-transpose2d';
import {
  type ConvTranspose2dGeometry,
  checkConvTranspose2dGeometry,
  packConvTranspose2dBias,
  packConvTranspose2dWeight,
} from '../kernels/conv-transpose2d-geometry';
import { selectConvTranspose2dVariant } from '../kernels/conv-transpose2d-variants';
import { convTranspose2dTrainingForward } from './conv-transpose2d-training';
import type { ForwardBuilder, ForwardOptions } from './forward-builder';
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
  override get supportsTraining(): boolean {
    return true;
  }

  override get fusesEpilogue(): boolean {
    return true;
  }

  override get writesChannelSlice(): boolean {
    return true;
  }

  readonly weight: Parameter;
  readonly bias: Parameter | undefined;
  readonly geometry: ConvTranspose2dGeometry;

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

  /** The packed weights on `ctx`, uploaded once per context. */
  private uploaded(ctx: GPUContext): { weight: GPUBuffer; bias: GPUBuffer | undefined } {
    return this.onDevice(ctx, () => {
      const w = requireData(this.weight, 'ConvTranspose2d weight');
      const b = this.bias ? requireData(this.bias, 'ConvTranspose2d bias') : undefined;
      const label = `convT ${this.inChannels}→${this.outChannels}`;
      return {
        weight: ctx.createBufferWithData(packConvTranspose2dWeight(w, this.geometry), BufferUsage.STORAGE, `${label} weight`),
        bias: b ? ctx.createBufferWithData(packConvTranspose2dBias(b, this.outChannels), BufferUsage.STORAGE, `${label} bias`) : undefined,
      };
    });
  }

  /** Fuses an activation (no other epilogue) and can write into a channel slice. */
  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'convTranspose2d';
    const { activation } = this.checkOptions(options, label, ['activation']);
    if (x.shape[3] !== this.inChannels) {
      throw new InvalidInputError(`${label} expects ${this.inChannels} channels, got ${x.shape[3]}`);
    }
    if (b.training) return convTranspose2dTrainingForward(b, this, x, activation, options, label);
    const ctx = b.ctx;
    const { weight, bias } = this.uploaded(ctx);
    return convTranspose2d(
      b.graph,
      x,
      {
        weight,
        bias,
        geometry: this.geometry,
        variant: selectConvTranspose2dVariant(ctx, this.geometry, x.shape[2]),
        label,
      },
      { activation, outChannelOffset: options.output?.channelOffset },
      options.output?.tensor,
    );
  }
}
