/**
 * A device that refuses a run (a limit, or out of memory) makes RestorationModel retry in tiles, halving the
 * tile size until the device accepts it (runTiledShrinking). The refusals are simulated on the real device:
 * buffer creation above a size fails the way GPUContext.createBuffer fails past maxBufferSize (or with an
 * out-of-memory error), or a plan's run fails with out of memory above a window size.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { GPUOperationError, LimitExceededError } from '../../src/errors';
import type { GPUContext } from '../../src/gpu/context';
import { Plan } from '../../src/gpu/plan';
import type { FloatImage } from '../../src/io/image';
import { networkFromCheckpoint } from '../../src/models/load';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { loadDnCNNFixture } from '../helpers/fixtures';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';

const SLOW = 600_000;

function image(width: number, height: number, seed: number): FloatImage {
  return { width, height, channels: 1, data: Float32Array.from(randomArray(width * height, seed), (v) => 0.5 + 0.5 * v) };
}

async function tinyDnCNN(): Promise<RestorationModel> {
  const f = loadDnCNNFixture('tiny_r_gray'); // nc 8, nb 5: tiles need a 6 px halo
  return new RestorationModel(await getTestContext(), networkFromCheckpoint(f.weights, { name: 'tiny' }), 'tiny');
}

/** The whole-image result on an unrestricted device, with its plan disposed and the pool emptied afterwards. */
async function wholeImage(ctx: GPUContext, img: FloatImage): Promise<Float32Array> {
  const model = await tinyDnCNN();
  const out = await model.runFloat(img, { tileSize: 0 });
  model.dispose();
  await new Promise((r) => setTimeout(r, 0)); // disposal of cached plans runs after their promises settle
  ctx.buffers.trim(); // so that a refused size cannot be served from buffers freed earlier
  return out.image.data;
}

/**
 * Makes `ctx` refuse buffers larger than `maxBytes`, as a device with a smaller maxBufferSize (or one out of
 * memory) would; returns the sizes refused.
 */
function refuseBuffersAbove(ctx: GPUContext, maxBytes: number, kind: 'limit' | 'oom'): number[] {
  const refused: number[] = [];
  const real = ctx.createBuffer.bind(ctx);
  vi.spyOn(ctx, 'createBuffer').mockImplementation((descriptor, what) => {
    if (descriptor.size > maxBytes) {
      refused.push(descriptor.size);
      if (kind === 'limit') throw new LimitExceededError('maxBufferSize', descriptor.size, maxBytes, what);
      throw new GPUOperationError('GPU_OUT_OF_MEMORY', `creating ${what}`, 'Out of memory');
    }
    return real(descriptor, what);
  });
  return refused;
}

/** Window side (the larger of height and width) of a plan's input. */
const windowSide = (plan: Plan) => Math.max(plan.graph.inputs[0].shape[1], plan.graph.inputs[0].shape[2]);

afterEach(() => {
  vi.restoreAllMocks();
});

// 300×200 and a 6 px halo. Whole image: activations of 8 channels × 300×200 × 4 B = 1.92 MB per slot. Tiles
// after a refusal start at 150 px (windows up to 156×156: 779 kB) and then 75 px (windows up to 87×87: 242 kB,
// 4 × 3 tiles).
const W = 300;
const H = 200;

