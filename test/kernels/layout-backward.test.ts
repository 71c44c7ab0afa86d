import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { Graph, type TensorValue } from '../../src/gpu/graph';
import { concatChannels, type ConcatOptions } from '../../src/kernels/concat';
import {
  addIntoChannels,
  concatChannelsBackward,
  copyChannelsBackward,
  crop2dBackward,
  depthToSpaceBackward,
  embedChannels,
  extractChannels,
  pad2dBackward,
  pixelShuffleBackward,
  pixelUnshuffleBackward,
  replicatePadToMultipleBackward,
  scaledAddChannelsBackward,
  spaceToDepthBackward,
} from '../../src/kernels/layout-backward';
import { type Pad2d, pad2d, type PadMode } from '../../src/kernels/pad';
import { getTestContext } from '../helpers/gpu';
import { runGraph as run } from '../helpers/run-graph';
import { randomArray, relL2 } from '../helpers/random';
import {
  depthToSpaceRef,
  type NCHW,
  padRef,
  pixelShuffleRef,
  pixelUnshuffleRef,
  spaceToDepthRef,
  toNHWC,
} from '../helpers/reference-spatial';

/**
 * Layout backward (training.md §1.7) against float64 adjoints written here in scatter form from the forward
 * definitions (the kernels gather), each checked against its forward reference by a dot-product test
 * ⟨F x, g⟩ = ⟨x, Fᵀ g⟩; on the GPU at odd sizes, channel counts off multiples of 4, batch 2.
 */

const size = (s: NCHW) => s[0] * s[1] * s[2] * s[3];
const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};
const idx = ([, c, h, w]: NCHW, b: number, ch: number, y: number, x: number) => ((b * c + ch) * h + y) * w + x;

/** Calls visit(b, c, y, x, flatIndex) for every element of an NCHW shape. */
function each(shape: NCHW, visit: (b: number, c: number, y: number, x: number, i: number) => void): void {
  const [n, c, h, w] = shape;
  let i = 0;
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) visit(b, ch, y, x, i++);
}

// ----- float64 adjoints (scatter form) -----

type ShuffleMode = 'pixel_shuffle' | 'pixel_unshuffle' | 'depth_to_space' | 'space_to_depth';

function shuffleOutShape([n, c, h, w]: NCHW, mode: ShuffleMode, r: number): NCHW {
  return mode === 'pixel_shuffle' || mode === 'depth_to_space' ? [n, c / (r * r), h * r, w * r] : [n, c * r * r, h / r, w / r];
}

/** Each output element (b, c, y, x) of the rearrangement, sent back to the input element it copied. */
function shuffleBackwardRef(gy: ArrayLike<number>, inShape: NCHW, mode: ShuffleMode, r: number): Float64Array {
  const dx = new Float64Array(size(inShape));
  const outShape = shuffleOutShape(inShape, mode, r);
  each(outShape, (b, c, y, x, o) => {
    let src: number;
    if (mode === 'pixel_shuffle') src = idx(inShape, b, c * r * r + (y % r) * r + (x % r), Math.floor(y / r), Math.floor(x / r));
    else if (mode === 'depth_to_space')
      src = idx(inShape, b, ((y % r) * r + (x % r)) * outShape[1] + c, Math.floor(y / r), Math.floor(x / r));
    else {
      // Deep side: output channel c names the shallow channel and the block offset.
      const [ch, blk] = mode === 'pixel_unshuffle' ? [Math.floor(c / (r * r)), c % (r * r)] : [c % inShape[1], Math.floor(c / inShape[1])];
      src = idx(inShape, b, ch, y * r + Math.floor(blk / r), x * r + (blk % r));
    }
    dx[src] += gy[o];
  });
  return dx;
}

const SHUFFLE_FORWARD: Record<ShuffleMode, (x: ArrayLike<number>, s: NCHW, r: number) => { y: Float64Array }> = {
  pixel_shuffle: pixelShuffleRef,
  pixel_unshuffle: pixelUnshuffleRef,
  depth_to_space: depthToSpaceRef,
  space_to_depth: spaceToDepthRef,
};

