import { describe, expect, it } from 'vitest';
import { upscale, loadModel } from '../src/node';
import { writeSafetensors } from '../src/weights/safetensors';
import { readCheckpoint } from '../src/weights/checkpoint';
import { REPO, readBytes, readF32 } from './helpers/fixtures';
import { getTestContext } from './helpers/gpu';
import { relL2 } from './helpers/random';

const dir = new URL('test/fixtures/msrresnet/', REPO);
const meta = JSON.parse(new TextDecoder().decode(readBytes(new URL('tiny_x2.json', dir))));
const [, c, h, w] = meta.inputShape as number[];
const input = { width: w, height: h, channels: c, data: readF32(new URL('tiny_x2.input.f32', dir)) };
const expected = readF32(new URL('tiny_x2.output.f32', dir));
const checkpointPath = new URL('tiny_x2.pth', dir).pathname;

describe('upscale() and loadModel() sources', () => {
  it('upscales with a checkpoint given by path, matching PyTorch', async () => {
    const ctx = await getTestContext();
    const out = await upscale(input, { context: ctx, weights: checkpointPath, scale: 2 });
    expect([out.width, out.height]).toEqual([w * 2, h * 2]);
    expect(relL2(out.data, expected)).toBeLessThanOrEqual(1e-4);
  });

  it('loads the same network from a Blob and from safetensors bytes', async () => {
    const ctx = await getTestContext();
    const pth = readBytes(new URL('tiny_x2.pth', dir));
    const fromBlob = await loadModel(new Blob([pth.slice()]), { context: ctx });
    const safetensors = writeSafetensors(readCheckpoint(pth));
    const fromSafetensors = await loadModel(safetensors, { context: ctx });
    for (const model of [fromBlob, fromSafetensors]) {
      expect(model.info).toMatchObject({ architecture: 'MSRResNet', scale: 2 });
      const { image } = await model.runFloat(input);
      expect(relL2(image.data, expected)).toBeLessThanOrEqual(1e-4);
      model.dispose();
    }
  });

  it('refuses a denoiser, a wrong scale, and a call without weights', async () => {
    const ctx = await getTestContext();
    await expect(upscale(input, { context: ctx, weights: checkpointPath, scale: 4 })).rejects.toThrow(/upscales ×2, not ×4/);
    const dncnn = new URL('test/fixtures/dncnn/tiny_r_gray.pth', REPO).pathname;
    const gray = { width: 5, height: 4, channels: 1, data: new Float32Array(20) };
    await expect(upscale(gray, { context: ctx, weights: dncnn })).rejects.toThrow(/does not upscale \(scale 1\); use denoise/);
    await expect(upscale(gray, { context: ctx })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(loadModel('/no/such/file.pth', { context: ctx })).rejects.toMatchObject({ code: 'CHECKPOINT_FORMAT' });
  });
});
