import type { TensorValue } from '../gpu/graph';
import { clampBackward } from '../kernels/clamp-backward';
import { clamp } from '../kernels/pointwise';
import type { ForwardBuilder } from './forward-builder';

/**
 * `torch.clamp(x, lo, hi)` between modules (SRResNet's output clamp to [0, 1]), recording its backward in a
 * training graph: the gradient passes where lo ≤ x ≤ hi (PyTorch 1.13 keeps it at the bounds) and is 0 elsewhere,
 * so the input x is kept.
 */
export function clampWithBackward(b: ForwardBuilder, x: TensorValue, lo: number, hi: number, label: string): TensorValue {
  const y = clamp(b.graph, x, lo, hi, label);
  b.training?.tape.record(label, [x], [y], false, (c) => {
    c.addGrad(x, clampBackward(b.graph, c.gradOf(y)!, x, lo, hi, `${label} backward`));
  });
  return y;
}
