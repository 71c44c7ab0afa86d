import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { createRng } from '../../src/io/noise';
import {
  type BlindSpotOptions,
  blindSpotBatch,
  resolveBlindSpotOptions,
  type StructMask,
  stratifiedBlindSpots,
} from '../../src/training/data/blind-spot';

type Shape = [number, number, number, number];

/** A batch whose values are all distinct (a shuffled ramp), so a value names the pixel it came from. */
function distinctBatch(shape: Shape, seed: number): Float32Array {
  const count = shape.reduce((a, b) => a * b);
  const values = Array.from({ length: count }, (_, i) => i / count);
  const rng = createRng(seed);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [values[i], values[j]] = [values[j], values[i]];
  }
  return Float32Array.from(values);
}

/** The blind spots of mask plane `m` as [y, x]. */
function spotsOf(mask: Float32Array, m: number, h: number, w: number): [number, number][] {
  const out: [number, number][] = [];
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (mask[m * h * w + y * w + x] === 1) out.push([y, x]);
  return out;
}

/** The struct pixels (inside the patch, not centres) of the given spots, as "y,x" keys. */
function structPixels(spots: [number, number][], struct: StructMask, h: number, w: number): Set<string> {
  const out = new Set<string>();
  const half = (struct.span - 1) / 2;
  for (const [y, x] of spots) {
    for (let d = -half; d <= half; d++) {
      if (d === 0) continue;
      const [yy, xx] = struct.axis === 'horizontal' ? [y, x + d] : [y + d, x];
      if (yy >= 0 && yy < h && xx >= 0 && xx < w) out.add(`${yy},${xx}`);
    }
  }
  return out;
}

/** Brute force: the lower median of the in-patch (2r+1)² window without the centre and the struct pixels. */
function referenceMedian(plane: Float32Array, h: number, w: number, y: number, x: number, roi: number, struct?: StructMask): number {
  const r = (roi - 1) / 2;
  const values: number[] = [];
  for (let dy = -r; dy <= r; dy++) {
    for (let dx = -r; dx <= r; dx++) {
      const [yy, xx] = [y + dy, x + dx];
      if (yy < 0 || yy >= h || xx < 0 || xx >= w || (dy === 0 && dx === 0)) continue;
      if (struct && structPixels([[y, x]], struct, h, w).has(`${yy},${xx}`)) continue;
      values.push(plane[yy * w + xx]);
    }
  }
  values.sort((a, b) => a - b);
  return values[Math.floor((values.length - 1) / 2)];
}

