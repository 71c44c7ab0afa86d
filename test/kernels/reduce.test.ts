import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { Graph, type TensorValue } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { paddedChannels, type Shape4 } from '../../src/gpu/tensor';
import { channelSums, reducePartials, reductionChunking, sumAll, sumTensors } from '../../src/kernels/reduce';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';

/** NHWC data with padded channels filled with `padding` (0 as kernels write, or garbage to prove it is skipped). */
function nhwcData(shape: Shape4, seed: number, shift = 0.5, padding = 0): Float32Array {
  const [n, h, w, c] = shape;
  const cp = paddedChannels(c);
  const values = randomArray(n * h * w * c, seed);
  const out = new Float32Array(n * h * w * cp).fill(padding);
  for (let p = 0; p < n * h * w; p++) for (let ch = 0; ch < c; ch++) out[p * cp + ch] = values[p * c + ch] + shift;
  return out;
}

/** Float64 per-channel sums over N·H·W of real channels. */
function channelSums64(data: Float32Array, shape: Shape4): Float64Array {
  const [n, h, w, c] = shape;
  const cp = paddedChannels(c);
  const out = new Float64Array(c);
  for (let p = 0; p < n * h * w; p++) for (let ch = 0; ch < c; ch++) out[ch] += data[p * cp + ch];
  return out;
}

async function runGraph(g: Graph, inputs: Float32Array[]): Promise<Float32Array[]> {
  const ctx = await getTestContext();
  const plan = await Plan.compile(ctx, g);
  try {
    plan.poison();
    return (await plan.run(inputs)).outputs;
  } finally {
    plan.dispose();
  }
}

function expectPaddingZero(out: Float32Array, c: number): void {
  const cp = paddedChannels(c);
  out.forEach((v, k) => {
    if (k % cp >= c && v !== 0) throw new Error(`padded channel ${k % cp} holds ${v}`);
  });
}

const SHAPES: Shape4[] = [
  [1, 5, 7, 3],
  [2, 9, 6, 13],
  [1, 1, 1, 1],
  // More pixels than one chunk: two passes.
  [2, 40, 40, 13],
  // More than 64 channel groups: several blocks of channels per chunk, and two passes.
  [1, 20, 20, 300],
];

describe('channelSums', () => {
  it('splits large reductions into two passes and small ones into one', () => {
    expect(reductionChunking(35, 1).chunks).toBe(1);
    expect(reductionChunking(3200, 4).chunks).toBeGreaterThan(1);
    // The second pass always fits one chunk.
    for (const [rows, groups] of [
      [3200, 4],
      [400, 75],
      [1 << 22, 16],
      [1 << 24, 1],
    ]) {
      const first = reductionChunking(rows, groups);
      expect(first.chunks * first.rowsPerChunk).toBeGreaterThanOrEqual(rows);
      expect(reductionChunking(first.chunks, groups).chunks).toBe(1);
    }
  });

  for (const shape of SHAPES) {
    it(`${shape.join('x')} per-channel sums and means against float64`, async () => {
      const [n, h, w, c] = shape;
      const data = nhwcData(shape, 100 + c);
      const g = new Graph();
      const x = g.input(shape, 'x');
      const sums = channelSums(g, x, 'sums');
      const means = channelSums(g, x, 'means', { scale: 1 / (n * h * w) });
      expect(sums.shape).toEqual([1, 1, 1, c]);
      g.output(sums);
      g.output(means);
      const [s, m] = await runGraph(g, [data]);
      const ref = channelSums64(data, shape);
      expectPaddingZero(s, c);
      expectPaddingZero(m, c);
      expect(relL2(s.subarray(0, c), ref)).toBeLessThanOrEqual(1e-5);
      expect(
        relL2(
          m.subarray(0, c),
          ref.map((v) => v / (n * h * w)),
        ),
      ).toBeLessThanOrEqual(1e-5);
    });
  }

  it('gives the same result when the workgroups are spread over a 2-D grid', async () => {
    const ctx = await getTestContext();
    const shape: Shape4 = [2, 40, 40, 13];
    const data = nhwcData(shape, 7);
    const g = new Graph();
    const sums = channelSums(g, g.input(shape, 'x'), 'sums');
    g.output(sums);
    const [flat] = await runGraph(g, [data]);
    ctx.workgroupLimitOverride = 5;
    try {
      const [spread] = await runGraph(g, [data]);
      expect(Array.from(spread)).toEqual(Array.from(flat));
    } finally {
      ctx.workgroupLimitOverride = undefined;
    }
  });

  it('rejects a scale that is not finite', () => {
    const g = new Graph();
    const x = g.input([1, 2, 2, 3], 'x');
    expect(() => channelSums(g, x, 'bad sums', { scale: Number.NaN })).toThrow(InvalidInputError);
    expect(() => sumAll(g, x, 'bad total', { scale: Infinity })).toThrow(/bad total: scale Infinity/);
  });
});

