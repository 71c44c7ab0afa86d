import type { GPUContext } from '../gpu/context';
import type { Graph, TensorValue } from '../gpu/graph';
import type { Conv2dEpilogue } from '../kernels/conv2d';
import { Conv2d } from './conv2d';
import { Module, type Parameter, parameter, requireData } from './module';

/**
 * nn.Linear applied to every pixel of a channels-last map (SCUNet's qkv, proj and MLP layers): y = x·Wᵀ + b over
 * the channel axis. Parameters `weight` [out, in] and `bias` [out] as in PyTorch; on the GPU it is a 1×1
 * convolution, so it gets the convolution's tiling variants and fused epilogue.
 */
export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | undefined;
  private readonly conv: Conv2d;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: { bias?: boolean } = {},
  ) {
    super();
    this.weight = parameter([outFeatures, inFeatures]);
    this.bias = (options.bias ?? true) ? parameter([outFeatures]) : undefined;
    this.conv = new Conv2d(inFeatures, outFeatures, 1, { bias: this.bias !== undefined });
  }

  override parameters(): Record<string, Parameter> {
    return this.bias ? { weight: this.weight, bias: this.bias } : { weight: this.weight };
  }

  upload(ctx: GPUContext): void {
    // [out, in] and [out, in, 1, 1] are the same numbers in the same order.
    this.conv.weight.data = requireData(this.weight, 'Linear weight');
    if (this.bias && this.conv.bias) this.conv.bias.data = requireData(this.bias, 'Linear bias');
    this.conv.upload(ctx);
  }

  /** With `output` (and `epilogue.outChannelOffset`) it writes into a channel slice of that wider tensor. */
  forward(ctx: GPUContext, graph: Graph, x: TensorValue, epilogue: Conv2dEpilogue = {}, label = 'linear', output?: TensorValue): TensorValue {
    this.upload(ctx);
    return this.conv.forward(ctx, graph, x, epilogue, label, output);
  }

  release(): void {
    this.conv.release();
  }
}
