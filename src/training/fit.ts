import { AbortedError, InvalidInputError } from '../errors';
import type { FloatImage } from '../io/image';
import { createRng } from '../io/noise';
import { type Lpips, lpips } from '../runtime/lpips';
import { RestorationModel } from '../runtime/restoration-model';
import { psnrGpu, ssimGpu } from '../runtime/ssim-gpu';
import { addNoise } from './data/noise-model';
import { type BatchOptions, PatchBatches } from './data/patch-batches';
import { checkTrainingSet, type NetworkShape, type TrainingSet } from './data/training-set';
import type { LrSchedule } from './schedules';
import { SelfSupervisedBatches } from './self-supervised-batches';
import { type SelfSupervisedProbe, selfSupervisedLoss, selfSupervisedProbes } from './self-supervised-validation';
import type { StepResult, TrainedTensor, Trainer } from './trainer';

export interface FitOptions extends Partial<BatchOptions> {
  /** Passes over the training images (each `ceil(images / batch)` steps); or give `steps`. */
  epochs?: number;
  /**
   * Total steps instead of epochs (validation then runs every `validateEvery` steps, default once at the end).
   * Both count from the trainer's first step: a resumed trainer goes on from where it stopped to this total.
   */
  steps?: number;
  validateEvery?: number;
  /**
   * A wall-clock budget: the run ends (validated, with its 'last' checkpoint, as at its last step) after the
   * first step that finishes past it. `steps`/`epochs` still cap it.
   */
  maxSeconds?: number;
  /**
   * Whole images scored after every epoch: PSNR and SSIM (data range 1) on the GPU, through the inference path;
   * with `lpips`, also the mean LPIPS distance to the targets (outputs read in [0, 1]; gray repeated to RGB). The
   * best checkpoint, the plateau schedule and early stopping follow the PSNR alone. A self-supervised trainer
   * also scores its own loss on the noisy images (self-supervised-validation.ts), and follows it when no
   * example has a clean image: one whose input is its target (noisyImages) is a noisy image alone.
   */
  validation?: TrainingSet & { lpips?: Lpips };
  /** Stepped after every epoch (ReduceLROnPlateau with the validation PSNR, negated, as the metric to minimise). */
  schedule?: LrSchedule;
  /** Stop when the validation PSNR has not improved for this many validations. */
  earlyStoppingPatience?: number;
  onProgress?: (p: FitProgress) => void;
  /**
   * Called with the model's state_dict: 'best' whenever the validation PSNR improves, 'last' when training ends
   * (also when stopped by the signal), so the caller can write checkpoints.
   */
  onCheckpoint?: (kind: 'best' | 'last', state: Map<string, TrainedTensor>) => Promise<void> | void;
  /** Stops after the current step; the 'last' checkpoint is still handed over, then fit throws AbortedError. */
  signal?: AbortSignal;
}

export interface FitProgress {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  lr: number;
  /** Seconds left at the mean step time so far (or of the time budget, when that ends first). */
  etaSeconds: number;
  validation?: ValidationScores;
}

/**
 * Means over the validation images: PSNR and SSIM where they have clean images, `lpips` when the validation was
 * given an LPIPS model, `loss` (the self-supervised method's loss on the noisy images) for self-supervised runs.
 */
export interface ValidationScores {
  psnr?: number;
  ssim?: number;
  lpips?: number;
  loss?: number;
}

export interface FitResult {
  steps: number;
  lastLoss: number;
  bestValidation?: ValidationScores & { step: number };
  stoppedEarly: boolean;
  /** Whether the run ended because `maxSeconds` had passed. */
  outOfTime: boolean;
}

/**
 * A validation image: its noisy (or low-resolution) input, fixed for the whole run and already in the network's
 * value range, and its clean (high-resolution) target in [0, 1].
 */
interface ValidationPair {
  input: FloatImage;
  /** Absent for a noisy image alone (self-supervised validation). */
  target?: FloatImage;
}

/**
 * The training loop behind `Trainer.fit`: batches from `set` (crops, augmentation, noise), a step each, the
 * schedule and validation after every epoch, the best checkpoint kept, early stopping, and an AbortSignal that
 * stops between steps.
 */
