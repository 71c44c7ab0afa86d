/**
 * The vendor info bar (data bar) at the bottom of SEM micrographs: detect it, split it off before
 * processing and statistics, and paste it back unchanged. Browser-safe.
 *
 * What the bars look like. Zeiss SmartSEM (the samples in shared/data/sem/zeiss-with-databar, 1024×768
 * files): the bar is drawn *over* the bottom of the scan, a box from row 690 to row 765 (76 rows) and
 * column 2 to 1022, with a black (index 0) one-pixel frame, a uniform light background (index 243) and
 * black/red text and logo; two rows of micrograph remain below it and two columns on either side. FEI/Thermo
 * scanners instead append a band below the scan (e.g. 1024×884 for a 1024×768 scan), black with white text.
 * Both are a block of rows at the bottom in which one value covers most of every row (a "flat" row: at
 * least 50 % of its pixels have the row's most common value — 78–100 % in the Zeiss bars) while
 * micrograph rows are noisy (at most 19 % in the nanomembrane SEM images and 11 % in Set12).
 *
 * The rule (see {@link detectInfoBar}): going up from the bottom, skip at most a few non-flat rows (the
 * Zeiss margin), then take the run of flat rows (gaps of up to two rows allowed, for a logo); it is a bar
 * when it is 2–50 % of the image height, most of its rows share the same background value, and at least
 * three rows hold high-contrast marks (text or a frame: pixels at least 96/255 away from the background).
 * A uniform dark or saturated area at the bottom of a micrograph has no text and is not taken for a bar.
 *
 * The bar is returned as the band of rows from its top edge to the bottom of the image (so the Zeiss slivers
 * of micrograph around the box stay with it and come back unchanged too); everything above is the content.
 */
import { InvalidInputError } from '../errors';
import { type AnyRasterImage, validateAnyRaster } from './image';

/** A bottom band of rows: rows `top .. height - 1` are the bar. */
export interface InfoBar {
  /** First row of the bar. */
  top: number;
  /** Number of rows from `top` to the bottom of the image. */
  rows: number;
  /** How the band was found. */
  source: 'detected' | 'explicit';
  /** The bar's background level (0..255 scale of the detector), when detected. */
  background?: number;
}

export interface DetectInfoBarOptions {
  /** Fraction of a row that its most common value must cover for the row to count as bar (default 0.5). */
  flatFraction?: number;
  /** Largest bar, as a fraction of the image height (default 0.5). */
  maxFraction?: number;
  /** Smallest bar in rows (default max(8, 2 % of the height)). */
  minRows?: number;
  /** Non-bar rows allowed below the bar (default max(4, 2 % of the height)). */
  bottomMargin?: number;
}

/** Per-row gray levels 0..255 used by the detector (8-bit as is, 16-bit >> 8, float min–max scaled). */
function levels(img: AnyRasterImage): Uint8Array {
  const { width, height, channels, data } = img;
  const n = width * height;
  const out = new Uint8Array(n);
  let lo = 0;
  let scale = 1;
  if (img.bitDepth === 16) scale = 1 / 256;
  else if (img.bitDepth === 32) {
    lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    scale = hi > lo ? 255 / (hi - lo) : 0;
    if (!Number.isFinite(lo)) lo = 0;
  }
  for (let i = 0, j = 0; i < n; i++, j += channels) {
    let v = data[j];
    if (channels === 3) v = (data[j] + data[j + 1] + data[j + 2]) / 3;
    const q = Math.floor((v - lo) * scale);
    out[i] = q < 0 || Number.isNaN(q) ? 0 : q > 255 ? 255 : q;
  }
  return out;
}

interface RowStats {
  flat: Uint8Array;
  mode: Uint8Array;
  /** Fraction of pixels at least 96 levels away from the row's mode. */
  contrast: Float64Array;
}

function rowStats(g: Uint8Array, width: number, height: number, flatFraction: number): RowStats {
  const flat = new Uint8Array(height);
  const mode = new Uint8Array(height);
  const contrast = new Float64Array(height);
  const hist = new Uint32Array(256);
  for (let y = 0; y < height; y++) {
    hist.fill(0);
    const row = y * width;
    for (let x = 0; x < width; x++) hist[g[row + x]]++;
    let m = 0;
    for (let v = 1; v < 256; v++) if (hist[v] > hist[m]) m = v;
    mode[y] = m;
    flat[y] = hist[m] >= flatFraction * width ? 1 : 0;
    let far = 0;
    for (let v = 0; v < 256; v++) if (Math.abs(v - m) >= 96) far += hist[v];
    contrast[y] = far / width;
  }
  return { flat, mode, contrast };
}

/**
 * Looks for a vendor info bar at the bottom of an SEM image (see the module comment for the rule). Returns
 * the band of rows, or `undefined` when there is none.
 */
