import { describe, expect, it } from 'vitest';
import { loadBuiltinModel } from '../../src/node';
import { measureRoofline, type RooflineResult } from '../../bench/roofline-lib';
import { benchCase, type NetworkResult, parseCases, SUITES, withRoofline } from '../../bench/suite-core';
import { getTestContext } from '../helpers/gpu';

/**
 * The benchmark machinery (not speed: nothing here asserts a time): case parsing, the roofline arithmetic, and
 * one small case run end to end with its counted work and memory consistent.
 */
describe('benchmark suite core', () => {
  it('parses cases and both suites, and names what it does not know', () => {
    const cases = parseCases('dncnn@64x48, msrresnet');
    expect(cases.map((c) => [c.spec.key, c.width, c.height])).toEqual([
      ['dncnn', 64, 48],
      ['msrresnet', 64, 64],
    ]);
    for (const suite of Object.values(SUITES)) expect(parseCases(suite.cases).length).toBeGreaterThan(0);
    expect(() => parseCases('dncnn,nosuchnet@8x8')).toThrow(/unknown network 'nosuchnet'/);
    expect(() => parseCases('dncnn@8y8')).toThrow(/bad size/);
  });

  it('takes the lower of the compute peak and bandwidth × intensity as the roofline', () => {
    const roof = { gflops: 10, gbps: 20 } as RooflineResult;
    const r = { status: 'ok', flops: 1e9, bytes: 1e9, gflopPerSecond: 5 } as NetworkResult;
    // 1 FLOP/byte × 20 GB/s = 20 GFLOP/s > the 10 GFLOP/s peak: compute-bound.
    expect(withRoofline(r, roof)).toMatchObject({ fractionOfPeak: 0.5, fractionOfRoofline: 0.5 });
    // 0.25 FLOP/byte × 20 GB/s = 5 GFLOP/s: memory-bound, and 5 GFLOP/s reaches it.
    expect(withRoofline({ ...r, bytes: 4e9 }, roof)).toMatchObject({ fractionOfPeak: 0.5, fractionOfRoofline: 1 });
    expect(withRoofline(r, undefined).fractionOfPeak).toBeUndefined();
  });

  it('runs a case: output shape, counted FLOPs, memory and GPU time agree with the network', async () => {
    const ctx = await getTestContext();
    const [c] = parseCases('dncnn@24x16');
    const r = await benchCase(ctx, c, { runs: 2, warmup: 1, env: { loadBuiltin: (name, context) => loadBuiltinModel(name, { context }) } });
    expect(r.status, r.reason).toBe('ok');
    expect(r.output).toEqual({ width: 24, height: 16, channels: 1 });
    // DnCNN-17: 1→64, 15 × 64→64 and 64→1 3×3 convolutions, 2 FLOPs per multiply-add.
    const macsPerPixel = 9 * (64 + 15 * 64 * 64 + 64);
    expect(r.flops! - 2 * 24 * 16 * macsPerPixel).toBeGreaterThanOrEqual(0);
    expect(r.flops! - 2 * 24 * 16 * macsPerPixel).toBeLessThan(24 * 16 * 10); // + the residual subtraction
    expect(r.ms!.n).toBe(2);
    expect(r.gflopPerSecond).toBeCloseTo(r.flops! / r.ms!.median / 1e6, 6);
    expect(r.weightBytes).toBeGreaterThanOrEqual(4 * 9 * (64 + 15 * 64 * 64 + 64));
    expect(r.nonFiniteOutputs).toBe(0);
  });

  it('measures a (tiny) roofline whose every kernel computed the right thing', async () => {
    const ctx = await getTestContext();
    const roof = await measureRoofline(ctx, {
      sizes: [{ m: 37, n: 21, k: 19 }],
      variants: [{ rows: 2, cols: 1, wgX: 1, wgY: 8 }],
      convSides: [9],
      copyBytes: 1 << 20,
      runs: 1,
      warmup: 1,
    });
    expect(roof.gemm.map((g) => [g.kernel, g.status])).toEqual([
      ['matmul', 'ok'],
      ['conv2d', 'ok'],
      ['conv2d', 'ok'],
    ]);
    for (const g of roof.gemm) expect(g.sampledRelError).toBeLessThan(1e-5);
    expect(roof.gflops).toBeGreaterThan(0);
    expect(roof.copy.every((c) => c.status === 'ok')).toBe(true);
    expect(roof.gbps).toBeGreaterThan(0);
  });
});
