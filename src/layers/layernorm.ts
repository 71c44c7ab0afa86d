import { InvalidInputError } from '../errors';
import type { GPUContext } from '../gpu/context';
import { BufferUsage } from '../gpu/flags';
import type { Graph, TensorValue } from '../gpu/graph';
import { layerNorm, packLayerNormParams } from '../kernels/layernorm';
import { Module, type Parameter, parameter, requireData } from './module';

/**
 * nn.LayerNorm(C) over the channels of a channels-last map (SCUNet's Swin blocks): biased variance, `eps`
 * inside the square root, affine `weight` and `bias` [C].
 */
export class LayerNorm extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  private gpu: { ctx: GPUContext; params: GPUBuffer } | undefined;

  constructor(
    readonly normalizedShape: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = parameter([normalizedShape]);
    this.bias = parameter([normalizedShape]);
  }

  override parameters(): Record<string, Parameter> {
    return { weight: this.weight, bias: this.bias };
  }

  upload(ctx: GPUContext): void {
    if (this.gpu?.ctx === ctx) return;
    this.release();
    const packed = packLayerNormParams(requireData(this.weight, 'LayerNorm weight'), requireData(this.bias, 'LayerNorm bias'), this.normalizedShape);
    this.gpu = { ctx, params: ctx.createBufferWithData(packed, BufferUsage.STORAGE, `layernorm ${this.normalizedShape}`) };
  }

  forward(ctx: GPUContext, graph: Graph, x: TensorValue, label = 'layernorm'): TensorValue {
    if (x.shape[3] !== this.normalizedShape) {
      throw new InvalidInputError(`${label}: LayerNorm(${this.normalizedShape}) got ${x.shape[3]} channels`);
    }
    this.upload(ctx);
    return layerNorm(graph, x, { params: this.gpu!.params, eps: this.eps, label }, ctx.limits.maxComputeWorkgroupsPerDimension);
  }

  release(): void {
    this.gpu?.params.destroy();
    this.gpu = undefined;
  }
}