export function detectInfoBar(image: AnyRasterImage, options: DetectInfoBarOptions = {}): InfoBar | undefined {
  validateAnyRaster(image);
  const { width, height } = image;
  const flatFraction = options.flatFraction ?? 0.5;
  const maxRows = Math.floor((options.maxFraction ?? 0.5) * height);
  const minRows = options.minRows ?? Math.max(8, Math.round(0.02 * height));
  const margin = options.bottomMargin ?? Math.max(4, Math.round(0.02 * height));
  const { flat, mode, contrast } = rowStats(levels(image), width, height, flatFraction);

  let y = height - 1;
  while (y >= 0 && height - 1 - y <= margin && !flat[y]) y--;
  if (y < 0 || height - 1 - y > margin) return undefined;
  const bottom = y;
  let top = y;
  let gap = 0;
  for (; y >= 0; y--) {
    if (flat[y]) {
      top = y;
      gap = 0;
    } else if (++gap > 2) break;
  }
  const runRows = bottom - top + 1;
  if (runRows < minRows || height - top > maxRows || top === 0) return undefined;

  let textRows = 0;
  const modeCount = new Uint32Array(256);
  for (let r = top; r <= bottom; r++) {
    if (contrast[r] >= 0.002) textRows++;
    modeCount[mode[r]]++;
  }
  let background = 0;
  for (let v = 1; v < 256; v++) if (modeCount[v] > modeCount[background]) background = v;
  if (textRows < 3 || modeCount[background] < 0.6 * runRows) return undefined;
  return { top, rows: height - top, source: 'detected', background };
}

/** An explicit bar of the bottom `rows` rows (e.g. imageio's FEI default of 70), checked against the image. */
export function infoBarFromRows(image: AnyRasterImage, rows: number): InfoBar {
  if (!Number.isInteger(rows) || rows <= 0 || rows >= image.height) {
    throw new InvalidInputError(
      `info bar rows must be an integer between 1 and ${image.height - 1} ` + `(the image has ${image.height} rows), got ${String(rows)}`,
    );
  }
  return { top: image.height - rows, rows, source: 'explicit' };
}

/** Rows `[y0, y1)` of an image as a new image (alpha included). */
export function cropRows<T extends AnyRasterImage>(image: T, y0: number, y1: number): T {
  const { width, channels } = image;
  const out = { ...image, height: y1 - y0, data: image.data.slice(y0 * width * channels, y1 * width * channels) };
  if (image.alpha !== undefined) out.alpha = image.alpha.slice(y0 * width, y1 * width);
  return out;
}

export interface SplitImage<T extends AnyRasterImage> {
  /** The rows above the bar (the whole image when there is no bar). */
  content: T;
  /** The bar band, or undefined when there is none. */
  bar?: T;
  info?: InfoBar;
}

/**
 * Splits an image into the content above the info bar and the bar itself. `bar` is `'auto'` (default:
 * {@link detectInfoBar}), a row count, an {@link InfoBar}, or `'none'`.
 */
export function splitInfoBar<T extends AnyRasterImage>(
  image: T,
  bar: 'auto' | 'none' | number | InfoBar = 'auto',
  options?: DetectInfoBarOptions,
): SplitImage<T> {
  validateAnyRaster(image);
  if (bar === 'none') return { content: image };
  const info = bar === 'auto' ? detectInfoBar(image, options) : typeof bar === 'number' ? infoBarFromRows(image, bar) : bar;
  if (info === undefined) return { content: image };
  if (!Number.isInteger(info.top) || info.top <= 0 || info.top >= image.height) {
    throw new InvalidInputError(`info bar top must be an integer in 1..${image.height - 1}, got ${String(info.top)}`);
  }
  return { content: cropRows(image, 0, info.top), bar: cropRows(image, info.top, image.height), info };
}

/**
 * Stacks `content` and `bar` back into one image, the bar's samples copied unchanged. Both must have the
 * same width, channels and bit depth (convert the processed content back to the file's bit depth first),
 * and either both or neither an alpha plane.
 */
export function pasteInfoBar<T extends AnyRasterImage>(content: T, bar: AnyRasterImage | undefined): T {
  validateAnyRaster(content, 'content');
  if (bar === undefined) return content;
  validateAnyRaster(bar, 'bar');
  const mismatch = (what: string, a: unknown, b: unknown) =>
    new InvalidInputError(`pasteInfoBar: the content has ${what} ${String(a)} but the bar has ${String(b)}`);
  if (content.width !== bar.width) throw mismatch('width', content.width, bar.width);
  if (content.channels !== bar.channels) throw mismatch('channels', content.channels, bar.channels);
  if (content.bitDepth !== bar.bitDepth) throw mismatch('bitDepth', content.bitDepth, bar.bitDepth);
  if ((content.alpha === undefined) !== (bar.alpha === undefined)) {
    throw new InvalidInputError(
      `pasteInfoBar: ${content.alpha ? 'the content' : 'the bar'} has an alpha plane and the other has none (use copyAlpha first)`,
    );
  }
  const data = new (content.data.constructor as Uint8ArrayConstructor)(content.data.length + bar.data.length);
  data.set(content.data);
  data.set(bar.data, content.data.length);
  const out = { ...content, height: content.height + bar.height, data } as AnyRasterImage;
  if (content.alpha !== undefined && bar.alpha !== undefined) {
    const alpha = new (content.alpha.constructor as Uint8ArrayConstructor)(content.alpha.length + bar.alpha.length);
    alpha.set(content.alpha);
    alpha.set(bar.alpha, content.alpha.length);
    out.alpha = alpha;
  }
  return out as T;
}
