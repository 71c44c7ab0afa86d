import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import { globalAvgMaxPool } from '../kernels/cbam';
import {
  avgMaxPoolBackward,
  type CbamMlpBindings,
  cbamMlpBackward,
  cbamMlpGate,
  cbamMlpHidden,
  channelGateBackward,
  channelGateMul,
  channelMeanMaxBackward,
  pixelGateBackward,
  pixelGateMul,
} from '../kernels/cbam-backward';
import { channelMeanMax } from '../kernels/channel-mean-max';
import { add } from './autograd-ops';
import type { Conv2d } from './conv2d';
import type { ForwardBuilder, ForwardOptions } from './forward-builder';
import type { Parameter } from './module';

/** What CBAM's training path needs of the module (src/layers/cbam.ts). */
export interface TrainableCbam {
  readonly channels: number;
  readonly hidden: number;
  /** channel_mlp.0 and channel_mlp.2 (nn.Linear), shared by the average and the max branch. */
  readonly mlp: { w1: Parameter; b1: Parameter; w2: Parameter; b2: Parameter };
  readonly spatialConv: Conv2d;
}

/**
 * CBAM in a training graph, one recorded step per op of the PyTorch reference (tools/torch/nets/sinsr.py):
 *   pooled = [mean, amax] over pixels → g_c = σ(mlp(avg) + mlp(max)) → xc = x·g_c → s = [mean_c, amax_c](xc)
 *   → g_s = σ(spatial_conv(s)) (Conv2d's own training path) → out = xc·g_s (+ residual).
 * xc is kept as a tensor of its own (inference fuses it away) because two steps read it, and the tape must sum
 * their gradients before the channel gate's backward (kernels/cbam-backward.ts).
 */
export function cbamTrainingForward(
  b: ForwardBuilder,
  m: TrainableCbam,
  x: TensorValue,
  options: ForwardOptions,
  label: string,
): TensorValue {
  const training = b.training!;
  const graph = b.graph;
  if (options.output) throw new InvalidInputError(`${label}: training a CBAM that writes into a channel slice is not supported`);
  const { w1, b1, w2, b2 } = m.mlp;
  const learning = [w1, b1, w2, b2].map((p) => training.learns(p));
  if (learning.some((l) => l !== learning[0])) {
    throw new InvalidInputError(`${label}: the channel MLP's four parameters must all learn or all be frozen`);
  }
  const learns = learning[0];
  const mlp: CbamMlpBindings = {
    w1: training.value(w1, `${label}.channel_mlp.0.weight`),
    b1: training.value(b1, `${label}.channel_mlp.0.bias`),
    w2: training.value(w2, `${label}.channel_mlp.2.weight`),
    b2: training.value(b2, `${label}.channel_mlp.2.bias`),
  };

  const pooled = globalAvgMaxPool(graph, x, `${label}.pool`);
  training.tape.record(`${label}.pool`, [x], [pooled], false, (t) => {
    t.addGrad(x, avgMaxPoolBackward(graph, t.gradOf(pooled)!, x, pooled, `${label}.pool backward`));
  });

  const hidden = cbamMlpHidden(graph, pooled, mlp, m.hidden, `${label}.channel_mlp`);
  const gate = cbamMlpGate(graph, hidden, mlp, m.channels, `${label}.channel_mlp`);
  training.tape.record(`${label}.channel_mlp`, [pooled], [gate], learns, (t) => {
    const grads = learns
      ? {
          w1: training.grad(w1, `${label}.channel_mlp.0.weight`),
          b1: training.grad(b1, `${label}.channel_mlp.0.bias`),
          w2: training.grad(w2, `${label}.channel_mlp.2.weight`),
          b2: training.grad(b2, `${label}.channel_mlp.2.bias`),
        }
      : undefined;
    const dPooled = cbamMlpBackward(graph, t.gradOf(gate)!, gate, hidden, pooled, mlp, grads, `${label}.channel_mlp backward`);
    if (t.needsGrad(pooled)) t.addGrad(pooled, dPooled);
  });

  const xc = channelGateMul(graph, x, gate, `${label}.channel_gate`);
  training.tape.record(`${label}.channel_gate`, [x, gate], [xc], false, (t) => {
    const { dx, dGate } = channelGateBackward(graph, t.gradOf(xc)!, x, gate, `${label}.channel_gate backward`);
    t.addGrad(x, dx);
    t.addGrad(gate, dGate);
  });

  const meanMax = channelMeanMax(graph, xc, `${label}.mean_max`);
  training.tape.record(`${label}.mean_max`, [xc], [meanMax], false, (t) => {
    t.addGrad(xc, channelMeanMaxBackward(graph, t.gradOf(meanMax)!, xc, `${label}.mean_max backward`));
  });
  const sg = m.spatialConv.forward(b, meanMax, { epilogue: { activation: { kind: 'sigmoid' } }, label: `${label}.spatial_conv` });

  const out = pixelGateMul(graph, xc, sg, `${label}.spatial_gate`);
  training.tape.record(`${label}.spatial_gate`, [xc, sg], [out], false, (t) => {
    const { dx, dGate } = pixelGateBackward(graph, t.gradOf(out)!, xc, sg, `${label}.spatial_gate backward`);
    t.addGrad(xc, dx);
    t.addGrad(sg, dGate);
  });
  const residual = options.epilogue?.residual;
  return residual ? add(b, out, residual.tensor, `${label} + residual`) : out;
}
