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

/**
 * Examples plus, for clean-only examples, the noise to add. For a super-resolution network (scale s > 1) `input`
 * is the low-resolution image and `target` the high-resolution one, exactly s times its size.
 */
export interface TrainingSet {
  readonly examples: readonly TrainingExample[];
  readonly noise?: NoiseModel;
}

/** What a training set must fit: the network's channels in and out and its scale (output / input size, default 1). */
export interface NetworkShape {
  input: number;
  target: number;
  scale?: number;
}

/**
 * Throws an InvalidInputError naming the first example that cannot be trained on: a noisy/clean pair or a mask
 * of another size, channel counts the network does not take, an image smaller than the patch, a clean-only
 * example without a noise model; for a ×s network, a high-resolution image that is not exactly s times its
 * low-resolution pair, or one without a pair. `patch` is the side of the input patch (low resolution for SR).
 */
export function checkTrainingSet(set: TrainingSet, network: NetworkShape, patch: number, what = 'training set'): void {
  const scale = network.scale ?? 1;
  if (!Number.isInteger(scale) || scale < 1) throw new InvalidInputError(`scale must be a positive integer, got ${scale}`);
  if (set.examples.length === 0) throw new InvalidInputError(`${what} has no images`);
  if (set.noise) checkNoiseModel(set.noise);
  const [inputName, targetName] = scale > 1 ? ['low-resolution', 'high-resolution'] : ['noisy', 'clean'];
  for (const ex of set.examples) {
    const { target, input, mask } = ex;
    const size = `${target.width}×${target.height}`;
    if (target.channels !== network.target) {
      throw new InvalidInputError(
        `${ex.name}: the ${targetName} image has ${target.channels} channel(s), the network gives ${network.target}`,
      );
    }
    if (input) {
      if (input.width * scale !== target.width || input.height * scale !== target.height) {
        throw new InvalidInputError(
          scale > 1
            ? `${ex.name}: the high-resolution image is ${size}, not ${scale}× its low-resolution image ${input.width}×${input.height} (expected ${scale * input.width}×${scale * input.height})`
            : `${ex.name}: the noisy image is ${input.width}×${input.height}, its clean image ${size}`,
        );
      }
      if (input.channels !== network.input) {
        throw new InvalidInputError(
          `${ex.name}: the ${inputName} image has ${input.channels} channel(s), the network takes ${network.input}`,
        );
      }
    } else if (scale > 1) {
      throw new InvalidInputError(
        `${ex.name}: a ×${scale} super-resolution network trains on low/high-resolution pairs, and this image has no low-resolution pair`,
      );
    } else if (!set.noise) {
      throw new InvalidInputError(`${ex.name}: a clean image without its noisy pair needs a noise model (--noise)`);
    } else if (network.input !== network.target) {
      throw new InvalidInputError(`${ex.name}: synthetic noise needs a network with as many input as output channels`);
    }
    if (mask && (mask.width !== target.width || mask.height !== target.height)) {
      throw new InvalidInputError(`${ex.name}: the mask is ${mask.width}×${mask.height}, the image ${size}`);
    }
    if (mask && mask.channels !== 1) throw new InvalidInputError(`${ex.name}: the mask has ${mask.channels} channels (expected 1)`);
    const low = input ?? target;
    if (low.width < patch || low.height < patch) {
      throw new InvalidInputError(
        scale > 1
          ? `${ex.name}: its low-resolution image is ${low.width}×${low.height}, smaller than the ${patch}×${patch} patch: use a smaller --patch`
          : `${ex.name} is ${size}, smaller than the ${patch}×${patch} patch: use a smaller --patch`,
      );
    }
  }
}

/**
 * Noisy images alone, for self-supervised training: each example's input is its target, the same image. The
 * self-supervised batches read only the input; validation scores such an example by the method's loss, not by
 * PSNR (it has no clean image).
 */
export function noisyImagesSet(images: readonly { name: string; image: FloatImage }[]): TrainingSet {
  return { examples: images.map(({ name, image }) => ({ name, target: image, input: image })) };
}
