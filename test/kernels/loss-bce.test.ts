import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { Graph, type TensorValue } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { paddedChannels, type Shape4 } from '../../src/gpu/tensor';
import { bceWithLogitsLoss, relativisticGanLoss, vanillaGanLosses } from '../../src/kernels/loss-bce';
import { readFixtureJson } from '../helpers/fixture-loader';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';

/** test/fixtures/losses/bce.json (tools/torch/loss_fixtures.py): NCHW tensors, float32 inputs, float64 results. */
interface BceFixture {
  torch: string;
  bce: { name: string; shape: number[]; logits: number[]; target: number | number[]; loss: number; grad: number[] }[];
  vanilla: {
    shape: number[];
    real: number[];
    fake: number[];
    discriminator: { lossReal: number; lossFake: number; gradReal: number[]; gradFake: number[] };
    generator: { loss: number; gradFake: number[] };
  };
  relativistic: ({ name: string; shape: number[]; real: number[]; fake: number[] } & Record<'generator' | 'discriminator', Relativistic>)[];
}

interface Relativistic {
  loss: number;
  gradReal: number[];
  gradFake: number[];
}

const fixture = await readFixtureJson<BceFixture>('test/fixtures/losses/bce.json');

interface Data {
  shape: Shape4;
  values: Float64Array;
  padded: Float32Array;
}

function pack(values: ArrayLike<number>, shape: Shape4): Data {
  const c = shape[3];
  const cp = paddedChannels(c);
  const padded = new Float32Array((values.length / c) * cp);
  for (let k = 0; k < values.length; k++) padded[Math.floor(k / c) * cp + (k % c)] = values[k];
  return { shape, values: Float64Array.from(values, Math.fround), padded };
}

function nhwcShape([n, c, h, w]: number[]): Shape4 {
  return [n, h, w, c];
}

/** NCHW → NHWC; `f32` rounds to float32 (the fixture's inputs are written as the shortest decimal of a float32). */
function nchwToNhwc(values: ArrayLike<number>, [n, c, h, w]: number[], f32 = false): Float64Array {
  const out = new Float64Array(values.length);
  if (f32) values = Float64Array.from(values, Math.fround);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[((b * h + y) * w + x) * c + ch] = values[((b * c + ch) * h + y) * w + x];
  return out;
}

function fromFixture(values: number[], nchw: number[]): Data {
  return pack(nchwToNhwc(values, nchw, true), nhwcShape(nchw));
}

function count(shape: Shape4): number {
  return shape[0] * shape[1] * shape[2] * shape[3];
}

// ---------------------------------------------------------------------------------------------------------------
// Float64 references (training.md §2.6).

function softplusTerm(z: number, t: number): number {
  return Math.max(z, 0) - z * t + Math.log1p(Math.exp(-Math.abs(z)));
}

function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

interface Reference {
  loss: number;
  grad: Float64Array;
}

/** nn.BCEWithLogitsLoss() (mean) times weight, and its gradient. */
function bce64(z: Float64Array, t: number | Float64Array, weight = 1): Reference {
  const at = (k: number) => (typeof t === 'number' ? t : t[k]);
  const n = z.length;
  let sum = 0;
  z.forEach((v, k) => (sum += softplusTerm(v, at(k))));
  return { loss: (weight * sum) / n, grad: z.map((v, k) => (weight * (sigmoid(v) - at(k))) / n) };
}

interface RelativisticReference {
  loss: number;
  gradReal: Float64Array;
  gradFake: Float64Array;
}

const mean = (x: Float64Array) => x.reduce((a, b) => a + b, 0) / x.length;

/**
 * BasicSR's ESRGAN losses. Generator ½[bce(r − mean f, 0) + bce(f − mean r, 1)], full gradients (through the means);
 * discriminator ½bce(r − mean f, 1) + ½bce(f − mean r, 0) with the means detached.
 */
