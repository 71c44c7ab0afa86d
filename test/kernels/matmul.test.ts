import { describe, expect, it } from 'vitest';
import { BufferUsage } from '../../src/gpu/flags';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { paddedChannels, type Shape4 } from '../../src/gpu/tensor';
import { packBias } from '../../src/kernels/conv2d-geometry';
import { type MatmulVariant, matmul, matmulVariantTags, parseMatmulVariant, selectMatmulVariant } from '../../src/kernels/matmul';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';
import { HARDWARE, MATMUL_TEST_VARIANTS, SOFTWARE } from '../helpers/test-variants';

interface Case {
  /** A's shape as a tensor: M = n·h·w rows, K = c columns. */
  a: Shape4;
  n: number;
  bias: boolean;
}

// Odd sizes on every edge: K and N not multiples of 4 (K's tail, N's padded lanes), M not a multiple of any tile.
const CASES: [string, Case][] = [
  ['1×1×1 (M×N×K)', { a: [1, 1, 1, 1], n: 1, bias: false }],
  ['37×53×29', { a: [1, 1, 37, 29], n: 53, bias: false }],
  ['130×68×257 +bias', { a: [1, 1, 130, 257], n: 68, bias: true }],
  ['(2·3·5)×6×8 from a 4-D tensor, +bias', { a: [2, 3, 5, 8], n: 6, bias: true }],
];

function variantsUnderTest(): MatmulVariant[] {
  const all = [...MATMUL_TEST_VARIANTS, selectMatmulVariant(SOFTWARE), selectMatmulVariant(HARDWARE)];
  const seen = new Set<string>();
  return all.filter((v) => !seen.has(matmulVariantTags(v)) && seen.add(matmulVariantTags(v)) !== undefined);
}

/** Row-major M×C → rows padded with zeros to a multiple of 4 floats (the tensor layout). */
function padRows(x: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const cp = paddedChannels(cols);
  const out = new Float32Array(rows * cp);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cp + c] = x[r * cols + c];
  return out;
}

async function check(c: Case, variant: MatmulVariant, seed: number): Promise<number> {
  const ctx = await getTestContext();
  const [an, ah, aw, k] = c.a;
  const m = an * ah * aw;
  const n = c.n;
  // Inputs rounded to f32 first, so the float64 reference multiplies exactly what the GPU sees.
  const a = Float64Array.from(Float32Array.from(randomArray(m * k, seed)));
  const b = Float64Array.from(Float32Array.from(randomArray(k * n, seed + 1, 1 / Math.sqrt(k))));
  const bias = c.bias ? Float64Array.from(Float32Array.from(randomArray(n, seed + 2, 0.5))) : undefined;
  const ref = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = bias ? bias[j] : 0;
      for (let q = 0; q < k; q++) s += a[i * k + q] * b[q * n + j];
      ref[i * n + j] = s;
    }

  const g = new Graph();
  const ta = g.input(c.a, 'A');
  const tb = g.input([1, 1, k, n], 'B');
  const biasBuffer = bias ? ctx.createBufferWithData(packBias(bias, n), BufferUsage.STORAGE, 'test bias') : undefined;
  const y = matmul(g, ta, tb, { bias: biasBuffer, variant, label: 'matmul' });
  g.output(y);
  const plan = await Plan.compile(ctx, g);
  plan.poison();
  const { outputs } = await plan.run([padRows(a, m, k), padRows(b, k, n)]);
  plan.dispose();
  biasBuffer?.destroy();
  expect(y.shape).toEqual([an, ah, aw, n]);
  const out = outputs[0];
  const np = paddedChannels(n);
  expect(out.length).toBe(m * np);
  const got = new Float64Array(m * n);
  for (let i = 0; i < out.length; i++) {
    const col = i % np;
    // Padded lanes must be exactly zero (not poison): the next kernel reads them.
    if (col >= n) {
      if (out[i] !== 0) throw new Error(`padded column ${col} of row ${Math.floor(i / np)} holds ${out[i]}`);
    } else got[Math.floor(i / np) * n + col] = out[i];
  }
  return relL2(got, ref);
}

describe('matmul against a float64 reference', () => {
  CASES.forEach(([name, c], i) => {
    for (const variant of variantsUnderTest()) {
      it(`${name} [${matmulVariantTags(variant)}]`, async () => {
        expect(await check(c, variant, 300 + 10 * i)).toBeLessThanOrEqual(1e-5);
      });
    }
  });

  it('rejects mismatched shapes and bad variants', () => {
    const g = new Graph();
    const a = g.input([1, 1, 5, 7]);
    const b = g.input([1, 1, 6, 3]);
    const ok: MatmulVariant = { rows: 1, cols: 1, wgX: 8, wgY: 8 };
    expect(() => matmul(g, a, b, { variant: ok, label: 'mm' })).toThrow(/K = 7 columns but B \[1, 1, 6, 3\] has 6 rows/);
    const b7 = g.input([1, 1, 7, 3]);
    expect(() => matmul(g, a, b7, { variant: { ...ok, rows: 0 }, label: 'mm' })).toThrow(/positive integers/);
    expect(() => matmul(g, a, b7, { variant: { ...ok, sharedK: 6 }, label: 'mm' })).toThrow(/multiple of 4/);
    expect(parseMatmulVariant('r8,c2,wg8x8,sk16')).toEqual({ rows: 8, cols: 2, wgX: 8, wgY: 8, sharedK: 16 });
    expect(() => parseMatmulVariant('r4,c4,wg64')).toThrow(/bad matmul variant tag 'wg64'/);
  });
});
