import { Graph, type TensorValue } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, paddedChannels } from '../../src/gpu/tensor';
import { getTestContext } from './gpu';
import { type NCHW, toNHWC } from './reference-spatial';

export interface GraphRun {
  /** NCHW, padded channels checked to be exactly 0. */
  outputs: Float32Array[];
  /** The raw NHWC-padded outputs, for bitwise comparisons. */
  raw: Float32Array[];
}

/**
 * Compiles the graph `build` makes from inputs of the given NCHW shapes, and runs it `runs` times, each on
 * poisoned (NaN) buffers: every output comes back as NCHW, after a check that its padded channels hold 0.
 */
export async function runGraph(
  inputs: { shape: NCHW; data: ArrayLike<number> }[],
  build: (g: Graph, xs: TensorValue[]) => TensorValue[],
  runs = 1,
): Promise<GraphRun[]> {
  const ctx = await getTestContext();
  const g = new Graph();
  const xs = inputs.map((t, i) => g.input(toNHWC(t.shape), `in${i}`));
  const outs = build(g, xs);
  outs.forEach((t) => g.output(t));
  const plan = await Plan.compile(ctx, g);
  const results: GraphRun[] = [];
  try {
    for (let r = 0; r < runs; r++) {
      plan.poison();
      const { outputs } = await plan.run(inputs.map((t) => nchwToNhwcPadded(t.data, toNHWC(t.shape))));
      results.push({
        raw: outputs,
        outputs: outputs.map((o, i) => {
          const c = outs[i].shape[3];
          const cp = paddedChannels(c);
          o.forEach((v, k) => {
            if (k % cp >= c && v !== 0) throw new Error(`output ${i}: padded channel ${k % cp} holds ${v}`);
          });
          return nhwcPaddedToNchw(o, outs[i].shape);
        }),
      });
    }
  } finally {
    plan.dispose();
  }
  return results;
}
