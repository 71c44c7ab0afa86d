import { InvalidInputError } from '../errors';
import { BufferUsage } from '../gpu/flags';
import type { TensorValue } from '../gpu/graph';
import { layerNorm, packLayerNormParams } from '../kernels/layernorm';
import type { ForwardBuilder, ForwardOptions } from './forward-builder';
import { layerNormTrainingForward } from './layernorm-training';
import { Module, type Parameter, parameter, requireData } from './module';

/**
 * nn.LayerNorm(C) over the channels of a channels-last map (SCUNet's Swin blocks): biased variance, `eps`
 * inside the square root, affine `weight` and `bias` [C].
 */
export class LayerNorm extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;

  constructor(
    readonly normalizedShape: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = parameter([normalizedShape]);
    this.bias = parameter([normalizedShape]);
  }

  override get supportsTraining(): boolean {
    return true;
  }

  override parameters(): Record<string, Parameter> {
    return { weight: this.weight, bias: this.bias };
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'layernorm';
    this.checkOptions(options, label);
    if (x.shape[3] !== this.normalizedShape) {
      throw new InvalidInputError(`${label}: LayerNorm(${this.normalizedShape}) got ${x.shape[3]} channels`);
    }
    if (b.training) return layerNormTrainingForward(b, this, x, label);
    const { params } = this.onDevice(b.ctx, () => {
      const packed = packLayerNormParams(
        requireData(this.weight, 'LayerNorm weight'),
        requireData(this.bias, 'LayerNorm bias'),
        this.normalizedShape,
      );
      return { params: b.ctx.createBufferWithData(packed, BufferUsage.STORAGE, `layernorm ${this.normalizedShape}`) };
    });
    return layerNorm(b.graph, x, { params, eps: this.eps, label });
  }
}
