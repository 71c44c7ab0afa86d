import { InvalidInputError } from '../errors';
import type { BufferRange, TensorValue } from '../gpu/graph';
import { type Activation } from '../kernels/activation';
import { activationBackward, activationSaves } from '../kernels/activation-backward';
import type { ForwardBuilder } from './forward-builder';
import type { Parameter } from './module';

/** What differs between Conv2d and ConvTranspose2d in a training graph: their three kernels. */
export interface TrainedConvolution {
  label: string;
  x: TensorValue;
  weight: Parameter;
  bias: Parameter | undefined;
  /** Fused after the convolution (its backward comes from the saved output). */
  activation: Activation;
  /** Added after the activation; receives the output gradient as it is. */
  residual?: TensorValue;
  /** The forward dispatches (weights packed from their PyTorch layout, then the convolution). */
  forward(weight: BufferRange, bias: BufferRange | undefined): TensorValue;
  inputGrad(gz: TensorValue, weight: BufferRange): TensorValue;
  weightGrad(gz: TensorValue, dWeight: BufferRange, dBias: BufferRange | undefined): void;
}

/**
 * Adds a convolution to a training graph and records its backward: the fused activation undone from the saved
 * output, then dW and db (split-K reductions over the pixels) when they learn, and dx when the input needs it.
 */
export function trainConvolution(b: ForwardBuilder, c: TrainedConvolution): TensorValue {
  const training = b.training!;
  const { label, x, activation } = c;
  if (c.residual && activation.kind !== 'none') {
    // The activation's backward reads the saved output, which a residual added after it would corrupt.
    throw new InvalidInputError(
      `${label}: training a convolution with both a fused ${activation.kind} and a residual is not supported yet`,
    );
  }
  if (activationSaves(activation) === 'input') {
    throw new InvalidInputError(
      `${label}: training a convolution with a fused ${activation.kind} (whose backward needs its input) is not supported yet`,
    );
  }
  const weightValue = training.value(c.weight, `${label}.weight`);
  const y = c.forward(weightValue, c.bias ? training.value(c.bias, `${label}.bias`) : undefined);
  const learnsWeight = training.learns(c.weight);
  const learnsBias = c.bias !== undefined && training.learns(c.bias);
  if (learnsBias && !learnsWeight) throw new InvalidInputError(`${label}: a frozen weight with a learning bias is not supported yet`);
  const inputs = c.residual ? [x, c.residual] : [x];
  training.tape.record(label, inputs, [y], learnsWeight, (t) => {
    const gy = t.gradOf(y)!;
    if (c.residual) t.addGrad(c.residual, gy);
    const gz = activation.kind === 'none' ? gy : activationBackward(b.graph, activation, gy, y, `${label} ${activation.kind} backward`);
    if (learnsWeight) {
      c.weightGrad(gz, training.grad(c.weight, `${label}.weight`), learnsBias ? training.grad(c.bias!, `${label}.bias`) : undefined);
    }
    if (t.needsGrad(x)) t.addGrad(x, c.inputGrad(gz, weightValue));
  });
  return y;
}