/** F.pad's source of output index o along an axis of size n (−1: a zero), as the forward reference. */
function padSource(o: number, n: number, mode: PadMode): number {
  if (mode === 'replicate') return Math.min(Math.max(o, 0), n - 1);
  if (mode === 'reflect') return o < 0 ? -o : o >= n ? 2 * (n - 1) - o : o;
  return o >= 0 && o < n ? o : -1;
}

function padBackwardRef(gy: ArrayLike<number>, inShape: NCHW, pads: Pad2d, mode: PadMode): Float64Array {
  const [n, c, h, w] = inShape;
  const outShape: NCHW = [n, c, h + pads.top + pads.bottom, w + pads.left + pads.right];
  const dx = new Float64Array(size(inShape));
  each(outShape, (b, ch, y, x, o) => {
    const iy = padSource(y - pads.top, h, mode);
    const ix = padSource(x - pads.left, w, mode);
    if (iy >= 0 && ix >= 0) dx[idx(inShape, b, ch, iy, ix)] += gy[o];
  });
  return dx;
}

interface Placement {
  top: number;
  left: number;
  scale: number;
}

const placed = (p: ConcatOptions['first']): Placement => ({ top: p?.top ?? 0, left: p?.left ?? 0, scale: p?.scale ?? 1 });

function concatOutShape(a: NCHW, b: NCHW, o: ConcatOptions): NCHW {
  const s = placed(o.first).scale;
  const [ho, wo] = o.size ?? [a[2] * s, a[3] * s];
  return [a[0], a[1] + b[1], ho, wo];
}

/** Source (part 0 = a, 1 = b; flat index) of output element (b, k, y, x) of concatChannels, or undefined for a zero. */
function concatSource(aShape: NCHW, bShape: NCHW, o: ConcatOptions, b: number, k: number, y: number, x: number) {
  const part = k < aShape[1] ? 0 : 1;
  const shape = part === 0 ? aShape : bShape;
  const p = placed(part === 0 ? o.first : o.second);
  const ry = y - p.top;
  const rx = x - p.left;
  if (ry < 0 || rx < 0) return undefined;
  const sy = Math.floor(ry / p.scale);
  const sx = Math.floor(rx / p.scale);
  if (sy >= shape[2] || sx >= shape[3]) return undefined;
  return { part, at: idx(shape, b, part === 0 ? k : k - aShape[1], sy, sx) };
}

function concatRef(a: ArrayLike<number>, aShape: NCHW, bv: ArrayLike<number>, bShape: NCHW, o: ConcatOptions): Float64Array {
  const outShape = concatOutShape(aShape, bShape, o);
  const y = new Float64Array(size(outShape));
  each(outShape, (b, k, yy, x, i) => {
    const s = concatSource(aShape, bShape, o, b, k, yy, x);
    if (s) y[i] = s.part === 0 ? a[s.at] : bv[s.at];
  });
  return y;
}

function concatBackwardRef(gy: ArrayLike<number>, aShape: NCHW, bShape: NCHW, o: ConcatOptions): [Float64Array, Float64Array] {
  const da = new Float64Array(size(aShape));
  const db = new Float64Array(size(bShape));
  each(concatOutShape(aShape, bShape, o), (b, k, y, x, i) => {
    const s = concatSource(aShape, bShape, o, b, k, y, x);
    if (s) (s.part === 0 ? da : db)[s.at] += gy[i];
  });
  return [da, db];
}

/** y[:, dst + j] = scale · src[:, srcOff + j] for j < count, in a tensor of `channels` channels (zeros elsewhere). */
function channelWindowRef(src: ArrayLike<number>, srcShape: NCHW, channels: number, dst: number, srcOff: number, count: number, scale = 1) {
  const [n, , h, w] = srcShape;
  const outShape: NCHW = [n, channels, h, w];
  const y = new Float64Array(size(outShape));
  each(outShape, (b, k, yy, x, i) => {
    if (k >= dst && k < dst + count) y[i] = scale * src[idx(srcShape, b, k - dst + srcOff, yy, x)];
  });
  return y;
}

