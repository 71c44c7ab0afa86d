import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { CosineAnnealingLR, type LrSchedule, MultiStepLR, ReduceLROnPlateau, StepLR } from '../../src/training/schedules';
import { readFixtureJson } from '../helpers/fixture-loader';

/** One case of test/fixtures/training/schedules.json (tools/torch/make_optimizer_fixtures.py). */
interface ScheduleCase {
  name: string;
  kind: 'StepLR' | 'MultiStepLR' | 'CosineAnnealingLR' | 'ReduceLROnPlateau';
  baseLrs: number[];
  options: Record<string, unknown>;
  initial: number[];
  /** lrs[k]: the groups' lrs after step k + 1. */
  lrs: number[][];
  metrics?: number[];
}

const fixtures = readFixtureJson<{ torch: string; cases: ScheduleCase[] }>('test/fixtures/training/schedules.json');

function build(c: ScheduleCase): LrSchedule {
  const o = c.options as never;
  switch (c.kind) {
    case 'StepLR':
      return new StepLR(c.baseLrs, o);
    case 'MultiStepLR':
      return new MultiStepLR(c.baseLrs, o);
    case 'CosineAnnealingLR':
      return new CosineAnnealingLR(c.baseLrs, o);
    case 'ReduceLROnPlateau':
      return new ReduceLROnPlateau(c.baseLrs, o);
  }
}

function relErr(a: number, b: number): number {
  return a === b ? 0 : Math.abs(a - b) / Math.max(Math.abs(b), Number.MIN_VALUE);
}

function expectLrs(actual: number[], expected: number[], what: string): void {
  expect(actual.length, what).toBe(expected.length);
  actual.forEach((v, i) => {
    // 0 is reached exactly (cosine at T_max with η_min 0 is ~1e-17 in both: compare absolutely there).
    const err = Math.abs(expected[i]) < 1e-15 ? Math.abs(v - expected[i]) : relErr(v, expected[i]);
    if (!(err <= 1e-12)) throw new Error(`${what}, group ${i}: ${v} vs PyTorch ${expected[i]} (rel ${err})`);
  });
}

