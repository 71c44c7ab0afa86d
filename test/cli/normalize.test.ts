/**
 * Percentile normalisation from the command line (`--normalize low,high`) and in the CLI's image path: the
 * statistics come from the rows the model processes, so an SEM info bar split off with --info-bar never enters
 * them. References: the model run without the option on an input normalised in float64 here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restoreImage } from '../../src/cli/restore-image';
import type { RasterImage } from '../../src/io/image';
import { networkFromCheckpoint } from '../../src/models/load';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { getTestContext } from '../helpers/gpu';
import { seededRandom } from '../helpers/random';
import { cli, expectCleanFailure, expectSuccess, FIXTURE, readPng, requireBuiltCli, tempDir, writePng } from './helpers';

const GRAY_DNCNN = FIXTURE('dncnn/tiny_r_gray.pth');

let dir: string;
let removeDir: () => void;

beforeAll(() => {
  requireBuiltCli();
  ({ path: dir, remove: removeDir } = tempDir());
});

afterAll(() => removeDir?.());

/** np.percentile(values, p) (method 'linear'), float64. */
function npPercentile(values: ArrayLike<number>, p: number): number {
  const sorted = Float64Array.from(values).sort();
  const pos = ((sorted.length - 1) * p) / 100;
  const i = Math.floor(pos);
  const j = Math.min(i + 1, sorted.length - 1);
  return sorted[i] + (sorted[j] - sorted[i]) * (pos - i);
}

/**
 * A dim 8-bit micrograph (levels ~40..110) of `width` × `height` with a `bar`-row info bar below it: a white
 * band with black text, the Zeiss/FEI look. Included in the statistics, the bar would move the upper
 * percentile from ~110 to 255.
 */
function semImage(width: number, height: number, bar: number, seed: number): RasterImage {
  const r = seededRandom(seed);
  const data = new Uint8Array(width * height);
  const top = height - bar;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (y < top) data[i] = Math.round(75 + 30 * Math.sin(x / 4) * Math.cos(y / 3) + 10 * (r() - 0.5));
      else data[i] = y > top && y < height - 1 && x % 5 < 2 ? 0 : 255;
    }
  }
  return { width, height, channels: 1, bitDepth: 8, data };
}

/** Content rows of `img` through the model, normalised by percentiles of rows [0, statsRows), in float64. */
async function manualContent(
  model: RestorationModel,
  img: RasterImage,
  rows: number,
  statsRows: number,
  low: number,
  high: number,
): Promise<Uint8Array> {
  const n = img.width * rows;
  const values = Float64Array.from(img.data.subarray(0, img.width * statsRows), (v) => v / 255);
  const lo = npPercentile(values, low);
  const hi = npPercentile(values, high);
  const x = Float32Array.from(img.data.subarray(0, n), (v) => (v / 255 - lo) / (hi - lo));
  const y = (await model.runFloat({ width: img.width, height: rows, channels: 1, data: x })).image.data;
  return Uint8Array.from(y, (v) => Math.min(255, Math.max(0, Math.round((v * (hi - lo) + lo) * 255))));
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function grayModel(): Promise<RestorationModel> {
  return new RestorationModel(await getTestContext(), networkFromCheckpoint(readFileSync(GRAY_DNCNN)), 'tiny');
}

describe('normalisation with an SEM info bar', () => {
  it('percentiles come from the rows above the bar; the bar is pasted back unchanged', async () => {
    const model = await grayModel();
    const img = semImage(30, 26, 6, 1);
    const top = 20;
    const got = await restoreImage(model, 'unit', img, { infoBar: 6, run: { normalize: { low: 1, high: 99.8 } } });
    const contentOnly = await manualContent(model, img, top, top, 1, 99.8);
    const barIncluded = await manualContent(model, img, top, 26, 1, 99.8);
    model.dispose();
    expect(got.data.subarray(top * 30)).toEqual(img.data.subarray(top * 30));
    // ±1 level: float32 rounding can move a value across a rounding boundary.
    expect(maxDiff(got.data.subarray(0, top * 30), contentOnly)).toBeLessThanOrEqual(1);
    // Statistics with the bar give a clearly different image: the check above can tell them apart.
    expect(maxDiff(got.data.subarray(0, top * 30), barIncluded)).toBeGreaterThan(5);
  });
});

describe('webgpu-restore --normalize', () => {
  it('normalises like the library, with and without --info-bar, and says so', async () => {
    const img = semImage(30, 26, 6, 2);
    const input = writePng(join(dir, 'sem.png'), img);
    const out = join(dir, 'sem.norm.png');
    const r = await cli('denoise', input, '-o', out, '-w', GRAY_DNCNN, '--normalize', '2,99.5', '--info-bar', '6');
    expectSuccess(r);
    expect(r.stdout).toMatch(/^model: .*normalised to percentiles 2–99\.5$/m);
    const got = readPng(out);
    const model = await grayModel();
    const want = await manualContent(model, img, 20, 20, 2, 99.5);
    // Without the bar option the whole image is the processed region, bar rows included.
    const whole = join(dir, 'sem.whole.png');
    expectSuccess(await cli('denoise', input, '-o', whole, '-w', GRAY_DNCNN, '--normalize', '2,99.5', '-q'));
    const wantWhole = await manualContent(model, img, 26, 26, 2, 99.5);
    const plain = join(dir, 'sem.plain.png');
    expectSuccess(await cli('denoise', input, '-o', plain, '-w', GRAY_DNCNN, '-q'));
    model.dispose();
    expect(got.data.subarray(20 * 30)).toEqual(img.data.subarray(20 * 30));
    expect(maxDiff(got.data.subarray(0, 20 * 30), want)).toBeLessThanOrEqual(1);
    expect(maxDiff(readPng(whole).data, wantWhole)).toBeLessThanOrEqual(1);
    expect(maxDiff(readPng(plain).data.subarray(0, 20 * 30), want)).toBeGreaterThan(5); // the flag has an effect
  });

  it('bad values exit 2 naming the option; --help documents it', async () => {
    for (const bad of ['99,1', '5,5', '-1,50', '1,101', '1', '1,2,3', 'a,b', ',99', 'NaN,99']) {
      expectCleanFailure(await cli('denoise', 'a.png', `--normalize=${bad}`), /--normalize needs two percentiles low,high/, 2);
    }
    const help = await cli('denoise', '--help');
    expect(help.stdout).toMatch(/--normalize <lo,hi>/);
  });
});
