/**
 * `webgpu-restore train`: trains a network on the user's images on the GPU and writes a .pth that PyTorch 1.13
 * loads (`torch.load(weights_only=True)` + `load_state_dict(strict=True)`), with a JSON sidecar and the optimizer
 * state for `--resume`. Ctrl-C stops after the current step and still writes the checkpoint.
 */
import { existsSync, readFileSync } from 'node:fs';
import { AbortedError } from '../errors';
import type { Network } from '../models/network';
import { type FeatureNetwork, loadFeatureNetwork } from '../models/vgg';
import { getDefaultContext } from '../node';
import { bicubicDownscale, modCrop } from '../training/data/bicubic';
import { splitIndices } from '../training/data/split';
import type { TrainingSet } from '../training/data/training-set';
import type { FitProgress } from '../training/fit';
import { Trainer } from '../training/trainer';
import type { Lpips } from '../runtime/lpips';
import { integerInRange, oneOf, parseCommandArgs, positiveNumber } from './args';
import { identifyNetwork, readCheckpointFile, readContents } from './checkpoint-file';
import { UsageError } from './errors';
import { refuseExisting } from './files';
import { lpipsFromFiles, lpipsPaths, readLpipsFiles } from './lpips-option';
import { chooseNetwork } from './model-choice';
import { readTrainingExamples } from './train-data';
import {
  holdOut,
  methodFrom,
  normalized,
  normalizeFrom,
  readNoisyImages,
  resumedSettings,
  SELF_SUPERVISED_LR,
  selfSupervisionFrom,
  type TrainMethod,
  validationShareFrom,
} from './train-method';
import {
  integerOption,
  lossFrom,
  networkFromArch,
  noiseFrom,
  optimizerFrom,
  scheduleFrom,
  splitFrom,
  TRAIN_OPTIONS,
  vggFrom,
} from './train-options';
import { progressLine, scoresText, type TrainOutputs, trainOutputs, readResumeState, writeCheckpoints } from './train-outputs';
import { usageFor } from './usage';

const C = 'train';

const SELF_SUPERVISED_SPLIT = { train: 0.9, validation: 0.1, test: 0 };

/**
 * The data flags each method takes: the self-supervised ones noisy images alone (`--images`), Noise2Noise pairs
 * of two noisy acquisitions (`--pairs`), supervised training clean images (`--clean`) or noisy/clean pairs.
 */
function checkMethodInputs(method: TrainMethod, values: { [k: string]: string | boolean | undefined }): void {
  const given = (flags: string[]) => flags.filter((f) => values[f] !== undefined).map((f) => `--${f}`);
  if (method === 'n2v' || method === 'n2v2' || method === 'nb2nb') {
    if (values.images === undefined) throw new UsageError(`--method ${method} trains on noisy images alone: give --images DIR|GLOB`, C);
    const extra = given(['clean', 'pairs', 'noise', 'masks', 'loss', 'vgg', 'lpips', 'degrade']);
    if (extra.length > 0) throw new UsageError(`--method ${method} learns from --images alone; leave out ${extra.join(', ')}`, C);
    return;
  }
  if (values.images !== undefined) {
    throw new UsageError(
      method === 'n2n'
        ? 'n2n needs two noisy acquisitions of each field: --pairs FIRST_DIR,SECOND_DIR (matched by file name), not --images'
        : '--images is for the self-supervised methods (--method n2v, n2v2 or nb2nb)',
      C,
    );
  }
  if (method === 'n2n') {
    if (values.pairs === undefined) throw new UsageError('n2n needs two noisy acquisitions of each field: --pairs FIRST_DIR,SECOND_DIR', C);
    if (values.clean !== undefined || values.noise !== undefined)
      throw new UsageError('n2n trains on --pairs alone; leave out --clean and --noise', C);
    return;
  }
  if (values.normalize !== undefined) throw new UsageError('--normalize is for --method n2n, n2v, n2v2 and nb2nb', C);
  if ((values.clean === undefined) === (values.pairs === undefined))
    throw new UsageError('give either --clean DIR or --pairs NOISY_DIR,CLEAN_DIR', C);
}

/**
 * What the flags ask of a model they did not build: `--scale` must be the checkpoint's own (its layers fix it),
 * and a super-resolution network trains on --pairs LR_DIR,HR_DIR, a denoiser on --clean with --noise or pairs.
 */
