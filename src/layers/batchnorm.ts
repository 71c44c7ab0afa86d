import { InvalidInputError } from '../errors';
import type { GPUContext } from '../gpu/context';
import { BufferUsage } from '../gpu/flags';
import type { Graph, TensorValue } from '../gpu/graph';
import type { Activation } from '../kernels/activation';
import { batchNorm, foldBatchNormToAffine, packAffineChannels } from '../kernels/batchnorm';
import { Module, parameter, requireData } from './module';

/**
 * nn.BatchNorm2d in eval mode. After a convolution it is folded into it at load time
 * (src/weights/fold-batchnorm.ts); where nothing precedes it that could absorb it, `forward` dispatches the
 * standalone kernel (x·scale + shift per channel, scale and shift folded in float64, optional fused activation).
 * `eps` must match the training code (KAIR: 1e-4).
 */
export class BatchNorm2d extends Module {
  readonly weight;
  readonly bias;
  readonly running_mean;
  readonly running_var;

  constructor(
    readonly numFeatures: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = parameter([numFeatures]);
    this.bias = parameter([numFeatures]);
    this.running_mean = parameter([numFeatures]);
    this.running_var = parameter([numFeatures]);
  }

  override parameters() {
    return { weight: this.weight, bias: this.bias, running_mean: this.running_mean, running_var: this.running_var };
  }

  override ignoredKeys(): string[] {
    return ['num_batches_tracked'];
  }

  private gpu: { ctx: GPUContext; affine: GPUBuffer } | undefined;

  forward(ctx: GPUContext, graph: Graph, x: TensorValue, activation?: Activation, label = 'batchnorm'): TensorValue {
    if (x.shape[3] !== this.numFeatures) {
      throw new InvalidInputError(`${label} expects ${this.numFeatures} channels, got ${x.shape[3]}`);
    }
    if (this.gpu?.ctx !== ctx) {
      this.release();
      const affine = foldBatchNormToAffine(
        requireData(this.weight, 'BatchNorm2d weight'),
        requireData(this.bias, 'BatchNorm2d bias'),
        requireData(this.running_mean, 'BatchNorm2d running_mean'),
        requireData(this.running_var, 'BatchNorm2d running_var'),
        this.eps,
      );
      this.gpu = { ctx, affine: ctx.createBufferWithData(packAffineChannels(affine), BufferUsage.STORAGE, `${label} affine`) };
    }
    return batchNorm(graph, x, { affine: this.gpu.affine, activation, label }, ctx.limits.maxComputeWorkgroupsPerDimension);
  }

  release(): void {
    this.gpu?.affine.destroy();
    this.gpu = undefined;
  }
}
