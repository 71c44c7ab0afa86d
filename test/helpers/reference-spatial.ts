import { Graph, type TensorValue } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, paddedChannels, type Shape4 } from '../../src/gpu/tensor';
import { readFixtureJson } from './fixture-loader';
import { getTestContext } from './gpu';

/**
 * Plain float64 CPU references (NCHW, PyTorch semantics) for the spatial kernels: pooling, resampling, pixel
 * rearrangement, padding. Written from the PyTorch definitions for clarity, not speed.
 */
export type NCHW = [n: number, c: number, h: number, w: number];

const at = (x: ArrayLike<number>, [, c, h, w]: NCHW, b: number, ch: number, y: number, xx: number) => x[((b * c + ch) * h + y) * w + xx];

function build(shape: NCHW, f: (b: number, c: number, y: number, x: number) => number): Float64Array {
  const [n, c, h, w] = shape;
  const out = new Float64Array(n * c * h * w);
  let i = 0;
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[i++] = f(b, ch, y, x);
  return out;
}

export function poolOutSize(i: number, k: number, s: number, p: number): number {
  return Math.floor((i + 2 * p - k) / s) + 1;
}

export interface PoolRefOptions {
  ceilMode?: boolean;
  countIncludePad?: boolean;
}

/** Output size per PyTorch's pooling_output_shape (floor, or ceil dropping a window that starts in the right pad). */
function poolOutSizeMode(i: number, k: number, s: number, p: number, ceil: boolean): number {
  let out = (ceil ? Math.ceil((i + 2 * p - k) / s) : Math.floor((i + 2 * p - k) / s)) + 1;
  if (ceil && (out - 1) * s >= i + p) out--;
  return out;
}

/** nn.MaxPool2d(k, s, p, ceil_mode): padding is −inf; a NaN in the window wins, as in PyTorch's kernel. */
export function maxPool2dRef(
  x: ArrayLike<number>,
  shape: NCHW,
  k: [number, number],
  s: [number, number],
  p: [number, number],
  o: PoolRefOptions = {},
) {
  const [n, c, h, w] = shape;
  const ceil = o.ceilMode ?? false;
  const outShape: NCHW = [n, c, poolOutSizeMode(h, k[0], s[0], p[0], ceil), poolOutSizeMode(w, k[1], s[1], p[1], ceil)];
  const y = build(outShape, (b, ch, oy, ox) => {
    let m = -Infinity;
    for (let ky = 0; ky < k[0]; ky++)
      for (let kx = 0; kx < k[1]; kx++) {
        const iy = oy * s[0] - p[0] + ky;
        const ix = ox * s[1] - p[1] + kx;
        if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
          const v = at(x, shape, b, ch, iy, ix);
          if (v > m || Number.isNaN(v)) m = v;
        }
      }
    return m;
  });
  return { y, shape: outShape };
}

/**
 * nn.AvgPool2d(k, s, p, ceil_mode, count_include_pad): the divisor is the window clipped to the padded input
 * (count_include_pad) or the number of real pixels in it.
 */
export function avgPool2dRef(
  x: ArrayLike<number>,
  shape: NCHW,
  k: [number, number],
  s: [number, number],
  p: [number, number],
  o: PoolRefOptions = {},
) {
  const [n, c, h, w] = shape;
  const ceil = o.ceilMode ?? false;
  const outShape: NCHW = [n, c, poolOutSizeMode(h, k[0], s[0], p[0], ceil), poolOutSizeMode(w, k[1], s[1], p[1], ceil)];
  const y = build(outShape, (b, ch, oy, ox) => {
    let sum = 0;
    let real = 0;
    const y0 = oy * s[0] - p[0];
    const x0 = ox * s[1] - p[1];
    for (let ky = 0; ky < k[0]; ky++)
      for (let kx = 0; kx < k[1]; kx++) {
        const iy = y0 + ky;
        const ix = x0 + kx;
        if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
          sum += at(x, shape, b, ch, iy, ix);
          real++;
        }
      }
    const padded = (Math.min(y0 + k[0], h + p[0]) - y0) * (Math.min(x0 + k[1], w + p[1]) - x0);
    return sum / ((o.countIncludePad ?? true) ? padded : real);
  });
  return { y, shape: outShape };
}