function checkModelAgainstFlags(model: Network, scaleText: string | undefined, clean: boolean, noise: boolean, degrade: boolean): void {
  if (scaleText !== undefined) {
    const scale = integerInRange(C, '--scale', scaleText, 1, 16);
    if (model.scale === 1 && scale !== 1) {
      throw new UsageError(`--scale is for super-resolution networks; the checkpoint holds a ${model.architecture} denoiser`, C);
    }
    if (scale !== model.scale) {
      throw new UsageError(`--scale ${scale}: the checkpoint holds a ×${model.scale} ${model.architecture} (its layers fix the scale)`, C);
    }
  }
  if (clean && model.scale > 1 && !degrade) {
    throw new UsageError(
      `${model.architecture} is a ×${model.scale} super-resolution network: train it on --pairs LR_DIR,HR_DIR (each high-resolution image ${model.scale}× its low-resolution one), or --clean HR_DIR with --degrade bicubic`,
      C,
    );
  }
  if (clean && model.scale === 1 && !noise)
    throw new UsageError('--clean needs --noise (gaussian:25, gaussian:0-55 or poisson-gaussian:A,SIGMA)', C);
}

/** `-w FILE` or `-w builtin:NAME` (a model that ships with the package, e.g. builtin:dncnn_25). */
async function networkFromWeights(path: string): Promise<Network> {
  if (path.startsWith('builtin:')) return (await chooseNetwork('denoise', { model: path.slice('builtin:'.length) })).network;
  const file = await readCheckpointFile(path);
  return identifyNetwork(readContents(file).stateDict, file.name).network;
}

/** `--vgg`'s torchvision VGG, its `features` loaded strictly (CPU only: the trainer uploads it with the loss). */
async function featureNetworkFromFile(path: string): Promise<FeatureNetwork> {
  const file = await readCheckpointFile(path);
  return loadFeatureNetwork(readContents(file).stateDict, { name: file.name });
}

