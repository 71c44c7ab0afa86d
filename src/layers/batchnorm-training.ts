import { writeBuffer } from '../gpu/context';
import { InvalidInputError } from '../errors';
import { BufferUsage } from '../gpu/flags';
import type { TensorValue } from '../gpu/graph';
import type { Activation } from '../kernels/activation';
import {
  batchNormFrozenBackward,
  batchNormFrozenForward,
  batchNormTrainBackward,
  batchNormTrainForward,
  MOMENTUM_FACTOR_BYTES,
} from '../kernels/batchnorm-train';
import type { BatchNorm2d } from './batchnorm';
import type { ForwardBuilder } from './forward-builder';
import type { TrainingGraph } from './training-graph';

/**
 * BatchNorm2d in a training graph, in the trainer's BatchNorm mode:
 * - 'train', PyTorch's `train()`: batch statistics normalise, the running statistics are updated on the GPU with
 *   the module's momentum (or, for `momentum=None`, the cumulative average: m = 1/num_batches_tracked, read at
 *   run time), and the trainer counts `num_batches_tracked`.
 * - 'frozen', PyTorch's `bn.eval()` while the rest trains (fine-tuning with small batches): the running statistics
 *   normalise and stay as they are, num_batches_tracked is not counted; γ and β still learn.
 * γ and β may stay fixed (`frozen` parameters, or a discriminator during the generator's step): the gradient then
 * only flows to x, and the γ/β gradients the backward kernels compute anyway go to a scratch range. The fused
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
  const fused = activation && activation.kind !== 'none' ? { activation } : {};
  const weight = training.value(bn.weight, `${label}.weight`);
  const bias = training.value(bn.bias, `${label}.bias`);
  const runningMean = training.value(bn.running_mean, `${label}.running_mean`);
  const runningVar = training.value(bn.running_var, `${label}.running_var`);
  const learnsWeight = training.learns(bn.weight);
  const learnsBias = training.learns(bn.bias);

  if (training.batchNorm === 'frozen') {
    const y = batchNormFrozenForward(b.graph, x, { weight, bias, runningMean, runningVar, eps: bn.eps, ...fused, label });
    training.tape.record(label, [x], [y], learnsWeight || learnsBias, (c) => {
      const dx = batchNormFrozenBackward(b.graph, c.gradOf(y)!, x, {
        weight,
        runningMean,
        runningVar,
        eps: bn.eps,
        // Only the gradients that are used: a fixed γ or β needs no sum over the pixels.
        ...(learnsWeight ? { dWeight: training.grad(bn.weight, `${label}.weight`) } : {}),
        ...(learnsBias ? { dBias: training.grad(bn.bias, `${label}.bias`) } : {}),
        ...(activation && activation.kind !== 'none' ? { y } : {}),
        ...fused,
        label: `${label} backward`,
      });
      if (c.needsGrad(x)) c.addGrad(x, dx);
    });
    return y;
  }

  if (training.batchNorm !== 'train') throw new InvalidInputError(`${label}: unknown BatchNorm mode '${String(training.batchNorm)}'`);
  const { y, mean, invStd } = batchNormTrainForward(b.graph, x, {
    weight,
    bias,
    runningMean,
    runningVar,
    momentum: bn.momentum === null ? cumulativeAverageFactor(b, training, bn, label) : bn.momentum,
    eps: bn.eps,
    ...fused,
    label,
  });
  training.batchNormsStepped.push(bn);
  // With γ and β fixed the step is recorded only when x needs a gradient (the tape skips it otherwise).
  training.tape.record(label, [x], [y], learnsWeight || learnsBias, (c) => {
    const dx = batchNormTrainBackward(
      b.graph,
      c.gradOf(y)!,
      x,
      { mean, invStd },
      {
        weight,
        // dx needs Σg and Σg·x̂ whatever learns, so the kernel always writes them; a fixed parameter's go to scratch.
        dWeight: learnsWeight ? training.grad(bn.weight, `${label}.weight`) : training.discardedGrad(bn.weight, `${label}.weight`),
        dBias: learnsBias ? training.grad(bn.bias, `${label}.bias`) : training.discardedGrad(bn.bias, `${label}.bias`),
        ...(activation && activation.kind !== 'none' ? { activation, y } : {}),
        label: `${label} backward`,
      },
    );
    if (c.needsGrad(x)) c.addGrad(x, dx);
  });
  return y;
}

// ---------------------------------------------------------------------------------------------------------------
// momentum=None: the cumulative moving average
// ---------------------------------------------------------------------------------------------------------------

/** One train-mode forward of a BatchNorm2d(momentum=None) in a training graph, and the buffer its factor is read from. */
interface FactorSlot {
  bn: object;
  buffer: GPUBuffer;
}

/** The factor buffers of each training graph, in the order of its forwards. */
const factorSlots = new WeakMap<TrainingGraph, FactorSlot[]>();

/**
 * A buffer for one forward's (m, 1 − m), m = 1/num_batches_tracked after this forward's increment (PyTorch:
 * `exponential_average_factor = 1.0 / float(self.num_batches_tracked)`). It starts as NaN, so running statistics
 * of a step nobody wrote the factors for show up as NaN rather than as a plausible wrong value.
 */
function cumulativeAverageFactor(b: ForwardBuilder, training: TrainingGraph, bn: BatchNorm2d, label: string): GPUBuffer {
  const buffer = b.ctx.createBufferWithData(
    new Float32Array(MOMENTUM_FACTOR_BYTES / 4).fill(Number.NaN),
    BufferUsage.STORAGE | BufferUsage.COPY_DST,
    `${label} cumulative average factor`,
  );
  let slots = factorSlots.get(training);
  if (!slots) factorSlots.set(training, (slots = []));
  slots.push({ bn, buffer });
  return buffer;
}

/** Whether `graphs` hold a BatchNorm2d(momentum=None) forward, whose factors must be written before each step. */
export function needsCumulativeAverageFactors(graphs: readonly TrainingGraph[]): boolean {
  return graphs.some((g) => (factorSlots.get(g)?.length ?? 0) > 0);
}

/**
 * Before a step: the factors of every BatchNorm2d(momentum=None) forward in `graphs` (in the order they run), from
 * each module's num_batches_tracked before the step. A module run k times in a step (a discriminator on real and
 * generated images) counts k batches, and its j-th forward uses 1/(tracked + j), as PyTorch's sequence of calls.
 */
export function writeCumulativeAverageFactors(
  device: GPUDevice,
  graphs: readonly TrainingGraph[],
  numBatchesTracked: (bn: object) => number,
): void {
  const counts = new Map<object, number>();
  for (const graph of graphs) {
    for (const { bn, buffer } of factorSlots.get(graph) ?? []) {
      const count = (counts.get(bn) ?? numBatchesTracked(bn)) + 1;
      counts.set(bn, count);
      const m = 1 / count;
      writeBuffer(device, buffer, 0, Float32Array.of(m, 1 - m));
    }
  }
}

/** Frees the factor buffers of `graph` (with the training state that built it). */
export function releaseCumulativeAverageFactors(graph: TrainingGraph): void {
  for (const { buffer } of factorSlots.get(graph) ?? []) buffer.destroy();
  factorSlots.delete(graph);
}
