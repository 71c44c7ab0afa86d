import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { Graph } from '../../src/gpu/graph';
import { avgPool2d, globalAvgPool2d, maxPool2d, type Pool2dOptions, pool2dOutputShape } from '../../src/kernels/pool';
import { randomArray, relL2 } from '../helpers/random';
import {
  avgPool2dRef,
  globalAvgPoolRef,
  loadSpatialFixture,
  maxPool2dRef,
  maxRelError,
  type NCHW,
  runSpatial,
} from '../helpers/reference-spatial';
import { getTestContext } from '../helpers/gpu';

const pair = (v: number | readonly [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

interface PoolCase {
  shape: NCHW;
  opts: Pool2dOptions;
}

const MAX_CASES: PoolCase[] = [
  { shape: [1, 3, 7, 13], opts: { kernel: 2, stride: 2 } },
  { shape: [1, 5, 33, 47], opts: { kernel: 2, stride: 2 } },
  { shape: [2, 6, 9, 5], opts: { kernel: 2 } },
  { shape: [1, 1, 1, 1], opts: { kernel: 3, stride: 2, padding: 1 } },
  { shape: [1, 13, 7, 13], opts: { kernel: 3, stride: 2, padding: 1 } },
  { shape: [2, 3, 33, 47], opts: { kernel: 3, stride: 2, padding: 1 } },
  { shape: [1, 5, 9, 5], opts: { kernel: 3, stride: 1, padding: 0 } },
  { shape: [1, 6, 9, 5], opts: { kernel: [3, 2], stride: [1, 2], padding: [1, 0] } },
  { shape: [1, 3, 7, 13], opts: { kernel: 2, stride: 2, ceilMode: true } },
  { shape: [1, 5, 10, 9], opts: { kernel: 3, stride: 2, padding: 1, ceilMode: true } },
];

const AVG_CASES: PoolCase[] = [
  { shape: [1, 1, 1, 1], opts: { kernel: 1 } },
  { shape: [1, 3, 7, 13], opts: { kernel: 2, stride: 2 } },
  { shape: [2, 5, 33, 47], opts: { kernel: 4, stride: 4 } },
  { shape: [1, 6, 9, 5], opts: { kernel: 3, stride: 2, padding: 1 } },
  { shape: [1, 13, 7, 13], opts: { kernel: 3, stride: 1, padding: 1 } },
  { shape: [1, 3, 1, 1], opts: { kernel: 3, stride: 2, padding: 1 } },
  { shape: [1, 5, 9, 5], opts: { kernel: [2, 3], stride: [2, 1], padding: [1, 1] } },
  { shape: [1, 6, 9, 5], opts: { kernel: 3, stride: 2, padding: 1, countIncludePad: false } },
  { shape: [1, 3, 7, 13], opts: { kernel: 2, stride: 2, ceilMode: true } },
  { shape: [1, 5, 10, 9], opts: { kernel: 3, stride: 2, padding: 1, ceilMode: true } },
  { shape: [1, 5, 10, 9], opts: { kernel: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false } },
];

const describeOpts = (o: Pool2dOptions) =>
  `k${pair(o.kernel).join('x')} s${pair(o.stride ?? o.kernel).join('x')} p${pair(o.padding ?? 0).join('x')}` +
  `${o.ceilMode ? ' ceil' : ''}${o.countIncludePad === false ? ' exclude-pad' : ''}`;

describe('maxPool2d against a float64 reference', () => {
  for (const { shape, opts } of MAX_CASES) {
    it(`${describeOpts(opts)} on ${shape.join('x')}`, async () => {
      const x = randomArray(
        shape.reduce((a, b) => a * b),
        101 + shape[1] + shape[2],
      );
      const k = pair(opts.kernel);
      const ref = maxPool2dRef(x, shape, k, pair(opts.stride ?? k), pair(opts.padding ?? 0), opts);
      const out = await runSpatial(x, shape, (g, t) => maxPool2d(g, t, opts, 'maxpool'));
      expect(out.shape).toEqual(ref.shape);
      expect(relL2(out.y, ref.y)).toBeLessThanOrEqual(1e-5);
    });
  }
});

describe('avgPool2d against a float64 reference', () => {
  for (const { shape, opts } of AVG_CASES) {
    it(`${describeOpts(opts)} on ${shape.join('x')}`, async () => {
      const x = randomArray(
        shape.reduce((a, b) => a * b),
        7 + shape[1] * shape[3],
      );
      const k = pair(opts.kernel);
      const ref = avgPool2dRef(x, shape, k, pair(opts.stride ?? k), pair(opts.padding ?? 0), opts);
      const out = await runSpatial(x, shape, (g, t) => avgPool2d(g, t, opts, 'avgpool'));
      expect(out.shape).toEqual(ref.shape);
      expect(relL2(out.y, ref.y)).toBeLessThanOrEqual(1e-5);
    });
  }
});

describe('globalAvgPool2d against a float64 reference', () => {
  const shapes: NCHW[] = [
    [1, 1, 1, 1],
    [1, 3, 7, 13],
    [1, 13, 33, 47],
    [2, 6, 9, 5],
    [1, 5, 190, 301],
  ];
  for (const shape of shapes) {
    it(`${shape.join('x')}`, async () => {
      // An offset mean makes cancellation visible if the sum were poorly accumulated.
      const x = randomArray(
        shape.reduce((a, b) => a * b),
        5 + shape[2],
      ).map((v) => v + 3);
      const ref = globalAvgPoolRef(x, shape);
      const out = await runSpatial(x, shape, (g, t) => globalAvgPool2d(g, t, 'gap'));
      expect(out.shape).toEqual(ref.shape);
      expect(relL2(out.y, ref.y)).toBeLessThanOrEqual(1e-6);
    });
  }

  it('spreads many (image, group) workgroups over a 2-D grid', async () => {
    const shape: NCHW = [3, 13, 2, 3];
    const x = randomArray(3 * 13 * 6, 77);
    const ref = globalAvgPoolRef(x, shape);
    // 12 workgroups (3 images × 4 channel vec4s) on a device allowing 4 per dimension: the plan spreads them over a
    // 4×3 grid (gpu/dispatch.ts).
    const ctx = await getTestContext();
    ctx.workgroupLimitOverride = 4;
    try {
      const out = await runSpatial(x, shape, (g, t) => globalAvgPool2d(g, t, 'gap'));
      expect(relL2(out.y, ref.y)).toBeLessThanOrEqual(1e-6);
    } finally {
      ctx.workgroupLimitOverride = undefined;
    }
  });
});

describe('pooling against PyTorch fixtures', () => {
  const names = ['maxpool_3x3_s2_p1_9x7', 'maxpool_2x2_s2_7x5', 'avgpool_3x3_s2_p1_7x9', 'global_avgpool_6x11'];
  names.push('maxpool_3x3_s2_p1_ceil_10x9', 'avgpool_3x3_s2_p1_ceil_nopad_10x9', 'avgpool_2x2_ceil_7x13', 'maxpool_nan_5x6');
  for (const name of names) {
    it(name, async () => {
      const f = await loadSpatialFixture(name);
      const out = await runSpatial(f.input, f.inputShape, (g, t) => {
        if (f.op === 'maxPool2d') return maxPool2d(g, t, f.args, name);
        if (f.op === 'avgPool2d') return avgPool2d(g, t, f.args, name);
        return globalAvgPool2d(g, t, name);
      });
      expect(out.shape).toEqual(f.outputShape);
      if (f.op === 'maxPool2d')
        expect(Array.from(out.y)).toEqual(f.output); // NaN positions included
      else expect(maxRelError(out.y, f.output)).toBeLessThanOrEqual(1e-6);
    });
  }
});

describe('pooling geometry', () => {
  it('computes PyTorch output sizes (floor mode)', () => {
    expect(pool2dOutputShape([1, 9, 7, 3], { kernel: 3, stride: 2, padding: 1 })).toEqual([1, 5, 4, 3]);
    expect(pool2dOutputShape([1, 1, 1, 3], { kernel: 3, stride: 2, padding: 1 })).toEqual([1, 1, 1, 3]);
    expect(pool2dOutputShape([1, 7, 5, 3], { kernel: 2 })).toEqual([1, 3, 2, 3]);
  });

  it('computes PyTorch output sizes in ceil mode, dropping a window that would start in the right padding', () => {
    // torch.nn.MaxPool2d(2, 2, ceil_mode=True)(torch.zeros(1, 3, 7, 5)).shape == (1, 3, 4, 3)
    expect(pool2dOutputShape([1, 7, 5, 3], { kernel: 2, ceilMode: true })).toEqual([1, 4, 3, 3]);
    // MaxPool2d(3, 2, 1, ceil_mode=True) on 10x9: ceil(9/2)+1 = 6 rows, but row 5 starts at 9 ≥ 10 + 1? no → 6; cols 5
    expect(pool2dOutputShape([1, 10, 9, 3], { kernel: 3, stride: 2, padding: 1, ceilMode: true })).toEqual([1, 6, 5, 3]);
    // MaxPool2d(2, 2, 1, ceil_mode=True) on 4x4: ceil(4/2)+1 = 4, but the 4th window starts at 5 ≥ 4 + 1 → 3
    expect(pool2dOutputShape([1, 4, 4, 3], { kernel: 2, stride: 2, padding: 1, ceilMode: true })).toEqual([1, 3, 3, 3]);
  });

  it('rejects invalid geometry with InvalidInputError', () => {
    const g = new Graph();
    const x = g.input([1, 1, 1, 4]);
    const y = g.input([1, 8, 8, 4]);
    expect(() => maxPool2d(g, x, { kernel: 2 }, 'mp')).toThrow(/mp: kernel 2x2 with padding 0x0 does not fit a 1x1 input/);
    expect(() => maxPool2d(g, y, { kernel: 3, padding: 2 }, 'mp')).toThrow(/padding 2x2 must be at most half the kernel size 3x3/);
    expect(() => avgPool2d(g, y, { kernel: 2, stride: 0 }, 'ap')).toThrow(/ap: stride 0x0 must be positive/);
    expect(() => avgPool2d(g, y, { kernel: 0 }, 'ap')).toThrow(InvalidInputError);
    expect(() => avgPool2d(g, y, { kernel: 2.5 }, 'ap')).toThrow(/must be an integer/);
  });
});
