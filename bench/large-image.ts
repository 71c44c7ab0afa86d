/**
 * A large 16-bit image through the built-in DnCNN σ=25 in Node, tiled automatically to stay within the device's
 * limits and an activation budget, with progress: time, tiles, peak activation memory, and GPU buffers in use
 * before and after (they must be equal).
 *
 *   npm run bench:large -- [--size 4096x3072] [--budget-mib 1024] [--tile 0 (auto)] [--json out.json]
 */
import { parseBenchArgs } from './args';
import { writeFileSync } from 'node:fs';
import { getDefaultContext, loadBuiltinModel, releaseNodeGPU } from '../src/node';

const USAGE = `
  npm run bench:large -- [--size 4096x3072] [--budget-mib 1024] [--tile 0 (auto)] [--json out.json]
`;

const { values } = parseBenchArgs(USAGE, {
  size: { type: 'string', default: '4096x3072' },
  'budget-mib': { type: 'string', default: '1024' },
  tile: { type: 'string', default: '0' },
  json: { type: 'string' },
});
const [width, height] = values.size.split('x').map(Number);
const budget = Number(values['budget-mib']) * 2 ** 20;
const tile = Number(values.tile);

// A smooth 16-bit test pattern with seeded noise (σ = 25/255 of full scale).
let seed = 12345;
const uniform = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return (seed + 0.5) / 4294967296;
};
const data = new Uint16Array(width * height);
for (let y = 0; y < height; y++) {
  for (let x = 0; x < width; x++) {
    const clean = 0.5 + 0.3 * Math.sin(x / 37) * Math.cos(y / 53);
    const noise = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()) * (25 / 255);
    data[y * width + x] = Math.round(Math.min(1, Math.max(0, clean + noise)) * 65535);
  }
}

const ctx = await getDefaultContext();
const model = await loadBuiltinModel('dncnn_25', { context: ctx });
console.log(`adapter: ${ctx.adapterName}`);
console.log(`image: ${width}×${height} 16-bit gray; activation budget ${values['budget-mib']} MiB; tile ${tile || 'auto'}`);
const buffersBefore = ctx.buffers.inUse;
const t0 = performance.now();
let lastPrint = 0;
let tiles = 0;
const out = await model.runFloat(
  { width, height, channels: 1, data: Float32Array.from(data, (v) => v / 65535) },
  {
    maxActivationBytes: budget,
    ...(tile ? { tileSize: tile } : {}),
    onProgress: ({ done, total }) => {
      tiles = total;
      const now = performance.now();
      if (now - lastPrint > 10_000 || done === total) {
        lastPrint = now;
        console.log(`  tile ${done}/${total}  ${((now - t0) / 1000).toFixed(0)} s`);
      }
    },
  },
);
const seconds = (performance.now() - t0) / 1000;
const result = {
  benchmark: `DnCNN-17 ${width}×${height} 16-bit, tiled`,
  adapter: ctx.describe(),
  seconds,
  gpuSeconds: out.stats.gpuMs !== undefined ? out.stats.gpuMs / 1000 : null,
  tiles,
  peakActivationMiB: out.stats.activationBytes / 2 ** 20,
  buffersInUseBefore: buffersBefore,
  buffersInUseAfter: ctx.buffers.inUse,
  outputFinite: out.image.data.every(Number.isFinite),
};
console.log(
  `done in ${seconds.toFixed(0)} s (GPU ${result.gpuSeconds?.toFixed(0) ?? '–'} s), ${tiles} tiles, ` +
    `peak activations ${result.peakActivationMiB.toFixed(0)} MiB, buffers in use ${buffersBefore} → ${ctx.buffers.inUse}`,
);
console.log(JSON.stringify(result));
if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2));
model.dispose();
ctx.dispose();
releaseNodeGPU();
process.exit(0);