// ----- GPU runner -----

async function runOne(gyShape: NCHW, gy: ArrayLike<number>, build: (g: Graph, t: TensorValue) => TensorValue): Promise<Float32Array> {
  const [{ outputs }] = await run([{ shape: gyShape, data: gy }], (g, [t]) => [build(g, t)]);
  return outputs[0];
}

const bitsEqual = (a: Float32Array, b: Float32Array) => expect(new Uint32Array(b.buffer)).toEqual(new Uint32Array(a.buffer));

// ----- cases -----

const SHUFFLE_CASES: { mode: ShuffleMode; shape: NCHW; r: number }[] = [
  { mode: 'pixel_shuffle', shape: [2, 12, 7, 5], r: 2 },
  { mode: 'pixel_shuffle', shape: [1, 45, 5, 3], r: 3 },
  { mode: 'pixel_unshuffle', shape: [2, 3, 10, 14], r: 2 },
  { mode: 'pixel_unshuffle', shape: [1, 5, 9, 6], r: 3 },
  { mode: 'depth_to_space', shape: [2, 20, 7, 5], r: 2 },
  { mode: 'space_to_depth', shape: [1, 3, 12, 6], r: 3 },
];

const SHUFFLE_BACKWARD = {
  pixel_shuffle: pixelShuffleBackward,
  pixel_unshuffle: pixelUnshuffleBackward,
  depth_to_space: depthToSpaceBackward,
  space_to_depth: spaceToDepthBackward,
};

const PAD_CASES: { shape: NCHW; pads: Pad2d; mode: PadMode }[] = [
  { shape: [2, 3, 7, 5], pads: { top: 1, bottom: 2, left: 0, right: 3 }, mode: 'zeros' },
  { shape: [1, 5, 9, 7], pads: { top: -2, bottom: 1, left: 3, right: -3 }, mode: 'zeros' },
  { shape: [2, 6, 9, 7], pads: { top: 0, bottom: 7, left: 2, right: 9 }, mode: 'replicate' },
  { shape: [1, 1, 1, 1], pads: { top: 2, bottom: 1, left: 0, right: 3 }, mode: 'replicate' },
  { shape: [2, 3, 9, 7], pads: { top: 4, bottom: 2, left: 3, right: 6 }, mode: 'reflect' },
  // A pixel mirrored from both sides (and copied): three terms along an axis.
  { shape: [1, 5, 4, 3], pads: { top: 3, bottom: 3, left: 2, right: 2 }, mode: 'reflect' },
  { shape: [1, 7, 13, 11], pads: { top: 1, bottom: 1, left: 1, right: 1 }, mode: 'reflect' },
];

const describePad = ({ shape, pads, mode }: (typeof PAD_CASES)[number]) =>
  `${mode} t${pads.top} b${pads.bottom} l${pads.left} r${pads.right} on ${shape.join('x')}`;

const CONCAT_CASES: { a: NCHW; b: NCHW; opts: ConcatOptions; what: string }[] = [
  // milesial Up: cat([skip, up]) with up zero-padded by the floor/ceil split.
  { a: [2, 5, 13, 11], b: [2, 6, 10, 8], opts: { size: [13, 11], second: { top: 1, left: 1 } }, what: 'skip C5 + padded up' },
  { a: [1, 8, 9, 7], b: [1, 3, 8, 6], opts: { size: [9, 7], second: { top: 0, left: 0 } }, what: 'skip C8 + padded up' },
  // Negative offsets crop (F.pad with negative amounts).
  { a: [1, 6, 7, 5], b: [1, 7, 10, 9], opts: { size: [7, 5], second: { top: -1, left: -2 } }, what: 'cropped second' },
  // smp decoder: cat([nearest ×2 of x, skip]).
  { a: [2, 6, 5, 4], b: [2, 3, 10, 8], opts: { first: { scale: 2 } }, what: 'upsampled C6 + skip' },
  { a: [1, 4, 4, 3], b: [1, 7, 8, 6], opts: { first: { scale: 2 } }, what: 'upsampled C4 + skip' },
  {
    a: [1, 3, 3, 2],
    b: [1, 2, 7, 5],
    opts: { size: [7, 5], first: { scale: 3, top: 1, left: -1 }, second: { scale: 1 } },
    what: 'scaled and shifted',
  },
];

