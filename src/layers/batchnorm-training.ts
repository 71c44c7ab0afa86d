import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import type { Activation } from '../kernels/activation';
import { batchNormTrainBackward, batchNormTrainForward } from '../kernels/batchnorm-train';
import type { BatchNorm2d } from './batchnorm';
import type { ForwardBuilder } from './forward-builder';

/**
 * BatchNorm2d in a training graph, PyTorch's `train()` mode: batch statistics normalise, the running statistics
 * are updated on the GPU with the module's momentum, and the trainer counts `num_batches_tracked`. The fused
 * activation (ReLU after it in DnCNN) is undone inside the backward kernels from the saved output.
 */
export function batchNormTrainingForward(
  b: ForwardBuilder,
  bn: BatchNorm2d,
  x: TensorValue,
  activation: Activation | undefined,
  label: string,
): TensorValue {
  const training = b.training!;
  if (training.batchNorm !== 'train') {
    throw new InvalidInputError(`${label}: BatchNorm '${training.batchNorm}' mode is not supported in training yet (use 'train')`);
  }
  if (!training.learns(bn.weight) || !training.learns(bn.bias)) {
    throw new InvalidInputError(`${label}: a BatchNorm2d with frozen weight or bias cannot be trained in 'train' mode yet`);
  }
  const weight = training.value(bn.weight, `${label}.weight`);
  const { y, mean, invStd } = batchNormTrainForward(b.graph, x, {
    weight,
    bias: training.value(bn.bias, `${label}.bias`),
    runningMean: training.value(bn.running_mean, `${label}.running_mean`),
    runningVar: training.value(bn.running_var, `${label}.running_var`),
    momentum: bn.momentum,
    eps: bn.eps,
    ...(activation && activation.kind !== 'none' ? { activation } : {}),
    label,
  });
  training.batchNormsStepped.push(bn);
  training.tape.record(label, [x], [y], true, (c) => {
    const dx = batchNormTrainBackward(
      b.graph,
      c.gradOf(y)!,
      x,
      { mean, invStd },
      {
        weight,
        dWeight: training.grad(bn.weight, `${label}.weight`),
        dBias: training.grad(bn.bias, `${label}.bias`),
        ...(activation && activation.kind !== 'none' ? { activation, y } : {}),
        label: `${label} backward`,
      },
    );
    if (c.needsGrad(x)) c.addGrad(x, dx);
  });
  return y;
}
