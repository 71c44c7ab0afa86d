/**
 * Set12 denoising benchmark for the built-in DnCNN σ=25 (or --weights): Gaussian noise σ=25/255 added in float
 * (not quantised, seed = image index), output clamped to [0,1] and rounded to 8 bits, PSNR against the clean
 * 8-bit image. Published reference: 30.43 dB mean (DnCNN paper: 30.44).
 *
 *   npm run eval:set12 [-- --set12 <dir>] [--images 01,05] [--weights file.pth] [--sigma 25] [--json out.json]
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { floatToRaster, rasterToFloat } from '../src/io/image';
import { psnr } from '../src/io/metrics';
import { addGaussianNoise } from '../src/io/noise';
import { decodePng } from '../src/io/png';
import { getDefaultContext, loadBuiltinModel, loadModel, releaseNodeGPU } from '../src/node';

const { values } = parseArgs({
  options: {
    set12: { type: 'string', default: resolve(process.cwd(), '../shared/data/set12') },
    images: { type: 'string' },
    weights: { type: 'string' },
    sigma: { type: 'string', default: '25' },
    json: { type: 'string' },
  },
});

const sigma = Number(values.sigma) / 255;
const ctx = await getDefaultContext();
const model = values.weights
  ? await loadModel(new Uint8Array(readFileSync(values.weights)), { context: ctx, name: values.weights })
  : await loadBuiltinModel('dncnn_25', { context: ctx });
const wanted = values.images?.split(',');
const files = readdirSync(values.set12)
  .filter((f) => f.endsWith('.png'))
  .filter((f) => !wanted || wanted.includes(f.replace(/\.png$/, '')))
  .sort();

console.log(`adapter: ${ctx.adapterName}`);
console.log(`model: ${model.name}, sigma ${values.sigma}, ${files.length} images\n`);
console.log('| image | size | noisy PSNR | denoised PSNR | GPU ms |');
console.log('|---|---|---|---|---|');
const rows: { image: string; width: number; height: number; noisyPsnr: number; psnr: number; gpuMs?: number }[] = [];
for (const file of files) {
  const clean8 = decodePng(new Uint8Array(readFileSync(join(values.set12, file))), file);
  const clean = rasterToFloat(clean8);
  const seed = Number.parseInt(file, 10) || 0;
  const noisy = { ...clean, data: addGaussianNoise(clean.data, sigma, seed) };
  const { image, stats } = await model.runFloat(noisy);
  const out8 = floatToRaster(image, 8);
  const row = {
    image: file,
    width: clean.width,
    height: clean.height,
    noisyPsnr: psnr(noisy.data, clean.data, 1),
    psnr: psnr(out8.data, clean8.data, 255),
    gpuMs: stats.gpuMs,
  };
  rows.push(row);
  console.log(
    `| ${file} | ${row.width}×${row.height} | ${row.noisyPsnr.toFixed(2)} | ${row.psnr.toFixed(2)} | ${stats.gpuMs?.toFixed(0) ?? '–'} |`,
  );
}
const mean = rows.reduce((s, r) => s + r.psnr, 0) / rows.length;
console.log(`\nmean PSNR: ${mean.toFixed(2)} dB over ${rows.length} images (reference 30.43 dB)`);
if (values.json) {
  writeFileSync(
    values.json,
    JSON.stringify({ adapter: ctx.describe(), model: model.info, sigma: Number(values.sigma), rows, meanPsnr: mean }, null, 2),
  );
}
model.dispose();
ctx.dispose();
releaseNodeGPU();
process.exit(0);
