import { describe, expect, it } from 'vitest';
import { createApi } from '../src/api';
import { GPUUnavailableError } from '../src/errors';
import { loadDnCNNFixture } from './helpers/fixtures';
import { getTestContext } from './helpers/gpu';
import { relL2 } from './helpers/random';

describe('public API', () => {
  // An environment with no device of its own: everything must run on the device the caller passes.
  const api = createApi({
    createContext: () => Promise.reject(new GPUUnavailableError('this environment has no GPU')),
    readBuiltinWeights: () => Promise.reject(new Error('not used')),
  });

  it("denoise() runs on a caller's GPUDevice with the caller's weights", async () => {
    const ctx = await getTestContext();
    const f = loadDnCNNFixture('tiny_r_gray');
    const [, c, h, w] = f.inputShape;
    const out = await api.denoise({ width: w, height: h, channels: c, data: f.input }, { device: ctx.device, weights: f.weights });
    expect(relL2(out.data, f.output)).toBeLessThanOrEqual(1e-4);
  });

  it('denoise() on 8-bit integer images returns the same bit depth and size', async () => {
    const ctx = await getTestContext();
    const f = loadDnCNNFixture('tiny_r_gray');
    const [, , h, w] = f.inputShape;
    const raster = {
      width: w,
      height: h,
      channels: 1 as const,
      bitDepth: 8 as const,
      data: Uint8Array.from(f.input, (v) => Math.round(v * 255)),
    };
    const out = await api.denoise(raster, { context: ctx, weights: f.weights });
    expect([out.width, out.height, out.channels, out.bitDepth]).toEqual([w, h, 1, 8]);
    expect(out.data).toBeInstanceOf(Uint8Array);
  });

  it('without a device, the environment error surfaces as a typed error', async () => {
    const f = loadDnCNNFixture('tiny_r_gray');
    await expect(
      api.denoise({ width: 1, height: 1, channels: 1, data: new Float32Array(1) }, { weights: f.weights }),
    ).rejects.toBeInstanceOf(GPUUnavailableError);
  });

  it('names unknown built-in models', async () => {
    const ctx = await getTestContext();
    await expect(api.loadBuiltinModel('nope' as 'dncnn_25', { context: ctx })).rejects.toThrow(/unknown built-in model 'nope'/);
  });
});
