/**
 * `webgpu-restore compare a b`: PSNR and SSIM between two images, as scikit-image and KAIR compute them
 * (src/io metrics). Images of different integer bit depths are compared on the common [0, 1] scale. Images of
 * more than GPU_MIN_PIXELS pixels are measured on the GPU (src/runtime/ssim-gpu.ts, same definitions, agreeing with
 * the float64 CPU versions to ~1e-6), falling back to the CPU when no device can be had. With
 * `--lpips BACKBONE.pth,HEADS.pth` also the LPIPS distance (src/runtime/lpips.ts), which needs a GPU.
 */
import { InvalidInputError, RestoreError } from '../errors';
import { type AnyRasterImage, type FloatImage, rasterToFloat } from '../io/image';
import { psnr } from '../io/metrics';
import { ssim } from '../io/ssim';
import { lpips } from '../runtime/lpips';
import { psnrGpu, ssimGpu } from '../runtime/ssim-gpu';
import type { GPUContext } from '../gpu/context';
import { getDefaultContext } from '../node';
import { readImageFilePages } from '../node-files';
import { parseCommandArgs, positiveNumber } from './args';
import type { CheckpointFile } from './checkpoint-file';
import { UsageError } from './errors';
import { lpipsFromFiles, lpipsPaths, readLpipsFiles } from './lpips-option';
import { usageFor } from './usage';

/** Above this many pixels the float64 CPU SSIM takes seconds; the GPU partial sums are as accurate. */
const GPU_MIN_PIXELS = 1_000_000;

const OPTIONS = {
  'data-range': { type: 'string' },
  lpips: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function describe(path: string, img: AnyRasterImage, pages: number): string {
  const kind = img.channels === 1 ? 'gray' : 'RGB';
  const depth = img.bitDepth === 32 ? '32-bit float' : `${img.bitDepth}-bit`;
  return `${path}: ${img.width}×${img.height} ${kind} ${depth}${img.alpha ? ' + alpha' : ''}${pages > 1 ? ` (page 1 of ${pages})` : ''}`;
}

async function firstPage(path: string): Promise<{ image: AnyRasterImage; pages: number }> {
  const file = await readImageFilePages(path);
  return { image: file.pages[0].image, pages: file.pages.length };
}

/** The LPIPS distance with the user's torchvision backbone and LPIPS heads. */
async function lpipsDistance(
  ctx: GPUContext,
  files: [CheckpointFile, CheckpointFile],
  x: AnyRasterImage | FloatImage,
  y: AnyRasterImage | FloatImage,
): Promise<{ backbone: string; distance: number }> {
  const model = lpipsFromFiles(ctx, files);
  try {
    return { backbone: model.backbone, distance: await lpips(model, x, y) };
  } finally {
    model.dispose();
  }
}

export async function compareCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('compare', argv, OPTIONS);
  if (values.help) {
    console.log(usageFor('compare'));
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError('compare needs two image files', 'compare');
  const range = values['data-range'] === undefined ? undefined : positiveNumber('compare', '--data-range', values['data-range']);
  const [pa, pb] = positionals;
  const lpipsFiles = values.lpips === undefined ? undefined : lpipsPaths(values.lpips, 'compare');
  const a = await firstPage(pa);
  const b = await firstPage(pb);

  let x: AnyRasterImage | FloatImage = a.image;
  let y: AnyRasterImage | FloatImage = b.image;
  let note: string | undefined;
  const da = a.image.bitDepth;
  const db = b.image.bitDepth;
  if (da !== db) {
    if (da === 32 || db === 32) {
      throw new InvalidInputError(
        `${pa} is ${da === 32 ? 'float' : `${da}-bit`} and ${pb} is ${db === 32 ? 'float' : `${db}-bit`}: ` +
          'float samples have no fixed range to compare integer ones with; convert one of them first',
      );
    }
    // 8-bit against 16-bit: both divided by their maximum, so the data range becomes 1.
    x = rasterToFloat(a.image);
    y = rasterToFloat(b.image);
    note = `${da}-bit and ${db}-bit compared on the [0, 1] scale (data range 1)`;
  }
  const dataRange = range ?? (x === a.image && da !== 32 ? (da === 16 ? 65535 : 255) : 1);
  // The weights are read before any GPU work, so a wrong path fails at once.
  const lpipsWeights = lpipsFiles ? await readLpipsFiles(lpipsFiles) : undefined;
  const large = x.width * x.height > GPU_MIN_PIXELS;
  // No GPU (or a failing one): the CPU gives the same PSNR and SSIM, only slower. LPIPS needs the GPU.
  const ctx: GPUContext | undefined = lpipsWeights
    ? await getDefaultContext()
    : large
      ? await getDefaultContext().catch(() => undefined)
      : undefined;
  const metricsCtx = large ? ctx : undefined;
  let psnrDb: number;
  let ssimValue: number | undefined;
  let ssimProblem: string | undefined;
  let lpipsResult: { backbone: string; distance: number } | undefined;
  try {
    psnrDb = metricsCtx ? await psnrGpu(metricsCtx, x, y, { dataRange }) : psnr(x, y, { dataRange });
    try {
      ssimValue = metricsCtx ? await ssimGpu(metricsCtx, x, y, { dataRange }) : ssim(x, y, { dataRange });
    } catch (e) {
      // Too small for the 11×11 window: PSNR is still meaningful, so report rather than fail.
      if (!(e instanceof RestoreError)) throw e;
      ssimProblem = e.message;
    }
    // Asked for explicitly, so an image too small for the backbone fails rather than being reported.
    if (ctx && lpipsWeights) lpipsResult = await lpipsDistance(ctx, lpipsWeights, x, y);
  } finally {
    ctx?.dispose();
  }

  if (values.json) {
    const result = {
      a: { file: pa, width: a.image.width, height: a.image.height, channels: a.image.channels, bitDepth: da },
      b: { file: pb, width: b.image.width, height: b.image.height, channels: b.image.channels, bitDepth: db },
      dataRange,
      // JSON has no Infinity: identical images give psnr null with identical true.
      psnr: Number.isFinite(psnrDb) ? psnrDb : null,
      identical: psnrDb === Infinity,
      ssim: ssimValue ?? null,
      ssimError: ssimProblem ?? null,
      ...(lpipsResult ? { lpips: lpipsResult.distance, lpipsBackbone: lpipsResult.backbone } : {}),
    };
    console.log(JSON.stringify(result, null, 2));
    return 0;
  }
  const lines = [`a: ${describe(pa, a.image, a.pages)}`, `b: ${describe(pb, b.image, b.pages)}`];
  if (note) lines.push(`note: ${note}`);
  lines.push(`data range: ${dataRange}`);
  lines.push(`PSNR: ${Number.isFinite(psnrDb) ? `${psnrDb.toFixed(4)} dB` : 'inf (identical)'}`);
  lines.push(`SSIM: ${ssimValue !== undefined ? ssimValue.toFixed(6) : `not computed (${ssimProblem})`}`);
  if (lpipsResult) lines.push(`LPIPS (${lpipsResult.backbone}): ${lpipsResult.distance.toFixed(6)}`);
  console.log(lines.join('\n'));
  return 0;
}
