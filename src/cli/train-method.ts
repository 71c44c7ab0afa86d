/**
 * `webgpu-restore train --method`: how the network learns. 'supervised' (the default) from noisy/clean pairs or
 * clean images with synthetic noise; 'n2n' (Noise2Noise) from pairs of two noisy acquisitions of the same field,
 * the second the target; 'n2v', 'n2v2' and 'nb2nb' (Neighbor2Neighbor) from noisy images alone (`--images`),
 * whose percentile normalisation (`--normalize`) goes into the sidecar for `denoise` to repeat.
 */
import { InvalidInputError } from '../errors';
import { type FloatImage } from '../io/image';
import { checkPercentileRange, type PercentileRange, percentileNormalize } from '../io/normalize';
import type { StructMask } from '../training/data/blind-spot';
import { shuffled, type SplitFractions } from '../training/data/split';
import type { TrainingExample } from '../training/data/training-set';
import type { SelfSupervision } from '../training/self-supervision';
import { oneOf, percentileRange, positiveNumber } from './args';
import { UsageError } from './errors';
import { collectInputs } from './inputs';
import { readFloat, type TrainDataOptions } from './train-data';

const C = 'train';

export const TRAIN_METHODS = ['supervised', 'n2n', 'n2v', 'n2v2', 'nb2nb'] as const;
export type TrainMethod = (typeof TRAIN_METHODS)[number];

/** n2v's learning rate (Adam), the self-supervised default when `--lr` is not given. */
export const SELF_SUPERVISED_LR = 4e-4;

export function methodFrom(text: string | undefined): TrainMethod {
  return oneOf(C, '--method', text ?? 'supervised', TRAIN_METHODS);
}

/** The trainer's self-supervision for a method (undefined for supervised and Noise2Noise), with `--struct`. */
export function selfSupervisionFrom(method: TrainMethod, structText: string | undefined): SelfSupervision | undefined {
  const struct = structText !== undefined ? structFrom(structText) : undefined;
  if (struct && method !== 'n2v' && method !== 'n2v2') throw new UsageError('--struct is structN2V: give it with --method n2v or n2v2', C);
  switch (method) {
    case 'n2v':
    case 'n2v2':
      return { method, ...(struct ? { struct } : {}) };
    case 'nb2nb':
      return { method: 'neighbor2neighbor' };
    default:
      return undefined;
  }
}

/** `--struct horizontal:5` (axis and odd span 3–15) for line-correlated noise. */
function structFrom(text: string): StructMask {
  const [axis, spanText = '5'] = text.split(':', 2);
  const span = Number(spanText);
  if ((axis !== 'horizontal' && axis !== 'vertical') || !Number.isInteger(span) || span < 3 || span > 15 || span % 2 === 0) {
    throw new UsageError(`--struct needs horizontal:SPAN or vertical:SPAN with an odd SPAN from 3 to 15, got '${text}'`, C);
  }
  return { axis, span };
}

/** `--val 10%` or `--val 0.1`: that share of whole images held out for validation, no test split. */
export function validationShareFrom(text: string): SplitFractions {
  const percent = text.endsWith('%');
  const value = positiveNumber(C, '--val', percent ? text.slice(0, -1) : text) / (percent ? 100 : 1);
  if (!(value < 1)) throw new UsageError(`--val must leave images to train on (below 100 %), got '${text}'`, C);
  return { train: 1 - value, validation: value, test: 0 };
}

/**
 * Whole images held out for validation by a `--val` share (or the self-supervised default): at least one when
 * there are two or more, so a handful of images still gets a validation loss, as fineTune holds them out; a
 * single image validates on itself (the only signal there is). No test images.
 */
export function holdOut(count: number, share: SplitFractions, seed: number): { train: number[]; validation: number[]; test: number[] } {
  const order = shuffled(count, seed);
  if (count < 2) return { train: order, validation: share.validation > 0 ? order : [], test: [] };
  const held = share.validation > 0 ? Math.min(count - 1, Math.max(1, Math.round(share.validation * count))) : 0;
  return { train: order.slice(held), validation: order.slice(0, held), test: [] };
}

