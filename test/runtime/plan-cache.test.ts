/**
 * The per-model plan cache under concurrent calls. It keeps 4 idle plans; more sizes in use at once than that
 * must neither fail a call (a plan disposed under it) nor let two plans share activation buffers while the GPU
 * runs. Every output is compared bit for bit with the same size run alone, and the pool's count of buffers in
 * use returns to its baseline once the model is disposed.
 */
import { describe, expect, it } from 'vitest';
import { AbortedError, RestoreError } from '../../src/errors';
import type { GPUContext } from '../../src/gpu/context';
import type { Plan } from '../../src/gpu/plan';
import type { FloatImage } from '../../src/io/image';
import { networkFromCheckpoint } from '../../src/models/load';
import { PlanCache } from '../../src/runtime/plan-cache';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { loadDnCNNFixture } from '../helpers/fixtures';
import { getTestContext } from '../helpers/gpu';
import { randomArray } from '../helpers/random';

const SLOW = 600_000;

/** More sizes than the cache keeps (4). */
const SIZES: [number, number][] = [
  [9, 6],
  [6, 9],
  [10, 7],
  [7, 10],
  [8, 5],
  [5, 8],
];

function image(height: number, width: number, seed: number): FloatImage {
  return { width, height, channels: 1, data: Float32Array.from(randomArray(width * height, seed), (v) => 0.5 + 0.5 * v) };
}

function tinyDnCNN(ctx: GPUContext): RestorationModel {
  const f = loadDnCNNFixture('tiny_r_gray'); // nc 8, nb 5: a 6 px receptive-field halo
  return new RestorationModel(ctx, networkFromCheckpoint(f.weights, { name: 'tiny' }), 'tiny');
}

/** Each image run alone, one at a time, on a model of its own. */
async function sequential(ctx: GPUContext, images: FloatImage[], options: { tileSize?: number } = {}): Promise<Float32Array[]> {
  const model = tinyDnCNN(ctx);
  const out: Float32Array[] = [];
  for (const img of images) out.push((await model.runFloat(img, options)).image.data);
  await model.dispose();
  return out;
}

function expectBitIdentical(got: Float32Array, want: Float32Array, what: string): void {
  expect(got.length, what).toBe(want.length);
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  const first = a.findIndex((v, i) => v !== b[i]);
  expect(first, `${what}: first differing element`).toBe(-1);
}

/** A deterministic shuffle, so that rounds interleave sizes differently but reproducibly. */
function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe('PlanCache (no GPU): plans in use are pinned, idle ones evicted', () => {
  function fakePlans() {
    const disposed: string[] = [];
    const compile = async (h: number, w: number) => ({ dispose: () => disposed.push(`${h}x${w}`) }) as unknown as Plan;
    return { disposed, cache: new PlanCache(2, compile) };
  }

  it('never disposes a plan while a call holds it, and evicts it once released', async () => {
    const { disposed, cache } = fakePlans();
    let releaseFirst!: () => void;
    const held = cache.use(1, 1, () => new Promise<void>((r) => (releaseFirst = r)));
    await new Promise((r) => setTimeout(r, 0));
    for (const s of [2, 3, 4]) await cache.use(s, s, async () => undefined);
    await new Promise((r) => setTimeout(r, 0));
    expect(disposed).not.toContain('1x1');
    expect(disposed).toEqual(['2x2', '3x3']); // idle and least recently used
    releaseFirst();
    await held;
    expect(cache.size).toBe(2);
    await cache.use(5, 5, async () => undefined); // 1×1 is now the least recently used idle plan
    await new Promise((r) => setTimeout(r, 0));
    expect(disposed).toEqual(['2x2', '3x3', '1x1']);
    expect(cache.size).toBe(2);
  });

  it('a dropped or cleared plan is disposed only after its last user', async () => {
    const { disposed, cache } = fakePlans();
    let release!: () => void;
    const held = cache.use(5, 5, () => new Promise<void>((r) => (release = r)));
    await new Promise((r) => setTimeout(r, 0));
    cache.drop(5, 5);
    void cache.clear();
    await new Promise((r) => setTimeout(r, 0));
    expect(disposed).toEqual([]);
    expect(cache.size).toBe(0);
    release();
    await held;
    await new Promise((r) => setTimeout(r, 0));
    expect(disposed).toEqual(['5x5']);
  });

  it('a failed compile is not cached: the next call compiles again', async () => {
    let attempts = 0;
    const cache = new PlanCache(2, async () => {
      attempts++;
      if (attempts === 1) throw new Error('refused');
      return { dispose: () => undefined } as unknown as Plan;
    });
    await expect(cache.use(1, 1, async () => 'x')).rejects.toThrow('refused');
    await expect(cache.use(1, 1, async () => 'y')).resolves.toBe('y');
    expect(attempts).toBe(2);
  });
});

