/**
 * What a `start` message asks for, checked field by field (it comes from another thread, untyped), then turned
 * into what fineTune takes: the images decoded, cut and converted to the network's channels, and the network to
 * start from. Bad requests fail with the library's typed errors (INVALID_INPUT, IMAGE_FORMAT, CHECKPOINT_*).
 */
import {
  type AnyRasterImage,
  BUILTIN_MODELS,
  type BuiltinModelName,
  CheckpointError,
  conformChannels,
  cropRows,
  detectInfoBar,
  type FloatImage,
  imagesFromFile,
  initializeParameters,
  InvalidInputError,
  type NamedImage,
  type Network,
  N2VUNet,
  n2vUNetConfig,
  networkFromCheckpoint,
  rasterToFloat,
  validateFloat,
} from '../index';
import { type StartMessage, TRAIN_METHODS, type TrainImage, type TrainInit, type TrainOptions } from './train-protocol';

/** What the worker hands to fineTune (checked there); anything else is refused, not silently passed on. */
const TRAIN_OPTION_KEYS = [
  'patch',
  'batch',
  'steps',
  'maxSeconds',
  'lr',
  'validationFraction',
  'seed',
  'percentage',
] as const satisfies readonly (keyof TrainOptions)[];
const DEFAULT_PREVIEW_EVERY = 25;
const DEFAULT_PREVIEW_SIZE = 128;

/** The start message with its defaults filled in. */
export type TrainRequest = Required<
  Pick<StartMessage, 'images' | 'method' | 'init' | 'options' | 'previewEvery' | 'previewSize' | 'infoBar'>
>;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A value from the message, for an error message. */
function shown(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v !== 'object' || v === null) return String(v);
  return Array.isArray(v) ? 'an array' : 'an object';
}
const isPositiveInteger = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;

/** Checks what fineTune does not check itself: the images, the method, the starting weights and the preview. */
export function checkStart(msg: Record<string, unknown>): TrainRequest {
  const { images, method, init, options = {}, previewEvery = DEFAULT_PREVIEW_EVERY, previewSize = DEFAULT_PREVIEW_SIZE } = msg;
  const infoBar = msg.infoBar ?? 'auto';
  if (!Array.isArray(images) || images.length === 0) throw new InvalidInputError('start: images must be a non-empty array');
  images.forEach((img, i) => checkImage(img, i));
  if (!(TRAIN_METHODS as readonly unknown[]).includes(method)) {
    throw new InvalidInputError(`start: method must be one of ${TRAIN_METHODS.join(', ')}, got ${shown(method)}`);
  }
  checkInit(init);
  if (!isObject(options)) throw new InvalidInputError('start: options must be an object');
  const unknown = Object.keys(options).filter((k) => !(TRAIN_OPTION_KEYS as readonly string[]).includes(k));
  if (unknown.length > 0) {
    throw new InvalidInputError(`start: unknown option(s) ${unknown.join(', ')} (known: ${TRAIN_OPTION_KEYS.join(', ')})`);
  }
  if (options.lr !== undefined && !(typeof options.lr === 'number' && options.lr > 0 && Number.isFinite(options.lr))) {
    throw new InvalidInputError(`start: options.lr must be a number > 0, got ${shown(options.lr)}`);
  }
  if (!isPositiveInteger(previewEvery))
    throw new InvalidInputError(`start: previewEvery must be an integer > 0, got ${shown(previewEvery)}`);
  if (!isPositiveInteger(previewSize)) throw new InvalidInputError(`start: previewSize must be an integer > 0, got ${shown(previewSize)}`);
  if (infoBar !== 'auto' && infoBar !== 'none')
    throw new InvalidInputError(`start: infoBar must be 'auto' or 'none', got ${shown(infoBar)}`);
  return {
    images: images as TrainImage[],
    method: method as TrainRequest['method'],
    init: init as TrainInit,
    options,
    previewEvery,
    previewSize,
    infoBar,
  };
}

function checkImage(img: unknown, i: number): void {
  const what = `start: images[${i}]`;
  if (!isObject(img) || typeof img.name !== 'string') throw new InvalidInputError(`${what} must be { name, file } or { name, image }`);
  if ('file' in img) {
    if (!(img.file instanceof Blob)) throw new InvalidInputError(`${what}.file must be a File or Blob`);
  } else if ('image' in img) {
    validateFloat(img.image as FloatImage, `${what}.image`);
  } else {
    throw new InvalidInputError(`${what} (${img.name}) has neither a file nor an image`);
  }
}