// ----- tests -----

describe('the float64 adjoints the tests use (⟨F x, g⟩ = ⟨x, Fᵀ g⟩)', () => {
  const close = (lhs: number, rhs: number) => expect(Math.abs(lhs - rhs)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(lhs)));

  it('pixel shuffle family', () => {
    for (const { mode, shape, r } of SHUFFLE_CASES) {
      const x = randomArray(size(shape), 1);
      const y = SHUFFLE_FORWARD[mode](x, shape, r).y;
      const gy = randomArray(y.length, 2);
      close(dot(y, gy), dot(x, shuffleBackwardRef(gy, shape, mode, r)));
    }
  });

  it('padding and cropping', () => {
    for (const { shape, pads, mode } of PAD_CASES) {
      const x = randomArray(size(shape), 3);
      const y = padRef(x, shape, pads, mode).y;
      const gy = randomArray(y.length, 4);
      close(dot(y, gy), dot(x, padBackwardRef(gy, shape, pads, mode)));
    }
  });

  it('placed channel concatenation', () => {
    for (const { a, b, opts } of CONCAT_CASES) {
      const xa = randomArray(size(a), 5);
      const xb = randomArray(size(b), 6);
      const y = concatRef(xa, a, xb, b, opts);
      const gy = randomArray(y.length, 7);
      const [da, db] = concatBackwardRef(gy, a, b, opts);
      close(dot(y, gy), dot(xa, da) + dot(xb, db));
    }
  });

  it('channel windows: extract and embed are each other’s adjoints', () => {
    const wide: NCHW = [2, 13, 3, 5];
    const x = randomArray(size(wide), 8);
    const g = randomArray(2 * 6 * 15, 9);
    const extracted = channelWindowRef(x, wide, 6, 0, 5, 6, 0.2); // 0.2 · x[:, 5:11]
    const embedded = channelWindowRef(g, [2, 6, 3, 5], 13, 5, 0, 6, 0.2);
    close(dot(extracted, g), dot(x, embedded));
  });
});

describe('pixel shuffle family backward against float64', () => {
  for (const { mode, shape, r } of SHUFFLE_CASES) {
    it(`${mode} r${r} on ${shape.join('x')}`, async () => {
      const outShape = shuffleOutShape(shape, mode, r);
      const gy = f32(randomArray(size(outShape), 11 + shape[1]));
      const dx = await runOne(outShape, gy, (g, t) => SHUFFLE_BACKWARD[mode](g, t, toNHWC(shape), r, 'shuffle backward'));
      // A permutation: exact.
      expect(Array.from(dx)).toEqual(Array.from(shuffleBackwardRef(gy, shape, mode, r)));
    });
  }
});

