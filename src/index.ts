/**
 * Browser (and any web-like runtime) entry: WebGPU from `navigator.gpu`, or a GPUDevice the caller passes in.
 * The built-in weights are fetched from the package's assets folder next to this module.
 */
import { type BuiltinModelName, BUILTIN_MODELS, createApi } from './api';
import { CheckpointError } from './errors';
import { requestContext } from './gpu/context';

export * from './exports';

const api = createApi({
  createContext: () => requestContext(typeof navigator === 'undefined' ? undefined : navigator.gpu),
  async readBuiltinWeights(name: BuiltinModelName) {
    const url = new URL(`../assets/${BUILTIN_MODELS[name].file}`, import.meta.url);
    const res = await fetch(url);
    if (!res.ok) throw new CheckpointError('CHECKPOINT_FORMAT', `could not fetch built-in weights ${url}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  },
  async readWeightsFrom(url) {
    const res = await fetch(url);
    if (!res.ok) throw new CheckpointError('CHECKPOINT_FORMAT', `could not fetch weights ${url}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  },
});

export const { getDefaultContext, loadModel, loadBuiltinModel, denoise, upscale } = api;
