import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import { preluBackward } from '../kernels/activation-backward';
import { preluForward } from '../kernels/prelu';
import type { ForwardBuilder } from './forward-builder';
import type { PReLU } from './prelu';

/**
 * PReLU in a training graph: a dispatch of its own (never fused into the convolution before it), because its
 * backward needs the input x, where x ≤ 0 both scales the gradient and feeds the slope's gradient
 * da = Σ_{x ≤ 0} g·x (per channel, or over everything for PyTorch's shared nn.PReLU()). The slopes are read from
 * the training arena in PyTorch's layout, so a PReLU behind a PixelShuffle needs no repeated slopes here.
 */
export function preluTrainingForward(b: ForwardBuilder, prelu: PReLU, x: TensorValue, label: string): TensorValue {
  const training = b.training!;
  const shared = prelu.numParameters === 1;
  if (!shared && prelu.numParameters !== x.shape[3]) {
    throw new InvalidInputError(`${label}: PReLU with ${prelu.numParameters} slopes cannot follow ${x.shape[3]} channels`);
  }
  const slopes = training.value(prelu.weight, `${label}.weight`);
  const y = preluForward(b.graph, x, slopes, label, { sharedSlope: shared });
  const learns = training.learns(prelu.weight);
  training.tape.record(label, [x], [y], learns, (c) => {
    // A frozen slope still gets its (unused) gradient computed, into a scratch tensor: the kernel makes dx and da
    // in one pass.
    const dSlopes = learns ? training.grad(prelu.weight, `${label}.weight`) : b.graph.tensor([1, 1, 1, prelu.numParameters], `${label} da`);
    const dx = preluBackward(b.graph, c.gradOf(y)!, x, slopes, dSlopes, `${label} backward`, { sharedSlope: shared });
    if (c.needsGrad(x)) c.addGrad(x, dx);
  });
  return y;
}
