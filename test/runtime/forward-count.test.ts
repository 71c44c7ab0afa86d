/**
 * A shape the model has seen builds no graph again: the network's `forward` (which builds the graph and picks
 * the kernels' WGSL) runs once per distinct input shape over repeated runs of that shape — whole images, tiled
 * runs with the same tiles, automatic tiling under a memory budget (whose estimates used to build a graph on
 * every run), and `warmup` followed by a run.
 */
import { describe, expect, it } from 'vitest';
import type { FloatImage, RasterImage } from '../../src/io/image';
import { networkFromCheckpoint } from '../../src/models/load';
import type { Network } from '../../src/models/network';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { planTiles, tilingFor } from '../../src/runtime/tiling';
import { loadDnCNNFixture } from '../helpers/fixtures';
import { getTestContext } from '../helpers/gpu';
import { randomArray } from '../helpers/random';

function image(width: number, height: number, seed: number): FloatImage {
  return { width, height, channels: 1, data: Float32Array.from(randomArray(width * height, seed), (v) => 0.5 + 0.5 * v) };
}

function raster(width: number, height: number, seed: number): RasterImage {
  const data = Uint8Array.from(randomArray(width * height, seed), (v) => Math.round(127.5 + 127.5 * v));
  return { width, height, channels: 1, bitDepth: 8, data };
}

/** The network with its `forward` counted: the input shape (`h×w`) of every graph it builds. */
function counted(network: Network): string[] {
  const built: string[] = [];
  const forward = network.forward.bind(network);
  network.forward = (...args: Parameters<Network['forward']>) => {
    built.push(`${args[1].shape[1]}x${args[1].shape[2]}`);
    return forward(...args);
  };
  return built;
}

describe('graphs are built once per input shape', { timeout: 600_000 }, () => {
  it('repeated, tiled, auto-tiled and warmed-up runs: one forward per distinct shape', async () => {
    const ctx = await getTestContext();
    const network = networkFromCheckpoint(loadDnCNNFixture('tiny_r_gray').weights, { name: 'tiny' }); // 6 px halo
    const built = counted(network);
    const model = new RestorationModel(ctx, network, 'tiny');
    const expected = new Set<string>();

    // Whole images of one size, float and raster, several times.
    const whole = image(21, 15, 1);
    for (let i = 0; i < 3; i++) await model.runFloat(whole);
    for (let i = 0; i < 2; i++) await model.run(raster(21, 15, 2));
    expected.add('15x21');
    expect(built).toEqual([...expected]);

    // Tiled runs with the same tiles (float and raster): each window shape once.
    const big = image(40, 31, 3);
    const windows = planTiles(40, 31, 16, tilingFor(network)).map((t) => `${t.wy1 - t.wy0}x${t.wx1 - t.wx0}`);
    const first = await model.runFloat(big, { tileSize: 16 });
    for (let i = 0; i < 2; i++) {
      const again = await model.runFloat(big, { tileSize: 16 });
      expect(again.image.data).toEqual(first.image.data);
    }
    await model.run(raster(40, 31, 4), { tileSize: 16 });
    for (const w of windows) expected.add(w);
    expect(new Set(windows).size).toBeGreaterThan(1);
    expect([...built].sort()).toEqual([...expected].sort());

    // Automatic tiling under a budget: the whole image's estimate and the chosen windows, once.
    const budgeted = image(150, 100, 5);
    const budget = { maxActivationBytes: 512 * 1024 };
    const auto = await model.runFloat(budgeted, budget);
    expect(auto.stats.tiles).toBeGreaterThan(1);
    const afterFirst = built.length;
    for (let i = 0; i < 2; i++) await model.runFloat(budgeted, budget);
    expect(built.length).toBe(afterFirst);

    // warmup, then runs of that size.
    await model.warmup(11, 9);
    await model.runFloat(image(9, 11, 6));
    await model.run(raster(9, 11, 7));

    // Every shape exactly once, the warmed-up one included.
    expect(built.filter((s) => s === '11x9')).toEqual(['11x9']);
    expect(new Set(built).size).toBe(built.length);
    await model.dispose();
  });
});
