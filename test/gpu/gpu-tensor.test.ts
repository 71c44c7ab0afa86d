import { describe, expect, it } from 'vitest';
import { GPUTensor } from '../../src/gpu/gpu-tensor';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, type Shape4 } from '../../src/gpu/tensor';
import { binary } from '../../src/kernels/elementwise';
import { getTestContext } from '../helpers/gpu';
import { randomArray } from '../helpers/random';

describe('GPUTensor', () => {
  for (const shape of [
    [1, 1, 1, 1],
    [1, 7, 13, 3],
    [2, 5, 3, 6],
  ] as Shape4[]) {
    it(`round-trips NCHW data ${shape.join('x')} exactly`, async () => {
      const ctx = await getTestContext();
      const [n, h, w, c] = shape;
      const data = Float32Array.from(randomArray(n * c * h * w, 5));
      const t = GPUTensor.fromNCHW(ctx, data, shape);
      expect(await t.toNCHW()).toEqual(data);
      t.dispose();
    });
  }

  it('feeds a plan directly, giving the same result as an uploaded array', async () => {
    const ctx = await getTestContext();
    const shape: Shape4 = [1, 9, 11, 5];
    const a = Float32Array.from(randomArray(5 * 9 * 11, 1));
    const b = Float32Array.from(randomArray(5 * 9 * 11, 2));
    const g = new Graph();
    const ta = g.input(shape, 'a');
    const tb = g.input(shape, 'b');
    g.output(binary(g, 'sub', ta, tb, 'a - b'));
    const plan = await Plan.compile(ctx, g);
    const onGpu = GPUTensor.fromNCHW(ctx, a, shape);
    plan.poison();
    const viaTensor = (await plan.run([onGpu, nchwToNhwcPadded(b, shape)])).outputs[0];
    plan.poison();
    const viaArray = (await plan.run([nchwToNhwcPadded(a, shape), nchwToNhwcPadded(b, shape)])).outputs[0];
    expect(viaTensor).toEqual(viaArray);
    expect(viaTensor.some((v) => v !== 0)).toBe(true);

    const wrong = GPUTensor.fromNCHW(ctx, new Float32Array(4 * 9 * 11), [1, 9, 11, 4]);
    await expect(plan.run([wrong, nchwToNhwcPadded(b, shape)])).rejects.toThrow(/\[1, 9, 11, 5\].*\[1, 9, 11, 4\]/);
    plan.dispose();
    onGpu.dispose();
    wrong.dispose();
    await expect(onGpu.toNCHW()).rejects.toThrow(/disposed/);
  });
});
