import { InvalidInputError } from './errors';
import { GPUContext } from './gpu/context';
import type { FloatImage, RasterImage } from './io/image';
import { type ArchitectureConfig, networkFromCheckpoint } from './models/load';
import { RestorationModel } from './models/restoration-model';

/** What differs between Node and the browser: where a default device and the built-in weights come from. */
export interface Environment {
  createContext(): Promise<GPUContext>;
  readBuiltinWeights(name: BuiltinModelName): Promise<Uint8Array>;
}

/** Models shipped inside the package. */
export const BUILTIN_MODELS = {
  dncnn_25: { file: 'dncnn_25.pth', description: 'DnCNN-17, grayscale, Gaussian σ=25 (KAIR, MIT)' },
} as const;
export type BuiltinModelName = keyof typeof BUILTIN_MODELS;
export const DEFAULT_MODEL: BuiltinModelName = 'dncnn_25';

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

export interface DenoiseOptions extends ContextChoice {
  /** A loaded model; otherwise `weights`, otherwise the built-in model. */
  model?: RestorationModel;
  /** Checkpoint bytes (.pth) to load for this call. */
  weights?: Uint8Array | ArrayBuffer;
  builtin?: BuiltinModelName;
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

  async function loadModel(weights: Uint8Array | ArrayBuffer, options: LoadModelOptions = {}): Promise<RestorationModel> {
    const ctx = await resolveContext(options);
    const name = options.name ?? 'checkpoint';
    const network = networkFromCheckpoint(weights, { name, architecture: options.architecture });
    return new RestorationModel(ctx, network, name);
  }

  /** A built-in model on a context; loaded once per context and shared. */
  async function loadBuiltinModel(name: BuiltinModelName = DEFAULT_MODEL, choice: ContextChoice = {}): Promise<RestorationModel> {
    if (!(name in BUILTIN_MODELS)) {
      throw new InvalidInputError(`unknown built-in model '${name}'; available: ${Object.keys(BUILTIN_MODELS).join(', ')}`);
    }
    const ctx = await resolveContext(choice);
    let perCtx = builtinByContext.get(ctx);
    if (!perCtx) builtinByContext.set(ctx, (perCtx = new Map()));
    let model = perCtx.get(name);
    if (!model) {
      model = env
        .readBuiltinWeights(name)
        .then((bytes) => new RestorationModel(ctx, networkFromCheckpoint(bytes, { name }), name));
      perCtx.set(name, model);
      model.catch(() => perCtx!.delete(name));
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
    let model = options.model;
    let owned = false;
    if (!model && options.weights) {
      model = await loadModel(options.weights, options);
      owned = true;
    }
    model ??= await loadBuiltinModel(options.builtin ?? DEFAULT_MODEL, options);
    try {
      if (isRaster(image)) return await model.run(image);
      return (await model.runFloat(image)).image;
    } finally {
      if (owned) model.dispose();
    }
  }

  return { getDefaultContext, loadModel, loadBuiltinModel, denoise };
}
