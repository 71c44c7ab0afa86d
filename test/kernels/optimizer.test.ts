import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import type { GPUContext } from '../../src/gpu/context';
import { writeBuffer } from '../../src/gpu/context';
import { BufferUsage } from '../../src/gpu/flags';
import { type Binding, Graph } from '../../src/gpu/graph';
import { ParameterArena } from '../../src/gpu/parameter-arena';
import { Plan } from '../../src/gpu/plan';
import { binary } from '../../src/kernels/elementwise';
import {
  type AdamOptions,
  adamScalars,
  adamUpdate,
  checkAdamOptions,
  checkSgdOptions,
  OPTIMIZER_SCALARS_BYTES,
  resolveAdamOptions,
  resolveSgdOptions,
  type SgdOptions,
  sgdScalars,
  sgdUpdate,
} from '../../src/kernels/optimizer';
import { readFixtureJson } from '../helpers/fixture-loader';
import { getTestContext, readWhole } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';

type Kind = 'sgd' | 'adam' | 'adamw';

/** test/fixtures/training/optimizers.json (tools/torch/make_optimizer_fixtures.py). */
interface OptimizerFixture {
  torch: string;
  tensors: { name: string; shape: number[] }[];
  initial: number[][];
  /** grads[step][tensor] */
  grads: number[][][];
  cases: { name: string; optimizer: Kind; options: SgdOptions & AdamOptions; lrs: number[]; params: number[][][] }[];
}

const fixture = readFixtureJson<OptimizerFixture>('test/fixtures/training/optimizers.json');

const CASES = [
  'sgd_plain',
  'sgd_momentum',
  'sgd_dampening',
  'sgd_nesterov_wd',
  'sgd_dampening_wd',
  'sgd_wd_no_momentum',
  'adam',
  'adam_wd',
  'adam_betas_eps',
  'adamw',
  'adamw_wd',
];

const STATE_ROLES: Record<Kind, string[]> = { sgd: ['momentum_buffer'], adam: ['exp_avg', 'exp_avg_sq'], adamw: ['exp_avg', 'exp_avg_sq'] };

/** The optimizer's state in float64 (torch names). */
interface RefState {
  momentumBuffer?: Float64Array;
  expAvg: Float64Array;
  expAvgSq: Float64Array;
}

function newRefState(n: number): RefState {
  return { expAvg: new Float64Array(n), expAvgSq: new Float64Array(n) };
}

/**
 * One step of PyTorch 1.13's `_single_tensor_sgd` / `_single_tensor_adam` / `_single_tensor_adamw`, restated in
 * float64 from torch/optim/*.py (step is 1-based).
 */
function referenceStep(
  kind: Kind,
  options: SgdOptions & AdamOptions,
  lr: number,
  step: number,
  theta: Float64Array,
  grad: ArrayLike<number>,
  s: RefState,
): void {
  const n = theta.length;
  if (kind === 'sgd') {
    const o = resolveSgdOptions({ ...options, lr });
    for (let i = 0; i < n; i++) {
      let d = grad[i] + o.weightDecay * theta[i];
      if (o.momentum !== 0) {
        s.momentumBuffer ??= new Float64Array(n);
        const buf = step === 1 ? d : o.momentum * s.momentumBuffer[i] + (1 - o.dampening) * d;
        s.momentumBuffer[i] = buf;
        d = o.nesterov ? d + o.momentum * buf : buf;
      }
      theta[i] -= lr * d;
    }
    return;
  }
  const o = resolveAdamOptions(options, kind === 'adamw');
  const [b1, b2] = o.betas;
  const bc1 = 1 - b1 ** step;
  const bc2 = 1 - b2 ** step;
  for (let i = 0; i < n; i++) {
    let g = grad[i];
    if (kind === 'adamw') theta[i] *= 1 - lr * o.weightDecay;
    else g += o.weightDecay * theta[i];
    s.expAvg[i] = b1 * s.expAvg[i] + (1 - b1) * g;
    s.expAvgSq[i] = b2 * s.expAvgSq[i] + (1 - b2) * g * g;
    const denom = Math.sqrt(s.expAvgSq[i]) / Math.sqrt(bc2) + o.eps;
    theta[i] -= (lr / bc1) * (s.expAvg[i] / denom);
  }
}

function scalarsFor(kind: Kind, options: SgdOptions & AdamOptions, lr: number, step: number): Float32Array {
  return kind === 'sgd' ? sgdScalars(options, lr, step) : adamScalars(options, lr, step, kind === 'adamw');
}

