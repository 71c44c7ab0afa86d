import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import type { GPUContext } from '../../src/gpu/context';
import { BufferUsage } from '../../src/gpu/flags';
import { Graph } from '../../src/gpu/graph';
import { ParameterArena } from '../../src/gpu/parameter-arena';
import { Plan } from '../../src/gpu/plan';
import { paddedChannels, type Shape4 } from '../../src/gpu/tensor';
import { preluForward } from '../../src/kernels/prelu';
import { ForwardBuilder } from '../../src/layers/forward-builder';
import { PReLU } from '../../src/layers/prelu';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';

/** Real elements (NHWC order, f32-rounded) of a tensor and its padded upload. */
function pack(values: Float64Array, shape: Shape4): { values: Float64Array; padded: Float32Array } {
  const c = shape[3];
  const cp = paddedChannels(c);
  const padded = new Float32Array((values.length / c) * cp);
  values.forEach((v, k) => (padded[Math.floor(k / c) * cp + (k % c)] = v));
  return { values: Float64Array.from(padded.filter((_, k) => k % cp < c)), padded };
}

/** The real channels of an output, after checking that every padded channel holds exactly 0. */
function realOf(out: Float32Array, c: number): Float64Array {
  const cp = paddedChannels(c);
  out.forEach((v, k) => {
    if (k % cp >= c && !Object.is(v, 0) && !Object.is(v, -0)) throw new Error(`padded channel ${k % cp} holds ${v}`);
  });
  return Float64Array.from(out.filter((_, k) => k % cp < c));
}

/** Float64 nn.PReLU: x where x > 0, a·x elsewhere (a shared, or the slope of the element's channel). */
function prelu64(x: Float64Array, slopes: Float64Array, c: number): Float64Array {
  return x.map((v, k) => (v > 0 ? v : (slopes.length === 1 ? slopes[0] : slopes[k % c]) * v));
}

async function run(ctx: GPUContext, g: Graph, inputs: Float32Array[]): Promise<Float32Array> {
  const plan = await Plan.compile(ctx, g);
  try {
    plan.poison();
    return (await plan.run(inputs)).outputs[0];
  } finally {
    plan.dispose();
  }
}

const CASES: [Shape4, boolean][] = [
  [[1, 5, 7, 3], false],
  [[1, 5, 7, 3], true],
  [[2, 9, 6, 13], false],
  [[2, 9, 6, 13], true],
  [[1, 1, 1, 1], false],
  [[2, 3, 5, 8], true],
];

describe('preluForward against float64', () => {
  for (const [shape, shared] of CASES) {
    it(`${shape.join('x')} ${shared ? 'shared slope' : 'per-channel slopes'}, slopes in a parameter arena`, async () => {
      const ctx = await getTestContext();
      const c = shape[3];
      const count = shape[0] * shape[1] * shape[2] * c;
      const x = pack(randomArray(count, 30 + c, 2), shape);
      // Exact zeros take the slope branch (0 either way) and must not disturb their neighbours.
      x.padded[0] = 0;
      x.values[0] = 0;
      // Slopes of both signs, and one of magnitude > 1, so the two branches cannot be confused.
      const slopes = Float64Array.from(randomArray(shared ? 1 : c, 40 + c, 0.8), (v, k) => Math.fround(k === 1 ? 1.5 : v - 0.1));
      const before = { name: 'before' };
      const weight = { name: 'prelu.weight' };
      const arena = new ParameterArena(
        ctx,
        [
          { key: before, numel: 7, label: 'before' },
          { key: weight, numel: slopes.length, label: 'prelu.weight' },
        ],
        'params',
      );
      try {
        arena.write(
          before,
          'value',
          Float64Array.from({ length: 7 }, () => 99),
        );
        arena.write(weight, 'value', slopes);
        const g = new Graph();
        g.output(preluForward(g, g.input(shape, 'x'), arena.range(weight, 'value'), 'prelu', { sharedSlope: shared }));
        const y = await run(ctx, g, [x.padded]);
        expect(relL2(realOf(y, c), prelu64(x.values, slopes, c))).toBeLessThanOrEqual(1e-6);
      } finally {
        arena.dispose();
      }
    });
  }

  it('keeps padded channels 0 with a shared slope that would turn 0 into NaN', async () => {
    const ctx = await getTestContext();
    const shape: Shape4 = [1, 3, 4, 5];
    const x = pack(
      randomArray(60, 3, 1).map((v) => Math.abs(v) + 0.1),
      shape,
    );
    const slopes = ctx.createBufferWithData(new Float32Array([Infinity, 0, 0, 0]), BufferUsage.STORAGE, 'slopes');
    try {
      const g = new Graph();
      g.output(preluForward(g, g.input(shape, 'x'), slopes, 'prelu', { sharedSlope: true }));
      const y = await run(ctx, g, [x.padded]);
      // All real inputs are positive, so the output is the input; the padded lanes compute inf·0 but store 0.
      expect(relL2(realOf(y, 5), x.values)).toBe(0);
    } finally {
      slopes.destroy();
    }
  });

  it('names slopes that are too short', async () => {
    const ctx = await getTestContext();
    const small = ctx.createBuffer({ size: 16, usage: BufferUsage.STORAGE }, 'small');
    try {
      const g = new Graph();
      const x = g.input([1, 2, 2, 6], 'x');
      expect(() => preluForward(g, x, small, 'up.prelu')).toThrow(InvalidInputError);
      expect(() => preluForward(g, x, small, 'up.prelu')).toThrow(/up\.prelu: slopes span 16 bytes, 6 channel slopes need 32/);
      expect(() => preluForward(g, x, small, 'up.prelu', { sharedSlope: true })).not.toThrow();
    } finally {
      small.destroy();
    }
  });

  for (const numParameters of [1, 6]) {
    it(`nn.PReLU(${numParameters}) runs on its own outside a training graph`, async () => {
      const ctx = await getTestContext();
      const shape: Shape4 = [1, 4, 3, 6];
      const x = pack(randomArray(72, 5 + numParameters, 2), shape);
      const prelu = new PReLU(numParameters);
      prelu.weight.data = Float64Array.from(randomArray(numParameters, 7, 0.5), (v) => Math.fround(v));
      try {
        const g = new Graph();
        g.output(prelu.forward(new ForwardBuilder(ctx, g), g.input(shape, 'x')));
        const y = await run(ctx, g, [x.padded]);
        expect(relL2(realOf(y, 6), prelu64(x.values, prelu.weight.data, 6))).toBeLessThanOrEqual(1e-6);
      } finally {
        prelu.release();
      }
    });
  }

  it('nn.PReLU names a slope count that does not fit the channels', async () => {
    const ctx = await getTestContext();
    const prelu = new PReLU(5);
    prelu.weight.data = new Float64Array(5).fill(0.25);
    const g = new Graph();
    expect(() => prelu.forward(new ForwardBuilder(ctx, g), g.input([1, 2, 2, 6], 'x'), { label: 'up.2' })).toThrow(InvalidInputError);
    expect(() => prelu.forward(new ForwardBuilder(ctx, g), g.input([1, 2, 2, 6], 'x'), { label: 'up.2' })).toThrow(
      /PReLU with 5 slopes cannot follow 6 channels/,
    );
  });
});
