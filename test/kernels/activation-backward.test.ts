import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import type { GPUContext } from '../../src/gpu/context';
import { BufferUsage } from '../../src/gpu/flags';
import { type Binding, Graph } from '../../src/gpu/graph';
import { ParameterArena } from '../../src/gpu/parameter-arena';
import { Plan } from '../../src/gpu/plan';
import { readMapped } from '../../src/gpu/recorder';
import { paddedChannels, type Shape4 } from '../../src/gpu/tensor';
import { type Activation, applyActivation64, erf64 } from '../../src/kernels/activation';
import { activationBackward, activationSaves, preluBackward } from '../../src/kernels/activation-backward';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';

/** Real elements (NHWC order, f32-rounded) of a tensor and its padded upload. */
interface Data {
  values: Float64Array;
  padded: Float32Array;
}

function pack(values: Float64Array, shape: Shape4): Data {
  const c = shape[3];
  const cp = paddedChannels(c);
  const padded = new Float32Array((values.length / c) * cp);
  values.forEach((v, k) => (padded[Math.floor(k / c) * cp + (k % c)] = v));
  return { values: Float64Array.from(padded.filter((_, k) => k % cp < c)), padded };
}

function realOf(out: Float32Array, c: number): Float64Array {
  const cp = paddedChannels(c);
  out.forEach((v, k) => {
    if (k % cp >= c && v !== 0) throw new Error(`padded channel ${k % cp} holds ${v}`);
  });
  return Float64Array.from(out.filter((_, k) => k % cp < c));
}

function count(shape: Shape4): number {
  return shape[0] * shape[1] * shape[2] * shape[3];
}

/** d act / dx at x, float64, from the definitions (PyTorch's kinks: relu'(0) = 0, leaky'(0) = α). */
function derivative64(a: Activation, x: number): number {
  switch (a.kind) {
    case 'none':
      return 1;
    case 'relu':
      return x > 0 ? 1 : 0;
    case 'leakyRelu':
      return x > 0 ? 1 : a.alpha;
    case 'sigmoid': {
      const s = 1 / (1 + Math.exp(-x));
      return s * (1 - s);
    }
    case 'tanh':
      return 1 - Math.tanh(x) ** 2;
    case 'gelu':
      return 0.5 * (1 + erf64(x / Math.SQRT2)) + (x * Math.exp((-x * x) / 2)) / Math.sqrt(2 * Math.PI);
  }
}

const ACTIVATIONS: Activation[] = [
  { kind: 'relu' },
  { kind: 'leakyRelu', alpha: 0.2 },
  { kind: 'leakyRelu', alpha: 0.01 },
  { kind: 'sigmoid' },
  { kind: 'tanh' },
  { kind: 'gelu' },
];

const SHAPES: Shape4[] = [
  [1, 5, 7, 3],
  [2, 9, 6, 13],
  [1, 1, 1, 1],
];

async function runGraph(ctx: GPUContext, g: Graph, inputs: Float32Array[]): Promise<Float32Array[]> {
  const plan = await Plan.compile(ctx, g);
  try {
    plan.poison();
    return (await plan.run(inputs)).outputs;
  } finally {
    plan.dispose();
  }
}

describe('the float64 derivatives the references use', () => {
  it('match central differences of the forward activations away from the kinks', () => {
    const xs = randomArray(200, 5, 4).filter((v) => Math.abs(v) > 1e-3);
    for (const a of ACTIVATIONS) {
      const analytic = xs.map((x) => derivative64(a, x));
      const numeric = xs.map((x) => {
        const h = 1e-6 * Math.max(1, Math.abs(x));
        return (applyActivation64(a, x + h) - applyActivation64(a, x - h)) / (2 * h);
      });
      expect(relL2(analytic, numeric), a.kind).toBeLessThanOrEqual(1e-6);
    }
  });
});