describe('pad2dBackward / crop2dBackward against float64', () => {
  for (const c of PAD_CASES) {
    it(describePad(c), async () => {
      const { shape, pads, mode } = c;
      const outShape: NCHW = [shape[0], shape[1], shape[2] + pads.top + pads.bottom, shape[3] + pads.left + pads.right];
      const gy = f32(randomArray(size(outShape), 13 + shape[2]));
      const dx = await runOne(outShape, gy, (g, t) => pad2dBackward(g, t, toNHWC(shape), pads, mode, 'pad backward'));
      expect(relL2(dx, padBackwardRef(gy, shape, pads, mode))).toBeLessThanOrEqual(1e-6);
    });
  }

  it('crop2dBackward zero-embeds the window', async () => {
    const shape: NCHW = [2, 5, 10, 9];
    const win = { y0: 2, x0: 1, h: 7, w: 5 };
    const gy = f32(randomArray(2 * 5 * 7 * 5, 17));
    const dx = await runOne([2, 5, 7, 5], gy, (g, t) => crop2dBackward(g, t, toNHWC(shape), win, 'crop backward'));
    const pads = { top: -2, bottom: 2 + 7 - 10, left: -1, right: 1 + 5 - 9 };
    expect(Array.from(dx)).toEqual(Array.from(padBackwardRef(gy, shape, pads, 'zeros')));
  });

  it('replicatePadToMultipleBackward adds the right and bottom bands into the edges (SCUNet)', async () => {
    const shape: NCHW = [1, 3, 13, 11];
    const gy = f32(randomArray(3 * 16 * 16, 19));
    const dx = await runOne([1, 3, 16, 16], gy, (g, t) => replicatePadToMultipleBackward(g, t, toNHWC(shape), 8, 'rp backward'));
    const ref = padBackwardRef(gy, shape, { top: 0, bottom: 3, left: 0, right: 5 }, 'replicate');
    expect(relL2(dx, ref)).toBeLessThanOrEqual(1e-6);
  });

  it('pairs with the pad2d forward kernel: ⟨pad(x), g⟩ = ⟨x, pad2dBackward(g)⟩', async () => {
    for (const c of [PAD_CASES[1], PAD_CASES[4]]) {
      const { shape, pads, mode } = c;
      const outShape: NCHW = [shape[0], shape[1], shape[2] + pads.top + pads.bottom, shape[3] + pads.left + pads.right];
      const x = f32(randomArray(size(shape), 21));
      const gy = f32(randomArray(size(outShape), 22));
      const [{ outputs }] = await run(
        [
          { shape, data: x },
          { shape: outShape, data: gy },
        ],
        (g, [tx, tg]) => [pad2d(g, tx, pads, mode, 'fwd'), pad2dBackward(g, tg, toNHWC(shape), pads, mode, 'bwd')],
      );
      const lhs = dot(outputs[0], gy);
      expect(Math.abs(lhs - dot(x, outputs[1]))).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(lhs)));
    }
  });
});

describe('concatChannelsBackward against float64', () => {
  for (const { a, b, opts, what } of CONCAT_CASES) {
    it(`${what}: ${a.join('x')} + ${b.join('x')}`, async () => {
      const outShape = concatOutShape(a, b, opts);
      const gy = f32(randomArray(size(outShape), 23 + a[1]));
      const [{ outputs }] = await run([{ shape: outShape, data: gy }], (g, [t]) => {
        const { first, second } = concatChannelsBackward(g, t, toNHWC(a), toNHWC(b), opts, 'cat backward');
        return [first, second];
      });
      const [da, db] = concatBackwardRef(gy, a, b, opts);
      expect(relL2(outputs[0], da)).toBeLessThanOrEqual(1e-6);
      expect(relL2(outputs[1], db)).toBeLessThanOrEqual(1e-6);
    });
  }

  it('pairs with the concatChannels forward kernel', async () => {
    for (const { a, b, opts } of [CONCAT_CASES[0], CONCAT_CASES[3]]) {
      const outShape = concatOutShape(a, b, opts);
      const xa = f32(randomArray(size(a), 25));
      const xb = f32(randomArray(size(b), 26));
      const gy = f32(randomArray(size(outShape), 27));
      const [{ outputs }] = await run(
        [
          { shape: a, data: xa },
          { shape: b, data: xb },
          { shape: outShape, data: gy },
        ],
        (g, [ta, tb, tg]) => {
          const { first, second } = concatChannelsBackward(g, tg, toNHWC(a), toNHWC(b), opts, 'bwd');
          return [concatChannels(g, ta, tb, opts, 'fwd'), first, second];
        },
      );
      const lhs = dot(outputs[0], gy);
      expect(Math.abs(lhs - dot(xa, outputs[1]) - dot(xb, outputs[2]))).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(lhs)));
    }
  });
});

