import { describe, expect, it } from 'vitest';

// Tiles of different window sizes compile their own plans; on a cold lavapipe shader cache that takes minutes.
const SLOW = 900_000;
import { AbortedError } from '../../src/errors';
import { networkFromCheckpoint } from '../../src/models/load';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { rampWeight } from '../../src/runtime/tile-blend';
import { planTiles, type TilingSpec } from '../../src/runtime/tiling';
import { REPO, readBytes } from '../helpers/fixtures';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';

function image(width: number, height: number, channels: number, seed: number) {
  const data = Float32Array.from(randomArray(width * height * channels, seed), (v) => 0.5 + 0.5 * v);
  return { width, height, channels, data };
}

async function modelFrom(path: string, name: string): Promise<RestorationModel> {
  const ctx = await getTestContext();
  return new RestorationModel(ctx, networkFromCheckpoint(readBytes(new URL(path, REPO)), { name }), name);
}

describe('planTiles', () => {
  const specs: TilingSpec[] = [
    { alignment: 1, halo: 18, exact: true, minSize: 1 },
    { alignment: 16, halo: 153, exact: true, minSize: 16 },
    { alignment: 4, halo: 40, exact: true, minSize: 4 },
  ];
  for (const spec of specs) {
    it(`cores partition the image and windows hold their halo (alignment ${spec.alignment}, halo ${spec.halo})`, () => {
      for (const [w, h, tile] of [
        [1000, 37, 64],
        [97, 301, 50],
        [16, 16, 256],
        [500, 400, 128],
      ]) {
        const tiles = planTiles(w, h, tile, spec);
        const covered = new Uint8Array(w * h);
        for (const t of tiles) {
          expect(t.wx0 % spec.alignment).toBe(0);
          expect(t.wy0 % spec.alignment).toBe(0);
          // Context on each side, unless the window reaches the image border.
          expect(t.x0 - t.wx0 >= spec.halo || t.wx0 === 0).toBe(true);
          expect(t.wx1 - t.x1 >= spec.halo || t.wx1 === w).toBe(true);
          expect(t.y0 - t.wy0 >= spec.halo || t.wy0 === 0).toBe(true);
          expect(t.wy1 - t.y1 >= spec.halo || t.wy1 === h).toBe(true);
          for (let y = t.y0; y < t.y1; y++) for (let x = t.x0; x < t.x1; x++) covered[y * w + x]++;
        }
        expect(covered.every((c) => c === 1)).toBe(true);
      }
    });
  }
});

describe('tiled runs equal untiled runs', { timeout: SLOW }, () => {
  it('DnCNN-17 (real σ25 weights), tiles of 24 px: identical up to rounding, with progress per tile', async () => {
    const ctx = await getTestContext();
    const model = new RestorationModel(
      ctx,
      networkFromCheckpoint(readBytes(new URL('../shared/data/weights/dncnn_25.pth', REPO))),
      'dncnn25',
    );
    const img = image(75, 61, 1, 1);
    const whole = await model.runFloat(img, { tileSize: 0 });
    const progress: number[] = [];
    const tiled = await model.runFloat(img, { tileSize: 24, onProgress: (p) => progress.push(p.done / p.total) });
    model.dispose();
    expect(tiled.stats.tiles).toBe(4 * 3);
    expect(progress.length).toBe(12);
    expect(progress.at(-1)).toBe(1);
    expect(relL2(tiled.image.data, whole.image.data)).toBeLessThanOrEqual(1e-5);
  });

  it('U-Net (transposed, 4 levels): tiles aligned to 16 with a 153 px halo', async () => {
    const model = await modelFrom('test/fixtures/unet/unet_tiny_transposed_rgb.pth', 'unet tiny');
    const img = image(420, 37, 3, 2);
    const whole = await model.runFloat(img, { tileSize: 0 });
    const tiled = await model.runFloat(img, { tileSize: 48 });
    model.dispose();
    expect(tiled.stats.tiles).toBeGreaterThan(3);
    expect(relL2(tiled.image.data, whole.image.data)).toBeLessThanOrEqual(1e-5);
  });

  for (const variant of ['n2v', 'n2v2']) {
    it(`N2V U-Net (${variant}, depth 2): tiles aligned to 4, equal to the whole image`, async () => {
      const model = await modelFrom(`test/fixtures/n2v-unet/${variant}_tiny_gray.pth`, `${variant} tiny`);
      const img = image(150, 45, 1, 4);
      const whole = await model.runFloat(img, { tileSize: 0 });
      const tiled = await model.runFloat(img, { tileSize: 32 });
      model.dispose();
      expect(tiled.stats.tiles).toBeGreaterThan(3);
      expect(relL2(tiled.image.data, whole.image.data)).toBeLessThanOrEqual(1e-5);
    });
  }

  it('RRDBNet ×4: tiles of the low-resolution input, stitched at 4× scale', async () => {
    const model = await modelFrom('test/fixtures/rrdbnet/tiny_x4_basicsr.pth', 'rrdb tiny');
    const img = image(61, 19, 3, 3);
    const whole = await model.runFloat(img, { tileSize: 0 });
    const tiled = await model.runFloat(img, { tileSize: 16 });
    model.dispose();
    expect(tiled.stats.tiles).toBeGreaterThan(3);
    expect([tiled.image.width, tiled.image.height]).toEqual([61 * 4, 19 * 4]);
    expect(relL2(tiled.image.data, whole.image.data)).toBeLessThanOrEqual(1e-5);
  });

  it('an activation budget below the whole image tiles automatically', async () => {
    const model = await modelFrom('test/fixtures/dncnn/tiny_r_gray.pth', 'tiny');
    const img = image(300, 200, 1, 4);
    const whole = await model.runFloat(img, { tileSize: 0 });
    const auto = await model.runFloat(img, { maxActivationBytes: 2 << 20 });
    model.dispose();
    expect(whole.stats.activationBytes).toBeGreaterThan(2 << 20);
    expect(auto.stats.tiles).toBeGreaterThan(1);
    expect(auto.stats.activationBytes).toBeLessThanOrEqual(2 << 20);
    expect(relL2(auto.image.data, whole.image.data)).toBeLessThanOrEqual(1e-5);
  });
});

