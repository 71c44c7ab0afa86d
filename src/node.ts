/**
 * Node entry: WebGPU from Dawn (the optional peer dependency `webgpu`), or a GPUDevice the caller passes in.
 * Adds file helpers for PNG images and checkpoints.
 */
import { readFile } from 'node:fs/promises';
import { type BuiltinModelName, BUILTIN_MODELS, createApi } from './api';
import { CheckpointError } from './errors';
import { createNodeContext } from './gpu/node-gpu';

export * from './exports';
export { createNodeContext, nodeGPU, releaseNodeGPU } from './gpu/node-gpu';
export { readImageFile, readImageFilePages, writeImageFile } from './node-files';

/** The package's assets folder (one level above this module, both in src/ and in dist/). */
export function builtinWeightsPath(name: BuiltinModelName): URL {
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
