/**
 * The messages between a page and the training worker (train-worker.ts, built to dist/train-worker.js). The page
 * posts one `start` and may post `cancel`; the worker answers `started`, then `progress` after every step and a
 * `preview` now and then, and ends the run with exactly one of `done`, `cancelled` or `error`. Large arrays
 * (images, previews, checkpoint bytes) are transferred, not copied. A worker runs one training at a time and
 * can run another after the first has ended (it keeps its GPU device).
 *
 * Types only (plus the method list): pages without a bundler read it as documentation, TypeScript pages import it.
 */
import type { BuiltinModelName, FloatImage } from '../index';

/** The self-supervised methods (fineTune's), N2V2 first: the demo's default. */
export const TRAIN_METHODS = ['n2v2', 'n2v', 'neighbor2neighbor'] as const;
export type TrainMethod = (typeof TRAIN_METHODS)[number];

/**
 * Where the weights start: a built-in model (fine-tuned), a fresh N2V / N2V2 U-Net (CAREamics' defaults but for
 * what is given; seeded PyTorch initialisation), or a checkpoint's bytes (.pth or .safetensors of a denoiser).
 */
export type TrainInit =
  | { kind: 'builtin'; name: BuiltinModelName }
  | { kind: 'n2v-unet'; n2v2?: boolean; width?: number; depth?: number; seed?: number }
  | { kind: 'checkpoint'; bytes: ArrayBuffer | Uint8Array; name?: string };

/**
 * A training image: a file (PNG or TIFF at its bit depth, first page; other formats through the browser's
 * decoder, which the worker has too), or an image already decoded to planar floats in [0, 1].
 */
export type TrainImage = { name: string; file: Blob } | { name: string; image: FloatImage };

/** What fineTune is given (see FineTuneOptions); left out, its defaults. */
export interface TrainOptions {
  patch?: number;
  batch?: number;
  steps?: number;
  /** A wall-clock budget; with `steps` too, whichever ends the run first. */
  maxSeconds?: number;
  /** Adam's learning rate; default 4e-4 (n2v's) for a fresh network, 5e-5 when fine-tuning weights. */
  lr?: number;
  validationFraction?: number;
  seed?: number;
  /** N2V / N2V2: the share of blind-spot pixels per patch, in percent. */
  percentage?: number;
}

export interface StartMessage {
  type: 'start';
  images: TrainImage[];
  method: TrainMethod;
  init: TrainInit;
  options?: TrainOptions;
  /**
   * A preview every this many steps (default 25) and after the last: the validation that runs then leaves the
   * trained weights in the network, which a copy of it runs on the preview crop. Without `options.steps` (a time
   * budget alone) validation, and so the preview, comes every 50 steps.
   */
  previewEvery?: number;
  /** Side of the preview: a centre crop of the first image (default 128, at most the image). */
  previewSize?: number;
  /** 'auto' (default): an SEM info bar found at the bottom of an image is cut off before training; 'none': kept. */
  infoBar?: 'auto' | 'none';
}

export interface CancelMessage {
  type: 'cancel';
}

export type ToTrainWorker = StartMessage | CancelMessage;

/**
 * An error as plain data: the library's class name and stable `code` (a RestoreErrorCode: INVALID_INPUT,
 * IMAGE_FORMAT, GPU_UNAVAILABLE, …), or the name of anything else as both.
 */
export interface TrainWorkerError {
  name: string;
  code: string;
  message: string;
}

/** The run has begun: what is trained on what, and the noisy preview crop (the "before"). */
export interface StartedMessage {
  type: 'started';
  adapter: string;
  architecture: string;
  /** Learnable values and buffers of the network. */
  parameters: number;
  channels: number;
  images: { name: string; width: number; height: number; channels: number; infoBarRows?: number }[];
  before: FloatImage;
}

export interface ProgressMessage {
  type: 'progress';
  step: number;
  /** Number.MAX_SAFE_INTEGER when only a time budget was given. */
  totalSteps: number;
  loss: number;
  lr: number;
  etaSeconds: number;
  elapsedSeconds: number;
  /** The method's loss on the held-out images, on the steps that validated. */
  validationLoss?: number;
}

/** The preview crop through the network as trained up to `step` (planar floats, unclamped). */
export interface PreviewMessage {
  type: 'preview';
  step: number;
  image: FloatImage;
}

/** Something that did not stop the run (a preview that failed). */
export interface WarningMessage {
  type: 'warning';
  message: string;
}

export interface DoneMessage {
  type: 'done';
  steps: number;
  lastLoss: number;
  bestValidation?: { loss?: number; step: number };
  validationImages: string[];
  outOfTime: boolean;
  seconds: number;
  /** The trained state_dict as a .pth that PyTorch and this library load (trainedStateToPth). */
  pth: ArrayBuffer;
}

/** Stopped by `cancel`: the weights after the last finished step, when there was one. */
export interface CancelledMessage {
  type: 'cancelled';
  steps: number;
  seconds: number;
  pth?: ArrayBuffer;
}

export interface ErrorMessage {
  type: 'error';
  error: TrainWorkerError;
}

export type FromTrainWorker =
  StartedMessage | ProgressMessage | PreviewMessage | WarningMessage | DoneMessage | CancelledMessage | ErrorMessage;
