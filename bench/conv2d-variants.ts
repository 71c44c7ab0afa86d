/**
 * Times convolution tiling variants on one convolution shape on this adapter, so that the selector's table
 * (selectConv2dVariant in src/kernels/conv2d-variants.ts) rests on numbers.
 *
 *   node dist/bench/conv2d-variants.js [--size 128x128] [--channels 64x64] [--kernel 3] [--stride 1] [--runs 3]
 *     [--variants 'px32,cb2,wg64,uw,rr;px16,cb4,wg64,uw,rr']
 *
 * Without --variants: the selector's pick for this shape and a grid around it. Median GPU time (timestamp
 * queries; wall time without them) of --runs runs after one warm-up run.
 */
import { parseBenchArgs } from './args';
import { BufferUsage } from '../src/gpu/flags';
import { Graph } from '../src/gpu/graph';
import { createNodeContext } from '../src/gpu/node-gpu';
import { Plan } from '../src/gpu/plan';
import { conv2d } from '../src/kernels/conv2d';
import { type Conv2dGeometry, conv2dOutputSize, packBias, packConv2dWeight } from '../src/kernels/conv2d-geometry';
import { type Conv2dVariant, selectConv2dVariant } from '../src/kernels/conv2d-variants';
import { variantTags } from '../src/kernels/conv2d.wgsl';
import { parseSize } from './report';
import { parseConv2dVariant } from './variant-text';
import { median } from './stats';

const USAGE = `
  node dist/bench/conv2d-variants.js [--size 128x128] [--channels 64x64] [--kernel 3] [--stride 1] [--runs 3]
    [--variants 'px32,cb2,wg64,uw,rr;px16,cb4,wg64,uw,rr']
`;

const { values } = parseBenchArgs(USAGE, {
  size: { type: 'string', default: '128x128' },
  channels: { type: 'string', default: '64x64' },
  kernel: { type: 'string', default: '3' },
  stride: { type: 'string', default: '1' },
  runs: { type: 'string', default: '3' },
  variants: { type: 'string' },
});
const { width, height } = parseSize(values.size);
const [cin, cout] = values.channels.split('x').map(Number);
const k = Number(values.kernel);
const stride = Number(values.stride);
const runs = Number(values.runs);
const pad = Math.floor(k / 2);
const geometry: Conv2dGeometry = { inChannels: cin, outChannels: cout, kernelSize: [k, k], stride, padding: [pad, pad], dilation: 1 };
const ho = conv2dOutputSize(height, k, stride, pad, 1);
const wo = conv2dOutputSize(width, k, stride, pad, 1);

const ctx = await createNodeContext();
console.log(`adapter: ${ctx.adapterName}`);
console.log(`conv ${k}×${k} s${stride} ${cin}→${cout} on ${width}×${height} (output ${wo}×${ho})`);
const picked = selectConv2dVariant(ctx, geometry, wo);
const variants: Conv2dVariant[] = values.variants
  ? values.variants.split(';').map(parseConv2dVariant)
  : [picked, ...['px8,cb4', 'px16,cb2', 'px16,cb4', 'px32,cb1', 'px32,cb2', 'px64,cb1'].map((t) => parseConv2dVariant(`${t},wg64,uw,rr`))];

const w = ctx.createBufferWithData(packConv2dWeight(new Float32Array(cout * cin * k * k).fill(0.01), geometry), BufferUsage.STORAGE, 'w');
const b = ctx.createBufferWithData(packBias(new Float32Array(cout), cout), BufferUsage.STORAGE, 'b');
const flops = 2 * ho * wo * cout * cin * k * k;
const tag = (v: Conv2dVariant) => variantTags(v);
for (const variant of variants) {
  const g = new Graph();
  const x = g.input([1, height, width, cin]);
  g.output(conv2d(g, x, { weight: w, bias: b, geometry, variant, label: 'c' }, { activation: { kind: 'relu' } }));
  const t0 = performance.now();
  const plan = await Plan.compile(ctx, g);
  const input = new Float32Array(tensorLength(x.shape)).fill(0.5);
  await plan.run([input]);
  const firstMs = performance.now() - t0;
  const wall: number[] = [];
  const gpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t1 = performance.now();
    const r = await plan.run([input], { timing: true });
    wall.push(performance.now() - t1);
    if (r.gpuMs !== undefined) gpu.push(r.gpuMs);
  }
  const times = gpu.length ? gpu : wall;
  const ms = median(times);
  const mark = variant === picked ? ' (selector)' : '';
  console.log(
    `${tag(variant)}${mark}: ${ms.toFixed(1)} ms ${gpu.length ? 'gpu' : 'wall'} (min ${Math.min(...times).toFixed(1)}), ` +
      `${(flops / ms / 1e6).toFixed(2)} GFLOP/s ` +
      `(compile + first run ${(firstMs / 1000).toFixed(1)} s)`,
  );
  plan.dispose();
}
ctx.dispose();
process.exit(0);

function tensorLength(shape: readonly number[]): number {
  return shape[0] * shape[1] * shape[2] * Math.ceil(shape[3] / 4) * 4;
}
