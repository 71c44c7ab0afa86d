/**
 * Measures every conv2d tiling variant on 3×3 64→64 (and the DnCNN head/tail shapes) on this adapter, so the
 * selector's table rests on numbers. Usage: node dist/bench/conv2d-variants.js [size]
 */
import { BufferUsage } from '../src/gpu/flags';
import { Graph } from '../src/gpu/graph';
import { createNodeContext } from '../src/gpu/node-gpu';
import { Plan } from '../src/gpu/plan';
import { type Conv2dGeometry, type Conv2dVariant, conv2d, packBias, packConv2dWeight } from '../src/kernels/conv2d';
import { median } from './stats';

const size = Number(process.argv[2] ?? 128);
const repeats = Number(process.argv[3] ?? 5);
const ctx = await createNodeContext();
console.log(`adapter: ${ctx.adapterName}`);
const geometry: Conv2dGeometry = { inChannels: 64, outChannels: 64, kernelSize: [3, 3], stride: 1, padding: [1, 1], dilation: 1 };
const variants: Conv2dVariant[] = [];
const grid = (process.env.VARIANTS ?? "1x1x64,2x2x64,4x4x64,8x2x64,8x4x64").split(",").map((s) => s.split("x").map(Number));
for (const [px, cb, wg, uw, rr] of grid) variants.push({ px, cb, workgroupSize: wg, uniformWeights: uw === 1, rowReuse: rr === 1 });
const w = ctx.createBufferWithData(packConv2dWeight(new Float32Array(64 * 64 * 9).fill(0.01), geometry), BufferUsage.STORAGE, 'w');
const b = ctx.createBufferWithData(packBias(new Float32Array(64), 64), BufferUsage.STORAGE, 'b');
const flops = 2 * size * size * 64 * 64 * 9;
for (const variant of variants) {
  const g = new Graph();
  const x = g.input([1, size, size, 64]);
  g.output(conv2d(g, x, { weight: w, bias: b, geometry, variant, label: 'c' }, { activation: { kind: 'relu' } }));
  const plan = await Plan.compile(ctx, g);
  const input = new Float32Array(size * size * 64).fill(0.5);
  await plan.run([input]);
  const wall: number[] = [];
  const gpu: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    const r = await plan.run([input], { timing: true });
    wall.push(performance.now() - t0);
    if (r.gpuMs !== undefined) gpu.push(r.gpuMs);
  }
  const ms = gpu.length ? median(gpu) : median(wall);
  console.log(`px${variant.px} cb${variant.cb} wg${variant.workgroupSize}${variant.uniformWeights ? ' uw' : ''}${variant.rowReuse ? ' rr' : ''}: ${ms.toFixed(1)} ms gpu, ${median(wall).toFixed(1)} ms wall, ${(flops / ms / 1e6).toFixed(2)} GFLOP/s`);
  plan.dispose();
}
ctx.dispose();
process.exit(0);
