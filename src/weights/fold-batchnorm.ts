import type { BatchNorm2d } from '../layers/batchnorm';
import type { Conv2d } from '../layers/conv2d';
import { requireData } from '../layers/module';

/**
 * Folds an eval-mode BatchNorm into the convolution before it, in float64:
 *   W' = W · γ/√(σ²+ε) (per output channel),  b' = (b − μ)·γ/√(σ²+ε) + β.
 * The convolution gains a bias if it had none. Afterwards the BatchNorm must not be applied again.
 */
export function foldBatchNorm(conv: Conv2d, bn: BatchNorm2d): void {
  const cout = conv.outChannels;
  const gamma = requireData(bn.weight, 'BatchNorm weight');
  const beta = requireData(bn.bias, 'BatchNorm bias');
  const mean = requireData(bn.running_mean, 'BatchNorm running_mean');
  const variance = requireData(bn.running_var, 'BatchNorm running_var');
  const w = requireData(conv.weight, 'Conv2d weight');
  const perOut = w.length / cout;
  const b = conv.bias?.data ?? new Float64Array(cout);
  const foldedW = new Float64Array(w.length);
  const foldedB = new Float64Array(cout);
  for (let o = 0; o < cout; o++) {
    const scale = gamma[o] / Math.sqrt(variance[o] + bn.eps);
    for (let i = 0; i < perOut; i++) foldedW[o * perOut + i] = w[o * perOut + i] * scale;
    foldedB[o] = (b[o] - mean[o]) * scale + beta[o];
  }
  conv.setFolded(foldedW, foldedB);
}
