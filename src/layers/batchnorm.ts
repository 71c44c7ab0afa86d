import { Module, parameter } from './module';

/**
 * nn.BatchNorm2d in eval mode. It is never dispatched on its own here: it is folded into the convolution before
 * it at load time (src/weights/fold-batchnorm.ts). `eps` must match the training code (KAIR: 1e-4).
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
}
