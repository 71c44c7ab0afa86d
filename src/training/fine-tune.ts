import {
  ABORT_SIGNAL,
  checkOptionFields,
  FUNCTION,
  OBJECT,
  oneOf,
  POSITIVE_INTEGER,
  POSITIVE_NUMBER,
  FINITE_NUMBER,
  INTEGER,
} from '../check-args';
import { InvalidInputError } from '../errors';
import type { GPUContext } from '../gpu/context';
import type { FloatImage } from '../io/image';
import { checkPercentileRange, type PercentileRange, percentileNormalize } from '../io/normalize';
import type { BatchNormMode } from '../layers/training-graph';
import type { Network } from '../models/network';
import { shuffled } from './data/split';
import { noisyImagesSet } from './data/training-set';
import type { FitProgress, FitResult } from './fit';
import type { OptimizerConfig } from './optimizer-config';
import { SELF_SUPERVISED_METHODS, type SelfSupervision } from './self-supervision';
import { type TrainedTensor, Trainer } from './trainer';

/** What `fineTune` needs beyond the method: every field has the default of n2v / CAREamics where they agree. */
export type FineTuneOptions = SelfSupervision & {
  /** Side of the square training patches (default 64; Neighbor2Neighbor needs it even). */
  patch?: number;
  /** Patches per step (default 16). */
  batch?: number;
  /** Steps to train (default 400, one n2v epoch), or fewer when `maxSeconds` ends the run first. */
  steps?: number;
  /** A wall-clock budget in seconds (validated and handed back as if it were the last step). */
  maxSeconds?: number;
  /** Default Adam, lr 4e-4 (n2v's). */
  optimizer?: OptimizerConfig;
  /** The share of whole images held out for the validation loss (default 0.1; at least one when there are ≥ 2). */
  validationFraction?: number;
  /** Validations in the run (default 10, the last at the end). */
  validations?: number;
  /**
   * Percentile normalisation of every image by its own percentiles before training (CSBDeep's 1–99.8 if asked);
   * the same must be given to inference (`RunOptions.normalize`), which the result repeats for a sidecar.
   */
  normalize?: PercentileRange;
  /** BatchNorm in 'train' mode (default) or 'frozen' (running statistics kept: small batches, fine-tuning). */
  batchNorm?: BatchNormMode;
  seed?: number;
  onProgress?: (p: FitProgress) => void;
  /** Stops after the current step; the weights trained so far stay in the model and fineTune throws AbortedError. */
  signal?: AbortSignal;
};

export interface FineTuneResult extends FitResult {
  /** The state_dict after the last step (what the model now holds). */
  last: Map<string, TrainedTensor>;
  /** The state_dict with the lowest validation loss, when a validation ran. */
  best?: Map<string, TrainedTensor>;
  /** Names of the images held out for validation (the training images themselves when there was one image). */
  validationImages: string[];
  normalize?: PercentileRange;
}

/** An image and the name progress and errors use for it. */
export interface NamedImage {
  name: string;
  image: FloatImage;
}

const FINE_TUNE_FIELDS = {
  method: oneOf(SELF_SUPERVISED_METHODS),
  percentage: POSITIVE_NUMBER,
  roiSize: POSITIVE_INTEGER,
  struct: OBJECT,
  increaseRatio: FINITE_NUMBER,
  patch: POSITIVE_INTEGER,
  batch: POSITIVE_INTEGER,
  steps: POSITIVE_INTEGER,
  maxSeconds: POSITIVE_NUMBER,
  optimizer: OBJECT,
  validationFraction: FINITE_NUMBER,
  validations: POSITIVE_INTEGER,
  normalize: OBJECT,
  batchNorm: oneOf(['train', 'frozen']),
  seed: INTEGER,
  onProgress: FUNCTION,
  signal: ABORT_SIGNAL,
};

const DEFAULT_STEPS = 400;
const DEFAULT_OPTIMIZER: OptimizerConfig = { kind: 'adam', lr: 4e-4 };

/**
 * Trains `model` (loaded from a checkpoint to fine-tune it, or new) on the user's own noisy images alone, by
 * Noise2Void, N2V2 or Neighbor2Neighbor, on the GPU of `ctx`: patches cropped at random from every image
 * (mixed sizes are fine; each must hold one patch), dihedral augmentation, a validation loss on held-out whole
 * images, a step and time budget, progress and cancellation. When it returns (or stops on the signal) the model
 * holds the last weights, ready for inference; `best` has those of the lowest validation loss.
 */