function checkInit(init: unknown): void {
  if (!isObject(init)) throw new InvalidInputError('start: init must be an object with a kind');
  switch (init.kind) {
    case 'builtin':
      if (typeof init.name !== 'string' || !Object.hasOwn(BUILTIN_MODELS, init.name)) {
        throw new InvalidInputError(
          `start: unknown built-in model '${shown(init.name)}'; available: ${Object.keys(BUILTIN_MODELS).join(', ')}`,
        );
      }
      return;
    case 'n2v-unet':
      for (const key of ['width', 'depth'] as const) {
        if (init[key] !== undefined && !isPositiveInteger(init[key])) {
          throw new InvalidInputError(`start: init.${key} must be an integer > 0, got ${shown(init[key])}`);
        }
      }
      if (init.seed !== undefined && !Number.isInteger(init.seed)) throw new InvalidInputError(`start: init.seed must be an integer`);
      return;
    case 'checkpoint':
      if (!(init.bytes instanceof ArrayBuffer || init.bytes instanceof Uint8Array)) {
        throw new InvalidInputError('start: init.bytes must be the bytes of a checkpoint (ArrayBuffer or Uint8Array)');
      }
      return;
    default:
      throw new InvalidInputError(`start: init.kind must be 'builtin', 'n2v-unet' or 'checkpoint', got ${shown(init.kind)}`);
  }
}

/** A decoded image before the channel conversion (which depends on the network). */
export interface DecodedImage {
  name: string;
  image: AnyRasterImage | FloatImage;
  infoBarRows?: number;
}

/** Decodes the files (first page, alpha dropped) and cuts SEM info bars off when asked. */
export async function decodeImages(images: readonly TrainImage[], infoBar: 'auto' | 'none'): Promise<DecodedImage[]> {
  const out: DecodedImage[] = [];
  for (const input of images) {
    if ('image' in input) {
      out.push({ name: input.name, image: input.image });
      continue;
    }
    const { pages } = await imagesFromFile(input.file, { name: input.name, page: 0, alpha: 'drop' });
    const image = pages[0].image;
    const bar = infoBar === 'auto' ? detectInfoBar(image) : undefined;
    out.push(bar ? { name: input.name, image: cropRows(image, 0, bar.top), infoBarRows: bar.rows } : { name: input.name, image });
  }
  return out;
}

/** The images as planar floats in [0, 1] with the network's channels (RGB to gray by BT.601, gray to RGB by copy). */
export function toTrainingImages(decoded: readonly DecodedImage[], channels: number): NamedImage[] {
  return decoded.map(({ name, image }) => {
    // Rasters (8/16-bit, and float TIFFs: interleaved) carry a bit depth; planar float images do not.
    const float = 'bitDepth' in image ? rasterToFloat(image) : image;
    return { name, image: conformChannels(float, channels, 'convert', `the network (${channels} channel(s))`) };
  });
}

/**
 * The network to train: the built-in weights (fetched from the package's assets folder, which sits next to
 * dist/ as it does for the browser bundle), a fresh U-Net with `channels` in and out, or a checkpoint's network.
 * Only denoisers (same size, same channels out as in) can be trained on noisy images alone.
 */
export async function initialNetwork(init: TrainInit, channels: number): Promise<Network> {
  let network: Network;
  switch (init.kind) {
    case 'builtin':
      network = networkFromCheckpoint(await builtinWeights(init.name), { name: init.name });
      break;
    case 'n2v-unet':
      network = new N2VUNet(
        n2vUNetConfig(channels, channels, {
          n2v2: init.n2v2 ?? true,
          ...(init.width !== undefined ? { numChannelsInit: init.width } : {}),
          ...(init.depth !== undefined ? { depth: init.depth } : {}),
        }),
      );
      initializeParameters(network, init.seed ?? 0);
      break;
    case 'checkpoint':
      network = networkFromCheckpoint(init.bytes, { name: init.name ?? 'checkpoint' });
      break;
  }
  if (network.scale !== 1 || network.inChannels !== network.outChannels) {
    network.release();
    throw new InvalidInputError(
      `${network.architecture} (×${network.scale}, ${network.inChannels} → ${network.outChannels} channels) is not a denoiser; ` +
        'self-supervised training needs one that keeps the size and the channels',
    );
  }
  return network;
}

async function builtinWeights(name: BuiltinModelName): Promise<Uint8Array> {
  // Resolved against the built worker (dist/train-worker.js), as the browser bundle resolves its own.
  const url = new URL(`../assets/${BUILTIN_MODELS[name].file}`, import.meta.url);
  const res = await fetch(url);
  if (!res.ok) throw new CheckpointError('CHECKPOINT_FORMAT', `could not fetch built-in weights ${url}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}