function relativistic64(r: Float64Array, f: Float64Array, forGenerator: boolean, weight = 1): RelativisticReference {
  const [tr, tf] = forGenerator ? [0, 1] : [1, 0];
  const a = r.map((v) => v - mean(f));
  const b = f.map((v) => v - mean(r));
  const la = bce64(a, tr, weight / 2);
  const lb = bce64(b, tf, weight / 2);
  const gradReal = la.grad.slice();
  const gradFake = lb.grad.slice();
  if (forGenerator) {
    // a = r − mean f: every a_i moves by −1/n when f_j moves; likewise b and r.
    const sumA = la.grad.reduce((x, y) => x + y, 0);
    const sumB = lb.grad.reduce((x, y) => x + y, 0);
    for (let j = 0; j < r.length; j++) {
      gradReal[j] -= sumB / r.length;
      gradFake[j] -= sumA / f.length;
    }
  }
  return { loss: la.loss + lb.loss, gradReal, gradFake };
}

function centralDifferences(x: Float64Array, f: (x: Float64Array) => number): Float64Array {
  return x.map((v, k) => {
    const h = 1e-6 * Math.max(1, Math.abs(v));
    const plus = x.slice();
    const minus = x.slice();
    plus[k] = v + h;
    minus[k] = v - h;
    return (f(plus) - f(minus)) / (2 * h);
  });
}

// ---------------------------------------------------------------------------------------------------------------

/** Compiles `build` over the inputs, poisons, runs `runs` times; outputs as `build` lists them. */
async function run(inputs: Data[], build: (g: Graph, t: TensorValue[]) => TensorValue[], runs = 1): Promise<Float32Array[][]> {
  const ctx = await getTestContext();
  const g = new Graph();
  const tensors = inputs.map((d, k) => g.input(d.shape, `input ${k}`));
  for (const t of build(g, tensors)) g.output(t);
  const plan = await Plan.compile(ctx, g);
  try {
    const results: Float32Array[][] = [];
    for (let r = 0; r < runs; r++) {
      plan.poison();
      results.push((await plan.run(inputs.map((d) => d.padded))).outputs);
    }
    return results;
  } finally {
    plan.dispose();
  }
}

function expectLoss(loss: Float32Array, ref: number): void {
  expect(Array.from(loss.subarray(1))).toEqual([0, 0, 0]);
  expect(Math.abs(loss[0] - ref) / Math.abs(ref), `loss ${loss[0]} vs ${ref}`).toBeLessThanOrEqual(1e-5);
}

function expectGrad(grad: Float32Array, ref: Float64Array, c: number, tolerance = 1e-4): void {
  const cp = paddedChannels(c);
  grad.forEach((v, k) => {
    if (k % cp >= c && v !== 0) throw new Error(`gradient padded channel ${k % cp} holds ${v}`);
  });
  expect(relL2(Float64Array.from(grad.filter((_, k) => k % cp < c)), ref)).toBeLessThanOrEqual(tolerance);
}

describe('the float64 references', () => {
  for (const c of fixture.bce) {
    it(`BCE matches PyTorch: ${c.name}`, () => {
      const z = nchwToNhwc(c.logits, c.shape, true);
      const ref = bce64(z, typeof c.target === 'number' ? c.target : nchwToNhwc(c.target, c.shape, true));
      expect(Math.abs(ref.loss - c.loss) / c.loss).toBeLessThan(1e-12);
      expect(relL2(ref.grad, nchwToNhwc(c.grad, c.shape))).toBeLessThan(1e-12);
    });
  }

  for (const c of fixture.relativistic) {
    for (const role of ['generator', 'discriminator'] as const) {
      it(`relativistic ${role} matches BasicSR's: ${c.name}`, () => {
        const ref = relativistic64(nchwToNhwc(c.real, c.shape, true), nchwToNhwc(c.fake, c.shape, true), role === 'generator');
        expect(Math.abs(ref.loss - c[role].loss) / c[role].loss).toBeLessThan(1e-12);
        expect(relL2(ref.gradReal, nchwToNhwc(c[role].gradReal, c.shape))).toBeLessThan(1e-12);
        expect(relL2(ref.gradFake, nchwToNhwc(c[role].gradFake, c.shape))).toBeLessThan(1e-12);
      });
    }
  }

  it('BCE and the relativistic generator loss match central differences', () => {
    const z = randomArray(12, 1, 3);
    const t = Float64Array.from(randomArray(12, 2), (v) => (v + 1) / 2);
    expect(
      relL2(
        bce64(z, t, 0.5).grad,
        centralDifferences(z, (x) => bce64(x, t, 0.5).loss),
      ),
    ).toBeLessThan(1e-6);
    const r = randomArray(10, 3, 2);
    const f = randomArray(10, 4, 2);
    const ref = relativistic64(r, f, true, 1.5);
    expect(
      relL2(
        ref.gradReal,
        centralDifferences(r, (x) => relativistic64(x, f, true, 1.5).loss),
      ),
    ).toBeLessThan(1e-6);
    expect(
      relL2(
        ref.gradFake,
        centralDifferences(f, (x) => relativistic64(r, x, true, 1.5).loss),
      ),
    ).toBeLessThan(1e-6);
  });
});