describe('activationBackward against float64', () => {
  it('says what each activation keeps', () => {
    expect(activationSaves({ kind: 'none' })).toBe('nothing');
    expect(activationSaves({ kind: 'gelu' })).toBe('input');
    for (const kind of ['relu', 'sigmoid', 'tanh'] as const) expect(activationSaves({ kind })).toBe('output');
    expect(activationSaves({ kind: 'leakyRelu', alpha: 0.2 })).toBe('output');
  });

  for (const a of ACTIVATIONS) {
    for (const shape of SHAPES) {
      it(`${a.kind}${a.kind === 'leakyRelu' ? ` ${a.alpha}` : ''} ${shape.join('x')}`, async () => {
        const ctx = await getTestContext();
        const c = shape[3];
        const x = pack(randomArray(count(shape), 40 + c, 3), shape);
        const gy = pack(randomArray(count(shape), 50 + c), shape);
        const saves = activationSaves(a);
        const saved =
          saves === 'input'
            ? x
            : pack(
                x.values.map((v) => applyActivation64(a, v)),
                shape,
              );
        const g = new Graph();
        const tgy = g.input(shape, 'gy');
        const tsaved = g.input(shape, 'saved');
        g.output(activationBackward(g, a, tgy, tsaved, 'backward'));
        const [dx] = await runGraph(ctx, g, [gy.padded, saved.padded]);
        // The exact derivative at x: the saved y is rounded to f32, which the tolerance covers (tanh near ±1 worst).
        const ref = gy.values.map((v, k) => v * derivative64(a, x.values[k]));
        expect(relL2(realOf(dx, c), ref)).toBeLessThanOrEqual(1e-6);
      });
    }
  }

  it('takes PyTorch values at exactly 0: relu 0, leaky α', async () => {
    const ctx = await getTestContext();
    const shape: Shape4 = [1, 1, 2, 3];
    const x = pack(Float64Array.from([0, 1.5, -2, 0, 0, 3]), shape);
    const gy = pack(Float64Array.from([0.5, -1, 2, 4, -3, 1]), shape);
    for (const a of [{ kind: 'relu' }, { kind: 'leakyRelu', alpha: 0.2 }] as Activation[]) {
      const y = pack(
        x.values.map((v) => applyActivation64(a, v)),
        shape,
      );
      const g = new Graph();
      g.output(activationBackward(g, a, g.input(shape, 'gy'), g.input(shape, 'y'), 'kink'));
      const [dx] = await runGraph(ctx, g, [gy.padded, y.padded]);
      const slope = a.kind === 'leakyRelu' ? a.alpha : 0;
      // + 0 turns −0 into 0: the sign of a zero gradient does not matter.
      const expected = gy.values.map((v, k) => Math.fround(x.values[k] > 0 ? v : v * slope) + 0);
      expect(Array.from(realOf(dx, 3), (v) => v + 0)).toEqual(Array.from(expected));
    }
  });

  it("passes the gradient through 'none' without a dispatch", () => {
    const g = new Graph();
    const gy = g.input([1, 2, 2, 3], 'gy');
    expect(activationBackward(g, { kind: 'none' }, gy, gy, 'identity')).toBe(gy);
    expect(g.nodes.length).toBe(0);
  });

  it('names bad inputs', () => {
    const g = new Graph();
    const gy = g.input([1, 2, 2, 3], 'gy');
    const y = g.input([1, 2, 3, 3], 'y');
    expect(() => activationBackward(g, { kind: 'tanh' }, gy, y, 'tanh backward')).toThrow(
      /tanh backward: saved output 'y' \[1, 2, 3, 3\] does not match/,
    );
    expect(() => activationBackward(g, { kind: 'leakyRelu', alpha: -0.1 }, gy, gy, 'leaky')).toThrow(InvalidInputError);
  });
});

async function readBinding(ctx: GPUContext, b: GPUBuffer, offset: number, bytes: number): Promise<Float32Array> {
  const staging = ctx.createBuffer({ size: bytes, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST }, 'readback');
  const encoder = ctx.device.createCommandEncoder();
  encoder.copyBufferToBuffer(b, offset, staging, 0, bytes);
  ctx.device.queue.submit([encoder.finish()]);
  const out = new Float32Array(await readMapped(ctx, staging, bytes));
  staging.destroy();
  return out;
}

/** Float64 PReLU backward: dx = g (x > 0) or a·g; da = Σ_{x ≤ 0} g·x per channel (or over all for a shared slope). */
function preluBackward64(gy: Float64Array, x: Float64Array, slopes: Float64Array, c: number, shared: boolean) {
  const slope = (k: number) => (shared ? slopes[0] : slopes[k % c]);
  const dx = gy.map((g, k) => (x[k] > 0 ? g : slope(k) * g));
  const da = new Float64Array(shared ? 1 : c);
  gy.forEach((g, k) => {
    if (x[k] <= 0) da[shared ? 0 : k % c] += g * x[k];
  });
  return { dx, da };
}