export async function trainCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(C, argv, TRAIN_OPTIONS);
  if (values.help) {
    console.log(usageFor(C));
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`train takes no positional arguments (got '${positionals[0]}')`, C);
  const output = values.output;
  if (output === undefined || !/\.pth?$/i.test(output)) throw new UsageError('-o OUT.pth is required (a .pth or .pt file)', C);
  if (
    values.resume
      ? values.arch !== undefined || values.weights !== undefined
      : (values.arch === undefined) === (values.weights === undefined)
  ) {
    throw new UsageError(
      values.resume ? '--resume continues from -o OUT.pth; give neither --arch nor --weights' : 'give either --arch or --weights',
      C,
    );
  }
  const outputs: TrainOutputs = trainOutputs(output);
  if (values.resume && !existsSync(output)) throw new UsageError(`--resume: ${output} does not exist`, C);
  // The sidecar first under --resume: the method and normalisation of the earlier run are the defaults.
  const resumed = values.resume ? readResumeState(outputs, readFileSync) : undefined;
  const { method, self, normalize } = resumed
    ? resumedSettings(values, resumed, outputs.sidecar)
    : {
        method: methodFrom(values.method),
        self: selfSupervisionFrom(methodFrom(values.method), values.struct),
        normalize: normalizeFrom(values.normalize),
      };
  checkMethodInputs(method, values);
  if (values.epochs !== undefined && values.steps !== undefined) throw new UsageError('give either --epochs or --steps, not both', C);
  const minutes = values.minutes !== undefined ? positiveNumber(C, '--minutes', values.minutes) : undefined;
  if (values.epochs === undefined && values.steps === undefined && minutes === undefined) {
    throw new UsageError('give --epochs N, --steps N or --minutes M', C);
  }
  // Bounded by the clock alone: no step total, so the progress line counts time.
  const timeBudget = minutes !== undefined && values.epochs === undefined && values.steps === undefined ? minutes * 60 : undefined;
  if (values.val !== undefined && values.split !== undefined) throw new UsageError('give either --val or --split, not both', C);
  const noise = noiseFrom(values.noise);
  let pairs: { noisy: string; clean: string } | undefined;
  if (values.pairs !== undefined) {
    const [noisy, clean, ...rest] = values.pairs.split(',');
    if (!noisy || !clean || rest.length > 0) {
      throw new UsageError(`--pairs needs NOISY_DIR,CLEAN_DIR (LR_DIR,HR_DIR for super-resolution), got '${values.pairs}'`, C);
    }
    pairs = { noisy, clean };
  }
  const seed = values.seed !== undefined ? integerInRange(C, '--seed', values.seed, 0, 2 ** 31 - 1) : 0;
  const batch = integerOption('--batch', values.batch, 16, 4096);
  const patch = integerOption('--patch', values.patch, 64, 8192);
  if (self?.method === 'neighbor2neighbor' && patch % 2 !== 0) {
    throw new UsageError(`--method nb2nb needs even patch sides (it halves every patch into 2×2 cells), got --patch ${patch}`, C);
  }
  const augment = oneOf(C, '--augment', values.augment ?? 'dihedral', ['dihedral', 'none'] as const);
  // Every --loss/--vgg flag error before any file is read; the VGG itself is read with the other weights below.
  const vgg = vggFrom(values);
  const lpipsFiles = values.lpips !== undefined ? lpipsPaths(values.lpips, C) : undefined;
  const optimizer = self && values.lr === undefined ? { ...optimizerFrom(values), lr: SELF_SUPERVISED_LR } : optimizerFrom(values);
  const schedule = scheduleFrom(values.schedule, optimizer.lr ?? 1e-3);
  // --val (and self-supervised runs, by default 10 %) holds out whole images for validation, no test images.
  const share =
    values.val !== undefined ? validationShareFrom(values.val) : self && values.split === undefined ? SELF_SUPERVISED_SPLIT : undefined;
  const split = share ? undefined : splitFrom(values.split);
  const clipGradNorm = values['clip-grad-norm'] !== undefined ? positiveNumber(C, '--clip-grad-norm', values['clip-grad-norm']) : undefined;
  const earlyStop = values['early-stop'] !== undefined ? integerInRange(C, '--early-stop', values['early-stop'], 1, 1 << 20) : undefined;
  const channels = values.channels !== undefined ? integerInRange(C, '--channels', values.channels, 1, 4) : 1;
  const infoBar =
    values['info-bar'] === undefined
      ? undefined
      : values['info-bar'] === 'auto'
        ? 'auto'
        : integerInRange(C, '--info-bar', values['info-bar'], 1, 65535);
  if (!values.resume) for (const path of outputs.all) refuseExisting(path, values.force ?? false);

  // CPU work first (weights, images, split), so a bad file fails before a device is requested.
  const vggNetwork = vgg ? await featureNetworkFromFile(vgg.path) : undefined;
  const loss = lossFrom(values, vggNetwork);
  const lpipsWeights = lpipsFiles ? await readLpipsFiles(lpipsFiles) : undefined;
  const model = values.resume
    ? await networkFromWeights(output)
    : values.weights
      ? await networkFromWeights(values.weights)
      : networkFromArch(values.arch!, channels, values.scale, seed);
  const degrade = values.degrade !== undefined ? oneOf(C, '--degrade', values.degrade, ['bicubic'] as const) : undefined;
  try {
    if (degrade && (model.scale === 1 || values.clean === undefined)) {
      throw new UsageError('--degrade bicubic makes the low-resolution images of --clean HR_DIR for a super-resolution network', C);
    }
    checkModelAgainstFlags(
      model,
      values.arch === undefined ? values.scale : undefined,
      values.clean !== undefined,
      noise !== undefined,
      degrade !== undefined,
    );
  } catch (e) {
    model.release();
    throw e;
  }
  const sr = model.scale > 1;
  const gray = values.gray ?? model.inChannels === 1;
  const read = self
    ? await readNoisyImages(values.images!, { ...(infoBar ? { infoBar } : {}), gray }, normalize)
    : await readTrainingExamples({
        ...(pairs ? { pairs } : { clean: values.clean! }),
        ...(values.masks !== undefined ? { masks: values.masks } : {}),
        ...(infoBar ? { infoBar } : {}),
        gray: values.gray ?? false,
        ...(sr ? { names: { input: 'low-resolution', target: 'high-resolution' } } : {}),
        ...(method === 'n2n' ? { names: { input: 'first acquisition', target: 'second acquisition' } } : {}),
      });
  // Noise2Noise: both acquisitions by their own percentiles, as denoise will normalise its input.
  const normalizedRead =
    normalize && !self
      ? read.map((ex) => ({
          ...ex,
          target: normalized(ex.target, normalize),
          ...(ex.input ? { input: normalized(ex.input, normalize) } : {}),
        }))
      : read;
  // --degrade bicubic: each high-resolution image cropped to a multiple of the scale, and its imresize(1/s).
  const examples = degrade
    ? normalizedRead.map((ex) => {
        const target = modCrop(ex.target, model.scale);
        const mask = ex.mask ? modCrop(ex.mask, model.scale) : undefined;
        return { ...ex, target, input: bicubicDownscale(target, model.scale), ...(mask ? { mask } : {}) };
      })
    : normalizedRead;
  const parts = share ? holdOut(examples.length, share, seed) : splitIndices(examples.length, split, seed);
  const pick = (indices: number[]): TrainingSet => ({ examples: indices.map((i) => examples[i]), ...(noise ? { noise } : {}) });
  const trainSet = pick(parts.train);
  const validation = parts.validation.length > 0 ? pick(parts.validation) : undefined;
  if (lpipsWeights && !validation) {
    const which = values.split ? ` ${values.split}` : '';
    throw new UsageError(
      `--lpips scores the validation images, and the split${which} leaves none of the ${examples.length} images for them`,
      C,
    );
  }

  const ctx = await getDefaultContext();
  const trainer = await Trainer.create(ctx, model, {
    batchShape: [batch, model.inChannels, patch, patch],
    ...(self ? { selfSupervised: self } : { loss }),
    optimizer,
    ...(clipGradNorm !== undefined ? { clipGradNorm } : {}),
  });
  if (resumed) {
    trainer.restoreOptimizerState(resumed.optimizer, resumed.numBatchesTracked);
    if (schedule && resumed.schedule) schedule.load(resumed.schedule);
  }
  const controller = new AbortController();
  const onSigint = () => controller.abort(new AbortedError('training (Ctrl-C)'));
  process.once('SIGINT', onSigint);
  const quiet = values.quiet ?? false;
  const interactive = process.stderr.isTTY && !quiet;
  const meta = {
    architecture: model.architecture,
    seed,
    test: parts.test.map((i) => examples[i].name),
    validation: parts.validation.map((i) => examples[i].name),
    method,
    ...(self ? { selfSupervised: self } : {}),
    ...(normalize ? { normalize } : {}),
  };
  let lpipsModel: Lpips | undefined;
  try {
    lpipsModel = lpipsWeights ? lpipsFromFiles(ctx, lpipsWeights) : undefined;
    const steps = values.steps !== undefined ? integerInRange(C, '--steps', values.steps, 1, 1 << 30) : undefined;
    const result = await trainer.fit(trainSet, {
      ...(values.epochs !== undefined ? { epochs: integerInRange(C, '--epochs', values.epochs, 1, 1 << 20) } : {}),
      // A self-supervised --steps run validates ten times (as fineTune), so the best checkpoint has a choice.
      ...(steps !== undefined ? { steps, ...(self ? { validateEvery: Math.max(1, Math.round(steps / 10)) } : {}) } : {}),
      // --minutes alone: as many steps as the time allows, validated every 100 and at the end.
      ...(minutes !== undefined ? { maxSeconds: minutes * 60 } : {}),
      ...(timeBudget !== undefined ? { steps: 1 << 30, validateEvery: 100 } : {}),
      augment,
      seed: seed + (resumed?.optimizer.step ?? 0),
      ...(validation ? { validation: { ...validation, ...(lpipsModel ? { lpips: lpipsModel } : {}) } } : {}),
      ...(schedule ? { schedule } : {}),
      ...(earlyStop !== undefined ? { earlyStoppingPatience: earlyStop } : {}),
      signal: controller.signal,
      onProgress: (p: FitProgress) => {
        if (quiet) return;
        const line = progressLine(p, timeBudget);
        if (interactive) process.stderr.write(`\r${line}\x1b[K`);
        else if (p.validation || p.step === p.totalSteps || p.step % 50 === 0) console.error(line);
      },
      onCheckpoint: (kind, state) => writeCheckpoints(outputs, kind, trainer, state, { ...meta, schedule: schedule?.state() }),
    });
    if (interactive) process.stderr.write('\n');
    if (!quiet) {
      const v = result.bestValidation;
      const best = v ? `; best validation ${scoresText(v, true)} at step ${v.step}` : '';
      console.log(
        `trained ${result.steps} steps (final loss ${result.lastLoss.toPrecision(4)})${best}${result.stoppedEarly ? ', stopped early' : ''}${result.outOfTime ? `, stopped at the ${minutes} min limit` : ''}; wrote ${output}`,
      );
    }
    return 0;
  } catch (e) {
    if (interactive) process.stderr.write('\n');
    if (e instanceof AbortedError && trainer.steps > 0) {
      console.error(`stopped after step ${trainer.steps}; the checkpoint is in ${output} (continue with --resume)`);
      return 130;
    }
    throw e;
  } finally {
    process.removeListener('SIGINT', onSigint);
    lpipsModel?.dispose();
    trainer.dispose();
    model.release();
    vggNetwork?.release();
  }
}
