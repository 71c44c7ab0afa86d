/**
 * DnCNN-17 (built-in σ=25 weights) end-to-end timing: median of repeated runs after warm-up, GPU time from
 * timestamp queries where the adapter has them, plus wall time (upload + dispatches + readback).
 *
 *   npm run bench:dncnn -- [--size 256 --runs 5 --warmup 1 --json out.json]   (--size 1024x768 for width × height)
 */
import { parseBenchArgs } from './args';
import { writeFileSync } from 'node:fs';
import { getDefaultContext, loadBuiltinModel, releaseNodeGPU } from '../src/node';
import { parseConv2dVariant } from './variant-text';
import { median, percentile } from './stats';

const USAGE = `
  npm run bench:dncnn -- [--size 256 --runs 5 --warmup 1 --json out.json --variant px32,cb2,wg64,uw,rr]   (--size 1024x768 for width × height)
`;

const { values } = parseBenchArgs(USAGE, {
  size: { type: 'string', default: '256' },
  runs: { type: 'string', default: '5' },
  warmup: { type: 'string', default: '1' },
  json: { type: 'string' },
  // Force one convolution variant, e.g. --variant px8,cb4,wg64 (see the shader labels / selectConv2dVariant).
  variant: { type: 'string' },
});
const [width, height] = values.size.includes('x') ? values.size.split('x').map(Number) : [Number(values.size), Number(values.size)];
const runs = Number(values.runs);
const ctx = await getDefaultContext();
if (values.variant) ctx.variantOverrides.conv2d = parseConv2dVariant(values.variant);
const model = await loadBuiltinModel('dncnn_25', { context: ctx });
const image = { width, height, channels: 1, data: new Float32Array(width * height).map((_, i) => ((i * 7919) % 256) / 255) };
const tCompile = performance.now();
await model.warmup(height, width);
const compileMs = performance.now() - tCompile;
for (let i = 0; i < Number(values.warmup); i++) await model.runFloat(image);
const wall: number[] = [];
const gpu: number[] = [];
let dispatches = 0;
let activationBytes = 0;
for (let i = 0; i < runs; i++) {
  const { stats } = await model.runFloat(image);
  wall.push(stats.wallMs);
  if (stats.gpuMs !== undefined) gpu.push(stats.gpuMs);
  dispatches = stats.dispatches;
  activationBytes = stats.activationBytes;
}
// 17 convolutions: 1→64, 15 × 64→64, 64→1, 3×3, 2 FLOP per MAC.
const flops = 2 * width * height * 9 * (64 + 15 * 64 * 64 + 64);
const result = {
  benchmark: `DnCNN-17 ${width}×${height} grayscale`,
  adapter: ctx.describe(),
  runs,
  compileMs,
  wallMs: { median: median(wall), p10: percentile(wall, 10), p90: percentile(wall, 90) },
  gpuMs: gpu.length ? { median: median(gpu), p10: percentile(gpu, 10), p90: percentile(gpu, 90) } : null,
  gflops: flops / 1e9,
  gflopPerSecond: flops / 1e6 / (gpu.length ? median(gpu) : median(wall)),
  dispatches,
  activationMiB: activationBytes / 2 ** 20,
  variants: ctx.pipelines.labels(),
};
console.log(`adapter: ${ctx.adapterName}`);
console.log(`| benchmark | median wall ms | median GPU ms | GFLOP/s | dispatches | activation MiB |`);
console.log(`|---|---|---|---|---|---|`);
console.log(
  `| ${result.benchmark} | ${result.wallMs.median.toFixed(1)} | ${result.gpuMs ? result.gpuMs.median.toFixed(1) : '–'} | ${result.gflopPerSecond.toFixed(2)} | ${dispatches} | ${result.activationMiB.toFixed(1)} |`,
);
console.log(JSON.stringify(result));
if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2));
model.dispose();
ctx.dispose();
releaseNodeGPU();
process.exit(0);