describe('one model, more sizes at once than it caches', { timeout: SLOW }, () => {
  it('concurrent and interleaved calls over 6 sizes: bit-identical to sequential runs, pool back to baseline', async () => {
    const ctx = await getTestContext();
    const images = SIZES.map(([h, w], i) => image(h, w, 100 + i));
    const want = await sequential(ctx, images);
    const before = ctx.buffers.inUse;
    const model = tinyDnCNN(ctx);
    for (let round = 0; round < 3; round++) {
      // Every size twice, in a different order each round, all in flight together.
      const order = shuffled([...images.keys(), ...images.keys()], round + 1);
      const outs = await Promise.all(order.map((i) => model.runFloat(images[i])));
      outs.forEach((o, k) => expectBitIdentical(o.image.data, want[order[k]], `round ${round}, size ${SIZES[order[k]].join('×')}`));
    }
    // The first five sizes at once: before pinning, the first call failed with 'plan has been disposed'.
    const five = await Promise.allSettled(images.slice(0, 5).map((img) => model.runFloat(img)));
    five.forEach((r, i) => {
      expect(r.status, `size ${SIZES[i].join('×')}: ${r.status === 'rejected' ? String(r.reason) : ''}`).toBe('fulfilled');
      if (r.status === 'fulfilled') expectBitIdentical(r.value.image.data, want[i], `size ${SIZES[i].join('×')}`);
    });
    await model.dispose();
    expect(ctx.buffers.inUse).toBe(before);
  });

  it('a run in flight while 4 new sizes compile finishes with its own result', async () => {
    const ctx = await getTestContext();
    const images = SIZES.map(([h, w], i) => image(h, w, 200 + i));
    const want = await sequential(ctx, images);
    const before = ctx.buffers.inUse;
    const model = tinyDnCNN(ctx);
    await model.warmup(SIZES[0][0], SIZES[0][1]);
    const first = model.runFloat(images[0]);
    const others = images.slice(1, 5).map((img) => model.runFloat(img));
    const [got, ...rest] = await Promise.all([first, ...others]);
    expectBitIdentical(got.image.data, want[0], 'the run in flight');
    rest.forEach((o, i) => expectBitIdentical(o.image.data, want[i + 1], `size ${SIZES[i + 1].join('×')}`));
    await model.dispose();
    expect(ctx.buffers.inUse).toBe(before);
  });

  it('tiled runs beside whole-image runs of other sizes: bit-identical, pool back to baseline', async () => {
    const ctx = await getTestContext();
    const big = [image(23, 17, 300), image(17, 23, 301)];
    const small = SIZES.map(([h, w], i) => image(h, w, 310 + i));
    const wantTiled = await sequential(ctx, big, { tileSize: 8 });
    const wantWhole = await sequential(ctx, small);
    const before = ctx.buffers.inUse;
    const model = tinyDnCNN(ctx);
    for (let round = 0; round < 2; round++) {
      const tiled = big.map((img) => model.runFloat(img, { tileSize: 8 }));
      const whole = shuffled([...small.keys()], round + 7).map((i) => model.runFloat(small[i]).then((o) => [i, o] as const));
      const [t0, t1, ...w] = await Promise.all([...tiled, ...whole]);
      expectBitIdentical((t0 as Awaited<(typeof tiled)[0]>).image.data, wantTiled[0], `round ${round}, tiled 23×17`);
      expectBitIdentical((t1 as Awaited<(typeof tiled)[0]>).image.data, wantTiled[1], `round ${round}, tiled 17×23`);
      for (const [i, o] of w as (readonly [number, Awaited<(typeof tiled)[0]>])[])
        expectBitIdentical(o.image.data, wantWhole[i], `round ${round}, whole ${SIZES[i].join('×')}`);
    }
    await model.dispose();
    expect(ctx.buffers.inUse).toBe(before);
  });

  it('calls aborted mid-run fail with AbortedError; the others are unaffected; pool back to baseline', async () => {
    const ctx = await getTestContext();
    const big = image(23, 17, 400);
    const small = SIZES.map(([h, w], i) => image(h, w, 410 + i));
    const wantTiled = (await sequential(ctx, [big], { tileSize: 8 }))[0];
    const wantWhole = await sequential(ctx, small);
    const before = ctx.buffers.inUse;
    const model = tinyDnCNN(ctx);
    for (let round = 0; round < 2; round++) {
      const abort = new AbortController();
      // Aborted after its first tile.
      const aborted = model.runFloat(big, { tileSize: 8, signal: abort.signal, onProgress: () => abort.abort() });
      const kept = model.runFloat(big, { tileSize: 8 });
      const whole = small.map((img) => model.runFloat(img, { signal: new AbortController().signal }));
      await expect(aborted).rejects.toBeInstanceOf(AbortedError);
      expectBitIdentical((await kept).image.data, wantTiled, `round ${round}, the tiled run not aborted`);
      (await Promise.all(whole)).forEach((o, i) => expectBitIdentical(o.image.data, wantWhole[i], `round ${round}, ${SIZES[i].join('×')}`));
    }
    await model.dispose();
    expect(ctx.buffers.inUse).toBe(before);
  });

  it('dispose() during calls: each finishes correctly or fails with DISPOSED; memory is released after them', async () => {
    const ctx = await getTestContext();
    const big = image(23, 17, 500);
    const small = SIZES.map(([h, w], i) => image(h, w, 510 + i));
    const wantTiled = (await sequential(ctx, [big], { tileSize: 8 }))[0];
    const wantWhole = await sequential(ctx, small);
    const before = ctx.buffers.inUse;
    const model = tinyDnCNN(ctx);
    const tiled = model.runFloat(big, { tileSize: 8 });
    const whole = small.map((img) => model.runFloat(img));
    const closed = model.dispose();
    const results = await Promise.allSettled([tiled, ...whole]);
    results.forEach((r, i) => {
      const what = i === 0 ? 'tiled 23×17' : `whole ${SIZES[i - 1].join('×')}`;
      if (r.status === 'fulfilled') expectBitIdentical(r.value.image.data, i === 0 ? wantTiled : wantWhole[i - 1], what);
      else {
        expect(r.reason, what).toBeInstanceOf(RestoreError);
        expect((r.reason as RestoreError).code, what).toBe('DISPOSED');
      }
    });
    await closed;
    expect(ctx.buffers.inUse).toBe(before);
    await expect(model.runFloat(small[0])).rejects.toHaveProperty('code', 'DISPOSED');
  });
});