describe('a refused run is retried with smaller tiles', { timeout: SLOW }, () => {
  it('maxBufferSize refuses the whole image and 150 px tiles: 75 px tiles, equal to the whole-image result', async () => {
    const ctx = await getTestContext();
    const img = image(W, H, 1);
    const want = await wholeImage(ctx, img);
    const model = await tinyDnCNN();
    const before = ctx.buffers.inUse;
    const refused = refuseBuffersAbove(ctx, 400_000, 'limit');
    const progress: { done: number; total: number }[] = [];
    const out = await model.runFloat(img, { onProgress: (p) => progress.push(p) });
    vi.restoreAllMocks();
    // Refused: a whole-image buffer (≥ 4 padded channels × 300×200), then one of the first 150 px tile; no more.
    expect(refused.length).toBe(2);
    expect(refused[0]).toBeGreaterThanOrEqual(16 * W * H);
    expect(refused[1]).toBeLessThan(16 * W * H);
    expect(out.stats.tiles).toBe(4 * 3);
    expect(progress).toEqual(Array.from({ length: 12 }, (_, i) => ({ done: i + 1, total: 12 })));
    expect(relL2(out.image.data, want)).toBeLessThanOrEqual(1e-5);
    // No plan of the refused sizes is kept, and the tiles' plans were disposed.
    expect(ctx.buffers.inUse).toBe(before);
    model.dispose();
  });

  it('a size refused only for the larger windows of a tiling is refused before any progress is reported', async () => {
    const ctx = await getTestContext();
    // 600×400 in 150 px tiles: corner windows 156×156 (779 kB a slot) come first in the image, inner ones
    // 162 px wide (809 kB) later. A limit between the two refuses that tiling only at its inner windows.
    const img = image(600, 400, 6);
    const want = await wholeImage(ctx, img);
    const model = await tinyDnCNN();
    const before = ctx.buffers.inUse;
    const refused = refuseBuffersAbove(ctx, 790_000, 'limit');
    const progress: { done: number; total: number }[] = [];
    const out = await model.runFloat(img, { onProgress: (p) => progress.push(p) });
    vi.restoreAllMocks();
    expect(refused.length).toBe(3); // whole image, 300 px, 150 px
    expect(out.stats.tiles).toBe(8 * 6); // 75 px
    expect(progress).toEqual(Array.from({ length: 48 }, (_, i) => ({ done: i + 1, total: 48 })));
    expect(relL2(out.image.data, want)).toBeLessThanOrEqual(1e-5);
    expect(ctx.buffers.inUse).toBe(before);
    model.dispose();
  });

  it('out of memory when creating buffers: the same retry', async () => {
    const ctx = await getTestContext();
    const img = image(W, H, 2);
    const want = await wholeImage(ctx, img);
    const model = await tinyDnCNN();
    const before = ctx.buffers.inUse;
    const refused = refuseBuffersAbove(ctx, 400_000, 'oom');
    const out = await model.runFloat(img);
    vi.restoreAllMocks();
    expect(refused.length).toBe(2);
    expect(out.stats.tiles).toBe(12);
    expect(relL2(out.image.data, want)).toBeLessThanOrEqual(1e-5);
    expect(ctx.buffers.inUse).toBe(before);
    model.dispose();
  });

  it('out of memory while running (after the plan compiled): the refused plan gives its buffers back', async () => {
    const ctx = await getTestContext();
    const img = image(W, H, 3);
    const want = await wholeImage(ctx, img);
    const model = await tinyDnCNN();
    const before = ctx.buffers.inUse;
    const real = Plan.prototype.run;
    const refusedSides: number[] = [];
    vi.spyOn(Plan.prototype, 'run').mockImplementation(function (this: Plan, inputs, options) {
      if (windowSide(this) > 100) {
        refusedSides.push(windowSide(this));
        return Promise.reject(new GPUOperationError('GPU_OUT_OF_MEMORY', 'running plan', 'Out of memory'));
      }
      return real.call(this, inputs, options);
    });
    const progress: number[] = [];
    const out = await model.runFloat(img, { onProgress: (p) => progress.push(p.total) });
    vi.restoreAllMocks();
    expect(refusedSides).toEqual([W, 156]);
    expect(out.stats.tiles).toBe(12);
    expect(new Set(progress)).toEqual(new Set([12]));
    expect(relL2(out.image.data, want)).toBeLessThanOrEqual(1e-5);
    // The whole-image plan compiled before its run failed: it must not stay cached, holding its buffers.
    expect(ctx.buffers.inUse).toBe(before);
    model.dispose();
  });

  it('when even the smallest tiles are refused: a typed error naming the limit, every buffer released', async () => {
    const ctx = await getTestContext();
    const model = await tinyDnCNN();
    const img = image(W, H, 4);
    await new Promise((r) => setTimeout(r, 0));
    ctx.buffers.trim();
    const before = ctx.buffers.inUse;
    const refused = refuseBuffersAbove(ctx, 50_000, 'limit');
    const progress: unknown[] = [];
    const run = model.runFloat(img, { onProgress: (p) => progress.push(p) });
    await expect(run).rejects.toBeInstanceOf(LimitExceededError);
    await expect(run).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED', limit: 'maxBufferSize', allowed: 50_000 });
    await expect(run).rejects.toThrow(/model 'tiny'.*maxBufferSize = \d+, but the device allows at most 50000/);
    vi.restoreAllMocks();
    // Whole image, 150 px and 75 px tiles: three attempts, then it stops (75 / 2 is below the 64 px minimum).
    expect(refused.length).toBe(3);
    expect(progress).toEqual([]);
    expect(ctx.buffers.inUse).toBe(before);

    // Out of memory all the way down: the same, with its own code.
    refuseBuffersAbove(ctx, 50_000, 'oom');
    await expect(model.runFloat(img)).rejects.toMatchObject({ code: 'GPU_OUT_OF_MEMORY' });
    vi.restoreAllMocks();
    expect(ctx.buffers.inUse).toBe(before);
    model.dispose();
  });

  it('tileSize: 0 forbids the retry: the refusal is the error', async () => {
    const ctx = await getTestContext();
    const model = await tinyDnCNN();
    const refused = refuseBuffersAbove(ctx, 400_000, 'limit');
    await expect(model.runFloat(image(W, H, 5), { tileSize: 0 })).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
    vi.restoreAllMocks();
    expect(refused.length).toBe(1);
    model.dispose();
  });
});