describe('reducePartials', () => {
  for (const shape of [
    [1, 1, 5, 7],
    [1, 1, 3000, 13],
  ] as Shape4[]) {
    it(`sums the rows of a ${shape.join('x')} partials tensor`, async () => {
      const c = shape[3];
      const data = nhwcData(shape, 300 + shape[2], 0.25);
      const g = new Graph();
      const y = reducePartials(g, g.input(shape, 'partials'), 'final', { scale: 0.5 });
      g.output(y);
      const [out] = await runGraph(g, [data]);
      expectPaddingZero(out, c);
      expect(
        relL2(
          out.subarray(0, c),
          channelSums64(data, shape).map((v) => v * 0.5),
        ),
      ).toBeLessThanOrEqual(1e-5);
    });
  }
});

describe('sumAll', () => {
  for (const shape of SHAPES) {
    it(`${shape.join('x')} total of the real elements (garbage in the padding is not summed)`, async () => {
      const [n, h, w, c] = shape;
      const data = nhwcData(shape, 200 + c, 0.5, 1000);
      const g = new Graph();
      const x = g.input(shape, 'x');
      const total = sumAll(g, x, 'total');
      const mean = sumAll(g, x, 'mean', { scale: 1 / (n * h * w * c) });
      expect(total.shape).toEqual([1, 1, 1, 1]);
      g.output(total);
      g.output(mean);
      const [t, m] = await runGraph(g, [data]);
      const ref = channelSums64(data, shape).reduce((a, b) => a + b, 0);
      expect(Array.from(t.subarray(1))).toEqual([0, 0, 0]);
      expect(Math.abs(t[0] - ref) / Math.abs(ref)).toBeLessThanOrEqual(1e-5);
      expect(Math.abs(m[0] - ref / (n * h * w * c)) / Math.abs(ref / (n * h * w * c))).toBeLessThanOrEqual(1e-5);
    });
  }
});

describe('determinism', () => {
  it('two runs and two plans of 2x64x64x16 reductions agree bit for bit', async () => {
    const shape: Shape4 = [2, 64, 64, 16];
    const data = nhwcData(shape, 99, 0.1);
    const build = () => {
      const g = new Graph();
      const x = g.input(shape, 'x');
      g.output(channelSums(g, x, 'sums'));
      g.output(sumAll(g, x, 'total'));
      return g;
    };
    const ctx = await getTestContext();
    const plan = await Plan.compile(ctx, build());
    plan.poison();
    const first = (await plan.run([data])).outputs;
    plan.poison();
    const second = (await plan.run([data])).outputs;
    plan.dispose();
    const third = await runGraph(build(), [data]);
    const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
    for (let k = 0; k < 2; k++) {
      expect(bits(second[k])).toEqual(bits(first[k]));
      expect(bits(third[k])).toEqual(bits(first[k]));
    }
    const ref = channelSums64(data, shape);
    expect(relL2(first[0].subarray(0, 16), ref)).toBeLessThanOrEqual(1e-5);
    const total = ref.reduce((a, b) => a + b, 0);
    expect(Math.abs(first[1][0] - total) / Math.abs(total)).toBeLessThanOrEqual(1e-5);
  });
});

describe('sumTensors', () => {
  for (const [shape, parts] of [
    [[1, 5, 7, 3], 2],
    [[2, 9, 6, 13], 5],
    [[1, 1, 1, 1], 9],
    [[1, 3, 4, 6], 4],
  ] as [Shape4, number][]) {
    it(`${parts} tensors of ${shape.join('x')} add left to right`, async () => {
      const data = Array.from({ length: parts }, (_, k) => nhwcData(shape, 500 + 17 * k, 0, 0).map((v) => v * 10 ** (k % 3)));
      const g = new Graph();
      const inputs = data.map((_, k) => g.input(shape, `part ${k}`));
      const y = sumTensors(g, inputs, 'sum');
      g.output(y);
      const [out] = await runGraph(g, data);
      // The f32 left fold ((a + b) + c) + …: WGSL's f32 addition is correctly rounded, so the order shows bit for bit.
      const fold = new Float32Array(out.length);
      for (let i = 0; i < out.length; i++) {
        let acc = data[0][i];
        for (let k = 1; k < parts; k++) acc = Math.fround(acc + data[k][i]);
        fold[i] = acc;
      }
      expect(Array.from(out)).toEqual(Array.from(fold));
      expectPaddingZero(out, shape[3]);
    });
  }

  it('returns a single tensor as it is, and names what does not fit', () => {
    const g = new Graph();
    const a = g.input([1, 2, 3, 4], 'a');
    const b = g.input([1, 2, 3, 4], 'b');
    const odd: TensorValue = g.input([1, 2, 3, 5], 'odd');
    expect(sumTensors(g, [a], 'one')).toBe(a);
    expect(() => sumTensors(g, [], 'none')).toThrow(InvalidInputError);
    expect(() => sumTensors(g, [a, b, odd], 'grads')).toThrow(/grads: part 2 'odd' is \[1, 2, 3, 5\]/);
  });
});
