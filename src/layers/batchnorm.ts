import { InvalidInputError } from '../errors';
import { BufferUsage } from '../gpu/flags';
import type { TensorValue } from '../gpu/graph';
import { type AffineChannels, batchNorm, foldBatchNormToAffine, packAffineChannels } from '../kernels/batchnorm';
import { batchNormTrainingForward } from './batchnorm-training';
import type { ForwardBuilder, ForwardOptions } from './forward-builder';
import { Module, parameter, requireData } from './module';

/**
 * nn.BatchNorm2d in eval mode. After a convolution it is folded into it when the weights are loaded
 * (`loadStateDict` → `foldBatchNorms`); where nothing precedes it that could absorb it, `forward` dispatches the
 * standalone kernel (x·scale + shift per channel, scale and shift folded in float64, optional fused activation).
 * `eps` must match the training code (KAIR: 1e-4). In a training graph it runs in the trainer's BatchNorm mode
 * (batchnorm-training.ts: 'train' with batch statistics, or 'frozen' with the running ones).
 */
export class BatchNorm2d extends Module {
  override get supportsTraining(): boolean {
    return true;
  }

  override get fusesEpilogue(): boolean {
    return true;
  }

  readonly weight;
  readonly bias;
  readonly running_mean;
  readonly running_var;

  constructor(
    readonly numFeatures: number,
    readonly eps = 1e-5,
    /**
     * PyTorch's momentum: the weight of the new batch in the running statistics (KAIR: 0.9), or null for
     * `momentum=None`, the cumulative moving average (weight 1/num_batches_tracked). Settable, as in PyTorch
     * (`bn.momentum = None`), before a training step is built.
     */
    public momentum: number | null = 0.1,
  ) {
    super();
    if (momentum !== null && !(typeof momentum === 'number' && Number.isFinite(momentum))) {
      throw new InvalidInputError(`BatchNorm2d momentum must be a finite number or null (PyTorch's None), got ${String(momentum)}`);
    }
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

  override bufferNames(): string[] {
    return ['running_mean', 'running_var'];
  }

  override unfold(): void {
    this.folded = false;
    this.releaseOwn();
  }

  /** Set once folded into the convolution before it: the convolution applies it, this module passes x on. */
  private folded = false;

  override get isIdentity(): boolean {
    return this.folded;
  }

  /** Eval mode: y = x·scale + shift per channel, in float64 (kernels/batchnorm.ts). */
  private affine(): AffineChannels {
    return foldBatchNormToAffine(
      requireData(this.weight, 'BatchNorm2d weight'),
      requireData(this.bias, 'BatchNorm2d bias'),
      requireData(this.running_mean, 'BatchNorm2d running_mean'),
      requireData(this.running_var, 'BatchNorm2d running_var'),
      this.eps,
    );
  }

  override foldInto(previous: Module<any, any>): boolean {
    const { scale, shift } = this.affine();
    this.folded = previous.absorbChannelAffine(scale, shift);
    return this.folded;
  }

  /** Standalone (nothing absorbed it), with an optional fused activation; the identity once folded. */
  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'batchnorm';
    if (x.shape[3] !== this.numFeatures) {
      throw new InvalidInputError(`${label} expects ${this.numFeatures} channels, got ${x.shape[3]}`);
    }
    const { activation } = this.checkOptions(options, label, ['activation']);
    if (b.training) return batchNormTrainingForward(b, this, x, activation, label);
    if (this.folded) {
      if (activation && activation.kind !== 'none') throw new InvalidInputError(`${label}: folded BatchNorm2d cannot apply an activation`);
      return x;
    }
    const { affine } = this.onDevice(b.ctx, () => ({
      affine: b.ctx.createBufferWithData(packAffineChannels(this.affine()), BufferUsage.STORAGE, `${label} affine`),
    }));
    return batchNorm(b.graph, x, { affine, activation, label });
  }
}

/**
 * For modules that fuse a convolution's epilogue past its BatchNorm (conv → BN → ReLU (+ residual) as one
 * dispatch): throws unless `bn` has been folded into that convolution, which `loadStateDict` does.
 */
export function requireFolded(bn: BatchNorm2d, label: string): void {
  if (!bn.isIdentity) throw new InvalidInputError(`${label}: BatchNorm2d is not folded into its convolution (load the weights first)`);
}