describe('stratified blind-spot coordinates', () => {
  it('puts exactly one point in each grid cell of side √(100/p), inside that cell', () => {
    for (const [p, h, w] of [
      [0.2, 64, 64],
      [1.5, 50, 37],
      [10, 17, 23],
    ]) {
      const side = Math.sqrt(100 / p);
      const rows = Math.ceil(h / side);
      const cols = Math.ceil(w / side);
      const rng = createRng(7);
      for (let t = 0; t < 50; t++) {
        const s = stratifiedBlindSpots(rng, h, w, p);
        expect(s.cellSide).toBeCloseTo(side, 12);
        expect(s.gridColumns).toBe(cols);
        expect(s.y.length).toBeLessThanOrEqual(rows * cols);
        for (let k = 0; k < s.y.length; k++) {
          if (k > 0) expect(s.cell[k]).toBeGreaterThan(s.cell[k - 1]); // one point per cell
          const i = Math.floor(s.cell[k] / cols);
          const j = s.cell[k] % cols;
          expect(i).toBeLessThan(rows);
          // floor(i·g + u·g) with u in [0, 1): from floor(i·g) up to below (i + 1)·g.
          expect(s.y[k]).toBeGreaterThanOrEqual(Math.floor(i * side));
          expect(s.y[k]).toBeLessThan((i + 1) * side);
          expect(s.x[k]).toBeGreaterThanOrEqual(Math.floor(j * side));
          expect(s.x[k]).toBeLessThan((j + 1) * side);
          expect(s.y[k]).toBeLessThan(h);
          expect(s.x[k]).toBeLessThan(w);
        }
      }
    }
  });

  it('hides p % of the pixels on average', () => {
    // Per patch the count is a sum of one Bernoulli per cell, certain for the cells wholly inside the patch and with
    // p = (the cell's area inside) / g² for the others, so its expectation is exactly h·w·p/100 and its variance at
    // most (cells that cross the patch's edge) / 4. Over N patches: 5 standard deviations of the total.
    for (const [p, h, w] of [
      [0.2, 64, 64],
      [1.5, 50, 37],
      [5, 31, 29],
      [10, 17, 23],
    ]) {
      const side = Math.sqrt(100 / p);
      const rows = Math.ceil(h / side);
      const cols = Math.ceil(w / side);
      const partial = rows * cols - Math.floor(h / side) * Math.floor(w / side);
      const patches = 4000;
      const rng = createRng(11);
      let total = 0;
      for (let t = 0; t < patches; t++) total += stratifiedBlindSpots(rng, h, w, p).y.length;
      const expected = (patches * h * w * p) / 100;
      expect(Math.abs(total - expected), `p = ${p}`).toBeLessThanOrEqual(5 * Math.sqrt((patches * partial) / 4));
    }
  });

  it('picks the pixel of a cell uniformly (χ² over a 20×20 patch of 10×10 cells)', () => {
    const [h, w] = [20, 20];
    const counts = new Array<number>(h * w).fill(0);
    const rng = createRng(3);
    const draws = 4000;
    for (let t = 0; t < draws; t++) {
      const s = stratifiedBlindSpots(rng, h, w, 1); // side 10: four whole cells
      expect(s.y.length).toBe(4);
      for (let k = 0; k < 4; k++) counts[s.y[k] * w + s.x[k]]++;
    }
    const expected = draws / 100;
    const chi2 = counts.reduce((s, k) => s + (k - expected) ** 2 / expected, 0);
    // 396 degrees of freedom: mean 396, sd ≈ 28.
    expect(chi2).toBeLessThan(396 + 5 * 28);
  });
});

