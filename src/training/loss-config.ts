import { InvalidInputError } from '../errors';
import type { GPUContext } from '../gpu/context';
import type { Graph, TensorValue } from '../gpu/graph';
import { FeatureNetwork } from '../models/vgg';
import { addPerceptualLoss, type PerceptualLossOptions } from './perceptual-loss';
import { laplacianLoss, type LossResult, maskedMseLoss, pixelLoss, sobelGradientLoss, ssimLoss, totalVariationLoss } from '../kernels/loss';
import { sumTensors } from '../kernels/reduce';

/**
 * One loss term, PyTorch's reduction 'mean', times `weight` (default 1):
 * - MSE (nn.MSELoss), L1 (nn.L1Loss, KAIR's default for DnCNN), Charbonnier √((p−t)²+ε) (ε inside the root;
 *   KAIR 1e-9, BasicSR 1e-12);
 * - the weighted-mask MSE of defect regions, Σ(1−m)e²/N₀ + λ·Σme²/N₁ per batch (training.md §2.2 variant A), which
 *   needs a mask with every batch;
 * - Noise2Void's loss, the MSE at the blind spots alone, Σm e²/Σm over the batch (n2v, CAREamics), whose mask the
 *   blind-spot batches give (the masked pixels' inputs were replaced; the target is the noisy patch itself);
 * - 1 − SSIM (pytorch-msssim: Gaussian 11×11, σ 1.5, valid, data range 1 unless given; patches ≥ 11 px);
 * - the Sobel gradient loss and the second-order (Laplacian) loss, L1 (default) or MSE between the filtered
 *   prediction and target (training.md §2.4);
 * - total variation of the prediction alone (kornia's anisotropic L1 per image, or KAIR's squared TVLoss), a
 *   regulariser that only makes sense beside a data term;
 * - BasicSR's perceptual loss through the user's torchvision VGG (`network`, loadFeatureNetwork), by default
 *   ESRGAN's {conv5_4: 1} with L1 (conv5_3 for a VGG16); `weight` is its perceptual_weight.
 */
export type LossTerm = (
  | { kind: 'mse' }
  | { kind: 'l1' }
  | { kind: 'charbonnier'; eps?: number }
  | { kind: 'masked-mse'; lambda: number }
  | { kind: 'blind-spot' }
  | { kind: 'ssim'; dataRange?: number }
  | { kind: 'sobel'; criterion?: 'l1' | 'mse' }
  | { kind: 'laplacian'; criterion?: 'l1' | 'mse' }
  | { kind: 'tv'; variant?: 'anisotropic-l1' | 'squared' }
  | ({ kind: 'perceptual'; network: FeatureNetwork } & Partial<
      Pick<PerceptualLossOptions, 'layerWeights' | 'criterion' | 'useInputNorm' | 'rangeNorm'>
    >)
) & { weight?: number };

/** A single term, or the weighted sum of several (SINSR's content losses: L1 + Sobel + second order + TV + SSIM). */
export type LossConfig = LossTerm | { kind: 'sum'; terms: readonly LossTerm[] };

/** The kinds a name alone builds (the CLI's); 'perceptual' also needs its VGG. */
export const LOSS_KINDS = ['mse', 'l1', 'charbonnier', 'masked-mse', 'ssim', 'sobel', 'laplacian', 'tv'] as const;

function checkTerm(loss: LossTerm, where: string): void {
  if (!(LOSS_KINDS as readonly string[]).includes(loss.kind) && loss.kind !== 'perceptual' && loss.kind !== 'blind-spot') {
    throw new InvalidInputError(
      `${where}: unknown loss '${String(loss.kind)}' (expected ${LOSS_KINDS.join(', ')}, perceptual, blind-spot, or sum)`,
    );
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
  if (loss.kind === 'perceptual' && !(loss.network instanceof FeatureNetwork)) {
    throw new InvalidInputError(`${where}: the perceptual loss needs network, a VGG from loadFeatureNetwork`);
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
  return lossTerms(loss).some((t) => t.kind === 'masked-mse' || t.kind === 'blind-spot');
}

/** A loss added to a graph; `dispose` frees what it put on the GPU (a perceptual loss's VGG weights) with the plan. */
export interface AddedLoss extends LossResult {
  readonly dispose: () => void;
}

interface Extras {
  mask?: TensorValue;
  /** Needed by the perceptual loss, which uploads its VGG's weights. */
  ctx?: GPUContext;
  disposers: (() => void)[];
}

function addTerm(graph: Graph, term: LossTerm, prediction: TensorValue, target: TensorValue, extras: Extras): LossResult {
  const weight = term.weight ?? 1;
  const label = `${term.kind} loss`;
  const mask = extras.mask;
  switch (term.kind) {
    case 'perceptual': {
      if (!extras.ctx) throw new InvalidInputError('the perceptual loss needs the GPU context');
      const result = addPerceptualLoss(extras.ctx, graph, term.network, prediction, target, {
        layerWeights: term.layerWeights ?? { [term.network.backbone === 'vgg16' ? 'conv5_3' : 'conv5_4']: 1 },
        ...(term.criterion !== undefined ? { criterion: term.criterion } : {}),
        ...(term.useInputNorm !== undefined ? { useInputNorm: term.useInputNorm } : {}),
        ...(term.rangeNorm !== undefined ? { rangeNorm: term.rangeNorm } : {}),
        perceptualWeight: weight,
        label,
      });
      extras.disposers.push(() => result.dispose());
      return result;
    }
    case 'ssim':
      return ssimLoss(graph, prediction, target, { label, weight, dataRange: term.dataRange ?? 1 });
    case 'masked-mse':
      if (!mask) throw new InvalidInputError('masked-mse needs a mask');
      return maskedMseLoss(graph, prediction, target, mask, { label, weight, lambda: term.lambda });
    case 'blind-spot':
      if (!mask) throw new InvalidInputError('the blind-spot loss needs the mask of the blind spots');
      return maskedMseLoss(graph, prediction, target, mask, { label, weight, lambda: 1, outside: 0 });
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
export function addLoss(
  graph: Graph,
  loss: LossConfig,
  prediction: TensorValue,
  target: TensorValue,
  options: { mask?: TensorValue; ctx?: GPUContext } = {},
): AddedLoss {
  checkLossConfig(loss);
  const extras: Extras = { ...options, disposers: [] };
  const dispose = () => extras.disposers.forEach((d) => d());
  try {
    const parts = lossTerms(loss).map((t) => addTerm(graph, t, prediction, target, extras));
    if (parts.length === 1) return { ...parts[0], dispose };
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
      dispose,
    };
  } catch (e) {
    dispose();
    throw e;
  }
}
