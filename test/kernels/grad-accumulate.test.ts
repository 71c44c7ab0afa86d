import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { Graph } from '../../src/gpu/graph';
import { ParameterArena } from '../../src/gpu/parameter-arena';
import { Plan } from '../../src/gpu/plan';
import { accumulateFlat } from '../../src/kernels/grad-accumulate';
import { affine } from '../../src/kernels/pointwise';
import { getTestContext } from '../helpers/gpu';
import { randomArray } from '../helpers/random';

describe('accumulateFlat (gradients of a parameter used twice)', () => {
  it('adds one arena role into another over every element, gaps included', async () => {
    const ctx = await getTestContext();
    const keys = [{}, {}];
    const arena = new ParameterArena(
      ctx,
      keys.map((key, i) => ({ key, numel: [5, 70][i], label: `p${i}` })),
      'accumulate test',
    );
    try {
      const a = keys.map((_, i) => randomArray([5, 70][i], 10 + i));
      const b = keys.map((_, i) => randomArray([5, 70][i], 20 + i));
      keys.forEach((k, i) => {
        arena.write(k, 'grad', a[i]);
        arena.write(k, 'grad of use 2', b[i]);
      });
      const g = new Graph();
      accumulateFlat(g, arena.whole('grad'), arena.whole('grad of use 2'), arena.elements, 'accumulate');
      // A plan needs an output; the sums land in the arena.
      g.output(affine(g, g.input([1, 1, 1, 1], 'x'), 1, 0, 'unused'));
      const plan = await Plan.compile(ctx, g);
      await plan.run([new Float32Array(4)]);
      plan.dispose();
      const sums = await arena.read('grad');
      keys.forEach((k, i) => {
        const expected = Float32Array.from(a[i], (v, j) => Math.fround(Math.fround(v) + Math.fround(b[i][j])));
        expect(sums.get(k)).toEqual(expected);
      });
    } finally {
      arena.dispose();
    }
  });

  it('refuses a buffer shorter than the elements', async () => {
    const ctx = await getTestContext();
    const arena = new ParameterArena(ctx, [{ key: {}, numel: 8, label: 'p' }], 'short');
    try {
      expect(() => accumulateFlat(new Graph(), arena.whole('grad'), arena.whole('x'), 4096, 'acc')).toThrow(InvalidInputError);
    } finally {
      arena.dispose();
    }
  });
});