function addUpdate(
  g: Graph,
  kind: Kind,
  options: SgdOptions & AdamOptions,
  b: Record<string, Binding>,
  elements: number,
  label: string,
): void {
  if (kind === 'sgd') {
    const momentum = (options.momentum ?? 0) !== 0 ? { momentumBuffer: b.momentum_buffer } : {};
    sgdUpdate(g, { param: b.value, grad: b.grad, scalars: b.scalars, ...momentum }, options, elements, label);
  } else {
    adamUpdate(
      g,
      { param: b.value, grad: b.grad, expAvg: b.exp_avg, expAvgSq: b.exp_avg_sq, scalars: b.scalars },
      options,
      kind === 'adamw',
      elements,
      label,
    );
  }
}

/** Plans need an output: a one-element add that the update nodes do not touch. */
function keepAlive(g: Graph): void {
  const x = g.input([1, 1, 1, 1], 'x');
  g.output(binary(g, 'add', x, x, 'keep-alive'));
}

const NO_INPUT = [new Float32Array(4)];

function scalarsBuffer(ctx: GPUContext): GPUBuffer {
  return ctx.createBuffer({ size: OPTIMIZER_SCALARS_BYTES, usage: BufferUsage.STORAGE | BufferUsage.COPY_DST }, 'optimizer scalars');
}

