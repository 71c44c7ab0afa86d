import { InvalidInputError } from '../../errors';
import type { FloatImage } from '../../io/image';
import { checkNoiseModel, type NoiseModel } from './noise-model';

/**
 * One training example, images in [0, 1] float CHW: a clean `target`, with its registered noisy `input` (pairs
 * from folders) or without one (the noise is synthesised per patch), and an optional defect `mask` (1 inside a
 * defect) for the weighted MSE.
 */
export interface TrainingExample {
  readonly name: string;
  readonly target: FloatImage;
  readonly input?: FloatImage;
  readonly mask?: FloatImage;
}

/** Examples plus, for clean-only examples, the noise to add. */
export interface TrainingSet {
  readonly examples: readonly TrainingExample[];
  readonly noise?: NoiseModel;
}

/**
 * Throws an InvalidInputError naming the first example that cannot be trained on: a noisy/clean pair or a mask
 * of another size, channel counts the network does not take, an image smaller than the patch, a clean-only
 * example without a noise model.
 */
export function checkTrainingSet(
  set: TrainingSet,
  channels: { input: number; target: number },
  patch: number,
  what = 'training set',
): void {
  if (set.examples.length === 0) throw new InvalidInputError(`${what} has no images`);
  if (set.noise) checkNoiseModel(set.noise);
  for (const ex of set.examples) {
    const { target, input, mask } = ex;
    const size = `${target.width}×${target.height}`;
    if (target.channels !== channels.target) {
      throw new InvalidInputError(`${ex.name}: the clean image has ${target.channels} channel(s), the network gives ${channels.target}`);
    }
    if (input) {
      if (input.width !== target.width || input.height !== target.height) {
        throw new InvalidInputError(`${ex.name}: the noisy image is ${input.width}×${input.height}, its clean image ${size}`);
      }
      if (input.channels !== channels.input) {
        throw new InvalidInputError(`${ex.name}: the noisy image has ${input.channels} channel(s), the network takes ${channels.input}`);
      }
    } else if (!set.noise) {
      throw new InvalidInputError(`${ex.name}: a clean image without its noisy pair needs a noise model (--noise)`);
    } else if (channels.input !== channels.target) {
      throw new InvalidInputError(`${ex.name}: synthetic noise needs a network with as many input as output channels`);
    }
    if (mask && (mask.width !== target.width || mask.height !== target.height)) {
      throw new InvalidInputError(`${ex.name}: the mask is ${mask.width}×${mask.height}, the image ${size}`);
    }
    if (mask && mask.channels !== 1) throw new InvalidInputError(`${ex.name}: the mask has ${mask.channels} channels (expected 1)`);
    if (target.width < patch || target.height < patch) {
      throw new InvalidInputError(`${ex.name} is ${size}, smaller than the ${patch}×${patch} patch: use a smaller --patch`);
    }
  }
}
