import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createApi } from '../../src/api';
import { DeviceLostError, RestoreError } from '../../src/errors';
import type { GPUContext } from '../../src/gpu/context';
import { createNodeContext } from '../../src/gpu/node-gpu';
import type { RasterImage } from '../../src/io/image';
import { networkFromCheckpoint } from '../../src/models/load';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { loadDnCNNFixture, REPO } from '../helpers/fixtures';
import { randomArray } from '../helpers/random';

const TINY = loadDnCNNFixture('tiny_r_gray');

/** Settles `p` or fails the test after `ms`: a lost device must never leave a promise hanging. */
async function settle<T>(p: Promise<T>, ms = 10_000): Promise<{ value?: T; error?: unknown }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms (hang)`)), ms);
  });
  try {
    return { value: await Promise.race([p, hang]) };
  } catch (error) {
    if (error instanceof Error && /\(hang\)$/.test(error.message)) throw error;
    return { error };
  } finally {
    clearTimeout(timer);
  }
}

function floatImage(w: number, h: number, seed: number) {
  const data = Float32Array.from(randomArray(w * h, seed)).map((v) => 0.5 + 0.3 * v);
  return { width: w, height: h, channels: 1, data };
}

function raster(w: number, h: number, seed: number): RasterImage {
  const data = new Uint8Array(w * h);
  const r = randomArray(w * h, seed);
  for (let i = 0; i < data.length; i++) data[i] = Math.round(128 + 100 * r[i]);
  return { width: w, height: h, channels: 1, bitDepth: 8, data };
}

function tinyModel(ctx: GPUContext): RestorationModel {
  return new RestorationModel(ctx, networkFromCheckpoint(TINY.weights), 'tiny');
}

describe('device loss', () => {
  it('a model whose device was destroyed rejects with DEVICE_LOST, and keeps doing so', async () => {
    const ctx = await createNodeContext();
    const model = tinyModel(ctx);
    const ok = await settle(model.runFloat(floatImage(12, 10, 1)));
    expect(ok.error).toBeUndefined();

    ctx.device.destroy();
    const lost = await settle(ctx.lost);
    expect(lost.value).toBeInstanceOf(DeviceLostError);
    expect(ctx.isLost).toBe(true);

    for (const [w, h] of [
      [12, 10], // a cached plan
      [7, 9], // a new plan
    ]) {
      const { error } = await settle(model.runFloat(floatImage(w, h, 2)));
      expect(error, `${w}×${h}`).toBeInstanceOf(DeviceLostError);
      expect((error as DeviceLostError).code).toBe('DEVICE_LOST');
      expect((error as DeviceLostError).message).toMatch(/lost/);
    }
    expect(() => ctx.throwIfFailed()).toThrow(DeviceLostError);
    model.dispose();
    ctx.dispose();
  });

  it('destroying the device while a run is being issued rejects with a typed error, never hangs', async () => {
    const ctx = await createNodeContext();
    const model = tinyModel(ctx);
    await model.warmup(10, 12);
    const run = model.runFloat(floatImage(12, 10, 3));
    ctx.device.destroy(); // no waiting for device.lost first
    const { error } = await settle(run);
    // The run was already submitted, so it may complete; if it fails, the failure is typed.
    if (error !== undefined) {
      expect(error).toBeInstanceOf(RestoreError);
      expect((error as RestoreError).code).toBe('DEVICE_LOST');
    }
    const next = await settle(model.runFloat(floatImage(12, 10, 4)));
    expect(next.error).toBeInstanceOf(RestoreError);
    expect((next.error as RestoreError).code).toBe('DEVICE_LOST');
    model.dispose();
    ctx.dispose();
  });

  it('a model built on a lost device fails on first use with DEVICE_LOST', async () => {
    const ctx = await createNodeContext();
    ctx.device.destroy();
    await settle(ctx.lost);
    const { error } = await settle(tinyModel(ctx).runFloat(floatImage(5, 5, 5)));
    expect(error).toBeInstanceOf(DeviceLostError);
    ctx.dispose();
  });

  it('createApi: after the default device is lost, the next default context is new and works', async () => {
    const created: GPUContext[] = [];
    const api = createApi({
      createContext: async () => {
        const ctx = await createNodeContext({ timestamps: false });
        created.push(ctx);
        return ctx;
      },
      // The tiny fixture stands in for the built-in weights to keep the test fast.
      readBuiltinWeights: async () => new Uint8Array(readFileSync(new URL('test/fixtures/dncnn/tiny_r_gray.pth', REPO))),
    });
    const first = await api.getDefaultContext();
    expect(await api.getDefaultContext()).toBe(first); // cached while healthy
    const image = raster(11, 8, 6);
    const out1 = await api.denoise(image);
    expect([out1.width, out1.height, out1.channels, out1.bitDepth]).toEqual([11, 8, 1, 8]);

    first.device.destroy();
    await settle(first.lost);
    expect(first.isLost).toBe(true);

    const second = (await settle(api.getDefaultContext())).value!;
    expect(second).toBeDefined();
    expect(second).not.toBe(first);
    expect(second.isLost).toBe(false);
    expect(created).toHaveLength(2);

    // denoise() with no context goes to the new device, with the built-in model loaded again there.
    const { value: out2, error } = await settle(api.denoise(image));
    expect(error).toBeUndefined();
    expect(out2!.data).toEqual(out1.data); // same network, same input: same answer on the new device
    const model = await api.loadBuiltinModel();
    expect(model.ctx).toBe(second);
    expect(created).toHaveLength(2);

    // A model loaded on the dead context still fails cleanly.
    const stale = await api.loadModel(TINY.weights, { context: first });
    expect((await settle(stale.run(image))).error).toBeInstanceOf(DeviceLostError);
    stale.dispose();
    model.dispose();
    second.dispose();
    first.dispose();
  });
});