export async function fitTrainer(trainer: Trainer, set: TrainingSet, options: FitOptions): Promise<FitResult> {
  const [batch, channels, patch, width] = trainer.batchShape;
  if (patch !== width) throw new InvalidInputError(`fit needs square patches; the trainer was made for ${patch}×${width}`);
  if (options.batch !== undefined && options.batch !== batch)
    throw new InvalidInputError(`the trainer was made for batch ${batch}, not ${options.batch}`);
  if (options.patch !== undefined && options.patch !== patch)
    throw new InvalidInputError(`the trainer was made for patch ${patch}, not ${options.patch}`);
  const model = trainer.model;
  // A ×s network's patch is its low-resolution input; its target is s times that (s = 1 for denoisers).
  const network = { input: channels, target: model.outChannels, scale: model.scale };
  const symmetric = model.valueRange === 'symmetric';
  checkTrainingSet(set, network, patch);
  const self = trainer.selfSupervised;
  // A self-supervised trainer's mask is its blind spots, drawn per batch.
  const unmasked = trainer.needsMask && !self ? set.examples.find((ex) => !ex.mask) : undefined;
  if (unmasked) throw new InvalidInputError(`${unmasked.name} has no mask, which the trainer's loss needs for every image`);
  const batches = new PatchBatches(
    set,
    { batch, patch, augment: options.augment ?? 'dihedral', seed: options.seed ?? 0 },
    { scale: model.scale, valueRange: symmetric ? 'symmetric' : 'unit' },
  );
  const selfBatches = self ? new SelfSupervisedBatches(batches, self, trainer.batchShape, options.seed ?? 0) : undefined;
  const perEpoch = batches.batchesPerEpoch;
  const totalSteps = options.steps ?? (options.epochs ?? 1) * perEpoch;
  if (!Number.isInteger(totalSteps) || totalSteps < 1)
    throw new InvalidInputError(`steps/epochs must give at least one step, got ${totalSteps}`);
  if (trainer.steps >= totalSteps) {
    throw new InvalidInputError(`the trainer has done ${trainer.steps} steps already; ask for more than that (${totalSteps}) to go on`);
  }
  const validateEvery = options.steps !== undefined ? (options.validateEvery ?? totalSteps) : perEpoch;
  const validation = options.validation ? validationPairs(options.validation, network, options.seed ?? 0, symmetric) : [];
  const probes = self
    ? selfSupervisedProbes(
        validation.map((p) => p.input),
        self,
        options.seed ?? 0,
      )
    : [];
  const lpipsModel = validation.some((p) => p.target) ? options.validation?.lpips : undefined;
  if (lpipsModel) {
    if (lpipsModel.ctx !== trainer.ctx) throw new InvalidInputError('validation.lpips was made on another GPU context than the trainer');
    await checkLpipsFits(lpipsModel, validation);
  }

  const started = Date.now();
  const first = trainer.steps;
  let last: StepResult | undefined;
  let best: FitResult['bestValidation'];
  let sinceBest = 0;
  let stoppedEarly = false;
  let outOfTime = false;
  const budget = options.maxSeconds;
  if (budget !== undefined && !(typeof budget === 'number' && budget > 0)) {
    throw new InvalidInputError(`maxSeconds must be a number > 0, got ${String(budget)}`);
  }
  try {
    for (let s = first + 1; s <= totalSteps; s++) {
      if (options.signal?.aborted) throw new AbortedError('training', { cause: options.signal.reason });
      last = await trainer.step(selfBatches ? selfBatches.next(s, perEpoch, totalSteps) : batches.next());
      const epoch = Math.ceil(s / perEpoch);
      outOfTime = budget !== undefined && (Date.now() - started) / 1000 >= budget;
      let scores: ValidationScores | undefined;
      if (s % validateEvery === 0 || s === totalSteps || outOfTime) {
        if (validation.length > 0) {
          scores = await validate(trainer, validation, symmetric, probes, lpipsModel);
          if (!best || merit(scores) > merit(best)) {
            best = { ...scores, step: s };
            sinceBest = 0;
            await options.onCheckpoint?.('best', await trainer.stateDict());
          } else sinceBest++;
        }
        if (options.schedule) {
          options.schedule.step(scores ? -merit(scores) : last.loss);
          trainer.learningRate = options.schedule.lrs[0];
        }
      }
      const elapsed = (Date.now() - started) / 1000;
      const stepsLeft = (elapsed / (s - first)) * (totalSteps - s);
      options.onProgress?.({
        step: s,
        totalSteps,
        epoch,
        loss: last.loss,
        lr: last.lr,
        etaSeconds: budget !== undefined ? Math.max(0, Math.min(stepsLeft, budget - elapsed)) : stepsLeft,
        ...(scores ? { validation: scores } : {}),
      });
      if (options.earlyStoppingPatience !== undefined && sinceBest > options.earlyStoppingPatience) {
        stoppedEarly = true;
        break;
      }
      if (outOfTime) break;
    }
  } finally {
    // The last good state goes to the caller even when a step failed or the signal stopped the run.
    if (trainer.steps > 0) await options.onCheckpoint?.('last', await trainer.stateDict());
  }
  return { steps: trainer.steps, lastLoss: last!.loss, ...(best ? { bestValidation: best } : {}), stoppedEarly, outOfTime };
}