describe('preluBackward against float64', () => {
  it('its float64 reference matches central differences of Σ g·prelu(x; a)', () => {
    const c = 3;
    const x = randomArray(30, 9, 2).map((v) => (Math.abs(v) < 1e-3 ? 0.5 : v));
    const gy = randomArray(30, 10);
    const slopes = Float64Array.from([0.25, -0.1, 0.7]);
    const objective = (xs: Float64Array, a: Float64Array) => xs.reduce((s, v, k) => s + gy[k] * (v > 0 ? v : v * a[k % c]), 0);
    const { dx, da } = preluBackward64(gy, x, slopes, c, false);
    const h = 1e-6;
    const fdX = x.map((_, k) => {
      const plus = x.slice();
      const minus = x.slice();
      plus[k] += h;
      minus[k] -= h;
      return (objective(plus, slopes) - objective(minus, slopes)) / (2 * h);
    });
    const fdA = slopes.map((_, k) => {
      const plus = slopes.slice();
      const minus = slopes.slice();
      plus[k] += h;
      minus[k] -= h;
      return (objective(x, plus) - objective(x, minus)) / (2 * h);
    });
    expect(relL2(dx, fdX)).toBeLessThanOrEqual(1e-6);
    expect(relL2(da, fdA)).toBeLessThanOrEqual(1e-6);
  });

  const CASES: [Shape4, boolean][] = [
    [[1, 5, 7, 3], false],
    [[1, 5, 7, 3], true],
    [[2, 9, 6, 13], false],
    [[2, 9, 6, 13], true],
    [[1, 1, 1, 1], false],
    [[1, 1, 1, 1], true],
    // Enough pixels for the two-pass da reduction, per channel and shared.
    [[2, 40, 40, 5], false],
    [[2, 40, 40, 5], true],
  ];
  for (const [shape, shared] of CASES) {
    it(`${shape.join('x')} ${shared ? 'shared slope' : 'per-channel slopes'}`, async () => {
      const ctx = await getTestContext();
      const c = shape[3];
      const x = pack(randomArray(count(shape), 70 + c, 2), shape);
      // Exact zeros: prelu'(0) = a.
      x.padded[0] = 0;
      x.values[0] = 0;
      const gy = pack(randomArray(count(shape), 80 + c), shape);
      const slopes = Float64Array.from(randomArray(shared ? 1 : c, 90 + c, 0.5), (v) => Math.fround(v + 0.25));
      const slopeVec = Math.ceil(slopes.length / 4) * 4;
      const slopeBuffer = ctx.createBufferWithData(
        Float32Array.from({ length: slopeVec }, (_, k) => slopes[k] ?? 0),
        BufferUsage.STORAGE,
        'slopes',
      );
      const gradBuffer = ctx.createBufferWithData(
        new Float32Array(slopeVec).fill(Number.NaN),
        BufferUsage.STORAGE | BufferUsage.COPY_SRC,
        'dSlopes',
      );
      const g = new Graph();
      const dxT = preluBackward(g, g.input(shape, 'gy'), g.input(shape, 'x'), slopeBuffer, gradBuffer, 'prelu', {
        sharedSlope: shared,
      });
      g.output(dxT);
      const [dx] = await runGraph(ctx, g, [gy.padded, x.padded]);
      const da = await readBinding(ctx, gradBuffer, 0, slopeVec * 4);
      slopeBuffer.destroy();
      gradBuffer.destroy();
      const ref = preluBackward64(gy.values, x.values, slopes, c, shared);
      expect(relL2(realOf(dx, c), ref.dx)).toBeLessThanOrEqual(1e-6);
      expect(relL2(da.subarray(0, ref.da.length), ref.da)).toBeLessThanOrEqual(1e-5);
      expect(Array.from(da.subarray(ref.da.length))).toEqual(new Array(slopeVec - ref.da.length).fill(0));
    });
  }

  it('binds slopes and their gradient as ranges of parameter arenas', async () => {
    const ctx = await getTestContext();
    const shape: Shape4 = [1, 6, 5, 6];
    const c = shape[3];
    const first = { name: 'other' };
    const prelu = { name: 'prelu.weight' };
    const arena = new ParameterArena(
      ctx,
      [
        { key: first, numel: 10, label: 'other' },
        { key: prelu, numel: c, label: 'prelu.weight' },
      ],
      'params',
    );
    try {
      const slopes = Float64Array.from([0.25, 0.1, -0.2, 0.5, 0.3, 0.05]);
      arena.write(prelu, 'value', slopes);
      const x = pack(randomArray(count(shape), 11, 2), shape);
      const gy = pack(randomArray(count(shape), 12), shape);
      const g = new Graph();
      const slopeRange: Binding = arena.range(prelu, 'value');
      g.output(preluBackward(g, g.input(shape, 'gy'), g.input(shape, 'x'), slopeRange, arena.range(prelu, 'grad'), 'prelu'));
      const [dx] = await runGraph(ctx, g, [gy.padded, x.padded]);
      const grads = await arena.read('grad');
      const ref = preluBackward64(gy.values, x.values, Float64Array.from(slopes, Math.fround), c, false);
      expect(relL2(realOf(dx, c), ref.dx)).toBeLessThanOrEqual(1e-6);
      expect(relL2(grads.get(prelu)!, ref.da)).toBeLessThanOrEqual(1e-5);
      expect(Array.from(grads.get(first)!)).toEqual(new Array(10).fill(0));
    } finally {
      arena.dispose();
    }
  });

  it('names bad inputs', async () => {
    const ctx = await getTestContext();
    const small = ctx.createBuffer({ size: 16, usage: BufferUsage.STORAGE }, 'small');
    const g = new Graph();
    const gy = g.input([1, 2, 2, 6], 'gy');
    expect(() => preluBackward(g, gy, g.input([1, 2, 2, 5], 'x'), small, small, 'prelu')).toThrow(
      /prelu: input 'x' \[1, 2, 2, 5\] does not match/,
    );
    expect(() => preluBackward(g, gy, gy, small, small, 'prelu')).toThrow(/prelu: slopes spans 16 bytes, 6 channel slopes need 32/);
    expect(() => preluBackward(g, gy, gy, small, small, 'prelu', { sharedSlope: true })).not.toThrow();
    small.destroy();
  });
});
