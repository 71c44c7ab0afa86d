/**
 * Node entry: WebGPU from Dawn (the optional peer dependency `webgpu`), or a GPUDevice the caller passes in.
 * Adds file helpers for PNG images and checkpoints.
 */
import { readFile } from 'node:fs/promises';
import { type BuiltinModelName, BUILTIN_MODELS, createApi } from './api';
import { guardedAsync, IMAGES, NON_EMPTY_STRING, oneOf } from './check-args';
import { READ_IMAGE_OPTIONS, WRITE_IMAGE_OPTIONS } from './checked-exports';
import { CheckpointError } from './errors';
import { createNodeContext } from './gpu/node-gpu';
import * as files from './node-files';

export * from './exports';
export { createNodeContext, nodeGPU, releaseNodeGPU } from './gpu/node-gpu';

// The file helpers behind argument checks: a wrong path or options type is INVALID_INPUT, not IMAGE_FORMAT.
const READ_ARGS = [
  ['path', NON_EMPTY_STRING],
  ['options', READ_IMAGE_OPTIONS],
] as const;
export const readImageFile = guardedAsync('readImageFile', files.readImageFile, READ_ARGS);
export const readImageFilePages = guardedAsync('readImageFilePages', files.readImageFilePages, READ_ARGS);
export const writeImageFile = guardedAsync('writeImageFile', files.writeImageFile, [
  ['path', NON_EMPTY_STRING],
  ['image', IMAGES],
  ['options', WRITE_IMAGE_OPTIONS],
]);

/** The package's assets folder (one level above this module, both in src/ and in dist/). */
export function builtinWeightsPath(name: BuiltinModelName): URL {
  oneOf(Object.keys(BUILTIN_MODELS)).check(name, 'builtinWeightsPath', 'name');
  return new URL(`../assets/${BUILTIN_MODELS[name].file}`, import.meta.url);
}

const api = createApi({
  createContext: () => createNodeContext(),
  readBuiltinWeights: async (name) => new Uint8Array(await readFile(builtinWeightsPath(name))),
  async readWeightsFrom(path) {
    try {
      return new Uint8Array(await readFile(path));
    } catch (cause) {
      throw new CheckpointError('CHECKPOINT_FORMAT', `cannot read ${path}: ${(cause as Error).message}`, { cause });
    }
  },
});

export const { getDefaultContext, loadModel, loadBuiltinModel, denoise, upscale } = api;
