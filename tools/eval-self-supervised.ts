/**
 * The measurements behind the README's self-supervised section (issue 18), each training run bounded by wall time:
 *
 * - set12: Set12 with Gaussian σ=25 added in float (seed = image index, as eval-set12), a fresh N2V2 U-Net
 *   (CAREamics' width 32) trained by N2V2 on the twelve noisy images alone, scored against the clean images (8-bit
 *   rounding, as eval-set12), beside the noisy input and the built-in supervised DnCNN σ25.
 * - sem: the shared nanomembrane SEM micrographs (info bar cut off, a centred crop of each) with Poisson–Gaussian
 *   noise added at two levels; five images train, two are held out. The built-in DnCNN σ25 as it is, then
 *   fine-tuned by N2V2 and by Neighbor2Neighbor on the five noisy training crops alone, scored on the held-out
 *   crops against the micrographs as recorded.
 * - zeiss: the Zeiss TIFFs (real noise, no ground truth): the built-in DnCNN fine-tuned by N2V2 on three, before
 *   and after crops of the fourth written as PNGs for the README.
 *
 *   npm run eval:self-supervised -- [--experiments set12,sem,zeiss] [--minutes 5] [--json out.json] [--crops DIR]
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type FloatImage, floatToRaster, rasterToFloat, toGray } from '../src/io/image';
import { cropRows, detectInfoBar } from '../src/io/info-bar';
import { psnr } from '../src/io/metrics';
import { addGaussianNoise, createRng } from '../src/io/noise';
import { encodePng } from '../src/io/png';
import { networkFromCheckpoint } from '../src/models/load';
import { N2VUNet, n2vUNetConfig } from '../src/models/n2v-unet';
import type { Network } from '../src/models/network';
import { builtinWeightsPath, getDefaultContext, releaseNodeGPU } from '../src/node';
import { readImageFilePages } from '../src/node-files';
import { RestorationModel } from '../src/runtime/restoration-model';
import { addNoise } from '../src/training/data/noise-model';
import { fineTune, type FineTuneOptions, type NamedImage } from '../src/training/fine-tune';
import { initializeParameters } from '../src/training/init';

const { values } = parseArgs({
  options: {
    experiments: { type: 'string', default: 'set12,sem,zeiss' },
    minutes: { type: 'string', default: '5' },
    data: { type: 'string', default: resolve(process.cwd(), '../shared/data') },
    crop: { type: 'string', default: '256' },
    json: { type: 'string' },
    crops: { type: 'string', default: 'docs/self-supervised' },
  },
});

const minutes = Number(values.minutes);
const side = Number(values.crop);
const ctx = await getDefaultContext();
const record: Record<string, unknown> = { adapter: ctx.adapterName, date: new Date().toISOString(), minutesPerRun: minutes };
console.log(`adapter: ${ctx.adapterName}; ${minutes} min per training run`);

function builtinDnCNN(): Network {
  return networkFromCheckpoint(new Uint8Array(readFileSync(builtinWeightsPath('dncnn_25'))), { name: 'dncnn_25' });
}

/** PSNR of `image` against `clean` on the 8-bit grid, as eval-set12 scores (clamped, rounded). */
function psnr8(image: FloatImage, clean: FloatImage): number {
  return psnr(floatToRaster(image, 8).data, floatToRaster(clean, 8).data, 255);
}