describe('bceWithLogitsLoss on the GPU', () => {
  for (const c of fixture.bce) {
    it(`matches PyTorch: ${c.name}`, async () => {
      const logits = fromFixture(c.logits, c.shape);
      const target = typeof c.target === 'number' ? c.target : fromFixture(c.target, c.shape);
      const inputs = typeof target === 'number' ? [logits] : [logits, target];
      const [[loss, grad]] = await run(inputs, (g, [z, t]) => {
        const r = bceWithLogitsLoss(g, z, typeof target === 'number' ? target : t, { label: 'bce' });
        return [r.loss, r.grad];
      });
      expectLoss(loss, c.loss);
      expectGrad(grad, nchwToNhwc(c.grad, c.shape), c.shape[1]);
    });
  }

  const shapes: Shape4[] = [
    [1, 5, 7, 3],
    [2, 9, 6, 13],
    // More vec4 items than one chunk: the two-pass reduction.
    [2, 30, 30, 1],
  ];
  shapes.forEach((shape, k) => {
    it(`matches the float64 reference with a target tensor and a weight ${shape.join('x')}`, async () => {
      const z = pack(randomArray(count(shape), 10 + k, 6), shape);
      const t = pack(
        Float64Array.from(randomArray(count(shape), 20 + k), (v) => (v + 1) / 2),
        shape,
      );
      const [[loss, grad]] = await run([z, t], (g, [tz, tt]) => {
        const r = bceWithLogitsLoss(g, tz, tt, { label: 'bce', weight: 0.25 });
        return [r.loss, r.grad];
      });
      const ref = bce64(z.values, t.values, 0.25);
      expectLoss(loss, ref.loss);
      expectGrad(grad, ref.grad, shape[3]);
    });
  });

  it('keeps the tail of confident logits (log1p, not log(1 + e^{−|z|}))', async () => {
    // Every logit right: each term is log1p(e^{−|z|}) alone, 2e-9 at |z| = 20, which log(1 + u) in f32 rounds to 0.
    const shape: Shape4 = [1, 2, 3, 1];
    const z = pack([20, 18, 25, -20, -17, -22], shape);
    const t = pack([1, 1, 1, 0, 0, 0], shape);
    const [[loss, grad]] = await run([z, t], (g, [tz, tt]) => {
      const r = bceWithLogitsLoss(g, tz, tt, { label: 'bce' });
      return [r.loss, r.grad];
    });
    const ref = bce64(z.values, t.values);
    expectLoss(loss, ref.loss);
    expectGrad(grad, ref.grad, 1);
  });

  it('is finite and exact at z = ±100 and 0', async () => {
    const shape: Shape4 = [1, 1, 6, 1];
    const z = pack([100, -100, 0, 100, -100, 0], shape);
    const t = pack([0, 1, 0.5, 1, 0, 0], shape);
    const [[loss, grad]] = await run([z, t], (g, [tz, tt]) => {
      const r = bceWithLogitsLoss(g, tz, tt, { label: 'bce' });
      return [r.loss, r.grad];
    });
    const ref = bce64(z.values, t.values);
    expectLoss(loss, ref.loss);
    expectGrad(grad, ref.grad, 1, 1e-6);
  });

  it('is deterministic: two runs give the same bits', async () => {
    const shape: Shape4 = [2, 30, 30, 1];
    const z = pack(randomArray(count(shape), 5, 4), shape);
    const [a, b] = await run(
      [z],
      (g, [tz]) => {
        const r = bceWithLogitsLoss(g, tz, 0.9, { label: 'bce' });
        return [r.loss, r.grad];
      },
      2,
    );
    expect(b[0]).toEqual(a[0]);
    expect(b[1]).toEqual(a[1]);
  });

  it('names bad inputs', () => {
    const g = new Graph();
    const z = g.input([1, 4, 4, 1], 'logits');
    expect(() => bceWithLogitsLoss(g, z, g.input([1, 4, 5, 1], 'labels'), { label: 'bce' })).toThrow(
      /bce: target 'labels' \[1, 4, 5, 1\] does not match pred/,
    );
    expect(() => bceWithLogitsLoss(g, z, Number.NaN, { label: 'bce' })).toThrow(InvalidInputError);
    expect(() => bceWithLogitsLoss(g, z, 1, { label: 'bce', weight: Infinity })).toThrow(/bce: weight must be a finite number/);
  });
});