describe('abort', { timeout: SLOW }, () => {
  it('stops between tiles with AbortedError and returns every buffer it took', async () => {
    const ctx = await getTestContext();
    const model = await modelFrom('test/fixtures/dncnn/tiny_r_gray.pth', 'tiny');
    const img = image(120, 90, 1, 5);
    const before = ctx.buffers.inUse;
    const controller = new AbortController();
    let seen = 0;
    const run = model.runFloat(img, {
      tileSize: 32,
      signal: controller.signal,
      onProgress: () => {
        if (++seen === 2) controller.abort();
      },
    });
    await expect(run).rejects.toBeInstanceOf(AbortedError);
    await expect(run).rejects.toMatchObject({ code: 'ABORTED' });
    expect(seen).toBe(2);
    expect(ctx.buffers.inUse).toBe(before);
    model.dispose();
  });

  it('an already aborted signal fails before any GPU work', async () => {
    const model = await modelFrom('test/fixtures/dncnn/tiny_r_gray.pth', 'tiny');
    const controller = new AbortController();
    controller.abort();
    await expect(model.runFloat(image(8, 8, 1, 6), { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    model.dispose();
  });
});

describe('approximate tilings blend their overlaps', () => {
  it('ramp weights: 0→1 across the ramp from an inner edge, full weight at image borders', () => {
    expect(rampWeight(0, 100, 10, true, true)).toBeCloseTo(0.05);
    expect(rampWeight(9, 100, 10, true, true)).toBeCloseTo(0.95);
    expect(rampWeight(50, 100, 10, true, true)).toBe(1);
    expect(rampWeight(99, 100, 10, true, true)).toBeCloseTo(0.05);
    expect(rampWeight(0, 100, 10, false, true)).toBe(1);
    expect(rampWeight(99, 100, 10, true, false)).toBe(1);
  });

  it('SCUNet (tiny, real checkpoint) in feathered tiles stays close to the whole-image result', { timeout: SLOW }, async () => {
    const model = await modelFrom('test/fixtures/scunet/tiny_gray.pth', 'scunet tiny');
    const img = image(150, 70, 1, 8);
    const whole = await model.runFloat(img, { tileSize: 0 });
    const tiled = await model.runFloat(img, { tileSize: 64 });
    model.dispose();
    expect(tiled.stats.tiles).toBe(3 * 2);
    expect(tiled.image.data.every(Number.isFinite)).toBe(true);
    const err = relL2(tiled.image.data, whole.image.data);
    console.log(`SCUNet tiny, 150×70 in 64 px tiles (halo 64, feathered): relL2 vs whole image ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(2e-2);
  });
});
