import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw } from '../../src/gpu/tensor';
import { channelMeanMax } from '../../src/kernels/channel-mean-max';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';

/** Float64 reference, NCHW: out[b, 0] = mean_c (x·gate), out[b, 1] = max_c (x·gate). */
function meanMaxRef(x: ArrayLike<number>, [n, c, h, w]: number[], gate?: ArrayLike<number>): Float64Array {
  const plane = h * w;
  const out = new Float64Array(n * 2 * plane);
  for (let b = 0; b < n; b++)
    for (let p = 0; p < plane; p++) {
      let sum = 0;
      let max = -Infinity;
      for (let ch = 0; ch < c; ch++) {
        const v = Math.fround(x[(b * c + ch) * plane + p]) * (gate ? Math.fround(gate[b * c + ch]) : 1);
        sum += v;
        max = Math.max(max, v);
      }
      out[b * 2 * plane + p] = sum / c;
      out[(b * 2 + 1) * plane + p] = max;
    }
  return out;
}

async function run(x: Float64Array, shape: [number, number, number, number], gate?: Float64Array) {
  const ctx = await getTestContext();
  const [n, c, h, w] = shape;
  const g = new Graph();
  const xt = g.input([n, h, w, c]);
  const gt = gate ? g.input([n, 1, 1, c]) : undefined;
  const y = channelMeanMax(g, xt, 'mean_max', gt);
  g.output(y);
  const plan = await Plan.compile(ctx, g);
  try {
    plan.poison();
    const inputs = [nchwToNhwcPadded(x, [n, h, w, c])];
    if (gate) inputs.push(nchwToNhwcPadded(gate, [n, 1, 1, c]));
    const { outputs } = await plan.run(inputs);
    outputs[0].forEach((v, i) => {
      if (i % 4 >= 2 && v !== 0) throw new Error(`padded channel ${i % 4} holds ${v}`);
    });
    return nhwcPaddedToNchw(outputs[0], y.shape);
  } finally {
    plan.dispose();
  }
}

describe('channelMeanMax against a float64 reference', () => {
  const shapes: [number, number, number, number][] = [
    [1, 1, 1, 1],
    [1, 3, 5, 7],
    [2, 6, 4, 9],
    [1, 64, 13, 11],
    [1, 13, 31, 3],
  ];
  shapes.forEach((shape, i) => {
    for (const gated of [false, true]) {
      it(`${shape.join('x')}${gated ? ' gated' : ''}`, async () => {
        const [n, c, h, w] = shape;
        // Negative values everywhere in one case: the max must not see the zero padded lanes.
        const x = randomArray(n * c * h * w, 900 + i).map((v) => (i === 4 ? -Math.abs(v) - 0.1 : v));
        const gate = gated ? randomArray(n * c, 950 + i).map((v) => 0.5 + 0.5 * v) : undefined;
        const y = await run(x, shape, gate);
        expect(relL2(y, meanMaxRef(x, shape, gate))).toBeLessThanOrEqual(1e-6);
      });
    }
  });

  it('rejects a gate of the wrong shape', () => {
    const g = new Graph();
    const x = g.input([1, 4, 4, 8]);
    const gate = g.input([1, 1, 1, 6]);
    expect(() => channelMeanMax(g, x, 'mm', gate)).toThrow(InvalidInputError);
  });
});