describe('the GAN losses on the GPU', () => {
  it("vanilla: PyTorch's discriminator halves and generator loss", async () => {
    const v = fixture.vanilla;
    const real = fromFixture(v.real, v.shape);
    const fake = fromFixture(v.fake, v.shape);
    const [[lossReal, gradReal, lossFake, gradFake, lossG, gradG]] = await run([real, fake], (g, [r, f]) => {
      const d = vanillaGanLosses(g, { real: r, fake: f }, { label: 'd', forGenerator: false });
      const gen = vanillaGanLosses(g, { fake: f }, { label: 'g', forGenerator: true });
      expect(gen.real).toBeUndefined();
      return [d.real!.loss, d.real!.grad, d.fake.loss, d.fake.grad, gen.fake.loss, gen.fake.grad];
    });
    expectLoss(lossReal, v.discriminator.lossReal);
    expectLoss(lossFake, v.discriminator.lossFake);
    expectLoss(lossG, v.generator.loss);
    expectGrad(gradReal, nchwToNhwc(v.discriminator.gradReal, v.shape), v.shape[1]);
    expectGrad(gradFake, nchwToNhwc(v.discriminator.gradFake, v.shape), v.shape[1]);
    expectGrad(gradG, nchwToNhwc(v.generator.gradFake, v.shape), v.shape[1]);
  });

  for (const c of fixture.relativistic) {
    for (const role of ['generator', 'discriminator'] as const) {
      it(`relativistic ${role} matches BasicSR's: ${c.name}`, async () => {
        const [[loss, gradReal, gradFake]] = await run([fromFixture(c.real, c.shape), fromFixture(c.fake, c.shape)], (g, [r, f]) => {
          const out = relativisticGanLoss(g, r, f, { label: 'ragan', forGenerator: role === 'generator' });
          return [out.loss, out.gradReal, out.gradFake];
        });
        expectLoss(loss, c[role].loss);
        expectGrad(gradReal, nchwToNhwc(c[role].gradReal, c.shape), c.shape[1]);
        expectGrad(gradFake, nchwToNhwc(c[role].gradFake, c.shape), c.shape[1]);
      });
    }
  }

  it('relativistic: float64 reference, weight, two-pass reductions, bitwise repeatable', async () => {
    const shape: Shape4 = [2, 30, 30, 1];
    const real = pack(randomArray(count(shape), 31, 3), shape);
    const fake = pack(randomArray(count(shape), 32, 3), shape);
    for (const forGenerator of [true, false]) {
      const [a, b] = await run(
        [real, fake],
        (g, [r, f]) => {
          const out = relativisticGanLoss(g, r, f, { label: 'ragan', forGenerator, weight: 5e-3 });
          return [out.loss, out.gradReal, out.gradFake];
        },
        2,
      );
      const ref = relativistic64(real.values, fake.values, forGenerator, 5e-3);
      expectLoss(a[0], ref.loss);
      expectGrad(a[1], ref.gradReal, 1);
      expectGrad(a[2], ref.gradFake, 1);
      b.forEach((out, k) => expect(out, `output ${k}`).toEqual(a[k]));
    }
  });

  it('names bad inputs', () => {
    const g = new Graph();
    const r = g.input([2, 4, 4, 1], 'real logits');
    const f = g.input([1, 4, 4, 1], 'fake logits');
    expect(() => relativisticGanLoss(g, r, f, { label: 'ragan', forGenerator: true })).toThrow(
      /ragan: the fake logits 'fake logits' \[1, 4, 4, 1\] do not match the real logits \[2, 4, 4, 1\]/,
    );
    expect(() => vanillaGanLosses(g, { fake: f }, { label: 'gan', forGenerator: false })).toThrow(/gan: the discriminator's step needs/);
  });
});