/** nn.AdaptiveAvgPool2d(1). */
export function globalAvgPoolRef(x: ArrayLike<number>, shape: NCHW) {
  const [n, c, h, w] = shape;
  const y = build([n, c, 1, 1], (b, ch) => {
    let sum = 0;
    for (let iy = 0; iy < h; iy++) for (let ix = 0; ix < w; ix++) sum += at(x, shape, b, ch, iy, ix);
    return sum / (h * w);
  });
  return { y, shape: [n, c, 1, 1] as NCHW };
}

/** F.interpolate(mode='nearest') with an output size: src = ⌊dst · in / out⌋. */
export function nearestRef(x: ArrayLike<number>, shape: NCHW, ho: number, wo: number) {
  const [n, c, h, w] = shape;
  const y = build([n, c, ho, wo], (b, ch, oy, ox) =>
    at(x, shape, b, ch, Math.min(Math.floor((oy * h) / ho), h - 1), Math.min(Math.floor((ox * w) / wo), w - 1)),
  );
  return { y, shape: [n, c, ho, wo] as NCHW };
}

function bilinearSource(dst: number, inSize: number, outSize: number, alignCorners: boolean): [number, number, number] {
  let src: number;
  if (alignCorners) src = outSize > 1 ? (dst * (inSize - 1)) / (outSize - 1) : 0;
  else src = Math.max(((dst + 0.5) * inSize) / outSize - 0.5, 0);
  const i0 = Math.min(Math.floor(src), inSize - 1);
  const i1 = Math.min(i0 + 1, inSize - 1);
  return [i0, i1, src - i0];
}

/** F.interpolate(mode='bilinear', align_corners) with an output size (ratio in/out). */
export function bilinearRef(x: ArrayLike<number>, shape: NCHW, ho: number, wo: number, alignCorners: boolean) {
  const [n, c, h, w] = shape;
  const y = build([n, c, ho, wo], (b, ch, oy, ox) => {
    const [y0, y1, ly] = bilinearSource(oy, h, ho, alignCorners);
    const [x0, x1, lx] = bilinearSource(ox, w, wo, alignCorners);
    const top = (1 - lx) * at(x, shape, b, ch, y0, x0) + lx * at(x, shape, b, ch, y0, x1);
    const bot = (1 - lx) * at(x, shape, b, ch, y1, x0) + lx * at(x, shape, b, ch, y1, x1);
    return (1 - ly) * top + ly * bot;
  });
  return { y, shape: [n, c, ho, wo] as NCHW };
}

/** nn.PixelShuffle(r), CRD: out[c, h·r+i, w·r+j] = in[c·r² + i·r + j, h, w]. */
export function pixelShuffleRef(x: ArrayLike<number>, shape: NCHW, r: number) {
  const [n, c, h, w] = shape;
  const outShape: NCHW = [n, c / (r * r), h * r, w * r];
  const y = build(outShape, (b, co, oy, ox) =>
    at(x, shape, b, co * r * r + (oy % r) * r + (ox % r), Math.floor(oy / r), Math.floor(ox / r)),
  );
  return { y, shape: outShape };
}

/** tf depth_to_space, DCR: out[c, h·r+i, w·r+j] = in[(i·r + j)·C + c, h, w]. */
export function depthToSpaceRef(x: ArrayLike<number>, shape: NCHW, r: number) {
  const [n, c, h, w] = shape;
  const cOut = c / (r * r);
  const outShape: NCHW = [n, cOut, h * r, w * r];
  const y = build(outShape, (b, co, oy, ox) =>
    at(x, shape, b, ((oy % r) * r + (ox % r)) * cOut + co, Math.floor(oy / r), Math.floor(ox / r)),
  );
  return { y, shape: outShape };
}

/** nn.PixelUnshuffle(r): out[c·r² + i·r + j, h, w] = in[c, h·r+i, w·r+j]. */
export function pixelUnshuffleRef(x: ArrayLike<number>, shape: NCHW, r: number) {
  const [n, c, h, w] = shape;
  const outShape: NCHW = [n, c * r * r, h / r, w / r];
  const y = build(outShape, (b, co, oy, ox) => {
    const ch = Math.floor(co / (r * r));
    const blk = co % (r * r);
    return at(x, shape, b, ch, oy * r + Math.floor(blk / r), ox * r + (blk % r));
  });
  return { y, shape: outShape };
}

