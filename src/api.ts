import { checkImageArgument, checkRunCallOptions, CONTEXT_CHOICE_FIELDS, LOAD_MODEL_FIELDS, WEIGHTS_SOURCE } from './api-checks';
import { checkOptionFields, oneOf, POSITIVE_INTEGER } from './check-args';
import { InvalidInputError } from './errors';
import { GPUContext } from './gpu/context';
import type { FloatImage, RasterImage } from './io/image';
import { type ArchitectureConfig, networkFromCheckpoint, networkFromStateDict } from './models/load';
import { RestorationModel, type RunOptions } from './runtime/restoration-model';
import { readCheckpoint } from './weights/checkpoint';

/** What differs between Node and the browser: where a default device and the built-in weights come from. */
export interface Environment {
  createContext(): Promise<GPUContext>;
  readBuiltinWeights(name: BuiltinModelName): Promise<Uint8Array>;
  /** Checkpoint bytes named by a string: a file path in Node, a URL in the browser. */
  readWeightsFrom?(location: string): Promise<Uint8Array>;
}

/** A checkpoint (.pth or .safetensors): its bytes, a Blob/File, or a path (Node) / URL (browser). */
export type WeightsSource = Uint8Array | ArrayBuffer | Blob | string;

/** Models shipped inside the package. */
export const BUILTIN_MODELS = {
  dncnn_25: { file: 'dncnn_25.pth', description: 'DnCNN-17, grayscale, Gaussian σ=25 (KAIR, MIT)' },
} as const;
export type BuiltinModelName = keyof typeof BUILTIN_MODELS;
export const DEFAULT_MODEL: BuiltinModelName = 'dncnn_25';
const BUILTIN_NAME = oneOf(Object.keys(BUILTIN_MODELS));

export interface ContextChoice {
  /** Run on this context (shares its pipelines and buffers). */
  context?: GPUContext;
  /** Run on the caller's device (e.g. one created by the app, or a Dawn device in Node). */
  device?: GPUDevice;
}

export interface LoadModelOptions extends ContextChoice {
  name?: string;
  /** Skip auto-detection from the state_dict keys. */
  architecture?: ArchitectureConfig;
}

export interface DenoiseOptions extends ContextChoice, RunOptions {
  /** A loaded model; otherwise `weights`, otherwise the built-in model. */
  model?: RestorationModel;
  /** A checkpoint to load for this call. */
  weights?: WeightsSource;
  builtin?: BuiltinModelName;
}

export interface UpscaleOptions extends ContextChoice, RunOptions {
  /** A loaded super-resolution model, or the checkpoint of one (there is no built-in upscaler). */
  model?: RestorationModel;
  weights?: WeightsSource;
  /** When given, the model's scale must equal it. */
  scale?: number;
}

function isRaster(image: RasterImage | FloatImage): image is RasterImage {
  return !(image.data instanceof Float32Array);
}

