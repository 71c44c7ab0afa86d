/**
 * PSNR and SSIM on the GPU, for images large enough that the float64 CPU versions (src/io/metrics.ts,
 * src/io/ssim.ts) take seconds. Same definitions, same options, same errors; results agree with the CPU to
 * ~1e-6 (SSIM) and ~1e-5 dB (PSNR): the GPU works in f32 but only produces per-workgroup partial sums, which
 * are added here in float64 (kernels in src/kernels/ssim.ts). Browser-safe.
 *
 * The image goes up in bands of rows (SSIM bands overlap by the window's 2r rows), so neither the upload array
 * nor a GPU buffer grows with the image beyond `maxBandBytes`.
 */
import { InvalidInputError, LimitExceededError } from '../errors';
import type { GPUContext } from '../gpu/context';
import { Graph, type TensorValue } from '../gpu/graph';
import { Plan } from '../gpu/plan';
import { paddedChannels, type Shape4 } from '../gpu/tensor';
import { SSIM_TILE, squaredErrorPartials, ssimPartials, ssimWorkgroupBytes } from '../kernels/ssim';
import { isAnyRaster } from '../io/image';
import { checkImagePair, type MetricImage, type PsnrOptions } from '../io/metrics';
import { type SsimOptions, ssimParameters } from '../io/ssim';

export interface GpuMetricOptions {
  /**
   * Largest upload per image and band, in bytes (default 64 MiB, capped by the device's maxBufferSize). Images
   * are processed in bands of rows that fit; smaller values only cost more dispatches.
   */
  maxBandBytes?: number;
}

const DEFAULT_BAND_BYTES = 64 * 1024 * 1024;

/** Rows `y0 … y0 + rows − 1` of an image as an NHWC tensor [1, rows, W, C], channels padded to 4. */
function packRows(img: MetricImage, y0: number, rows: number): Float32Array {
  const { width, height, channels } = img;
  const cp = paddedChannels(channels);
  const out = new Float32Array(rows * width * cp);
  if (isAnyRaster(img)) {
    const data = img.data;
    for (let y = 0; y < rows; y++) {
      let src = (y0 + y) * width * channels;
      let dst = y * width * cp;
      for (let x = 0; x < width; x++, src += channels, dst += cp) {
        for (let c = 0; c < channels; c++) out[dst + c] = data[src + c];
      }
    }
  } else {
    const data = img.data;
    for (let c = 0; c < channels; c++) {
      for (let y = 0; y < rows; y++) {
        const src = (c * height + y0 + y) * width;
        let dst = y * width * cp + c;
        for (let x = 0; x < width; x++, dst += cp) out[dst] = data[src + x];
      }
    }
  }
  return out;
}

/** Rows per band so one band's input tensor stays under the byte budget (at least `minRows`). */
function bandRows(ctx: GPUContext, img: MetricImage, options: GpuMetricOptions, minRows: number, fn: string): number {
  const budget = Math.min(options.maxBandBytes ?? DEFAULT_BAND_BYTES, ctx.limits.maxBufferSize);
  const rowBytes = img.width * paddedChannels(img.channels) * 4;
  const rows = Math.floor(budget / rowBytes);
  if (rows < minRows) {
    throw new LimitExceededError('maxBufferSize', minRows * rowBytes, budget, `${fn}: ${minRows} rows of a ${img.width}-pixel-wide image`);
  }
  return Math.min(rows, img.height);
}

/**
 * Runs a two-input graph over bands of rows: `band(start)` gives the input row range of each band, `build` the
 * graph for a band height; plans are compiled once per distinct height. Returns the sum over bands of `reduce`.
 */
async function overBands(
  ctx: GPUContext,
  a: MetricImage,
  b: MetricImage,
  bands: { y0: number; rows: number }[],
  build: (g: Graph, x: TensorValue, y: TensorValue) => TensorValue,
  reduce: (partials: Float32Array) => Float64Array,
): Promise<Float64Array> {
  const plans = new Map<number, Plan>();
  let total: Float64Array | undefined;
  try {
    for (const { y0, rows } of bands) {
      let plan = plans.get(rows);
      if (!plan) {
        const g = new Graph();
        const shape: Shape4 = [1, rows, a.width, a.channels];
        g.output(build(g, g.input(shape, 'a'), g.input(shape, 'b')));
        plan = await Plan.compile(ctx, g);
        plans.set(rows, plan);
      }
      const { outputs } = await plan.run([packRows(a, y0, rows), packRows(b, y0, rows)]);
      const sums = reduce(outputs[0]);
      if (!total) total = sums;
      else for (let i = 0; i < sums.length; i++) total[i] += sums[i];
    }
  } finally {
    for (const p of plans.values()) p.dispose();
  }
  return total!;
}