/** Every element of `all` outside the arena's entries is exactly 0. */
function expectGapsZero(arena: ParameterArena, keys: object[], all: Float32Array, what: string): void {
  const inside = new Uint8Array(all.length);
  for (const k of keys) {
    const { offset, numel } = arena.entry(k);
    inside.fill(1, offset, offset + numel);
  }
  all.forEach((v, i) => {
    if (!inside[i] && v !== 0) throw new Error(`${what}: gap element ${i} holds ${v}`);
  });
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

describe('optimizer updates against PyTorch 1.13 and a float64 reference', () => {
  it('fixture lists the cases tested here and was made by torch 1.13', async () => {
    const f = await fixture;
    expect(f.torch).toMatch(/^1\.13/);
    expect(f.cases.map((c) => c.name)).toEqual(CASES);
  });

  for (const name of CASES) {
    it(`${name}: 5 steps over a whole arena (lr changing every step), gaps stay 0`, async () => {
      const ctx = await getTestContext();
      const f = await fixture;
      const c = f.cases.find((x) => x.name === name)!;
      const keys = f.tensors.map((t) => ({ name: t.name }));
      const arena = new ParameterArena(
        ctx,
        f.tensors.map((t, i) => ({ key: keys[i], numel: numel(t.shape), label: t.name })),
        `arena ${name}`,
      );
      const scalars = scalarsBuffer(ctx);
      try {
        keys.forEach((k, i) => arena.write(k, 'value', f.initial[i]));
        const roles = ['value', 'grad', ...STATE_ROLES[c.optimizer]];
        const bindings: Record<string, Binding> = { scalars };
        for (const r of roles) bindings[r] = arena.whole(r);
        const g = new Graph();
        addUpdate(g, c.optimizer, c.options, bindings, arena.elements, name);
        keepAlive(g);
        const plan = await Plan.compile(ctx, g);
        const ref = f.initial.map((v) => Float64Array.from(v));
        const refState = f.initial.map((v) => newRefState(v.length));
        for (let step = 0; step < c.lrs.length; step++) {
          keys.forEach((k, i) => arena.write(k, 'grad', f.grads[step][i]));
          writeBuffer(ctx.device, scalars, 0, scalarsFor(c.optimizer, c.options, c.lrs[step], step + 1));
          await plan.run(NO_INPUT);
          const values = await arena.read('value');
          keys.forEach((k, i) => {
            referenceStep(c.optimizer, c.options, c.lrs[step], step + 1, ref[i], f.grads[step][i], refState[i]);
            const gpu = values.get(k)!;
            const torch = c.params[step][i];
            const what = `${name} step ${step + 1} tensor ${f.tensors[i].name}`;
            expect(relL2(gpu, torch), `${what} vs torch`).toBeLessThanOrEqual(1e-6);
            expect(relL2(gpu, ref[i]), `${what} vs float64`).toBeLessThanOrEqual(1e-6);
            // The change itself, which the parameter's magnitude would hide: f32 rounding of θ is its only error.
            const moved = (v: ArrayLike<number>) => Array.from(v, (x, j) => x - f.initial[i][j]);
            expect(relL2(moved(gpu), moved(ref[i])), `${what} Δθ vs float64`).toBeLessThanOrEqual(2e-5);
          });
          for (const r of roles) expectGapsZero(arena, keys, await readWhole(ctx, arena.buffer(r)), `${name} step ${step + 1} ${r}`);
        }
        plan.dispose();
      } finally {
        scalars.destroy();
        arena.dispose();
      }
    });
  }

  it('one entry bound alone (a range of the arena) is updated; the others are untouched', async () => {
    const ctx = await getTestContext();
    const keys = [{}, {}, {}];
    const sizes = [70, 15, 33];
    const arena = new ParameterArena(
      ctx,
      keys.map((k, i) => ({ key: k, numel: sizes[i], label: `t${i}` })),
      'range test',
    );
    const scalars = scalarsBuffer(ctx);
    try {
      const initial = sizes.map((n, i) => Float32Array.from(randomArray(n, 100 + i)));
      const grads = sizes.map((n, i) => Float32Array.from(randomArray(n, 200 + i)));
      keys.forEach((k, i) => {
        arena.write(k, 'value', initial[i]);
        arena.write(k, 'grad', grads[i]);
      });
      const options = { lr: 0.05, weightDecay: 0.1 };
      const g = new Graph();
      const b = keys[1];
      adamUpdate(
        g,
        {
          param: arena.range(b, 'value'),
          grad: arena.range(b, 'grad'),
          expAvg: arena.range(b, 'exp_avg'),
          expAvgSq: arena.range(b, 'exp_avg_sq'),
          scalars,
        },
        options,
        true,
        sizes[1],
        'adamw one entry',
      );
      keepAlive(g);
      const plan = await Plan.compile(ctx, g);
      const ref = Float64Array.from(initial[1]);
      const state = newRefState(sizes[1]);
      for (let step = 1; step <= 3; step++) {
        writeBuffer(ctx.device, scalars, 0, adamScalars(options, 0.05, step, true));
        await plan.run(NO_INPUT);
        referenceStep('adamw', options, 0.05, step, ref, grads[1], state);
      }
      plan.dispose();
      const values = await arena.read('value');
      expect(Array.from(values.get(keys[0])!)).toEqual(Array.from(initial[0]));
      expect(Array.from(values.get(keys[2])!)).toEqual(Array.from(initial[2]));
      expect(relL2(values.get(b)!, ref)).toBeLessThanOrEqual(1e-6);
      expectGapsZero(arena, keys, await readWhole(ctx, arena.buffer('value')), 'range test');
    } finally {
      scalars.destroy();
      arena.dispose();
    }
  });

  const LARGE: [Kind, SgdOptions & AdamOptions][] = [
    ['sgd', { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }],
    ['adam', { lr: 1e-2, betas: [0.85, 0.995], weightDecay: 1e-2 }],
    ['adamw', { lr: 1e-2, eps: 1e-6 }],
  ];
  for (const [kind, options] of LARGE) {
    it(`${kind}: 4,099 elements in plain buffers (17 workgroups, a padded tail that stays 0), 3 steps`, async () => {
      const ctx = await getTestContext();
      const n = 4099;
      const padded = Math.ceil(n / 4) * 4;
      const roles = ['value', 'grad', ...STATE_ROLES[kind]];
      const buffers: Record<string, GPUBuffer> = {};
      const theta = new Float32Array(padded);
      theta.set(randomArray(n, 7));
      for (const r of roles) {
        buffers[r] = ctx.createBufferWithData(
          r === 'value' ? theta : new Float32Array(padded),
          BufferUsage.STORAGE | BufferUsage.COPY_SRC,
          r,
        );
      }
      const scalars = scalarsBuffer(ctx);
      try {
        const g = new Graph();
        addUpdate(g, kind, options, { ...buffers, scalars }, n, `${kind} large`);
        keepAlive(g);
        const plan = await Plan.compile(ctx, g);
        const ref = Float64Array.from(theta.subarray(0, n));
        const state = newRefState(n);
        const lrs = [options.lr, options.lr * 0.5, options.lr * 2];
        for (let step = 1; step <= 3; step++) {
          const grad = new Float32Array(padded);
          grad.set(randomArray(n, 30 + step, 2));
          writeBuffer(ctx.device, buffers.grad, 0, grad);
          writeBuffer(ctx.device, scalars, 0, scalarsFor(kind, options, lrs[step - 1], step));
          await plan.run(NO_INPUT);
          referenceStep(kind, options, lrs[step - 1], step, ref, grad, state);
        }
        plan.dispose();
        const out = await readWhole(ctx, buffers.value);
        expect(relL2(out.subarray(0, n), ref)).toBeLessThanOrEqual(1e-6);
        expect(Array.from(out.subarray(n))).toEqual([0]);
        for (const r of roles.slice(2)) expect(Array.from((await readWhole(ctx, buffers[r])).subarray(n))).toEqual([0]);
      } finally {
        scalars.destroy();
        for (const b of Object.values(buffers)) b.destroy();
      }
    });
  }

  it('zero gradient and zero state stay exactly 0 under every optimizer, eps 0 included', async () => {
    const ctx = await getTestContext();
    const configs: [Kind, SgdOptions & AdamOptions][] = [
      ['sgd', { lr: 10 }],
      ['sgd', { lr: 10, momentum: 0.9, dampening: 0.5, weightDecay: 1 }],
      ['sgd', { lr: 10, momentum: 0.99, nesterov: true, weightDecay: 1 }],
      ['adam', { lr: 10, weightDecay: 1 }],
      ['adam', { lr: 10, eps: 0 }],
      ['adamw', { lr: 10, weightDecay: 0.5 }],
      ['adamw', { lr: 10, eps: 0, betas: [0, 0] }],
    ];
    for (const [kind, options] of configs) {
      const roles = ['value', 'grad', ...STATE_ROLES[kind]];
      const buffers: Record<string, GPUBuffer> = {};
      for (const r of roles) buffers[r] = ctx.createBufferWithData(new Float32Array(256), BufferUsage.STORAGE | BufferUsage.COPY_SRC, r);
      const scalars = scalarsBuffer(ctx);
      const g = new Graph();
      addUpdate(g, kind, options, { ...buffers, scalars }, 256, `${kind} zeros`);
      keepAlive(g);
      const plan = await Plan.compile(ctx, g);
      for (let step = 1; step <= 3; step++) {
        writeBuffer(ctx.device, scalars, 0, scalarsFor(kind, options, 10, step));
        await plan.run(NO_INPUT);
      }
      plan.dispose();
      for (const r of roles) {
        const v = await readWhole(ctx, buffers[r]);
        expect(
          v.every((x) => x === 0),
          `${kind} ${JSON.stringify(options)} ${r}`,
        ).toBe(true);
      }
      scalars.destroy();
      for (const b of Object.values(buffers)) b.destroy();
    }
  });
});

describe('per-step scalars', () => {
  it('SGD: −lr, and the flag of the step that creates the momentum buffer', () => {
    expect(Array.from(sgdScalars({ lr: 1, momentum: 0.9 }, 0.1, 1))).toEqual([Math.fround(-0.1), 1, 0, 0]);
    expect(Array.from(sgdScalars({ lr: 1, momentum: 0.9 }, 0.3, 2))).toEqual([Math.fround(-0.3), 0, 0, 0]);
  });

  it('Adam/AdamW: −lr/bc1, √bc2 and 1 − lr·wd formed in float64 as PyTorch, then f32', () => {
    // Step 1 with betas (0.9, 0.999): bc1 = 1 − 0.9 = 0.09999999999999998 in float64, bc2 = 0.0010000000000000009.
    const s = adamScalars({ weightDecay: 0.1 }, 1e-3, 1, true);
    expect(s[0]).toBe(Math.fround(-(1e-3 / 0.09999999999999998)));
    expect(s[1]).toBe(Math.fround(Math.sqrt(0.0010000000000000009)));
    expect(s[2]).toBe(Math.fround(1 - 1e-3 * 0.1));
    expect(adamScalars({ weightDecay: 0.1 }, 1e-3, 1, false)[2]).toBe(1);
    // Late steps: the corrections tend to 1.
    const late = adamScalars({}, 2e-3, 100000, false);
    expect(late[0]).toBe(Math.fround(-2e-3));
    expect(late[1]).toBe(1);
  });

  it('refuses a bad lr or step', () => {
    expect(() => sgdScalars({ lr: 0.1 }, -1, 1)).toThrow(/sgdScalars: lr must be a finite number >= 0/);
    expect(() => sgdScalars({ lr: 0.1 }, 0.1, 0)).toThrow(/sgdScalars: step must be an integer >= 1/);
    expect(() => adamScalars({}, Number.NaN, 1, false)).toThrow(/adamScalars: lr must be/);
    expect(() => adamScalars({}, 0.1, 1.5, true)).toThrow(/adamScalars: step must be/);
  });
});

describe('option checks (as torch.optim validates, naming the option)', () => {
  const cases: [() => unknown, RegExp][] = [
    [() => checkSgdOptions({ lr: -0.1 }), /SGD: lr must be a finite number >= 0/],
    [() => checkSgdOptions({} as SgdOptions), /SGD: lr must be a finite number >= 0, got undefined/],
    [() => checkSgdOptions({ lr: 0.1, momentum: -0.5 }), /SGD: momentum must be/],
    [() => checkSgdOptions({ lr: 0.1, weightDecay: -1 }), /SGD: weightDecay must be/],
    [() => checkSgdOptions({ lr: 0.1, nesterov: true }), /SGD: nesterov needs momentum > 0 and dampening 0/],
    [() => checkSgdOptions({ lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }), /SGD: nesterov needs momentum > 0 and dampening 0/],
    [() => checkSgdOptions({ lr: 0.1, maximize: true as never }), /SGD: maximize must be false/],
    [() => checkAdamOptions({ lr: -1 }, false), /Adam: lr must be a finite number >= 0/],
    [() => checkAdamOptions({ eps: -1e-8 }, true), /AdamW: eps must be a finite number >= 0/],
    [() => checkAdamOptions({ betas: [1, 0.999] }, false), /Adam: betas\[0\] must be a number in \[0, 1\)/],
    [() => checkAdamOptions({ betas: [0.9, -0.1] }, true), /AdamW: betas\[1\] must be a number in \[0, 1\)/],
    [() => checkAdamOptions({ betas: [0.9] as never }, true), /AdamW: betas must be an array of two numbers/],
    [() => checkAdamOptions({ weightDecay: -0.01 }, true), /AdamW: weightDecay must be/],
    [() => checkAdamOptions({ amsgrad: true as never }, false), /Adam: amsgrad must be false/],
  ];
  for (const [call, message] of cases) {
    it(`refuses: ${message.source}`, () => {
      expect(call).toThrow(InvalidInputError);
      expect(call).toThrow(message);
    });
  }

  it('fills in PyTorch defaults (AdamW weight decay 1e-2, Adam 0)', () => {
    expect(resolveAdamOptions({}, true)).toEqual({ lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2 });
    expect(resolveAdamOptions({}, false).weightDecay).toBe(0);
    expect(resolveSgdOptions({ lr: 0.5 })).toEqual({ lr: 0.5, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false });
  });

  it('the update nodes refuse missing or short bindings, naming them', async () => {
    const ctx = await getTestContext();
    const big = ctx.createBuffer({ size: 256, usage: BufferUsage.STORAGE }, 'big');
    const small = ctx.createBuffer({ size: 32, usage: BufferUsage.STORAGE }, 'small');
    const scalars = scalarsBuffer(ctx);
    const g = new Graph();
    const sgd = (b: Partial<Record<'param' | 'grad' | 'momentumBuffer' | 'scalars', Binding>>, o: SgdOptions, n = 64) =>
      sgdUpdate(g, { param: big, grad: big, scalars, ...b }, o, n, 'upd');
    expect(() => sgd({}, { lr: 0.1, momentum: 0.9 })).toThrow(/upd: momentum 0.9 needs a momentumBuffer/);
    expect(() => sgd({ momentumBuffer: big }, { lr: 0.1 })).toThrow(/upd: a momentumBuffer was given but momentum is 0/);
    expect(() => sgd({ grad: small }, { lr: 0.1 })).toThrow(/upd: grad spans 32 bytes, 64 elements need 256/);
    expect(() => sgd({ scalars: ctx.createBuffer({ size: 4, usage: BufferUsage.STORAGE }, 'tiny') }, { lr: 0.1 })).toThrow(
      /upd: scalars spans 4 bytes, needs 16/,
    );
    expect(() => sgd({}, { lr: 0.1 }, 0)).toThrow(/upd: elements must be an integer >= 1/);
    expect(() => adamUpdate(g, { param: big, grad: big, expAvg: big, expAvgSq: small, scalars }, {}, false, 64, 'adam upd')).toThrow(
      /adam upd: expAvgSq spans 32 bytes/,
    );
    expect(g.nodes.length).toBe(0);
    for (const b of [big, small, scalars]) b.destroy();
  });
});
