import { describe, expect, it } from 'vitest';
import { GPUUnavailableError } from '../../src/errors';
import { BufferUsage } from '../../src/gpu/flags';
import { Graph } from '../../src/gpu/graph';
import { createNodeContext } from '../../src/gpu/node-gpu';
import { Plan } from '../../src/gpu/plan';
import { summarizeByKernel } from '../../src/gpu/profile';
import { tensorElements } from '../../src/gpu/tensor';
import { conv2d } from '../../src/kernels/conv2d';
import { type Conv2dGeometry, packBias, packConv2dWeight } from '../../src/kernels/conv2d-geometry';
import { selectConv2dVariant } from '../../src/kernels/conv2d-variants';
import { binary } from '../../src/kernels/elementwise';
import { affine } from '../../src/kernels/pointwise';
import { getTestContext } from '../helpers/gpu';
import { randomArray } from '../helpers/random';

describe('Plan.profile: a timestamp pair around every dispatch', () => {
  it('times each dispatch and carries its label, shader variant and cost', async () => {
    const ctx = await getTestContext();
    if (!ctx.hasTimestamps) return console.log('skipped: no timestamp-query on this device');
    const g = new Graph();
    // 118 MFLOP: tens of ms even on a fast CPU adapter, far above a pass's own overhead (about 2 ms on lavapipe).
    const x = g.input([1, 160, 160, 16]);
    const geometry: Conv2dGeometry = { inChannels: 16, outChannels: 16, kernelSize: [3, 3], stride: 1, padding: [1, 1], dilation: 1 };
    const weight = ctx.createBufferWithData(packConv2dWeight(randomArray(16 * 16 * 9, 1), geometry), BufferUsage.STORAGE, 'w');
    const bias = ctx.createBufferWithData(packBias(randomArray(16, 2), 16), BufferUsage.STORAGE, 'b');
    const variant = selectConv2dVariant(ctx, geometry, 160);
    const y = conv2d(g, x, { weight, bias, geometry, variant, label: 'heavy conv' });
    const tiny = g.input([1, 1, 1, 4], 'tiny');
    g.output(y);
    g.output(binary(g, 'add', tiny, tiny, 'tiny add'));
    const plan = await Plan.compile(ctx, g);
    const inputs = [Float32Array.from(randomArray(tensorElements(x.shape), 3)), new Float32Array(4).fill(1)];
    await plan.run(inputs); // first run: lazy shader compilation on some drivers
    const profile = await plan.profile(inputs);
    plan.dispose();
    weight.destroy();
    bias.destroy();

    expect(profile.map((p) => [p.label, p.kernel])).toEqual(g.nodes.map((n) => [n.label, n.kernel.label]));
    expect(profile.map((p) => ({ flops: p.flops, bytes: p.bytes }))).toEqual(g.nodes.map((n) => n.cost));
    for (const p of profile) expect(Number.isFinite(p.ms) && p.ms >= 0).toBe(true);
    // 118 MFLOP against 4 additions: the convolution must take longer, whatever the machine's load.
    expect(profile[0].ms).toBeGreaterThan(profile[1].ms);
    const byKernel = summarizeByKernel(profile);
    expect(byKernel.map((k) => k.kernel)).toEqual([profile[0].kernel, profile[1].kernel]);
    expect(byKernel[0]).toMatchObject({ dispatches: 1, ms: profile[0].ms, flops: profile[0].flops, uncounted: 0 });
  });

  it('spreads more than 2048 dispatches over several query sets (4096 queries each)', async () => {
    const ctx = await getTestContext();
    if (!ctx.hasTimestamps) return console.log('skipped: no timestamp-query on this device');
    const count = 2 * 2048 + 5;
    const g = new Graph();
    let t = g.input([1, 1, 1, 4]);
    for (let i = 0; i < count; i++) t = affine(g, t, 1, 1, `add one ${i}`);
    g.output(t);
    const plan = await Plan.compile(ctx, g);
    const input = Float32Array.from([1, 2, 3, 4]);
    const profile = await plan.profile([input]);
    expect(profile).toHaveLength(count);
    expect(profile[count - 1].label).toBe(`add one ${count - 1}`);
    for (const p of profile) expect(Number.isFinite(p.ms) && p.ms >= 0).toBe(true);
    // The profiled run computed the chain (the outputs stay in the plan's buffers; a normal run reads them).
    const { outputs } = await plan.run([input]);
    plan.dispose();
    expect([...outputs[0]]).toEqual([1, 2, 3, 4].map((v) => v + count));
  }, 300_000);

  it('refuses a device without timestamp-query', async () => {
    const ctx = await createNodeContext({ timestamps: false });
    try {
      const g = new Graph();
      const x = g.input([1, 1, 1, 4]);
      g.output(affine(g, x, 2, 0, 'double'));
      const plan = await Plan.compile(ctx, g);
      await expect(plan.profile([new Float32Array(4)])).rejects.toThrow(GPUUnavailableError);
      plan.dispose();
    } finally {
      ctx.dispose();
    }
  });
});
