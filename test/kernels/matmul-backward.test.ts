import { describe, expect, it } from 'vitest';
import { writeBuffer } from '../../src/gpu/context';
import { InvalidInputError } from '../../src/errors';
import { Graph } from '../../src/gpu/graph';
import { ParameterArena } from '../../src/gpu/parameter-arena';
import { Plan } from '../../src/gpu/plan';
import { nhwcPaddedToNchw, nchwToNhwcPadded, type Shape4 } from '../../src/gpu/tensor';
import { linearInputGrad, linearWeightGrad } from '../../src/kernels/matmul-backward';
import { getTestContext, readWhole } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';

/*
 * nn.Linear over the channels of every token (SCUNet's qkv, proj and MLP layers): a float64 reference of
 * y = x·Wᵀ + b and of its backward (dx = gy·W, dW = gyᵀ·x, db = Σ gy; docs/training.md §1.9), checked against
 * central differences, then the GPU backward against it. Token-major data: x[t·in + i].
 */

function linearRef(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number>, tokens: number, inF: number, outF: number) {
  const y = new Float64Array(tokens * outF);
  for (let t = 0; t < tokens; t++) {
    for (let o = 0; o < outF; o++) {
      let s = b[o];
      for (let i = 0; i < inF; i++) s += x[t * inF + i] * w[o * inF + i];
      y[t * outF + o] = s;
    }
  }
  return y;
}

function linearBackwardRef(x: ArrayLike<number>, w: ArrayLike<number>, gy: ArrayLike<number>, tokens: number, inF: number, outF: number) {
  const dx = new Float64Array(tokens * inF);
  const dW = new Float64Array(outF * inF);
  const db = new Float64Array(outF);
  for (let t = 0; t < tokens; t++) {
    for (let o = 0; o < outF; o++) {
      const g = gy[t * outF + o];
      db[o] += g;
      for (let i = 0; i < inF; i++) {
        dx[t * inF + i] += g * w[o * inF + i];
        dW[o * inF + i] += g * x[t * inF + i];
      }
    }
  }
  return { dx, dW, db };
}

function centralDifferences(v: Float64Array, loss: () => number): Float64Array {
  return v.map((keep, i) => {
    const h = 1e-6 * Math.max(1, Math.abs(keep));
    v[i] = keep + h;
    const up = loss();
    v[i] = keep - h;
    const down = loss();
    v[i] = keep;
    return (up - down) / (2 * h);
  });
}

describe('float64 Linear backward reference', () => {
  it('matches central differences of the forward', () => {
    const [tokens, inF, outF] = [6, 5, 3];
    const x = randomArray(tokens * inF, 1);
    const w = randomArray(outF * inF, 2);
    const b = randomArray(outF, 3);
    const gy = randomArray(tokens * outF, 4);
    const loss = () => linearRef(x, w, b, tokens, inF, outF).reduce((s, v, i) => s + v * gy[i], 0);
    const ref = linearBackwardRef(x, w, gy, tokens, inF, outF);
    expect(relL2(ref.dx, centralDifferences(x, loss))).toBeLessThan(1e-6);
    expect(relL2(ref.dW, centralDifferences(w, loss))).toBeLessThan(1e-6);
    expect(relL2(ref.db, centralDifferences(b, loss))).toBeLessThan(1e-6);
  });
});

/** [n, h, w] tokens, in features, out features, tokens per split-K chunk (undefined: the default). */
const CASES: Array<[string, [number, number, number], number, number, number | undefined]> = [
  ['1x5x7 tokens, 3 → 13', [1, 5, 7], 3, 13, undefined],
  ['2x9x6 tokens, 13 → 7, chunks of 10', [2, 9, 6], 13, 7, 10],
  ['1x8x8 tokens, 32 → 96 (SCUNet qkv, 1 head)', [1, 8, 8], 32, 96, 17],
  ['2x4x3 tokens, 128 → 32 (MLP out)', [2, 4, 3], 128, 32, undefined],
];

const ceil4 = (v: number) => Math.ceil(v / 4) * 4;

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return ua.length === ub.length && ua.every((v, i) => v === ub[i]);
}