async function denoise(network: Network, images: readonly FloatImage[]): Promise<FloatImage[]> {
  const session = new RestorationModel(ctx, network, network.architecture);
  try {
    const out: FloatImage[] = [];
    for (const image of images) out.push((await session.runFloat(image)).image);
    return out;
  } finally {
    await session.dispose();
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function train(network: Network, images: NamedImage[], options: Partial<FineTuneOptions> & Pick<FineTuneOptions, 'method'>) {
  const started = Date.now();
  let lastLine = 0;
  const result = await fineTune(ctx, network, images, {
    patch: 64,
    batch: 8,
    maxSeconds: minutes * 60,
    validations: 4,
    ...options,
    onProgress: (p) => {
      if (Date.now() - lastLine > 30_000 || p.validation) {
        lastLine = Date.now();
        const val = p.validation?.loss !== undefined ? ` val loss ${p.validation.loss.toExponential(3)}` : '';
        console.log(`  step ${p.step} loss ${p.loss.toExponential(3)}${val} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
      }
    },
  });
  const seconds = (Date.now() - started) / 1000;
  return { steps: result.steps, seconds, stepsPerSecond: result.steps / seconds, bestValidationLoss: result.bestValidation?.loss };
}

function centreCrop(image: FloatImage, size: number): FloatImage {
  const w = Math.min(size, image.width);
  const h = Math.min(size, image.height);
  const x0 = Math.floor((image.width - w) / 2);
  const y0 = Math.floor((image.height - h) / 2);
  const data = new Float32Array(w * h * image.channels);
  for (let c = 0; c < image.channels; c++)
    for (let y = 0; y < h; y++) {
      const src = (c * image.height + y0 + y) * image.width + x0;
      data.set(image.data.subarray(src, src + w), (c * h + y) * w);
    }
  return { width: w, height: h, channels: image.channels, data };
}

/** A micrograph as gray floats in [0, 1], info bar cut off. */
async function readMicrograph(path: string): Promise<FloatImage> {
  const { pages } = await readImageFilePages(path, { page: 0 });
  let image = pages[0].image;
  const bar = detectInfoBar(image);
  if (bar) image = cropRows(image, 0, bar.top);
  if (image.channels === 3) image = toGray(image);
  return rasterToFloat(image);
}

async function set12(): Promise<void> {
  const dir = join(values.data, 'set12');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.png'))
    .sort();
  const clean = await Promise.all(files.map((f) => readMicrograph(join(dir, f))));
  const noisy = clean.map((c, i) => ({ ...c, data: addGaussianNoise(c.data, 25 / 255, Number.parseInt(files[i], 10) || 0) }));
  console.log('\nset12: N2V2 U-Net from scratch on the 12 noisy images');
  const model = new N2VUNet(n2vUNetConfig(1, 1, { n2v2: true }));
  initializeParameters(model, 0);
  const run = await train(
    model,
    noisy.map((image, i) => ({ name: files[i], image })),
    { method: 'n2v2', validationFraction: 0, batch: 8, percentage: 1.5, optimizer: { kind: 'adam', lr: 4e-4 } },
  );
  const n2v2 = (await denoise(model, noisy)).map((o, i) => psnr8(o, clean[i]));
  const dncnn = (await denoise(builtinDnCNN(), noisy)).map((o, i) => psnr8(o, clean[i]));
  const input = noisy.map((n, i) => psnr(n.data, clean[i].data, 1));
  const result = { ...run, psnrNoisy: mean(input), psnrN2V2: mean(n2v2), psnrDnCNN: mean(dncnn), publishedN2VBsd68: 27.81 };
  console.log(result);
  record.set12 = result;
}

const SEM_LEVELS = [
  { name: 'low', alpha: 0.005, sigma: 0.01 },
  { name: 'high', alpha: 0.02, sigma: 0.03 },
];

async function sem(): Promise<void> {
  const dir = join(values.data, 'sem', 'nanomembranes');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.png'))
    .sort();
  const micrographs = await Promise.all(files.map((f) => readMicrograph(join(dir, f))));
  // Training crops twice the side of the scored ones; the last two micrographs are held out.
  const trainCrops = micrographs.slice(0, 5).map((m) => centreCrop(m, 2 * side));
  const heldOut = micrographs.slice(5).map((m) => centreCrop(m, side));
  const results: Record<string, unknown> = { training: files.slice(0, 5), heldOut: files.slice(5), crop: side };
  for (const level of SEM_LEVELS) {
    const rng = createRng(1234);
    const model = { kind: 'poisson-gaussian' as const, alpha: level.alpha, sigma: level.sigma };
    const noisyTrain = trainCrops.map((c) => ({ ...c, data: addNoise(c.data, model, rng) }));
    const noisyHeld = heldOut.map((c) => ({ ...c, data: addNoise(c.data, model, rng) }));
    const score = async (network: Network) => mean((await denoise(network, noisyHeld)).map((o, i) => psnr8(o, heldOut[i])));
    const row: Record<string, unknown> = {
      noise: level,
      psnrNoisy: mean(noisyHeld.map((n, i) => psnr(n.data, heldOut[i].data, 1))),
      psnrDnCNN: await score(builtinDnCNN()),
    };
    for (const method of ['n2v2', 'neighbor2neighbor'] as const) {
      console.log(`\nsem ${level.name}: DnCNN fine-tuned by ${method}`);
      const network = builtinDnCNN();
      const run = await train(
        network,
        noisyTrain.map((image, i) => ({ name: files[i], image })),
        {
          method,
          // Small steps for a 17-layer network on a software adapter; N2V's nominal 1.5 % blind spots.
          patch: method === 'n2v2' ? 40 : 48,
          batch: 4,
          ...(method === 'n2v2' ? { percentage: 1.5 } : {}),
          validationFraction: 0.2,
          optimizer: { kind: 'adam', lr: 5e-5 },
        },
      );
      row[method] = { ...run, psnr: await score(network) };
    }
    console.log(row);
    results[level.name] = row;
  }
  record.sem = results;
}

async function zeiss(): Promise<void> {
  const dir = join(values.data, 'sem', 'zeiss-with-databar');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.tif'))
    .sort();
  const images = await Promise.all(files.map((f) => readMicrograph(join(dir, f))));
  const shown = centreCrop(images[3], 192);
  const network = builtinDnCNN();
  const before = (await denoise(network, [shown]))[0];
  console.log(`\nzeiss: DnCNN fine-tuned by N2V2 on ${files.slice(0, 3).join(', ')}`);
  const run = await train(
    network,
    images.slice(0, 3).map((image, i) => ({ name: files[i], image: centreCrop(image, 2 * side) })),
    { method: 'n2v2', patch: 40, batch: 4, percentage: 1.5, validationFraction: 0, optimizer: { kind: 'adam', lr: 5e-5 } },
  );
  const after = (await denoise(network, [shown]))[0];
  mkdirSync(values.crops, { recursive: true });
  const stem = basename(files[3], '.tif');
  for (const [what, image] of [
    ['input', shown],
    ['dncnn', before],
    ['dncnn-n2v2', after],
  ] as const) {
    writeFileSync(join(values.crops, `${stem}-${what}.png`), encodePng(floatToRaster(image, 8)));
  }
  record.zeiss = { ...run, shown: files[3], crops: values.crops };
  console.log(record.zeiss);
}

const wanted = values.experiments.split(',');
const experiments: Record<string, () => Promise<void>> = { set12, sem, zeiss };
for (const name of wanted) await experiments[name]();
if (values.json) writeFileSync(values.json, `${JSON.stringify(record, null, 1)}\n`);
releaseNodeGPU();
