/**
 * One image file through a model: every page, at the file's bit depth, alpha passed through (resized by
 * nearest neighbour when the model enlarges), TIFF metadata kept (resolution scaled with the pixels).
 *
 * Value ranges: `RestorationModel.run` maps 8/16-bit samples to the network's range ([0, 1], or [-1, 1] for
 * tanh generators, registry `valueRange: 'symmetric'`) and back, in one pass. Float TIFF samples go through
 * `runFloat` here instead, with the affine map 2x − 1 on the way in and (y + 1) / 2 on the way out for
 * symmetric networks.
 */
import type { DecodedImageFile, ImagePage } from '../io/formats';
import {
  type AnyRasterImage,
  copyAlpha,
  type FloatImage,
  floatToRaster,
  type RasterImage,
  rasterToFloat,
  toGray,
  toRgb,
} from '../io/image';
import { pasteInfoBar, splitInfoBar } from '../io/info-bar';
import type { PercentileRange } from '../io/normalize';
import type { ValueRange } from '../models/registry';
import type { RestorationModel } from '../runtime/restoration-model';

/** Options handed to every model run (see RestorationModel's RunOptions). */
export interface RunOptions {
  tileSize?: number;
  onProgress?: (progress: { done: number; total: number }) => void;
  /** Percentile normalisation, its statistics over the processed rows only (the info bar is split off first). */
  normalize?: PercentileRange;
}

export interface ImageJobOptions {
  /** RGB → gray (BT.601) before the run. */
  gray?: boolean;
  /** Gray → RGB before the run. */
  rgb?: boolean;
  /** An SEM info bar to keep out of the run and paste back unchanged: detected ('auto') or the bottom n rows. */
  infoBar?: 'auto' | number;
  run: RunOptions;
}

// The run methods typed with the options argument; `bind` keeps `this`.
type RasterRun = (image: RasterImage, options?: RunOptions) => Promise<RasterImage>;
type FloatRun = (image: FloatImage, options?: RunOptions) => Promise<{ image: FloatImage }>;

function mapInPlace(data: Float32Array, f: (v: number) => number): void {
  for (let i = 0; i < data.length; i++) data[i] = f(data[i]);
}

/** Nearest-neighbour resize of an alpha plane (for outputs the model enlarged). */
function resizeAlpha<A extends Uint8Array | Uint16Array | Float32Array>(alpha: A, w: number, h: number, ow: number, oh: number): A {
  const out = new (alpha.constructor as new (n: number) => A)(ow * oh);
  for (let y = 0; y < oh; y++) {
    const sy = Math.min(h - 1, Math.floor((y * h) / oh));
    for (let x = 0; x < ow; x++) out[y * ow + x] = alpha[sy * w + Math.min(w - 1, Math.floor((x * w) / ow))];
  }
  return out;
}

/** Runs one image (without regard to pages) and returns an image of the same bit depth, alpha reattached. */
export async function restoreImage(
  model: RestorationModel,
  valueRange: ValueRange,
  input: AnyRasterImage,
  options: ImageJobOptions,
): Promise<AnyRasterImage> {
  let img = input;
  if (options.gray && img.channels === 3) img = toGray(img);
  if (options.rgb && img.channels === 1) img = toRgb(img);
  let bar: AnyRasterImage | undefined;
  if (options.infoBar !== undefined) ({ content: img, bar } = splitInfoBar(img, options.infoBar));
  const restored = await runImage(model, valueRange, img, options);
  if (!bar) return restored;
  if (bar.channels !== restored.channels) bar = restored.channels === 3 ? toRgb(bar) : toGray(bar);
  return pasteInfoBar(restored, bar);
}

async function runImage(
  model: RestorationModel,
  valueRange: ValueRange,
  img: AnyRasterImage,
  options: ImageJobOptions,
): Promise<AnyRasterImage> {
  let out: AnyRasterImage;
  if (img.bitDepth !== 32) {
    // run maps integer codes to the network's range ([0, 1], or [-1, 1] for symmetric networks) and back in
    // one pass; the alpha plane is not a channel the network sees.
    const run: RasterRun = model.run.bind(model);
    out = await run(img, options.run);
  } else {
    const x = rasterToFloat(img);
    if (valueRange === 'symmetric') mapInPlace(x.data, (v) => 2 * v - 1);
    const runFloat: FloatRun = model.runFloat.bind(model);
    const y = (await runFloat(x, options.run)).image;
    if (valueRange === 'symmetric') mapInPlace(y.data, (v) => (v + 1) / 2);
    out = floatToRaster(y, img.bitDepth);
  }

  if (img.alpha === undefined) return out;
  if (out.width === img.width && out.height === img.height) return copyAlpha(img, out);
  return { ...out, alpha: resizeAlpha(img.alpha, img.width, img.height, out.width, out.height) } as AnyRasterImage;
}

/** Every page of a decoded file through the model; TIFF metadata kept, its resolution scaled with the size. */
export async function restorePages(
  model: RestorationModel,
  valueRange: ValueRange,
  file: DecodedImageFile,
  options: ImageJobOptions,
): Promise<ImagePage[]> {
  const pages: ImagePage[] = [];
  for (const page of file.pages) {
    const image = await restoreImage(model, valueRange, page.image, options);
    let metadata = page.metadata;
    const sx = image.width / page.image.width;
    const sy = image.height / page.image.height;
    if (metadata?.resolution && (sx !== 1 || sy !== 1)) {
      // More pixels over the same physical extent: pixels per unit grow with the scale.
      const r = metadata.resolution;
      metadata = { ...metadata, resolution: { ...r, x: r.x * sx, y: r.y * sy } };
    }
    pages.push(metadata ? { image, metadata } : { image });
  }
  return pages;
}