describe('learning-rate schedules against PyTorch 1.13 sequences', () => {
  it('fixture covers every schedule kind and was made by torch 1.13', async () => {
    const f = await fixtures;
    expect(f.torch).toMatch(/^1\.13/);
    expect(new Set(f.cases.map((c) => c.kind))).toEqual(new Set(['StepLR', 'MultiStepLR', 'CosineAnnealingLR', 'ReduceLROnPlateau']));
  });

  it('matches every sequence to 1e-12 relative', async () => {
    const f = await fixtures;
    for (const c of f.cases) {
      const s = build(c);
      expectLrs(s.lrs, c.initial, `${c.name} before the first step`);
      c.lrs.forEach((expected, k) => {
        s.step(c.metrics?.[k]);
        expectLrs(s.lrs, expected, `${c.name} step ${k + 1}`);
      });
    }
  });

  it('state()/load() mid-sequence: JSON round trip continues identically', async () => {
    const f = await fixtures;
    for (const c of f.cases) {
      for (const stop of [1, 4, 13]) {
        const s = build(c);
        for (let k = 0; k < stop; k++) s.step(c.metrics?.[k]);
        const saved: object = JSON.parse(JSON.stringify(s.state())) as object;
        // A fresh schedule with other settings: load restores the saved hyper-parameters too, as PyTorch does.
        const resumed = c.kind === 'ReduceLROnPlateau' ? new ReduceLROnPlateau(c.baseLrs.map(() => 1)) : build(c);
        resumed.load(saved);
        expect(resumed.lrs, `${c.name} after load at ${stop}`).toEqual(s.lrs);
        for (let k = stop; k < c.lrs.length; k++) {
          s.step(c.metrics?.[k]);
          resumed.step(c.metrics?.[k]);
          expect(resumed.lrs, `${c.name} step ${k + 1} after load at ${stop}`).toEqual(s.lrs);
          expectLrs(resumed.lrs, c.lrs[k], `${c.name} step ${k + 1} after load at ${stop}`);
        }
      }
    }
  });

  it('state of ReduceLROnPlateau before any step writes best as null (JSON has no Infinity)', () => {
    const s = new ReduceLROnPlateau([0.1], { mode: 'max' });
    const state = s.state() as { best: unknown };
    expect(state.best).toBeNull();
    const t = new ReduceLROnPlateau([0.5]);
    t.load(JSON.parse(JSON.stringify(state)) as object);
    t.step(-1e30);
    expect((t.state() as { best: unknown }).best).toBe(-1e30);
  });

  it('cosine equals the closed form to float64 rounding, periodic past T_max', () => {
    const s = new CosineAnnealingLR([0.3, 2], { tMax: 6, etaMin: 0.01 });
    for (let e = 1; e <= 40; e++) {
      s.step();
      [0.3, 2].forEach((base, i) => {
        const closed = 0.01 + ((base - 0.01) * (1 + Math.cos((Math.PI * e) / 6))) / 2;
        expect(Math.abs(s.lrs[i] - closed)).toBeLessThan(1e-14);
      });
    }
  });

  it('step() ignores a metric for epoch schedules; ReduceLROnPlateau needs a finite one', () => {
    const s = new StepLR([1], { stepSize: 1, gamma: 0.5 });
    s.step(123);
    expect(s.lrs).toEqual([0.5]);
    const p = new ReduceLROnPlateau([1]);
    for (const bad of [Number.NaN, Infinity, undefined]) {
      expect(() => p.step(bad)).toThrow(InvalidInputError);
      expect(() => p.step(bad)).toThrow(/ReduceLROnPlateau\.step: metric must be a finite number/);
    }
    expect(p.epoch).toBe(0);
  });

  it('refuses bad options, naming them', () => {
    const cases: [() => unknown, RegExp][] = [
      [() => new StepLR([0.1], { stepSize: 0 }), /StepLR: stepSize must be an integer >= 1/],
      [() => new StepLR([0.1], { stepSize: 2, gamma: Number.NaN }), /StepLR: gamma must be a finite number >= 0/],
      [() => new StepLR([], { stepSize: 2 }), /StepLR: baseLrs must be a non-empty array/],
      [() => new StepLR([-1], { stepSize: 2 }), /StepLR: baseLrs must be/],
      [() => new MultiStepLR([0.1], { milestones: [3, 1.5] }), /MultiStepLR: milestones must be an array of integers >= 1/],
      [() => new CosineAnnealingLR([0.1], { tMax: 0 }), /CosineAnnealingLR: tMax must be an integer >= 1/],
      [() => new CosineAnnealingLR([0.1], { tMax: 3, etaMin: Infinity }), /CosineAnnealingLR: etaMin must be a finite number/],
      [() => new ReduceLROnPlateau([0.1], { factor: 1 }), /ReduceLROnPlateau: factor must be a number in \[0, 1\)/],
      [() => new ReduceLROnPlateau([0.1], { mode: 'maximum' as never }), /ReduceLROnPlateau: mode must be 'min' or 'max'/],
      [() => new ReduceLROnPlateau([0.1], { thresholdMode: 'x' as never }), /ReduceLROnPlateau: thresholdMode must be 'rel' or 'abs'/],
      [() => new ReduceLROnPlateau([0.1], { patience: -1 }), /ReduceLROnPlateau: patience must be an integer >= 0/],
      [() => new ReduceLROnPlateau([0.1], { cooldown: 0.5 }), /ReduceLROnPlateau: cooldown must be an integer >= 0/],
      [() => new ReduceLROnPlateau([0.1], { eps: -1 }), /ReduceLROnPlateau: eps must be a finite number >= 0/],
      [() => new ReduceLROnPlateau([0.1, 0.2], { minLr: [0.1] }), /ReduceLROnPlateau: minLr has 1 values, expected one per group \(2\)/],
    ];
    for (const [make, message] of cases) {
      expect(make).toThrow(InvalidInputError);
      expect(make).toThrow(message);
    }
  });

  it('load refuses a state of another kind, group count or with bad fields', () => {
    const step = new StepLR([0.1, 0.2], { stepSize: 2 });
    const cosine = new CosineAnnealingLR([0.1, 0.2], { tMax: 4 });
    expect(() => cosine.load(step.state())).toThrow(/CosineAnnealingLR\.load: state is of a StepLR schedule, not CosineAnnealingLR/);
    expect(() => new StepLR([0.1], { stepSize: 2 }).load(step.state())).toThrow(
      /StepLR\.load: state has 2 parameter groups, this schedule 1/,
    );
    expect(() => step.load({ ...step.state(), lastEpoch: -1 })).toThrow(/StepLR\.load: state\.lastEpoch must be an integer >= 0/);
    expect(() => step.load({ ...step.state(), stepSize: 0 })).toThrow(/StepLR\.load: stepSize must be an integer >= 1/);
    const plateau = new ReduceLROnPlateau([0.1]);
    expect(() => plateau.load({ ...plateau.state(), best: 'x' })).toThrow(/ReduceLROnPlateau\.load: state\.best must be a finite number/);
    expect(() => plateau.load(null as never)).toThrow(InvalidInputError);
  });
});