export function createApi(env: Environment) {
  let defaultContext: Promise<GPUContext> | undefined;
  const contextsByDevice = new WeakMap<GPUDevice, GPUContext>();
  const builtinByContext = new WeakMap<GPUContext, Map<BuiltinModelName, Promise<RestorationModel>>>();

  /** The library's own device, created on first use and again after it was lost. */
  async function getDefaultContext(): Promise<GPUContext> {
    if (defaultContext) {
      const ctx = await defaultContext.catch(() => undefined);
      if (ctx && !ctx.isLost) return ctx;
    }
    defaultContext = env.createContext();
    defaultContext.catch(() => (defaultContext = undefined));
    return defaultContext;
  }

  async function resolveContext(choice: ContextChoice): Promise<GPUContext> {
    if (choice.context) return choice.context;
    if (choice.device) {
      let ctx = contextsByDevice.get(choice.device);
      if (!ctx) {
        ctx = new GPUContext(choice.device);
        contextsByDevice.set(choice.device, ctx);
      }
      return ctx;
    }
    return getDefaultContext();
  }

  /** Loads any supported checkpoint; the network is recognised from its keys unless `architecture` says. */
  async function loadModel(weights: WeightsSource, options: LoadModelOptions = {}): Promise<RestorationModel> {
    WEIGHTS_SOURCE.check(weights, 'loadModel', 'weights');
    checkOptionFields('loadModel', options, LOAD_MODEL_FIELDS);
    // The checkpoint before the device: a missing or wrong file fails without starting a GPU.
    const name = options.name ?? (typeof weights === 'string' ? weights : ((weights as Partial<File>).name ?? 'checkpoint'));
    let network;
    if (typeof weights === 'string') {
      if (!env.readWeightsFrom)
        throw new InvalidInputError(`weights '${weights}': this environment cannot read checkpoints by name; pass the bytes`);
      network = networkFromCheckpoint(await env.readWeightsFrom(weights), { name, architecture: options.architecture });
    } else if (weights instanceof Uint8Array || weights instanceof ArrayBuffer) {
      network = networkFromCheckpoint(weights, { name, architecture: options.architecture });
    } else {
      network = networkFromStateDict(await readCheckpoint(weights, { name }), options.architecture, name);
    }
    let ctx: GPUContext;
    try {
      ctx = await resolveContext(options);
    } catch (e) {
      network.release();
      throw e;
    }
    return new RestorationModel(ctx, network, name);
  }

  /** A built-in model on a context; loaded once per context and shared. */
  async function loadBuiltinModel(name: BuiltinModelName = DEFAULT_MODEL, choice: ContextChoice = {}): Promise<RestorationModel> {
    if (typeof name !== 'string' || !Object.hasOwn(BUILTIN_MODELS, name)) {
      throw new InvalidInputError(`unknown built-in model '${String(name)}'; available: ${Object.keys(BUILTIN_MODELS).join(', ')}`);
    }
    checkOptionFields('loadBuiltinModel', choice, CONTEXT_CHOICE_FIELDS, 'choice');
    const ctx = await resolveContext(choice);
    let perCtx = builtinByContext.get(ctx);
    if (!perCtx) builtinByContext.set(ctx, (perCtx = new Map<BuiltinModelName, Promise<RestorationModel>>()));
    let model = perCtx.get(name);
    if (!model) {
      model = env.readBuiltinWeights(name).then((bytes) => new RestorationModel(ctx, networkFromCheckpoint(bytes, { name }), name));
      perCtx.set(name, model);
      model.catch(() => perCtx.delete(name));
    }
    return model;
  }

  /**
   * Denoises an image. Integer images (8/16-bit, interleaved) come back with the same bit depth; float images
   * (planar CHW) come back as float, unclamped.
   */
  async function denoise(image: RasterImage, options?: DenoiseOptions): Promise<RasterImage>;
  async function denoise(image: FloatImage, options?: DenoiseOptions): Promise<FloatImage>;
  async function denoise(image: RasterImage | FloatImage, options: DenoiseOptions = {}): Promise<RasterImage | FloatImage> {
    // Bad arguments fail before a checkpoint is read or a device requested.
    checkImageArgument('denoise', image);
    checkRunCallOptions('denoise', options, { builtin: BUILTIN_NAME });
    let model = options.model;
    let owned = false;
    if (!model && options.weights) {
      model = await loadModel(options.weights, options);
      owned = true;
    }
    model ??= await loadBuiltinModel(options.builtin ?? DEFAULT_MODEL, options);
    try {
      if (isRaster(image)) return await model.run(image, options);
      return (await model.runFloat(image, options)).image;
    } finally {
      if (owned) model.dispose();
    }
  }

  /** Super-resolves an image with an SR model (MSRResNet, SRResNet, RRDBNet, SINSR …); same conventions as `denoise`. */
  async function upscale(image: RasterImage, options: UpscaleOptions): Promise<RasterImage>;
  async function upscale(image: FloatImage, options: UpscaleOptions): Promise<FloatImage>;
  async function upscale(image: RasterImage | FloatImage, options: UpscaleOptions): Promise<RasterImage | FloatImage> {
    checkImageArgument('upscale', image);
    checkRunCallOptions('upscale', options, { scale: POSITIVE_INTEGER });
    let model = options?.model;
    let owned = false;
    if (!model) {
      // Not a type error: no options at all is the common mistake here, and this says what is missing.
      if (!options?.weights) throw new InvalidInputError('upscale needs `model` or `weights` (a super-resolution checkpoint)');
      model = await loadModel(options.weights, options);
      owned = true;
    }
    try {
      const scale = model.info.scale;
      if (scale <= 1)
        throw new InvalidInputError(`model '${model.name}' (${model.info.architecture}) does not upscale (scale ${scale}); use denoise`);
      if (options.scale !== undefined && options.scale !== scale) {
        throw new InvalidInputError(`model '${model.name}' upscales ×${scale}, not ×${options.scale}`);
      }
      if (isRaster(image)) return await model.run(image, options);
      return (await model.runFloat(image, options)).image;
    } finally {
      if (owned) model.dispose();
    }
  }

  return { getDefaultContext, loadModel, loadBuiltinModel, denoise, upscale };
}