/**
 * Mean SSIM of two images on the GPU: the definition, defaults and errors of {@link ssim} (skimage's
 * `structural_similarity` with Gaussian weights, σ 1.5, population covariance; mean of per-channel SSIMs).
 *
 * @throws InvalidInputError as `ssim` does, or when σ is too large for the kernel's workgroup memory.
 */
export async function ssimGpu(
  ctx: GPUContext,
  a: MetricImage,
  b: MetricImage,
  options: SsimOptions & GpuMetricOptions = {},
): Promise<number> {
  const { weights: w, sigma, c1, c2 } = ssimParameters(a, b, options);
  const k = w.length;
  const radius = (k - 1) / 2;
  if (ssimWorkgroupBytes(radius) > ctx.limits.maxComputeWorkgroupStorageSize) {
    throw new InvalidInputError(`ssimGpu: sigma ${sigma} (a ${k}x${k} window) needs more workgroup memory than the device has; use ssim()`);
  }

  // Bands of output rows (a multiple of the tile height) with their 2r rows of context.
  const maxRows = bandRows(ctx, a, options, k + SSIM_TILE - 1, 'ssimGpu');
  const outRows = a.height - k + 1;
  const perBand = maxRows >= a.height ? outRows : Math.floor((maxRows - k + 1) / SSIM_TILE) * SSIM_TILE;
  const bands: { y0: number; rows: number }[] = [];
  for (let oy = 0; oy < outRows; oy += perBand) bands.push({ y0: oy, rows: Math.min(perBand, outRows - oy) + k - 1 });

  const channels = a.channels;
  const cp = paddedChannels(channels);
  const sums = await overBands(
    ctx,
    a,
    b,
    bands,
    (g, x, y) => ssimPartials(g, x, y, w, c1, c2, 'ssim partials'),
    (partials) => {
      const s = new Float64Array(channels);
      for (let i = 0; i < partials.length; i++) {
        const c = i % cp;
        if (c < channels) s[c] += partials[i];
      }
      return s;
    },
  );
  const count = outRows * (a.width - k + 1);
  let total = 0;
  for (let c = 0; c < channels; c++) total += sums[c] / count;
  return total / channels;
}

/**
 * PSNR of two images on the GPU, as {@link psnr} computes it for images: `10·log10(dataRange² / MSE)` over all
 * samples (alpha ignored), Infinity for identical images.
 */
export async function psnrGpu(
  ctx: GPUContext,
  a: MetricImage,
  b: MetricImage,
  options: number | (PsnrOptions & GpuMetricOptions) = {},
): Promise<number> {
  const defaultRange = checkImagePair('psnr', a, b);
  const opts = typeof options === 'number' ? { dataRange: options } : options;
  const range = opts.dataRange ?? defaultRange;
  if (!(range > 0) || !Number.isFinite(range)) {
    throw new InvalidInputError(`psnr: the peak (data range) must be a positive finite number, got ${range}`);
  }
  const perBand = bandRows(ctx, a, opts, 1, 'psnrGpu');
  const bands: { y0: number; rows: number }[] = [];
  for (let y0 = 0; y0 < a.height; y0 += perBand) bands.push({ y0, rows: Math.min(perBand, a.height - y0) });
  const [sum] = await overBands(
    ctx,
    a,
    b,
    bands,
    (g, x, y) => squaredErrorPartials(g, x, y, 'squared error partials'),
    (partials) => {
      let s = 0;
      for (let i = 0; i < partials.length; i++) s += partials[i];
      return Float64Array.of(s);
    },
  );
  const mse = sum / (a.width * a.height * a.channels);
  if (mse === 0) return Infinity;
  return 10 * Math.log10((range * range) / mse);
}
