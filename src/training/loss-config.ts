import { InvalidInputError } from '../errors';
import type { Graph, TensorValue } from '../gpu/graph';
import { laplacianLoss, type LossResult, maskedMseLoss, pixelLoss, sobelGradientLoss, ssimLoss, totalVariationLoss } from '../kernels/loss';
import { sumTensors } from '../kernels/reduce';

/**
 * One loss term, PyTorch's reduction 'mean', times `weight` (default 1):
 * - MSE (nn.MSELoss), L1 (nn.L1Loss, KAIR's default for DnCNN), Charbonnier √((p−t)²+ε) (ε inside the root;
 *   KAIR 1e-9, BasicSR 1e-12);
 * - the weighted-mask MSE of defect regions, Σ(1−m)e²/N₀ + λ·Σme²/N₁ per batch (training.md §2.2 variant A), which
 *   needs a mask with every batch;
 * - 1 − SSIM (pytorch-msssim: Gaussian 11×11, σ 1.5, valid, data range 1 unless given; patches ≥ 11 px);
 * - the Sobel gradient loss and the second-order (Laplacian) loss, L1 (default) or MSE between the filtered
 *   prediction and target (training.md §2.4);
 * - total variation of the prediction alone (kornia's anisotropic L1 per image, or KAIR's squared TVLoss), a
 *   regulariser that only makes sense beside a data term.
 */
export type LossTerm = (
  | { kind: 'mse' }
  | { kind: 'l1' }
  | { kind: 'charbonnier'; eps?: number }
  | { kind: 'masked-mse'; lambda: number }
  | { kind: 'ssim'; dataRange?: number }
  | { kind: 'sobel'; criterion?: 'l1' | 'mse' }
  | { kind: 'laplacian'; criterion?: 'l1' | 'mse' }
  | { kind: 'tv'; variant?: 'anisotropic-l1' | 'squared' }
) & { weight?: number };

/** A single term, or the weighted sum of several (SINSR's content losses: L1 + Sobel + second order + TV + SSIM). */
export type LossConfig = LossTerm | { kind: 'sum'; terms: readonly LossTerm[] };

export const LOSS_KINDS = ['mse', 'l1', 'charbonnier', 'masked-mse', 'ssim', 'sobel', 'laplacian', 'tv'] as const;

function checkTerm(loss: LossTerm, where: string): void {
  if (!(LOSS_KINDS as readonly string[]).includes(loss.kind)) {
    throw new InvalidInputError(`${where}: unknown loss '${String(loss.kind)}' (expected ${LOSS_KINDS.join(', ')}, or sum)`);
  }
  if (loss.weight !== undefined && !(typeof loss.weight === 'number' && Number.isFinite(loss.weight) && loss.weight >= 0)) {
    throw new InvalidInputError(`${where}: the weight of ${loss.kind} must be a finite number ≥ 0, got ${String(loss.weight)}`);
  }
  if (loss.kind === 'charbonnier' && loss.eps !== undefined && !(loss.eps > 0)) {
    throw new InvalidInputError(`${where}: Charbonnier eps must be positive, got ${loss.eps}`);
  }
  if (loss.kind === 'masked-mse' && !(typeof loss.lambda === 'number' && Number.isFinite(loss.lambda) && loss.lambda >= 0)) {
    throw new InvalidInputError(`${where}: masked-mse needs lambda, a finite number ≥ 0, got ${String(loss.lambda)}`);
  }
  if ((loss.kind === 'sobel' || loss.kind === 'laplacian') && loss.criterion !== undefined && !['l1', 'mse'].includes(loss.criterion)) {
    throw new InvalidInputError(`${where}: the ${loss.kind} criterion must be l1 or mse, got ${String(loss.criterion)}`);
  }
  if (loss.kind === 'tv' && loss.variant !== undefined && !['anisotropic-l1', 'squared'].includes(loss.variant)) {
    throw new InvalidInputError(`${where}: the tv variant must be anisotropic-l1 or squared, got ${String(loss.variant)}`);
  }
}

/** The terms of a loss (one for a single loss). */
export function lossTerms(loss: LossConfig): readonly LossTerm[] {
  return loss.kind === 'sum' ? loss.terms : [loss];
}

export function checkLossConfig(loss: LossConfig): void {
  if (typeof loss !== 'object' || loss === null) throw new InvalidInputError(`the loss must be an object with a kind`);
  if (loss.kind === 'sum' && (!Array.isArray(loss.terms) || loss.terms.length === 0)) {
    throw new InvalidInputError('a sum loss needs terms, a non-empty array of losses');
  }
  const terms = lossTerms(loss);
  terms.forEach((t, i) => checkTerm(t, loss.kind === 'sum' ? `loss term ${i}` : 'loss'));
  if (terms.every((t) => t.kind === 'tv')) {
    throw new InvalidInputError('total variation is a regulariser: add it to a data term (a sum loss), it cannot train alone');
  }
}

/** Whether every batch must come with a mask. */
export function lossNeedsMask(loss: LossConfig): boolean {
  return lossTerms(loss).some((t) => t.kind === 'masked-mse');
}

function addTerm(graph: Graph, term: LossTerm, prediction: TensorValue, target: TensorValue, mask?: TensorValue): LossResult {
  const weight = term.weight ?? 1;
  const label = `${term.kind} loss`;
  switch (term.kind) {
    case 'ssim':
      return ssimLoss(graph, prediction, target, { label, weight, dataRange: term.dataRange ?? 1 });
    case 'masked-mse':
      if (!mask) throw new InvalidInputError('masked-mse needs a mask');
      return maskedMseLoss(graph, prediction, target, mask, { label, weight, lambda: term.lambda });
    case 'sobel':
      return sobelGradientLoss(graph, prediction, target, { label, weight, criterion: term.criterion ?? 'l1' });
    case 'laplacian':
      return laplacianLoss(graph, prediction, target, { label, weight, criterion: term.criterion ?? 'l1' });
    case 'tv':
      return totalVariationLoss(graph, prediction, { label, weight, kind: term.variant ?? 'anisotropic-l1' });
    default:
      return pixelLoss(graph, term.kind, prediction, target, {
        label,
        weight,
        ...(term.kind === 'charbonnier' && term.eps !== undefined ? { eps: term.eps } : {}),
      });
  }
}

/**
 * Adds the loss of `prediction` against `target` to the graph: its value ([1,1,1,1]) and its gradient. The terms
 * of a sum are added in the order given (fixed, so a run is bitwise reproducible).
 */
export function addLoss(graph: Graph, loss: LossConfig, prediction: TensorValue, target: TensorValue, mask?: TensorValue): LossResult {
  checkLossConfig(loss);
  const parts = lossTerms(loss).map((t) => addTerm(graph, t, prediction, target, mask));
  if (parts.length === 1) return parts[0];
  return {
    loss: sumTensors(
      graph,
      parts.map((p) => p.loss),
      'loss sum',
    ),
    grad: sumTensors(
      graph,
      parts.map((p) => p.grad),
      'loss gradient sum',
    ),
  };
}