/** What validation follows (higher is better): the PSNR where clean images exist, else −(self-supervised loss). */
function merit(scores: ValidationScores): number {
  return scores.psnr ?? -(scores.loss ?? 0);
}

function validationPairs(set: TrainingSet, network: NetworkShape, seed: number, symmetric: boolean): ValidationPair[] {
  checkTrainingSet(set, network, 1, 'validation set');
  // Synthetic noise is drawn once, with a seed of its own, so every validation scores the same inputs.
  const rng = createRng(seed + 0x5eed);
  return set.examples.map((ex) => {
    const input = ex.input ?? { ...ex.target, data: addNoise(ex.target.data, set.noise!, rng) };
    // A symmetric network sees 2x − 1, as the inference path gives it (restore-image.ts, layout.ts).
    const seen = symmetric ? { ...input, data: input.data.map((v) => 2 * v - 1) } : input;
    return ex.input === ex.target ? { input: seen } : { target: ex.target, input: seen };
  });
}

/**
 * Each distinct validation image shape once through LPIPS before training starts, so an image too small for the
 * backbone's last layer (16 px for vgg16) or with other than 1 or 3 channels fails now, not after an epoch. The
 * plans compiled here are the ones every validation then reuses.
 */
async function checkLpipsFits(model: Lpips, pairs: ValidationPair[]): Promise<void> {
  const seen = new Set<string>();
  for (const { target } of pairs) {
    if (!target) continue;
    const key = `${target.width}x${target.height}x${target.channels}`;
    if (seen.has(key)) continue;
    seen.add(key);
    await lpips(model, target, target);
  }
}

/**
 * Mean PSNR and SSIM (data range 1, on the [0, 1] target: the high-resolution image for SR), and LPIPS when a
 * model is given, of the network as trained so far, through the inference path; a symmetric network sees 2x − 1
 * and its output maps back by (y + 1) / 2, as restore-image.ts does for float images, so LPIPS too reads both
 * images in [0, 1] (its normalize=True).
 */
async function validate(
  trainer: Trainer,
  pairs: ValidationPair[],
  symmetric: boolean,
  probes: readonly SelfSupervisedProbe[],
  lpipsModel?: Lpips,
): Promise<ValidationScores> {
  await trainer.syncToModel();
  const session = new RestorationModel(trainer.ctx, trainer.model, 'validation');
  try {
    let psnr = 0;
    let ssim = 0;
    let distance = 0;
    let n = 0;
    for (const p of pairs) {
      if (!p.target) continue;
      const { image } = await session.runFloat(p.input);
      if (symmetric) for (let i = 0; i < image.data.length; i++) image.data[i] = (image.data[i] + 1) / 2;
      psnr += await psnrGpu(trainer.ctx, image, p.target, { dataRange: 1 });
      ssim += await ssimGpu(trainer.ctx, image, p.target, { dataRange: 1 });
      if (lpipsModel) distance += await lpips(lpipsModel, image, p.target);
      n++;
    }
    return {
      ...(n > 0 ? { psnr: psnr / n, ssim: ssim / n } : {}),
      ...(lpipsModel && n > 0 ? { lpips: distance / n } : {}),
      ...(probes.length > 0 ? { loss: await selfSupervisedLoss(session, probes) } : {}),
    };
  } finally {
    await session.dispose();
  }
}
