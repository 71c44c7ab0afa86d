import { createRng, type Rng } from '../io/noise';
import { blindSpotBatch } from './data/blind-spot';
import { drawNeighborChoices } from './data/neighbor-pairs';
import type { PatchBatches } from './data/patch-batches';
import { blindSpotOptionsOf, DEFAULT_INCREASE_RATIO, neighbor2NeighborGamma, type SelfSupervision } from './self-supervision';
import type { TrainingBatch } from './trainer';

/**
 * Turns patch batches into what a self-supervised method trains on. Only the noisy patch is used: the batch's
 * `input` (a noisy image, or a clean one with synthetic noise added), never its clean target, which validation
 * alone may read.
 * - n2v / n2v2: blind spots on a stratified grid, replaced by a random neighbour (uniform) or the neighbourhood's
 *   median (n2v2), the noisy patch the target and the spots the loss mask (one set per patch for all channels).
 * - neighbor2neighbor: the noisy patch, a pair choice for every 2×2 cell and γ for this step's epoch.
 */
export class SelfSupervisedBatches {
  private readonly rng: Rng;

  constructor(
    private readonly patches: PatchBatches,
    private readonly method: SelfSupervision,
    private readonly shape: readonly [n: number, c: number, h: number, w: number],
    seed: number,
  ) {
    // A stream of its own, so the crops are those a supervised run with this seed would take.
    this.rng = createRng(seed ^ 0x2b1d5eed);
  }

  /** The batch of `step` (1-based) of `totalSteps`, with `perEpoch` steps to an epoch (Neighbor2Neighbor's γ). */
  next(step: number, perEpoch: number, totalSteps: number): TrainingBatch {
    const noisy = this.patches.next().input;
    const [n, c, h, w] = this.shape;
    const m = this.method;
    if (m.method === 'neighbor2neighbor') {
      const ratio = m.increaseRatio ?? DEFAULT_INCREASE_RATIO;
      return {
        input: noisy,
        choices: drawNeighborChoices(this.rng, n, h / 2, w / 2),
        gamma: neighbor2NeighborGamma(step, perEpoch, totalSteps, ratio),
      };
    }
    const { input, mask } = blindSpotBatch(noisy, [n, c, h, w], this.rng, blindSpotOptionsOf(m));
    return { input, target: noisy, mask };
  }
}