/** How a run learns, as --resume must continue it: the method, its self-supervision and the normalisation. */
export interface LearningSettings {
  method: TrainMethod;
  self?: SelfSupervision;
  normalize?: PercentileRange;
}

/**
 * `--resume` goes on the way the earlier run learnt (its sidecar): what the flags leave out comes from there, and
 * a flag that says otherwise is an error, so a resumed run never drops the normalisation `denoise -w` applies.
 */
export function resumedSettings(
  flags: { method?: string; struct?: string; normalize?: string },
  stored: { method?: string; selfSupervised?: object; normalize?: PercentileRange },
  sidecar: string,
): LearningSettings {
  const method = methodFrom(stored.method);
  if (flags.method !== undefined && methodFrom(flags.method) !== method) {
    throw new UsageError(`--resume: ${sidecar} says the run trained by --method ${method}, not ${flags.method}`, C);
  }
  const storedSelf = stored.selfSupervised as SelfSupervision | undefined;
  let self = storedSelf;
  if (flags.struct !== undefined) {
    self = selfSupervisionFrom(method, flags.struct);
    if (JSON.stringify(self) !== JSON.stringify(storedSelf)) {
      const had =
        storedSelf && 'struct' in storedSelf && storedSelf.struct ? `${storedSelf.struct.axis}:${storedSelf.struct.span}` : 'none';
      throw new UsageError(`--resume: ${sidecar} says the run trained with --struct ${had}, not ${flags.struct}`, C);
    }
  }
  if (self === undefined) self = selfSupervisionFrom(method, undefined);
  const normalize = flags.normalize !== undefined ? normalizeFrom(flags.normalize) : stored.normalize;
  if (JSON.stringify(normalize) !== JSON.stringify(stored.normalize)) {
    const had = stored.normalize ? `${stored.normalize.low},${stored.normalize.high}` : 'none';
    throw new UsageError(`--resume: ${sidecar} says the images were normalised with --normalize ${had}, not ${flags.normalize}`, C);
  }
  return { method, ...(self ? { self } : {}), ...(normalize ? { normalize } : {}) };
}

export function normalizeFrom(text: string | undefined): PercentileRange | undefined {
  return text === undefined ? undefined : percentileRange(C, '--normalize', text);
}

/** The image's own percentiles mapped to 0 and 1 (CSBDeep), as `denoise --normalize` maps its inputs. */
export function normalized(image: FloatImage, range: PercentileRange): FloatImage {
  return percentileNormalize(image, { pLow: range.low, pHigh: range.high }).image;
}

/**
 * The noisy images of `--images` (a folder, a glob or a file; PNG/TIFF at their bit depth, first page, info bar
 * cut off, sizes may differ) as examples whose input is their target: the self-supervised batches read the
 * input, and validation scores such an example by the method's loss.
 */
export async function readNoisyImages(pattern: string, options: TrainDataOptions, normalize?: PercentileRange): Promise<TrainingExample[]> {
  const { files, problems } = collectInputs([pattern], () => false);
  if (problems.length > 0) throw new UsageError(`--images ${pattern}: ${problems[0].message}`, C);
  const examples: TrainingExample[] = [];
  for (const path of files) {
    let image = await readFloat(path, options);
    if (normalize) image = normalized(image, normalize);
    const name = path.split(/[\\/]/).pop()!;
    examples.push({ name, target: image, input: image });
  }
  return examples;
}

/** What the sidecar beside a trained .pth says about its inputs: the percentiles `denoise` must normalise with. */
export function sidecarNormalization(json: unknown, path: string): PercentileRange | undefined {
  const normalize = (json as { normalize?: unknown } | null)?.normalize;
  if (normalize === undefined) return undefined;
  try {
    return checkPercentileRange(normalize, `${path} normalize`);
  } catch (e) {
    throw new InvalidInputError(`${path}: its normalize entry is not { low, high } percentiles (${(e as Error).message})`);
  }
}