/** Token-major [tokens, c] ↔ NCHW [n, c, h, w]. */
function tokensToNchw(v: ArrayLike<number>, [n, h, w]: [number, number, number], c: number): Float32Array {
  const out = new Float32Array(n * c * h * w);
  for (let b = 0; b < n; b++)
    for (let p = 0; p < h * w; p++) for (let k = 0; k < c; k++) out[(b * c + k) * h * w + p] = v[(b * h * w + p) * c + k];
  return out;
}

describe('Linear backward kernels against the float64 reference', () => {
  CASES.forEach(([name, grid, inF, outF, chunk], caseIndex) => {
    it(name, async () => {
      const ctx = await getTestContext();
      const [n, h, w] = grid;
      const tokens = n * h * w;
      const seed = 40 + 10 * caseIndex;
      const x = Float32Array.from(randomArray(tokens * inF, seed));
      const gyData = Float32Array.from(randomArray(tokens * outF, seed + 1));
      const weight = Float32Array.from(randomArray(outF * inF, seed + 2));
      const ref = linearBackwardRef(x, weight, gyData, tokens, inF, outF);

      const keys = { weight: {}, bias: {} };
      const arena = new ParameterArena(
        ctx,
        [
          { key: keys.weight, numel: outF * inF, label: 'weight' },
          { key: keys.bias, numel: outF, label: 'bias' },
        ],
        'linear',
      );
      arena.write(keys.weight, 'value', weight);
      const xShape: Shape4 = [n, h, w, inF];
      const gyShape: Shape4 = [n, h, w, outF];
      const g = new Graph();
      const xIn = g.input(xShape, 'x');
      const gy = g.input(gyShape, 'gy');
      const dx = linearInputGrad(g, ctx, gy, arena.range(keys.weight, 'value'), inF, 'linear dx');
      linearWeightGrad(g, xIn, gy, arena.range(keys.weight, 'grad'), 'linear dW', {
        dBias: arena.range(keys.bias, 'grad'),
        ...(chunk ? { tokensPerChunk: chunk } : {}),
      });
      expect(dx.shape).toEqual(xShape);
      g.output(dx);
      const plan = await Plan.compile(ctx, g);
      const run = async () => {
        plan.poison();
        writeBuffer(ctx.device, arena.buffer('grad'), 0, new Float32Array(arena.elements).fill(Number.NaN));
        const { outputs } = await plan.run([
          nchwToNhwcPadded(tokensToNchw(x, grid, inF), xShape),
          nchwToNhwcPadded(tokensToNchw(gyData, grid, outF), gyShape),
        ]);
        return { dx: outputs[0], grads: await readWhole(ctx, arena.buffer('grad')) };
      };
      const first = await run();
      first.dx.forEach((v, i) => {
        if (i % ceil4(inF) >= inF && v !== 0) throw new Error(`dx padded channel ${i % ceil4(inF)} holds ${v}`);
      });
      expect(relL2(nhwcPaddedToNchw(first.dx, xShape), tokensToNchw(ref.dx, grid, inF)), 'dx').toBeLessThanOrEqual(1e-5);
      for (const [key, expected, what] of [
        [keys.weight, ref.dW, 'dW'],
        [keys.bias, ref.db, 'db'],
      ] as const) {
        const { offset, numel } = arena.entry(key);
        expect(relL2(first.grads.slice(offset, offset + numel), expected), what).toBeLessThanOrEqual(1e-4);
        // The split-K reduce writes the numel values only (the arena keeps the padding it was created with).
      }
      const again = await run();
      expect(sameBits(again.dx, first.dx)).toBe(true);
      expect(sameBits(again.grads, first.grads)).toBe(true);
      plan.dispose();
      arena.dispose();
    });
  });

  it('names a bad input', async () => {
    const ctx = await getTestContext();
    const g = new Graph();
    const range = { buffer: {} as GPUBuffer, offset: 0, size: 4 * 4 * 8 };
    expect(() => linearWeightGrad(g, g.input([1, 2, 3, 4]), g.input([1, 2, 2, 8]), range, 'lin')).toThrow(InvalidInputError);
    expect(() => linearWeightGrad(g, g.input([1, 2, 3, 8]), g.input([1, 2, 3, 8]), range, 'lin')).toThrow(/lin: dWeight spans/);
    expect(() => linearInputGrad(g, ctx, g.input([1, 2, 3, 8]), { ...range, size: 16 }, 4, 'lin dx')).toThrow(InvalidInputError);
  });
});
