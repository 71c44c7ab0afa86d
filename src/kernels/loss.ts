import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import type { Graph, TensorValue } from '../gpu/graph';
import { tensorElements } from '../gpu/tensor';
import { checkLossShapes, type LossOptions, type LossResult, lossWeight } from './loss-common';
import { REAL_LANES_WGSL, realLaneParams, reduceRows } from './reduce';

/**
 * The losses of training.md §2, each a value ([1, 1, 1, 1]) and its gradient with respect to the prediction, built
 * from the deterministic reductions of reduce.ts. Means are PyTorch's reduction 'mean' over the N·C·H·W real
 * elements (the NHWC padding never counts), and every 1/N is applied to the finished sums.
 */
export type { LossOptions, LossResult } from './loss-common';
export { maskedMseLoss, type MaskedMseOptions } from './loss-masked';
export { totalVariationLoss, type TotalVariationOptions } from './loss-tv';
export { laplacianLoss, sobelGradientLoss, type SobelGradientOptions } from './loss-edges';

export type PixelLossKind = 'mse' | 'l1' | 'charbonnier';

/** KAIR's CharbonnierLoss ε (models/loss.py); BasicSR uses 1e-12. */
export const DEFAULT_CHARBONNIER_EPS = 1e-9;

/** Per element: the loss term (before the mean) into `term`, its derivative (times p.scale) into `grad`. */
const PIXEL_TERMS: Record<PixelLossKind, string> = {
  // nn.MSELoss: mean (p−t)², gradient 2(p−t)/numel.
  mse: `term = d * d;
      grad_value = 2.0 * d * p.scale;`,
  // nn.L1Loss: mean |p−t|, gradient sign(p−t)/numel with sign(0) = 0 (WGSL sign is 0 at 0, as PyTorch's).
  l1: `term = abs(d);
      grad_value = sign(d) * p.scale;`,
  // Charbonnier mean √((p−t)²+ε), ε inside the root; the padding's √ε must not count.
  charbonnier: `let root = sqrt(d * d + p.eps);
      term = select(vec4<f32>(0.0), root, real);
      grad_value = d / root * p.scale;`,
};

/**
 * `mean(ℓ(pred − target))` for MSE, L1 or Charbonnier, times `weight`, and its gradient (same shape as pred, padded
 * channels 0). One pass reads both tensors once, writes the gradient and per-chunk sums; a second sums those.
 */
export function pixelLoss(
  graph: Graph,
  kind: PixelLossKind,
  pred: TensorValue,
  target: TensorValue,
  options: LossOptions & { eps?: number },
): LossResult {
  const { label } = options;
  if (!(kind in PIXEL_TERMS)) throw new InvalidInputError(`${label}: unknown pixel loss '${String(kind)}' (expected mse, l1, charbonnier)`);
  checkLossShapes(pred, target, `target '${target.label}'`, label);
  const weight = lossWeight(options);
  const eps = options.eps ?? DEFAULT_CHARBONNIER_EPS;
  if (kind === 'charbonnier' && !(eps > 0 && Number.isFinite(eps))) {
    throw new InvalidInputError(`${label}: Charbonnier eps must be a finite number > 0, got ${eps}`);
  }
  const scale = weight / logicalElements(pred.shape);
  const grad = graph.tensor(pred.shape, `${label} grad`);
  const loss = reduceRows(graph, {
    rows: tensorElements(pred.shape) / 4,
    groups: 1,
    body: {
      tag: `${kind}_loss`,
      key: { loss: kind },
      bindings: {
        pred: { binding: pred, mode: 'read' },
        truth: { binding: target, mode: 'read' },
        grad: { binding: grad, mode: 'read_write' },
      },
      params: {
        ...realLaneParams(pred.shape),
        scale: { type: 'f32', value: scale },
        eps: { type: 'f32', value: kind === 'charbonnier' ? eps : 0 },
      },
      statements: (io) => `let real = ${REAL_LANES_WGSL};
      let d = select(vec4<f32>(0.0), ${io.load('pred', 'i')} - ${io.load('truth', 'i')}, real);
      var grad_value = vec4<f32>(0.0);
      ${PIXEL_TERMS[kind]}
      ${io.store('grad', 'i', 'grad_value')}`,
      // Per element: the difference, the term, the derivative and the add; pred and target read, grad written.
      cost: { flops: 4 * logicalElements(pred.shape), bytes: 3 * logicalBytes(pred.shape) },
    },
    finish: { kind: 'collapse', coefficients: [scale, scale, scale, scale] },
    label,
  })!;
  return { loss, grad };
}
export { ssimLoss, ssimLossWindow, type SsimLossOptions } from './loss-ssim';
export {
  bceWithLogitsLoss,
  relativisticGanLoss,
  vanillaGanLosses,
  type GanLogits,
  type GanLossOptions,
  type RelativisticGanResult,
} from './loss-bce';