/** tf space_to_depth, DCR: out[(i·r + j)·C + c, h, w] = in[c, h·r+i, w·r+j]. */
export function spaceToDepthRef(x: ArrayLike<number>, shape: NCHW, r: number) {
  const [n, c, h, w] = shape;
  const outShape: NCHW = [n, c * r * r, h / r, w / r];
  const y = build(outShape, (b, co, oy, ox) => {
    const blk = Math.floor(co / c);
    return at(x, shape, b, co % c, oy * r + Math.floor(blk / r), ox * r + (blk % r));
  });
  return { y, shape: outShape };
}

export type PadModeRef = 'zeros' | 'replicate' | 'reflect';

/** F.pad(x, (left, right, top, bottom), mode); negative amounts crop (zeros mode). */
export function padRef(
  x: ArrayLike<number>,
  shape: NCHW,
  pads: { top: number; bottom: number; left: number; right: number },
  mode: PadModeRef,
) {
  const [n, c, h, w] = shape;
  const outShape: NCHW = [n, c, h + pads.top + pads.bottom, w + pads.left + pads.right];
  const src = (o: number, size: number): number => {
    if (mode === 'replicate') return Math.min(Math.max(o, 0), size - 1);
    if (mode === 'reflect') {
      if (o < 0) return -o;
      if (o >= size) return 2 * (size - 1) - o;
    }
    return o;
  };
  const y = build(outShape, (b, ch, oy, ox) => {
    const iy = src(oy - pads.top, h);
    const ix = src(ox - pads.left, w);
    return iy >= 0 && iy < h && ix >= 0 && ix < w ? at(x, shape, b, ch, iy, ix) : 0;
  });
  return { y, shape: outShape };
}

export const toNHWC = ([n, c, h, w]: NCHW): Shape4 => [n, h, w, c];
export const toNCHW = ([n, h, w, c]: Shape4): NCHW => [n, c, h, w];

/**
 * Builds a one-op graph, poisons every buffer, runs it on `x` (NCHW) and returns the output in NCHW; throws if
 * a padded channel of the output is not exactly 0.
 */
export async function runSpatial(
  x: ArrayLike<number>,
  inShape: NCHW,
  op: (g: Graph, t: TensorValue) => TensorValue,
): Promise<{ y: Float32Array; shape: NCHW }> {
  const ctx = await getTestContext();
  const g = new Graph();
  const t = g.input(toNHWC(inShape), 'x');
  const out = op(g, t);
  g.output(out);
  const plan = await Plan.compile(ctx, g);
  try {
    plan.poison();
    const { outputs } = await plan.run([nchwToNhwcPadded(x, toNHWC(inShape))]);
    const c = out.shape[3];
    const cp = paddedChannels(c);
    outputs[0].forEach((v, i) => {
      if (i % cp >= c && v !== 0) throw new Error(`padded channel ${i % cp} holds ${v}`);
    });
    return { y: nhwcPaddedToNchw(outputs[0], out.shape), shape: toNCHW(out.shape) };
  } finally {
    plan.dispose();
  }
}

export interface SpatialFixture {
  name: string;
  op: string;
  args: any; // op-specific, as written by tools/torch/spatial_fixtures.py
  inputShape: NCHW;
  input: number[];
  outputShape: NCHW;
  output: number[];
}

/** Fixtures written by tools/torch/spatial_fixtures.py (PyTorch outputs, NCHW). */
export async function loadSpatialFixture(name: string): Promise<SpatialFixture> {
  const f = await readFixtureJson<Omit<SpatialFixture, 'name'>>(`test/fixtures/spatial/${name}.json`);
  // JSON has no NaN; the fixture script writes null for it.
  const nan = (a: (number | null)[]) => a.map((v) => (v === null ? Number.NaN : v));
  return { name, ...f, input: nan(f.input), output: nan(f.output) };
}

/** max |y − ref| / max |ref|: the worst element, relative to the tensor's scale. */
export function maxRelError(y: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (y.length !== ref.length) throw new Error(`length ${y.length} vs ${ref.length}`);
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < y.length; i++) {
    const e = Math.abs(y[i] - ref[i]);
    if (!(e <= worst)) worst = e;
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return worst / (scale || 1);
}