describe('blindSpotBatch', () => {
  it('is deterministic for a seed', () => {
    const shape: Shape = [2, 2, 16, 12];
    const data = distinctBatch(shape, 1);
    for (const options of [{}, { strategy: 'median', struct: { axis: 'vertical', span: 5 } }] as BlindSpotOptions[]) {
      const a = blindSpotBatch(data, shape, createRng(42), { percentage: 5, ...options });
      const b = blindSpotBatch(data, shape, createRng(42), { percentage: 5, ...options });
      const c = blindSpotBatch(data, shape, createRng(43), { percentage: 5, ...options });
      expect([...a.input]).toEqual([...b.input]);
      expect([...a.mask]).toEqual([...b.mask]);
      expect([...a.mask]).not.toEqual([...c.mask]);
    }
  });

  it('masks exactly the stratified coordinates of every plane, with 0/1 values', () => {
    // Without struct pixels, 'median' draws nothing but the coordinates: plane after plane from the same stream.
    const shape: Shape = [3, 2, 21, 18];
    const [n, c, h, w] = shape;
    const data = distinctBatch(shape, 2);
    for (const channels of ['independent', 'shared'] as const) {
      const { mask, maskChannels } = blindSpotBatch(data, shape, createRng(9), { percentage: 3, strategy: 'median', channels });
      expect(maskChannels).toBe(channels === 'shared' ? 1 : c);
      expect(mask.length).toBe(n * maskChannels * h * w);
      const rng = createRng(9);
      const expected = new Float32Array(mask.length);
      for (let m = 0; m < n * maskChannels; m++) {
        const s = stratifiedBlindSpots(rng, h, w, 3);
        for (let k = 0; k < s.y.length; k++) expected[m * h * w + s.y[k] * w + s.x[k]] = 1;
      }
      expect([...mask]).toEqual([...expected]);
    }
  });

  it("N2V2's median never uses the centre and equals a brute-force median (borders, struct pixels, channels)", () => {
    const shape: Shape = [2, 3, 13, 9];
    const [n, c, h, w] = shape;
    const plane = h * w;
    const data = distinctBatch(shape, 5);
    const configs: BlindSpotOptions[] = [
      { roiSize: 3 },
      { roiSize: 11 },
      { roiSize: 21, channels: 'shared' },
      { roiSize: 5, struct: { axis: 'horizontal', span: 3 } },
      { roiSize: 7, struct: { axis: 'vertical', span: 15 }, channels: 'shared' },
    ];
    for (const [ci, config] of configs.entries()) {
      let checked = 0;
      for (let seed = 0; seed < 10; seed++) {
        const { input, mask, maskChannels } = blindSpotBatch(data, shape, createRng(seed), {
          percentage: 10,
          strategy: 'median',
          ...config,
        });
        for (let b = 0; b < n; b++) {
          for (let g = 0; g < maskChannels; g++) {
            const spots = spotsOf(mask, b * maskChannels + g, h, w);
            // A struct pixel of one spot may overwrite another spot (CAREamics' order): those are checked below.
            const covered = config.struct ? structPixels(spots, config.struct, h, w) : new Set<string>();
            const channels = maskChannels === 1 ? [...Array(c).keys()] : [g];
            for (const ch of channels) {
              const base = (b * c + ch) * plane;
              const original = data.subarray(base, base + plane);
              for (const [y, x] of spots) {
                if (covered.has(`${y},${x}`)) continue;
                const got = input[base + y * w + x];
                expect(got, `config ${ci}`).not.toBe(original[y * w + x]);
                expect(got, `config ${ci} at ${y},${x}`).toBe(referenceMedian(original, h, w, y, x, config.roiSize!, config.struct));
                checked++;
              }
            }
          }
        }
      }
      expect(checked).toBeGreaterThan(100);
    }
  });

  it('never hands an outlier blind spot its own value', () => {
    // The coordinates do not depend on the data: find them, make every blind spot a huge outlier, and run again.
    const shape: Shape = [4, 1, 40, 40];
    const noise = distinctBatch(shape, 8);
    for (const roiSize of [3, 11]) {
      const options: BlindSpotOptions = { percentage: 1, strategy: 'median', roiSize };
      const { mask } = blindSpotBatch(noise, shape, createRng(77), options);
      const outliers = noise.map((v, i) => (mask[i] === 1 ? 1e6 : v));
      const again = blindSpotBatch(outliers, shape, createRng(77), options);
      expect([...again.mask]).toEqual([...mask]);
      let spots = 0;
      mask.forEach((m, i) => {
        if (m !== 1) return;
        spots++;
        // At most a few outliers share a window (one blind spot per 10×10 cell), never enough to be its median.
        expect(again.input[i]).toBeLessThan(1);
      });
      expect(spots).toBeGreaterThan(40);
    }
  });

  it("uniform replacement comes from the ROI, off the centre's row and column, the same place for shared channels", () => {
    const shape: Shape = [3, 2, 15, 12];
    const [n, c, h, w] = shape;
    const plane = h * w;
    const data = distinctBatch(shape, 4);
    const where = new Map<number, number>(); // value → flat index
    data.forEach((v, i) => where.set(v, i));
    for (const channels of ['independent', 'shared'] as const) {
      for (const roiSize of [3, 7, 21]) {
        const r = (roiSize - 1) / 2;
        const { input, mask, maskChannels } = blindSpotBatch(data, shape, createRng(roiSize), { percentage: 10, roiSize, channels });
        let spots = 0;
        for (let b = 0; b < n; b++) {
          for (let g = 0; g < maskChannels; g++) {
            const chans = maskChannels === 1 ? [...Array(c).keys()] : [g];
            for (const [y, x] of spotsOf(mask, b * maskChannels + g, h, w)) {
              const sources = chans.map((ch) => {
                const base = (b * c + ch) * plane;
                const from = where.get(input[base + y * w + x])!;
                // From the same channel plane of the same patch.
                expect(from - base).toBeGreaterThanOrEqual(0);
                expect(from - base).toBeLessThan(plane);
                return from - base;
              });
              expect(new Set(sources).size).toBe(1);
              const [sy, sx] = [Math.floor(sources[0] / w), sources[0] % w];
              expect(sy).not.toBe(y);
              expect(sx).not.toBe(x);
              expect(Math.abs(sy - y)).toBeLessThanOrEqual(r);
              expect(Math.abs(sx - x)).toBeLessThanOrEqual(r);
              spots++;
            }
          }
        }
        expect(spots).toBeGreaterThan(20);
      }
    }
  });

  it('draws the uniform offset evenly over the non-zero offsets away from the border', () => {
    const shape: Shape = [64, 1, 40, 40];
    const [n, , h, w] = shape;
    // value = flat index within the plane: the source's offset reads straight off the replacement.
    const data = Float32Array.from({ length: n * h * w }, (_, i) => i % (h * w));
    const r = 5;
    const counts = new Map<number, number>();
    for (let seed = 0; seed < 20; seed++) {
      const { input, mask } = blindSpotBatch(data, shape, createRng(seed), { percentage: 2 });
      mask.forEach((m, i) => {
        const [y, x] = [Math.floor((i % (h * w)) / w), i % w];
        if (m !== 1 || y < r || y >= h - r || x < r || x >= w - r) return;
        const dx = (input[i] % w) - x;
        const dy = Math.floor(input[i] / w) - y;
        for (const d of [dx, dy]) counts.set(d, (counts.get(d) ?? 0) + 1);
      });
    }
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual([-5, -4, -3, -2, -1, 1, 2, 3, 4, 5]);
    const total = [...counts.values()].reduce((a, b) => a + b);
    const expected = total / 10;
    const chi2 = [...counts.values()].reduce((s, k) => s + (k - expected) ** 2 / expected, 0);
    // 9 degrees of freedom: P(χ²₉ > 33) ≈ 1e-4. (randint(−r, r + 1) indexing, as CAREamics does, doubles +1's share.)
    expect(total).toBeGreaterThan(5000);
    expect(chi2).toBeLessThan(33);
  });

  it('hides the struct pixels along the right axis and span, in [min, max], and leaves every other pixel alone', () => {
    const shape: Shape = [2, 2, 19, 17];
    const [n, c, h, w] = shape;
    const plane = h * w;
    const data = distinctBatch(shape, 6);
    for (const struct of [
      { axis: 'horizontal', span: 5 },
      { axis: 'vertical', span: 3 },
      { axis: 'vertical', span: 15 },
    ] as StructMask[]) {
      for (const strategy of ['uniform', 'median'] as const) {
        for (const channels of ['independent', 'shared'] as const) {
          const { input, mask, maskChannels } = blindSpotBatch(data, shape, createRng(1), { percentage: 2, strategy, struct, channels });
          let hidden = 0;
          for (let b = 0; b < n; b++) {
            for (let ch = 0; ch < c; ch++) {
              const base = (b * c + ch) * plane;
              const original = data.subarray(base, base + plane);
              const [min, max] = [Math.min(...original), Math.max(...original)];
              const spots = spotsOf(mask, b * maskChannels + (maskChannels === 1 ? 0 : ch), h, w);
              const isSpot = new Set(spots.map(([y, x]) => `${y},${x}`));
              const struckPixels = structPixels(spots, struct, h, w);
              for (let y = 0; y < h; y++) {
                for (let x = 0; x < w; x++) {
                  const key = `${y},${x}`;
                  const got = input[base + y * w + x];
                  if (struckPixels.has(key)) {
                    // Uniform in [min, max]: a fresh value, not the pixel's own.
                    expect(got).toBeGreaterThanOrEqual(min);
                    expect(got).toBeLessThanOrEqual(max);
                    expect(got).not.toBe(original[y * w + x]);
                    if (!isSpot.has(key)) expect(mask[(b * maskChannels + (maskChannels === 1 ? 0 : ch)) * plane + y * w + x]).toBe(0);
                    hidden++;
                  } else if (!isSpot.has(key)) {
                    expect(got, `${struct.axis} ${strategy} ${channels} at ${y},${x}`).toBe(original[y * w + x]);
                  }
                }
              }
            }
          }
          expect(hidden).toBeGreaterThan(10);
        }
      }
    }
  });

  it('changes nothing off the blind spots without a struct mask, and leaves the batch itself alone', () => {
    const shape: Shape = [2, 3, 24, 20];
    const [n, c, h, w] = shape;
    const data = distinctBatch(shape, 10);
    const copy = data.slice();
    for (const strategy of ['uniform', 'median'] as const) {
      for (const channels of ['independent', 'shared'] as const) {
        const { input, mask, maskChannels } = blindSpotBatch(data, shape, createRng(2), { percentage: 8, strategy, channels });
        let spots = 0;
        for (let i = 0; i < input.length; i++) {
          const b = Math.floor(i / (c * h * w));
          const ch = Math.floor(i / (h * w)) % c;
          const m = mask[(b * maskChannels + (maskChannels === 1 ? 0 : ch)) * h * w + (i % (h * w))];
          if (m === 1) {
            expect(input[i]).not.toBe(data[i]);
            spots++;
          } else {
            expect(m).toBe(0);
            expect(input[i]).toBe(data[i]);
          }
        }
        expect(spots).toBeGreaterThan(0.05 * n * c * h * w);
      }
    }
    expect([...data]).toEqual([...copy]);
  });

  it('fills in the defaults and refuses bad options and shapes with InvalidInputError', () => {
    expect(resolveBlindSpotOptions()).toEqual({ percentage: 0.2, strategy: 'uniform', roiSize: 11, channels: 'independent' });
    const data = new Float32Array(64);
    const shape: Shape = [1, 1, 8, 8];
    const bad: [BlindSpotOptions, RegExp][] = [
      [{ percentage: 0.01 }, /percentage/],
      [{ percentage: 10.5 }, /percentage/],
      [{ percentage: Number.NaN }, /percentage/],
      [{ strategy: 'mean' as never }, /strategy/],
      [{ roiSize: 4 }, /roiSize/],
      [{ roiSize: 1 }, /roiSize/],
      [{ roiSize: 23 }, /roiSize/],
      [{ roiSize: 3.5 }, /roiSize/],
      [{ channels: 'each' as never }, /channels/],
      [{ struct: { axis: 'diagonal' as never, span: 3 } }, /axis/],
      [{ struct: { axis: 'horizontal', span: 4 } }, /span/],
      [{ struct: { axis: 'vertical', span: 1 } }, /span/],
      [{ struct: { axis: 'vertical', span: 17 } }, /span/],
    ];
    for (const [options, message] of bad) {
      expect(() => blindSpotBatch(data, shape, createRng(0), options)).toThrow(InvalidInputError);
      expect(() => blindSpotBatch(data, shape, createRng(0), options)).toThrow(message);
    }
    expect(() => blindSpotBatch(data, [1, 1, 8, 7], createRng(0))).toThrow(/values are not/);
    expect(() => blindSpotBatch(new Float32Array(8), [1, 1, 1, 8], createRng(0))).toThrow(/at least 2×2/);
    expect(() => blindSpotBatch(data, [1, 1, 8, 0] as Shape, createRng(0))).toThrow(InvalidInputError);
  });
});