export async function fineTune(
  ctx: GPUContext,
  model: Network,
  images: readonly NamedImage[],
  options: FineTuneOptions,
): Promise<FineTuneResult> {
  checkOptionFields('fineTune', options, FINE_TUNE_FIELDS);
  if (options.method === undefined) throw new InvalidInputError(`fineTune: options need a method (${SELF_SUPERVISED_METHODS.join(', ')})`);
  if (images.length === 0) throw new InvalidInputError('fineTune needs at least one image');
  images.forEach(({ name, image }, i) => {
    if (typeof name !== 'string' || typeof image !== 'object' || image === null || !(image.data instanceof Float32Array)) {
      throw new InvalidInputError(`fineTune: images[${i}] must be { name, image } with a FloatImage (Float32Array data)`);
    }
  });
  const patch = options.patch ?? 64;
  const batch = options.batch ?? 16;
  const fraction = options.validationFraction ?? 0.1;
  if (!(fraction >= 0 && fraction < 1)) throw new InvalidInputError(`validationFraction must be in [0, 1), got ${fraction}`);
  const normalize = options.normalize !== undefined ? checkPercentileRange(options.normalize, 'fineTune normalize') : undefined;
  const prepared = images.map(({ name, image }) => {
    if (image.channels !== model.inChannels) {
      throw new InvalidInputError(`${name} has ${image.channels} channel(s), the network takes ${model.inChannels}`);
    }
    if (!normalize) return { name, image };
    return { name, image: percentileNormalize(image, { pLow: normalize.low, pHigh: normalize.high }).image };
  });
  const seed = options.seed ?? 0;
  // Whole images held out (at least one when there are two or more); a single image validates on itself.
  const order = shuffled(prepared.length, seed);
  const held = prepared.length >= 2 && fraction > 0 ? Math.max(1, Math.round(fraction * prepared.length)) : 0;
  const train = order.slice(held);
  const validation = held > 0 ? order.slice(0, held) : train;
  const method = methodOf(options);
  const trainer = await Trainer.create(ctx, model, {
    batchShape: [batch, model.inChannels, patch, patch],
    optimizer: options.optimizer ?? DEFAULT_OPTIMIZER,
    selfSupervised: method,
    ...(options.batchNorm ? { batchNorm: options.batchNorm } : {}),
  });
  let best: Map<string, TrainedTensor> | undefined;
  let last: Map<string, TrainedTensor> | undefined;
  try {
    const steps = options.steps ?? (options.maxSeconds !== undefined ? Number.MAX_SAFE_INTEGER : DEFAULT_STEPS);
    const validations = options.validations ?? 10;
    const result = await trainer.fit(noisyImagesSet(train.map((i) => prepared[i])), {
      batch,
      patch,
      seed,
      steps,
      // With only a time budget the step count is unknown: validate every 50 steps and at the end.
      validateEvery: steps === Number.MAX_SAFE_INTEGER ? 50 : Math.max(1, Math.round(steps / validations)),
      validation: noisyImagesSet(validation.map((i) => prepared[i])),
      ...(options.maxSeconds !== undefined ? { maxSeconds: options.maxSeconds } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      onCheckpoint: (kind, state) => {
        if (kind === 'best') best = state;
        else last = state;
      },
    });
    return {
      ...result,
      last: last!,
      ...(best ? { best } : {}),
      validationImages: validation.map((i) => prepared[i].name),
      ...(normalize ? { normalize } : {}),
    };
  } finally {
    if (trainer.steps > 0) await trainer.syncToModel();
    trainer.dispose();
  }
}

function methodOf(o: FineTuneOptions): SelfSupervision {
  if (o.method === 'neighbor2neighbor')
    return { method: o.method, ...(o.increaseRatio !== undefined ? { increaseRatio: o.increaseRatio } : {}) };
  return {
    method: o.method,
    ...(o.percentage !== undefined ? { percentage: o.percentage } : {}),
    ...(o.roiSize !== undefined ? { roiSize: o.roiSize } : {}),
    ...(o.struct ? { struct: o.struct } : {}),
  };
}