describe('channel windows against float64', () => {
  const wide: NCHW = [2, 13, 7, 5];
  const narrow: NCHW = [2, 6, 7, 5];
  const gWide = f32(randomArray(size(wide), 31));
  const gNarrow = f32(randomArray(size(narrow), 32));

  for (const offset of [0, 3, 4, 7]) {
    it(`extractChannels [${offset}, ${offset + 6}) of 13, and copyChannelsBackward`, async () => {
      const [{ outputs }] = await run([{ shape: wide, data: gWide }], (g, [t]) => [
        extractChannels(g, t, offset, 6, 'extract', 0.2),
        copyChannelsBackward(g, t, toNHWC(narrow), offset, 'copy backward'),
      ]);
      expect(relL2(outputs[0], channelWindowRef(gWide, wide, 6, 0, offset, 6, 0.2))).toBeLessThanOrEqual(1e-6);
      expect(Array.from(outputs[1])).toEqual(Array.from(channelWindowRef(gWide, wide, 6, 0, offset, 6)));
    });

    it(`embedChannels and addIntoChannels at channel ${offset} of 13`, async () => {
      const base = f32(randomArray(size(wide), 33));
      const [{ outputs }] = await run(
        [
          { shape: narrow, data: gNarrow },
          { shape: wide, data: base },
        ],
        (g, [t, tb]) => [
          embedChannels(g, t, 13, offset, 'embed'),
          addIntoChannels(g, tb, t, offset, 'add into', { srcOffset: 1, channels: 5, scale: 0.5 }),
        ],
      );
      expect(Array.from(outputs[0])).toEqual(Array.from(channelWindowRef(gNarrow, narrow, 13, offset, 0, 6)));
      const added = channelWindowRef(gNarrow, narrow, 13, offset, 1, 5, 0.5).map((v, i) => v + base[i]);
      expect(relL2(outputs[1], added)).toBeLessThanOrEqual(1e-6);
    });
  }

  it('scaledAddChannelsBackward: dx and 0.2·dr from the output window (RRDB residual)', async () => {
    const out: NCHW = [2, 13, 7, 5];
    const gy = f32(randomArray(size(out), 35));
    const [{ outputs }] = await run([{ shape: out, data: gy }], (g, [t]) => {
      const { dx, dr } = scaledAddChannelsBackward(g, t, [2, 7, 5, 11], [2, 7, 5, 6], 0.2, 6, 'rrdb backward', 5);
      return [dx, dr];
    });
    expect(Array.from(outputs[0])).toEqual(Array.from(channelWindowRef(gy, out, 11, 0, 5, 6)));
    expect(relL2(outputs[1], channelWindowRef(gy, out, 6, 0, 5, 6, 0.2))).toBeLessThanOrEqual(1e-6);
  });
});

describe('layout backward determinism and bindings split across windows', () => {
  it('gives the same bits on every run and with chunked bindings', async () => {
    const shape: NCHW = [2, 3, 9, 7];
    const pads = PAD_CASES[4].pads;
    const outShape: NCHW = [2, 3, 15, 16];
    const c = CONCAT_CASES[0];
    const catShape = concatOutShape(c.a, c.b, c.opts);
    const inputs = [
      { shape: outShape, data: f32(randomArray(size(outShape), 41)) },
      { shape: catShape, data: f32(randomArray(size(catShape), 42)) },
    ];
    const build = (g: Graph, [t, tc]: TensorValue[]) => {
      const { first, second } = concatChannelsBackward(g, tc, toNHWC(c.a), toNHWC(c.b), c.opts, 'cat');
      return [pad2dBackward(g, t, toNHWC(shape), pads, 'reflect', 'pad'), first, second, extractChannels(g, tc, 3, 6, 'x')];
    };
    const [r1, r2] = await run(inputs, build, 2);
    r1.raw.forEach((o, i) => bitsEqual(o, r2.raw[i]));
    const ctx = await getTestContext();
    ctx.forceBindingChunks = 3;
    try {
      const [chunked] = await run(inputs, build);
      r1.raw.forEach((o, i) => bitsEqual(o, chunked.raw[i]));
    } finally {
      ctx.forceBindingChunks = undefined;
    }
  });
});

