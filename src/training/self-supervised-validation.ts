import type { FloatImage } from '../io/image';
import { createRng } from '../io/noise';
import type { RestorationModel } from '../runtime/restoration-model';
import { blindSpotBatch } from './data/blind-spot';
import { drawNeighborChoices, neighborSubimages } from './data/neighbor-pairs';
import { blindSpotOptionsOf, type SelfSupervision } from './self-supervision';

/** A held-out noisy image prepared once for a self-supervised validation loss: what goes in, what it is scored on. */
export interface SelfSupervisedProbe {
  input: FloatImage;
  target: Float32Array;
  /** 1 where the loss counts (Noise2Void's blind spots); everywhere when absent. */
  mask?: Float32Array;
}

/**
 * The method's own loss on whole held-out noisy images (in the network's value range), drawn once with a seed of
 * its own so every validation scores the same thing: Noise2Void's blind-spot MSE on the image with its blind
 * spots replaced, or Neighbor2Neighbor's reconstruction term mean((f(g1 y) − g2 y)²) (its regulariser, which
 * changes with γ, left out so the numbers compare across epochs). It is what n2v and CAREamics watch as val_loss
 * when no clean image exists; it scores against noise, so lower is better but it never reaches 0.
 */
export function selfSupervisedProbes(noisy: readonly FloatImage[], method: SelfSupervision, seed: number): SelfSupervisedProbe[] {
  const rng = createRng(seed ^ 0x7a11d);
  return noisy.map((image) => {
    const { width: w, height: h, channels: c } = image;
    if (method.method === 'neighbor2neighbor') {
      const choices = drawNeighborChoices(rng, 1, h >> 1, w >> 1);
      const { first, second } = neighborSubimages(image.data, [1, c, h, w], choices);
      return { input: { width: w >> 1, height: h >> 1, channels: c, data: first }, target: second };
    }
    const { input, mask } = blindSpotBatch(image.data, [1, c, h, w], rng, blindSpotOptionsOf(method));
    return { input: { ...image, data: input }, target: image.data, mask };
  });
}

/** The mean squared error over every probe's counted elements together (one batch, as the training loss). */
export async function selfSupervisedLoss(session: RestorationModel, probes: readonly SelfSupervisedProbe[]): Promise<number> {
  let sum = 0;
  let count = 0;
  for (const p of probes) {
    const { image } = await session.runFloat(p.input);
    const plane = p.input.width * p.input.height;
    image.data.forEach((v, i) => {
      const m = p.mask ? p.mask[i % plane] : 1;
      sum += m * (v - p.target[i]) ** 2;
      count += m;
    });
  }
  return count > 0 ? sum / count : 0;
}
