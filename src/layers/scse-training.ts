import type { TensorValue } from '../gpu/graph';
import { gateProduct, gateProductBackward } from '../kernels/gates-backward';
import type { ForwardBuilder } from './forward-builder';
import type { SCSEModule } from './scse';

/**
 * smp's SCSEModule in a training graph, as PyTorch runs it: cSE = the Sequential (pool, 1×1 conv, ReLU, 1×1 conv,
 * sigmoid) on an [N,1,1,C] map, sSE = the Sequential (1×1 conv to one channel, sigmoid), each training through
 * the ordinary Conv2d path with the activation fused; then `x·cSE + x·sSE`, whose backward sends g·(cSE + sSE) to
 * x and the broadcast sums of g·x to the two gates. x's three uses (the product, the pool, the sSE conv) add up on
 * the tape.
 */
export function scseTrainingForward(b: ForwardBuilder, m: SCSEModule, x: TensorValue, label: string): TensorValue {
  const channel = m.cSE.forward(b, x, { label: `${label}.cSE` });
  const pixel = m.sSE.forward(b, x, { label: `${label}.sSE` });
  const gates = { channel, pixel };
  const y = gateProduct(b.graph, x, gates, label);
  b.training!.tape.record(label, [x, channel, pixel], [y], false, (t) => {
    const grads = gateProductBackward(b.graph, t.gradOf(y)!, x, gates, `${label} backward`);
    t.addGrad(x, grads.dx);
    t.addGrad(channel, grads.dChannel!);
    t.addGrad(pixel, grads.dPixel!);
  });
  return y;
}