describe('layout backward errors', () => {
  it('names gradients and windows of the wrong shape', () => {
    const g = new Graph();
    const gy = g.input([1, 8, 6, 5], 'gy');
    expect(() => pixelShuffleBackward(g, gy, [1, 4, 3, 12], 2, 'psb')).toThrow(InvalidInputError);
    expect(() => pixelShuffleBackward(g, gy, [1, 4, 3, 18], 2, 'psb')).toThrow(/psb: 18 input channels .* not divisible by r² = 4/);
    expect(() => pixelShuffleBackward(g, gy, [1, 4, 3, 12], 2, 'psb')).toThrow(
      /psb: gradient \[1, 8, 6, 5\] does not match the pixel_shuffle output \[1, 8, 6, 3\]/,
    );
    expect(() => pixelUnshuffleBackward(g, gy, [1, 8, 6, 3], 3, 'pub')).toThrow(/pub: input size 8x6 .* not divisible by r = 3/);
    expect(() => pad2dBackward(g, gy, [1, 7, 5, 5], { top: 1, bottom: 1, left: 0, right: 0 }, 'zeros', 'pb')).toThrow(
      /pb: gradient \[1, 8, 6, 5\] does not match the zeros pad output \[1, 9, 5, 5\]/,
    );
    expect(() => pad2dBackward(g, gy, [1, 4, 3, 5], { top: 4, bottom: 0, left: 3, right: 0 }, 'reflect', 'pb')).toThrow(
      /reflect padding .* must be smaller than the input size/,
    );
    expect(() => crop2dBackward(g, gy, [1, 9, 6, 5], { y0: 2, x0: 0, h: 8, w: 6 }, 'cb')).toThrow(/cb: crop window .* does not lie inside/);
    expect(() => concatChannelsBackward(g, gy, [1, 8, 6, 2], [1, 8, 6, 2], {}, 'ccb')).toThrow(
      /ccb: gradient \[1, 8, 6, 5\] does not match the concatenation output \[1, 8, 6, 4\]/,
    );
    expect(() => concatChannelsBackward(g, gy, [1, 8, 6, 2], [2, 8, 6, 3], {}, 'ccb')).toThrow(/ccb: batch sizes differ/);
    expect(() => concatChannelsBackward(g, gy, [1, 4, 3, 2], [1, 8, 6, 3], { first: { scale: 0 } }, 'ccb')).toThrow(/scale 0/);
    expect(() => extractChannels(g, gy, 2, 4, 'ex')).toThrow(/ex: channels \[2, 6\) of \[1, 8, 6, 5\]/);
    expect(() => embedChannels(g, gy, 8, 4, 'em')).toThrow(/em: channels \[0, 5\) of \[1, 8, 6, 5\] to \[4, 9\)/);
    expect(() => addIntoChannels(g, g.input([1, 8, 5, 9], 't'), gy, 0, 'ai')).toThrow(/ai: source .* differ in n, h or w/);
    expect(() => addIntoChannels(g, gy, gy, 0, 'ai')).toThrow(/ai: the destination cannot also be the source/);
    expect(() => copyChannelsBackward(g, gy, [1, 8, 5, 2], 0, 'cpb')).toThrow(/cpb: gradient .* does not match the source/);
    expect(() => scaledAddChannelsBackward(g, gy, [1, 8, 6, 5], [1, 8, 7, 5], 0.2, 5, 'sab')).toThrow(/sab: second input/);
  });
});
