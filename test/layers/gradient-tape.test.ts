import { describe, expect, it } from 'vitest';
import { Graph, type TensorValue } from '../../src/gpu/graph';
import { ParameterArena } from '../../src/gpu/parameter-arena';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, type Shape4 } from '../../src/gpu/tensor';
import { add, subtract } from '../../src/layers/autograd-ops';
import { ForwardBuilder } from '../../src/layers/forward-builder';
import { GradientTape } from '../../src/layers/gradient-tape';
import { TrainingGraph } from '../../src/layers/training-graph';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';

/*
 * The tape on its own, with parameter-free operations: gradients of a tensor read several times are summed,
 * untracked inputs get none, and steps the seed does not reach add no dispatch.
 */
describe('GradientTape', () => {
  const shape: Shape4 = [1, 3, 5, 6];
  const count = 3 * 5 * 6;

  /** Builds y = f(x, c) on a training builder, seeds the tape with `seed`, and returns the gradients asked for. */
  async function gradients(
    f: (b: ForwardBuilder, x: TensorValue, c: TensorValue) => TensorValue,
    track: ('x' | 'c')[],
    want: ('x' | 'c')[],
  ): Promise<{ grads: (Float32Array | undefined)[]; seed: Float64Array; dispatches: number }> {
    const ctx = await getTestContext();
    const graph = new Graph();
    const tape = new GradientTape(graph);
    const empty = new ParameterArena(ctx, [], 'no parameters');
    const b = new ForwardBuilder(ctx, graph, new TrainingGraph(tape, [], empty, 'train'));
    const x = graph.input(shape, 'x');
    const c = graph.input(shape, 'c');
    const seed = graph.input(shape, 'seed');
    const named = { x, c };
    for (const t of track) tape.track(named[t]);
    const y = f(b, x, c);
    const forwardDispatches = graph.nodes.length;
    tape.backward([[y, seed]]);
    const wanted = want.map((t) => tape.gradient(named[t]));
    for (const t of wanted) if (t) graph.output(t);
    const seedValues = randomArray(count, 3);
    try {
      const plan = await Plan.compile(ctx, graph);
      plan.poison();
      const { outputs } = await plan.run([randomArray(count, 1), randomArray(count, 2), seedValues].map((a) => nchwToNhwcPadded(a, shape)));
      plan.dispose();
      let k = 0;
      return {
        grads: wanted.map((t) => (t ? nhwcPaddedToNchw(outputs[k++], shape) : undefined)),
        seed: seedValues,
        dispatches: graph.nodes.length - forwardDispatches,
      };
    } finally {
      empty.dispose();
    }
  }

  it('sums the gradients of a tensor used three times: d/dx of (x + x) − (c − x) is 3g', async () => {
    const { grads, seed } = await gradients(
      (b, x, c) => subtract(b, add(b, x, x, 'x + x'), subtract(b, c, x, 'c − x'), 'out'),
      ['x'],
      ['x'],
    );
    expect(
      relL2(
        grads[0]!,
        seed.map((v) => 3 * v),
      ),
    ).toBeLessThanOrEqual(1e-6);
  });

  it('negates through the subtrahend and passes the minuend through: d/dc of x − c is −g, d/dx is g', async () => {
    const { grads, seed } = await gradients((b, x, c) => subtract(b, x, c, 'x − c'), ['x', 'c'], ['x', 'c']);
    expect(relL2(grads[0]!, seed)).toBeLessThanOrEqual(1e-6);
    expect(
      relL2(
        grads[1]!,
        seed.map((v) => -v),
      ),
    ).toBeLessThanOrEqual(1e-6);
  });

  it('gives untracked inputs no gradient and adds no dispatch for them', async () => {
    const { grads, dispatches } = await gradients((b, x, c) => subtract(b, x, c, 'x − c'), ['x'], ['x', 'c']);
    expect(grads[1]).toBeUndefined();
    expect(dispatches).toBe(0);
  });

  it('plays back once, and gradients exist only after playback', () => {
    const graph = new Graph();
    const tape = new GradientTape(graph);
    const x = graph.input(shape, 'x');
    expect(() => tape.gradient(x)).toThrow(/played back/);
    tape.backward([]);
    expect(() => tape.backward([])).toThrow(/once/);
  });
});
