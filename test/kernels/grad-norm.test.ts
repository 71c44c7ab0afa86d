import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { BufferUsage } from '../../src/gpu/flags';
import { Graph } from '../../src/gpu/graph';
import { ParameterArena } from '../../src/gpu/parameter-arena';
import { Plan } from '../../src/gpu/plan';
import { clipGradNorm, gradNormSquared } from '../../src/kernels/grad-norm';
import { readFixtureJson } from '../helpers/fixture-loader';
import { getTestContext, readWhole } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';

/** The clip_grad_norm_ cases of test/fixtures/training/optimizers.json (tools/torch/make_optimizer_fixtures.py). */
interface ClipFixture {
  torch: string;
  tensors: { name: string; shape: number[] }[];
  clip: { name: string; maxNorm: number; grads: number[][]; totalNorm: number; clipped: number[][] }[];
}

const fixture = readFixtureJson<ClipFixture>('test/fixtures/training/optimizers.json');
const CLIP_CASES = ['below_1', 'at_1', 'above_1', 'below_0.5', 'at_0.5', 'above_0.5'];

/** clip_grad_norm_(max_norm, 2) in float64: total = ‖g‖₂, coef = min(max_norm/(total + 1e-6), 1). */
function clipReference(grads: ArrayLike<number>, maxNorm: number): { total: number; clipped: Float64Array } {
  let sum = 0;
  for (let i = 0; i < grads.length; i++) sum += grads[i] * grads[i];
  const total = Math.sqrt(sum);
  const coef = Math.min(maxNorm / (total + 1e-6), 1);
  return { total, clipped: Float64Array.from(grads, (g) => g * coef) };
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

describe('gradient norm and clip_grad_norm_', () => {
  for (const name of CLIP_CASES) {
    it(`${name}: matches torch.nn.utils.clip_grad_norm_ over a whole arena; the gaps stay 0`, async () => {
      const ctx = await getTestContext();
      const f = await fixture;
      expect(f.torch).toMatch(/^1\.13/);
      const c = f.clip.find((x) => x.name === name)!;
      const keys = f.tensors.map(() => ({}));
      const arena = new ParameterArena(
        ctx,
        f.tensors.map((t, i) => ({ key: keys[i], numel: numel(t.shape), label: t.name })),
        `clip ${name}`,
      );
      try {
        keys.forEach((k, i) => arena.write(k, 'grad', c.grads[i]));
        const g = new Graph();
        const grads = arena.whole('grad');
        const normSq = gradNormSquared(g, grads, arena.elements, 'norm');
        g.output(normSq);
        g.output(clipGradNorm(g, grads, arena.elements, normSq, c.maxNorm, 'clip'));
        const plan = await Plan.compile(ctx, g);
        plan.poison();
        const { outputs } = await plan.run([]);
        plan.dispose();
        const [sq, total] = outputs;
        expect(Array.from(sq.subarray(1))).toEqual([0, 0, 0]);
        expect(Array.from(total.subarray(1))).toEqual([0, 0, 0]);
        expect(Math.abs(total[0] - c.totalNorm) / c.totalNorm).toBeLessThanOrEqual(1e-6);
        expect(Math.abs(Math.sqrt(sq[0]) - total[0])).toBeLessThanOrEqual(1e-6 * total[0]);
        const all = c.grads.flat();
        const ref = clipReference(all, c.maxNorm);
        expect(Math.abs(total[0] - ref.total) / ref.total).toBeLessThanOrEqual(1e-6);
        const clipped = await arena.read('grad');
        keys.forEach((k, i) => {
          expect(relL2(clipped.get(k)!, c.clipped[i]), `${name} ${f.tensors[i].name} vs torch`).toBeLessThanOrEqual(1e-6);
        });
        expect(
          relL2(
            keys.flatMap((k) => Array.from(clipped.get(k)!)),
            ref.clipped,
          ),
        ).toBeLessThanOrEqual(1e-6);
        if (name.startsWith('below')) {
          // coef is exactly 1: the gradients are multiplied by 1 and so unchanged, bit for bit.
          keys.forEach((k, i) => expect(Array.from(clipped.get(k)!)).toEqual(c.grads[i]));
        } else {
          expect(ref.total).toBeGreaterThanOrEqual(c.maxNorm * (1 - 1e-7));
        }
        const whole = await readWhole(ctx, arena.buffer('grad'));
        const inside = new Uint8Array(whole.length);
        for (const k of keys) inside.fill(1, arena.entry(k).offset, arena.entry(k).offset + arena.entry(k).numel);
        whole.forEach((v, i) => {
          if (!inside[i] && v !== 0) throw new Error(`gap element ${i} holds ${v}`);
        });
      } finally {
        arena.dispose();
      }
    });
  }

  it('Σg² of 100,003 values (7 partials, a padded tail): float64 reference, bitwise reproducible', async () => {
    const ctx = await getTestContext();
    const n = 100_003;
    const data = new Float32Array(Math.ceil(n / 4) * 4);
    data.set(randomArray(n, 5, 3));
    const buffer = ctx.createBufferWithData(data, BufferUsage.STORAGE | BufferUsage.COPY_SRC, 'grads');
    try {
      const g = new Graph();
      g.output(gradNormSquared(g, buffer, n, 'norm'));
      const plan = await Plan.compile(ctx, g);
      expect(plan.dispatchCount).toBe(2);
      plan.poison();
      const first = (await plan.run([])).outputs[0];
      plan.poison();
      const second = (await plan.run([])).outputs[0];
      plan.dispose();
      let ref = 0;
      for (let i = 0; i < n; i++) ref += data[i] * data[i];
      expect(Math.abs(first[0] - ref) / ref).toBeLessThanOrEqual(1e-6);
      expect(Array.from(second)).toEqual(Array.from(first));
      expect(Array.from(first.subarray(1))).toEqual([0, 0, 0]);
    } finally {
      buffer.destroy();
    }
  });

  it('partial chunks at their boundaries: 16,384 and 16,388 elements, and 4', async () => {
    const ctx = await getTestContext();
    for (const n of [4, 16_384, 16_388]) {
      const data = Float32Array.from(randomArray(n, n));
      const buffer = ctx.createBufferWithData(data, BufferUsage.STORAGE, 'grads');
      const g = new Graph();
      g.output(gradNormSquared(g, buffer, n, 'norm'));
      const plan = await Plan.compile(ctx, g);
      plan.poison();
      const out = (await plan.run([])).outputs[0];
      plan.dispose();
      buffer.destroy();
      let ref = 0;
      for (let i = 0; i < n; i++) ref += data[i] * data[i];
      expect(Math.abs(out[0] - ref) / ref, `${n} elements`).toBeLessThanOrEqual(1e-6);
    }
  });

  it('zero gradients: norm 0, coefficient 1, everything stays 0', async () => {
    const ctx = await getTestContext();
    const buffer = ctx.createBufferWithData(new Float32Array(64), BufferUsage.STORAGE | BufferUsage.COPY_SRC, 'grads');
    const g = new Graph();
    const sq = gradNormSquared(g, buffer, 64, 'norm');
    g.output(clipGradNorm(g, buffer, 64, sq, 1, 'clip'));
    const plan = await Plan.compile(ctx, g);
    plan.poison();
    const total = (await plan.run([])).outputs[0];
    plan.dispose();
    expect(Array.from(total)).toEqual([0, 0, 0, 0]);
    expect((await readWhole(ctx, buffer)).every((v) => v === 0)).toBe(true);
    buffer.destroy();
  });

  it('refuses bad arguments, naming them', async () => {
    const ctx = await getTestContext();
    const buffer = ctx.createBuffer({ size: 64, usage: BufferUsage.STORAGE }, 'grads');
    const g = new Graph();
    const sq = gradNormSquared(g, buffer, 16, 'norm');
    const nodes = g.nodes.length;
    const wide = g.tensor([1, 1, 2, 1], 'wide');
    const calls: [() => unknown, RegExp][] = [
      [() => gradNormSquared(g, buffer, 17, 'n2'), /n2: grads spans 64 bytes, 17 elements need 80/],
      [() => gradNormSquared(g, buffer, 0, 'n2'), /n2: elements must be an integer >= 1/],
      [() => clipGradNorm(g, buffer, 16, sq, -1, 'clip'), /clip: maxNorm must be a finite number >= 0/],
      [() => clipGradNorm(g, buffer, 16, sq, Number.NaN, 'clip'), /clip: maxNorm must be a finite number >= 0/],
      [() => clipGradNorm(g, buffer, 16, wide, 1, 'clip'), /clip: normSquared must be a \[1, 1, 1, 1\] tensor, got \[1, 1, 2, 1\]/],
    ];
    for (const [call, message] of calls) {
      expect(call).toThrow(InvalidInputError);
      expect(call).toThrow(message);
    }
    expect(g.nodes.length).toBe(nodes);
    buffer.destroy();
  });
});
