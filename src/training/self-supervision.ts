import { InvalidInputError } from '../errors';
import { type BlindSpotOptions, resolveBlindSpotOptions, type StructMask } from './data/blind-spot';

/**
 * Training a denoiser from noisy images alone (training.md §4):
 * - 'n2v' — Noise2Void: stratified random blind spots whose inputs are replaced by a random neighbour (CAREamics'
 *   'uniform'), the loss only there;
 * - 'n2v2' — N2V2: the same with the median of the neighbourhood without its centre as the replacement (the
 *   network's half of N2V2, BlurPool and no top skip, is the N2V2 U-Net's);
 * - 'neighbor2neighbor' — two sub-images from random neighbours of each 2×2 cell, one the input and one the
 *   target, plus the regulariser of the full image's denoised sub-images with its γ growing over the epochs.
 * `percentage` (0.05–10, default 0.2) and `roiSize` (odd 3–21, default 11) are CAREamics'; `struct` hides the
 * pixels along line-correlated noise too (structN2V); `increaseRatio` is Neighbor2Neighbor's (default 2:
 * γ = epoch / epochs · 2).
 */
export type SelfSupervision =
  | { method: 'n2v' | 'n2v2'; percentage?: number; roiSize?: number; struct?: StructMask }
  | { method: 'neighbor2neighbor'; increaseRatio?: number };

export const SELF_SUPERVISED_METHODS = ['n2v', 'n2v2', 'neighbor2neighbor'] as const;

export const DEFAULT_INCREASE_RATIO = 2;

export function checkSelfSupervision(s: SelfSupervision): void {
  if (typeof s !== 'object' || s === null || !(SELF_SUPERVISED_METHODS as readonly string[]).includes(s.method)) {
    throw new InvalidInputError(
      `selfSupervised.method must be one of ${SELF_SUPERVISED_METHODS.join(', ')}, got ${String((s as { method?: unknown } | null)?.method)}`,
    );
  }
  if (s.method !== 'neighbor2neighbor') {
    resolveBlindSpotOptions(blindSpotOptionsOf(s));
  } else {
    const r = s.increaseRatio;
    if (r !== undefined && !(typeof r === 'number' && Number.isFinite(r) && r >= 0)) {
      throw new InvalidInputError(`selfSupervised.increaseRatio must be a finite number ≥ 0, got ${String(r)}`);
    }
  }
}

/**
 * Neighbor2Neighbor's γ for a step: `epoch / epochs · increaseRatio` with the 1-based epoch of its train.py, so
 * it grows from ratio/epochs to the ratio.
 */
export function neighbor2NeighborGamma(step: number, stepsPerEpoch: number, totalSteps: number, increaseRatio: number): number {
  const epochs = Math.max(1, Math.ceil(totalSteps / stepsPerEpoch));
  return (Math.ceil(step / stepsPerEpoch) / epochs) * increaseRatio;
}

/**
 * The blind-spot manipulation of a Noise2Void method: N2V's uniform neighbour or N2V2's median, one set of spots
 * for all channels of a patch (the trainer's mask has one channel), and the method's own settings where given.
 */
export function blindSpotOptionsOf(s: Exclude<SelfSupervision, { method: 'neighbor2neighbor' }>): BlindSpotOptions {
  return {
    strategy: s.method === 'n2v2' ? 'median' : 'uniform',
    channels: 'shared',
    ...(s.percentage !== undefined ? { percentage: s.percentage } : {}),
    ...(s.roiSize !== undefined ? { roiSize: s.roiSize } : {}),
    ...(s.struct ? { struct: s.struct } : {}),
  };
}
