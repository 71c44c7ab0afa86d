/**
 * Checks of the arguments of `denoise`, `upscale` and `loadModel` (api.ts), made before a checkpoint is read
 * or a device requested, so that a wrong call fails at once with InvalidInputError naming the argument.
 */
import { anyOf, type ArgRule, BYTES_OR_BUFFER, checkOptionFields, IMAGE, instanceOf, NON_EMPTY_STRING, rule, STRING } from './check-args';
import { RUN_OPTION_FIELDS } from './runtime/check-run-options';
import { GPU_DEVICE, GPUContext } from './gpu/context';
import { validateFloat, validateRaster } from './io/image';
import { RestorationModel } from './runtime/restoration-model';

export const CONTEXT_CHOICE_FIELDS: Readonly<Record<string, ArgRule>> = {
  context: instanceOf(GPUContext),
  device: GPU_DEVICE,
};

const isBlob = (v: unknown) => typeof Blob !== 'undefined' && v instanceof Blob;

/** A checkpoint: bytes, a Blob/File, or a path / URL. */
export const WEIGHTS_SOURCE = anyOf(
  'checkpoint bytes (Uint8Array or ArrayBuffer), a Blob, or a path/URL string',
  BYTES_OR_BUFFER,
  rule('a Blob', isBlob),
  NON_EMPTY_STRING,
);

export const ARCHITECTURE_CONFIG = rule(
  "an object { architecture: 'DnCNN' | … , config? }",
  (v) => typeof v === 'object' && v !== null && typeof (v as { architecture?: unknown }).architecture === 'string',
);

export const MODEL = instanceOf(RestorationModel, 'a RestorationModel (from loadModel)');

export const LOAD_MODEL_FIELDS: Readonly<Record<string, ArgRule>> = {
  ...CONTEXT_CHOICE_FIELDS,
  name: STRING,
  architecture: ARCHITECTURE_CONFIG,
};

/**
 * The image of denoise/upscale: an interleaved 8/16-bit RasterImage, or a planar FloatImage. Float32Array data
 * means a FloatImage (as the run dispatches), and so does an object without `bitDepth`, so that its message
 * talks about the float image it was meant to be.
 */
export function checkImageArgument(where: string, image: unknown): void {
  IMAGE.check(image, where, 'image');
  const { data, bitDepth } = image as { data?: unknown; bitDepth?: unknown };
  if (data instanceof Float32Array || bitDepth === undefined) validateFloat(image as never, `${where}: image`);
  else validateRaster(image as never, `${where}: image`);
}

/** The options of denoise/upscale; `extra` holds the fields only one of them has. */
export function checkRunCallOptions(where: string, options: unknown, extra: Readonly<Record<string, ArgRule>>): void {
  const fields = { ...RUN_OPTION_FIELDS, ...CONTEXT_CHOICE_FIELDS, model: MODEL, weights: WEIGHTS_SOURCE, ...extra };
  checkOptionFields(where, options, fields);
}
