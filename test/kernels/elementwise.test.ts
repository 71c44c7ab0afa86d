import { describe, expect, it } from 'vitest';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, type Shape4 } from '../../src/gpu/tensor';
import { type BinaryOp, binary } from '../../src/kernels/elementwise';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';

const OPS: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
};

const SHAPES: Shape4[] = [
  [1, 1, 1, 1],
  [1, 7, 13, 1],
  [1, 33, 47, 3],
  [2, 5, 9, 64],
  [1, 3, 5, 6],
];

describe('elementwise binary ops against a float64 reference', () => {
  for (const op of Object.keys(OPS) as BinaryOp[]) {
    for (const shape of SHAPES) {
      it(`${op} ${shape.join('x')}`, async () => {
        const ctx = await getTestContext();
        const [n, h, w, c] = shape;
        const count = n * c * h * w;
        const a = randomArray(count, 11 + c);
        const b = randomArray(count, 23 + h);
        const ref = a.map((v, i) => OPS[op](v, b[i]));
        const g = new Graph();
        const ta = g.input(shape, 'a');
        const tb = g.input(shape, 'b');
        const y = binary(g, op, ta, tb, op);
        g.output(y);
        const plan = await Plan.compile(ctx, g);
        plan.poison();
        const { outputs } = await plan.run([nchwToNhwcPadded(a, shape), nchwToNhwcPadded(b, shape)]);
        plan.dispose();
        const cp = Math.ceil(c / 4) * 4;
        outputs[0].forEach((v, i) => {
          if (i % cp >= c && v !== 0) throw new Error(`padded channel holds ${v}`);
        });
        expect(relL2(nhwcPaddedToNchw(outputs[0], shape), ref)).toBeLessThanOrEqual(1e-5);
      });
    }
  }

  it('rejects operands of different shapes', () => {
    const g = new Graph();
    const a = g.input([1, 2, 3, 4]);
    const b = g.input([1, 2, 3, 5]);
    expect(() => binary(g, 'sub', a, b, 'diff')).toThrow(/shapes \[1, 2, 3, 4\] and \[1, 2, 3, 5\] differ/);
  });
});
