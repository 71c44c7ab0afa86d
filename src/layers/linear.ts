import type { TensorValue } from '../gpu/graph';
import { Conv2d } from './conv2d';
import type { ForwardBuilder, ForwardOptions } from './forward-builder';
import { linearTrainingForward } from './linear-training';
import { Module, type Parameter, parameter, requireData } from './module';

/**
 * nn.Linear applied to every pixel of a channels-last map (SCUNet's qkv, proj and MLP layers): y = x·Wᵀ + b over
 * the channel axis. Parameters `weight` [out, in] and `bias` [out] as in PyTorch; on the GPU it is a 1×1
 * convolution, so it gets the convolution's tiling variants and fused epilogue.
 */
export class Linear extends Module {
  override get fusesEpilogue(): boolean {
    return true;
  }

  override get writesChannelSlice(): boolean {
    return true;
  }

  override get supportsTraining(): boolean {
    return true;
  }

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

  protected override internals(): Module[] {
    return [this.conv];
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    if (b.training) return linearTrainingForward(b, this, x, options, options.label ?? 'linear');
    // [out, in] and [out, in, 1, 1] are the same numbers in the same order: the 1×1 convolution shares the arrays.
    const weight = requireData(this.weight, 'Linear weight');
    if (this.conv.weight.data !== weight) {
      this.conv.weight.data = weight;
      if (this.bias && this.conv.bias) this.conv.bias.data = requireData(this.bias, 'Linear bias');
      this.conv.release();
    }
    return this.conv.forward(b, x, { label: 'linear', ...options });
  }
}
