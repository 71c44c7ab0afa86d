import { describe, expect, it } from 'vitest';
import type { GPUContext } from '../../src/gpu/context';
import { BufferUsage } from '../../src/gpu/flags';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { isLazySource } from '../../src/gpu/shader';
import { RELU } from '../../src/kernels/activation';
import { conv2d } from '../../src/kernels/conv2d';
import { type Conv2dGeometry, packBias, packConv2dWeight } from '../../src/kernels/conv2d-geometry';
import type { Conv2dVariant } from '../../src/kernels/conv2d-variants';
import { binary } from '../../src/kernels/elementwise';
import { pad2d } from '../../src/kernels/pad';
import { getTestContext } from '../helpers/gpu';
import { randomArray } from '../helpers/random';

const SHAPE = [1, 9, 11, 8] as const;
const GEOMETRY: Conv2dGeometry = { inChannels: 8, outChannels: 8, kernelSize: [3, 3], stride: 1, padding: [1, 1], dilation: 1 };
const VARIANT: Conv2dVariant = { px: 4, cb: 2, workgroupSize: 64 };

/**
 * Six dispatches, four distinct shaders: two convolutions with the same variant and epilogue, a third with a
 * residual, two additions, a pad.
 */
function build(weight: GPUBuffer, bias: GPUBuffer): Graph {
  const g = new Graph();
  const x = g.input([...SHAPE]);
  const params = { weight, bias, geometry: GEOMETRY, variant: VARIANT };
  const a = conv2d(g, x, { ...params, label: 'conv a' }, { activation: RELU });
  const b = conv2d(g, a, { ...params, label: 'conv b' }, { activation: RELU });
  const c = conv2d(g, b, { ...params, label: 'conv c' }, { residual: { tensor: x, mode: 'afterActivation' } });
  const d = binary(g, 'add', c, a, 'c + a');
  const e = binary(g, 'add', d, b, 'd + b');
  g.output(pad2d(g, e, { top: 1, bottom: 0, left: 2, right: 1 }, 'zeros', 'pad'));
  return g;
}

/** Counts, per shader key, the calls of every node's WGSL generator. */
function countGenerations(g: Graph): Map<string, number> {
  const counts = new Map<string, number>();
  for (const node of g.nodes) {
    const source = node.kernel;
    if (!isLazySource(source)) throw new Error(`${node.label}: the kernel's source is not generated lazily`);
    node.kernel = {
      ...source,
      generate: (access) => {
        counts.set(source.key, (counts.get(source.key) ?? 0) + 1);
        return source.generate(access);
      },
    };
  }
  return counts;
}

async function compileAndRun(ctx: GPUContext, g: Graph, input: Float32Array): Promise<Float32Array> {
  const plan = await Plan.compile(ctx, g);
  try {
    plan.poison();
    return (await plan.run([input])).outputs[0];
  } finally {
    plan.dispose();
  }
}

describe('shader sources generated on a pipeline-cache miss only', () => {
  for (const split of [false, true]) {
    it(`building the same graph twice generates each distinct shader once${split ? ' (tensors split across bindings)' : ''}`, async () => {
      const ctx = await getTestContext();
      const weight = ctx.createBufferWithData(packConv2dWeight(randomArray(8 * 8 * 9, 1, 0.3), GEOMETRY), BufferUsage.STORAGE, 'w');
      const bias = ctx.createBufferWithData(packBias(randomArray(8, 2, 0.1), 8), BufferUsage.STORAGE, 'b');
      const input = Float32Array.from(randomArray(9 * 11 * 8, 3));
      const reference = split ? await compileAndRun(ctx, build(weight, bias), input) : undefined;
      ctx.pipelines.clear();
      if (split) ctx.forceBindingChunks = 3;
      try {
        const first = build(weight, bias);
        const keys = new Set(first.nodes.map((n) => (isLazySource(n.kernel) ? n.kernel.key : '')));
        expect(first.nodes.length).toBe(6);
        expect(keys.size).toBe(4);
        const generated = countGenerations(first);
        expect(generated.size, 'building a graph generates no WGSL').toBe(0);
        const out1 = await compileAndRun(ctx, first, input);
        expect([...generated.keys()].sort()).toEqual([...keys].sort());
        expect([...generated.values()]).toEqual([1, 1, 1, 1]);

        const again = build(weight, bias);
        const regenerated = countGenerations(again);
        const out2 = await compileAndRun(ctx, again, input);
        expect(regenerated.size, 'every pipeline found in the cache by its key').toBe(0);
        expect(out2).toEqual(out1);
        if (split) {
          expect(ctx.pipelines.labels().every((l) => l.includes('[chunks '))).toBe(true);
          expect(out1).toEqual(reference); // windowed accessors compute exactly what one binding does
        }
      } finally {
        ctx.forceBindingChunks = undefined;
        weight.destroy();
        bias.destroy();
      }
    });
  }
});
