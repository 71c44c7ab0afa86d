import { InvalidInputError } from '../errors';
import type { Graph, TensorValue } from '../gpu/graph';
import { maskedMseLoss, pixelLoss, ssimLoss } from '../kernels/loss';

/**
 * The training loss, PyTorch's reduction 'mean': MSE (nn.MSELoss), L1 (nn.L1Loss, KAIR's default for DnCNN),
 * Charbonnier √((p−t)²+ε) (ε inside the root; KAIR 1e-9, BasicSR 1e-12), or the weighted-mask MSE of defect
 * regions, Σ(1−m)e²/N₀ + λ·Σme²/N₁ per batch (training.md §2.2 variant A), which needs a mask with every batch,
 * or 1 − SSIM (pytorch-msssim: Gaussian 11×11, σ 1.5, valid, data range 1 unless given; patches ≥ 11 px).
 */
export type LossConfig =
  | { kind: 'mse' }
  | { kind: 'l1' }
  | { kind: 'charbonnier'; eps?: number }
  | { kind: 'masked-mse'; lambda: number }
  | { kind: 'ssim'; dataRange?: number };

export const LOSS_KINDS = ['mse', 'l1', 'charbonnier', 'masked-mse', 'ssim'] as const;

export function checkLossConfig(loss: LossConfig): void {
  if (!(LOSS_KINDS as readonly string[]).includes(loss.kind)) {
    throw new InvalidInputError(`unknown loss '${String(loss.kind)}' (expected ${LOSS_KINDS.join(', ')})`);
  }
  if (loss.kind === 'charbonnier' && loss.eps !== undefined && !(loss.eps > 0)) {
    throw new InvalidInputError(`Charbonnier eps must be positive, got ${loss.eps}`);
  }
  if (loss.kind === 'masked-mse' && !(typeof loss.lambda === 'number' && Number.isFinite(loss.lambda) && loss.lambda >= 0)) {
    throw new InvalidInputError(`masked-mse needs lambda, a finite number ≥ 0, got ${String(loss.lambda)}`);
  }
}

/** Whether every batch must come with a mask. */
export function lossNeedsMask(loss: LossConfig): boolean {
  return loss.kind === 'masked-mse';
}

/** Adds the loss of `prediction` against `target` to the graph: its value ([1,1,1,1]) and its gradient. */
export function addLoss(
  graph: Graph,
  loss: LossConfig,
  prediction: TensorValue,
  target: TensorValue,
  mask?: TensorValue,
): { loss: TensorValue; grad: TensorValue } {
  checkLossConfig(loss);
  if (loss.kind === 'ssim') return ssimLoss(graph, prediction, target, { label: 'ssim loss', dataRange: loss.dataRange ?? 1 });
  if (loss.kind === 'masked-mse') {
    if (!mask) throw new InvalidInputError('masked-mse needs a mask');
    return maskedMseLoss(graph, prediction, target, mask, { label: 'masked mse loss', lambda: loss.lambda });
  }
  return pixelLoss(graph, loss.kind, prediction, target, {
    label: `${loss.kind} loss`,
    ...(loss.kind === 'charbonnier' && loss.eps !== undefined ? { eps: loss.eps } : {}),
  });
}
