/**
 * Learning-rate schedules with PyTorch 1.13's exact semantics (torch/optim/lr_scheduler.py), in float64 as
 * Python computes them: StepLR, MultiStepLR and CosineAnnealingLR in their recursive (chainable) form, each step
 * deriving the new lr from the current one, and ReduceLROnPlateau.
 *
 * A schedule holds the lr of every parameter group (`lrs`), starting from the groups' initial lrs. As in PyTorch
 * (1.1 and later), `step()` is called after the optimizer's step, once per epoch or once per iteration as the
 * caller decides; the optimizer reads `lrs` before its next step. Constructing a schedule is PyTorch's implicit
 * first step (last_epoch −1 → 0), which leaves the lrs as given.
 *
 * `state()` is plain JSON for a resume sidecar (±∞ written as null); `load(state)` restores it, hyper-parameters
 * included, as PyTorch's `load_state_dict` does, so a loaded schedule continues exactly as the saved one would.
 */
import { invalidArgument, rule, type ArgRule } from '../check-args';
import { InvalidInputError } from '../errors';

export interface LrSchedule {
  /** The current lr of each parameter group. */
  readonly lrs: number[];
  /** Advances one epoch (or iteration). Only ReduceLROnPlateau uses `metric` (and requires it); others ignore it. */
  step(metric?: number): void;
  /** The whole state (hyper-parameters and counters) as plain JSON. */
  state(): object;
  /** Restores a `state()` of the same kind of schedule with the same number of groups. */
  load(state: object): void;
}

const FINITE = rule('a finite number', (v) => typeof v === 'number' && Number.isFinite(v));
const NON_NEGATIVE = rule('a finite number >= 0', (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0);
const NON_NEGATIVE_INTEGER = rule('an integer >= 0', (v) => Number.isInteger(v) && (v as number) >= 0);
const POSITIVE_INTEGER = rule('an integer >= 1', (v) => Number.isInteger(v) && (v as number) >= 1);
const LRS = rule('a non-empty array of finite numbers >= 0', (v) => Array.isArray(v) && v.length > 0 && v.every(isLr));
const MILESTONES = rule('an array of integers >= 1', (v) => Array.isArray(v) && v.every((m) => Number.isInteger(m) && m >= 1));

function isLr(v: unknown): boolean {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

function check(where: string, name: string, value: unknown, r: ArgRule): void {
  r.check(value, where, name);
}

/** A plain object (not an array): what options and states are. Not a type guard, so option types stay as declared. */
function isRecord(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The parts every schedule's state has; checks the kind and the number of groups against `groups`. */
function checkStateHead(where: string, state: unknown, kind: string, groups: number): Record<string, unknown> {
  if (!isRecord(state)) throw invalidArgument(where, 'state', 'an object from state()', state);
  const s = state as Record<string, unknown>;
  if (s.kind !== kind) throw new InvalidInputError(`${where}: state is of a ${String(s.kind)} schedule, not ${kind}`);
  check(where, 'state.lrs', s.lrs, LRS);
  check(where, 'state.lastEpoch', s.lastEpoch, NON_NEGATIVE_INTEGER);
  const lrs = s.lrs as number[];
  if (lrs.length !== groups) throw new InvalidInputError(`${where}: state has ${lrs.length} parameter groups, this schedule ${groups}`);
  return s;
}

/** What StepLR, MultiStepLR and CosineAnnealingLR share: base lrs, the epoch counter and the recursive update. */
abstract class EpochSchedule implements LrSchedule {
  protected current: number[];
  protected baseLrs: number[];
  /** PyTorch's `last_epoch`: 0 after construction, +1 per step. */
  protected lastEpoch = 0;

  protected constructor(
    protected readonly kind: string,
    baseLrs: number[],
  ) {
    check(kind, 'baseLrs', baseLrs, LRS);
    this.baseLrs = [...baseLrs];
    this.current = [...baseLrs];
  }

  get lrs(): number[] {
    return [...this.current];
  }

  /** Epochs stepped since construction (PyTorch's `last_epoch`). */
  get epoch(): number {
    return this.lastEpoch;
  }

  /** `metric` is ignored: these schedules depend on the epoch alone. */
  step(_metric?: number): void {
    this.lastEpoch += 1;
    this.current = this.current.map((lr, i) => this.next(lr, this.baseLrs[i], this.lastEpoch));
  }

  /** The lr of a group at epoch `e` (≥ 1) from its lr at e − 1: PyTorch's `get_lr`. */
  protected abstract next(lr: number, baseLr: number, e: number): number;

  protected abstract options(): Record<string, unknown>;

  /** Checks and takes the hyper-parameters of a loaded state. */
  protected abstract loadOptions(where: string, state: Record<string, unknown>): void;

  state(): object {
    return { kind: this.kind, ...this.options(), baseLrs: [...this.baseLrs], lastEpoch: this.lastEpoch, lrs: [...this.current] };
  }

  load(state: object): void {
    const where = `${this.kind}.load`;
    const s = checkStateHead(where, state, this.kind, this.current.length);
    check(where, 'state.baseLrs', s.baseLrs, LRS);
    if ((s.baseLrs as number[]).length !== this.current.length) {
      throw new InvalidInputError(`${where}: state.baseLrs has ${(s.baseLrs as number[]).length} groups, expected ${this.current.length}`);
    }
    this.loadOptions(where, s);
    this.baseLrs = [...(s.baseLrs as number[])];
    this.lastEpoch = s.lastEpoch as number;
    this.current = [...(s.lrs as number[])];
  }
}

export interface StepLROptions {
  stepSize: number;
  /** Default 0.1. */
  gamma?: number;
}

/** torch.optim.lr_scheduler.StepLR: lr × γ every `stepSize` epochs (base·γ^⌊e/stepSize⌋, as a running product). */
export class StepLR extends EpochSchedule {
  private stepSize: number;
  private gamma: number;

  constructor(baseLrs: number[], options: StepLROptions) {
    super('StepLR', baseLrs);
    ({ stepSize: this.stepSize, gamma: this.gamma } = checkStepOptions('StepLR', options));
  }

  protected next(lr: number, _baseLr: number, e: number): number {
    return e % this.stepSize !== 0 ? lr : lr * this.gamma;
  }

  protected options(): Record<string, unknown> {
    return { stepSize: this.stepSize, gamma: this.gamma };
  }

  protected loadOptions(where: string, s: Record<string, unknown>): void {
    ({ stepSize: this.stepSize, gamma: this.gamma } = checkStepOptions(where, {
      stepSize: s.stepSize as number,
      gamma: s.gamma as number,
    }));
  }
}

function checkStepOptions(where: string, options: StepLROptions): Required<StepLROptions> {
  if (!isRecord(options)) throw invalidArgument(where, 'options', 'an object with stepSize', options);
  check(where, 'stepSize', options.stepSize, POSITIVE_INTEGER);
  const gamma = options.gamma ?? 0.1;
  check(where, 'gamma', gamma, NON_NEGATIVE);
  return { stepSize: options.stepSize, gamma };
}

export interface MultiStepLROptions {
  /** Epochs at which lr × γ; a milestone listed k times multiplies by γ^k (PyTorch keeps them in a Counter). */
  milestones: number[];
  /** Default 0.1. */
  gamma?: number;
}

/** torch.optim.lr_scheduler.MultiStepLR: lr × γ^(times e is listed) when the epoch reaches a milestone. */
export class MultiStepLR extends EpochSchedule {
  private milestones: number[];
  private gamma: number;

  constructor(baseLrs: number[], options: MultiStepLROptions) {
    super('MultiStepLR', baseLrs);
    ({ milestones: this.milestones, gamma: this.gamma } = checkMultiStepOptions('MultiStepLR', options));
  }

  protected next(lr: number, _baseLr: number, e: number): number {
    const count = this.milestones.filter((m) => m === e).length;
    return count === 0 ? lr : lr * this.gamma ** count;
  }

  protected options(): Record<string, unknown> {
    return { milestones: [...this.milestones], gamma: this.gamma };
  }

  protected loadOptions(where: string, s: Record<string, unknown>): void {
    ({ milestones: this.milestones, gamma: this.gamma } = checkMultiStepOptions(where, {
      milestones: s.milestones as number[],
      gamma: s.gamma as number,
    }));
  }
}

function checkMultiStepOptions(where: string, options: MultiStepLROptions): Required<MultiStepLROptions> {
  if (!isRecord(options)) throw invalidArgument(where, 'options', 'an object with milestones', options);
  check(where, 'milestones', options.milestones, MILESTONES);
  const gamma = options.gamma ?? 0.1;
  check(where, 'gamma', gamma, NON_NEGATIVE);
  return { milestones: [...options.milestones].sort((a, b) => a - b), gamma };
}

export interface CosineAnnealingLROptions {
  /** Half the period, in epochs. */
  tMax: number;
  /** Default 0. */
  etaMin?: number;
}

/**
 * torch.optim.lr_scheduler.CosineAnnealingLR, recursive form:
 *   lr_e = η_min + (lr_{e−1} − η_min)·(1 + cos(πe/T)) / (1 + cos(π(e−1)/T)),
 * except where the denominator is 0 ((e − 1 − T) mod 2T = 0, the minimum just passed), which adds
 * (base − η_min)(1 − cos(π/T))/2 instead. It equals the closed form η_min + (base − η_min)(1 + cos(πe/T))/2 to
 * float64 rounding and, like PyTorch, does not stop at T_max: the lr rises back to base over the next T_max epochs.
 */
export class CosineAnnealingLR extends EpochSchedule {
  private tMax: number;
  private etaMin: number;

  constructor(baseLrs: number[], options: CosineAnnealingLROptions) {
    super('CosineAnnealingLR', baseLrs);
    ({ tMax: this.tMax, etaMin: this.etaMin } = checkCosineOptions('CosineAnnealingLR', options));
  }

  protected next(lr: number, baseLr: number, e: number): number {
    const t = this.tMax;
    const eta = this.etaMin;
    // `x % m === 0` is true exactly when Python's `x % m == 0` is, negative x included.
    if ((e - 1 - t) % (2 * t) === 0) return lr + ((baseLr - eta) * (1 - Math.cos(Math.PI / t))) / 2;
    return ((1 + Math.cos((Math.PI * e) / t)) / (1 + Math.cos((Math.PI * (e - 1)) / t))) * (lr - eta) + eta;
  }

  protected options(): Record<string, unknown> {
    return { tMax: this.tMax, etaMin: this.etaMin };
  }

  protected loadOptions(where: string, s: Record<string, unknown>): void {
    ({ tMax: this.tMax, etaMin: this.etaMin } = checkCosineOptions(where, { tMax: s.tMax as number, etaMin: s.etaMin as number }));
  }
}

function checkCosineOptions(where: string, options: CosineAnnealingLROptions): Required<CosineAnnealingLROptions> {
  if (!isRecord(options)) throw invalidArgument(where, 'options', 'an object with tMax', options);
  check(where, 'tMax', options.tMax, POSITIVE_INTEGER);
  const etaMin = options.etaMin ?? 0;
  check(where, 'etaMin', etaMin, FINITE);
  return { tMax: options.tMax, etaMin };
}

export interface ReduceLROnPlateauOptions {
  /** 'min' (default): a lower metric is better; 'max': a higher one. */
  mode?: 'min' | 'max';
  /** lr × factor on a plateau; default 0.1, must be < 1. */
  factor?: number;
  /** Bad epochs tolerated; the lr drops on the (patience + 1)-th in a row. Default 10. */
  patience?: number;
  /** How much better counts as better; default 1e-4. */
  threshold?: number;
  /** 'rel' (default): relative to the best; 'abs': absolute. */
  thresholdMode?: 'rel' | 'abs';
  /** Epochs after a drop during which bad epochs are not counted; default 0. */
  cooldown?: number;
  /** Lower bound of the lr, one for all groups or one per group; default 0. */
  minLr?: number | number[];
  /** A drop smaller than this is not applied; default 1e-8. */
  eps?: number;
}

type PlateauConfig = Required<Omit<ReduceLROnPlateauOptions, 'minLr'>> & { minLrs: number[] };

/**
 * torch.optim.lr_scheduler.ReduceLROnPlateau. `step(metric)` per epoch: a metric better than the best so far
 * (strictly, by the threshold) resets the count of bad epochs, anything else adds one; during a cooldown the
 * count is held at 0; when it exceeds `patience`, each group's lr becomes max(lr·factor, minLr) if that lowers it
 * by more than `eps`, the cooldown starts and the count restarts.
 */
export class ReduceLROnPlateau implements LrSchedule {
  private config: PlateauConfig;
  private current: number[];
  private lastEpoch = 0;
  /** The best metric so far; ±∞ (the worst for the mode) before the first step. */
  private best: number;
  private numBadEpochs = 0;
  private cooldownCounter = 0;

  constructor(baseLrs: number[], options: ReduceLROnPlateauOptions = {}) {
    check('ReduceLROnPlateau', 'baseLrs', baseLrs, LRS);
    this.config = checkPlateauOptions('ReduceLROnPlateau', options, baseLrs.length);
    this.current = [...baseLrs];
    this.best = this.worst();
  }

  get lrs(): number[] {
    return [...this.current];
  }

  /** Steps taken (PyTorch's `last_epoch`). */
  get epoch(): number {
    return this.lastEpoch;
  }

  step(metric?: number): void {
    if (typeof metric !== 'number' || !Number.isFinite(metric)) {
      throw invalidArgument('ReduceLROnPlateau.step', 'metric', 'a finite number', metric);
    }
    this.lastEpoch += 1;
    if (this.isBetter(metric)) {
      this.best = metric;
      this.numBadEpochs = 0;
    } else {
      this.numBadEpochs += 1;
    }
    if (this.cooldownCounter > 0) {
      this.cooldownCounter -= 1;
      this.numBadEpochs = 0;
    }
    if (this.numBadEpochs > this.config.patience) {
      this.current = this.current.map((old, i) => {
        const lowered = Math.max(old * this.config.factor, this.config.minLrs[i]);
        return old - lowered > this.config.eps ? lowered : old;
      });
      this.cooldownCounter = this.config.cooldown;
      this.numBadEpochs = 0;
    }
  }

  /** PyTorch's `is_better`, with its exact arithmetic (e.g. best·(1 − threshold), the factor formed first). */
  private isBetter(a: number): boolean {
    const { mode, threshold, thresholdMode } = this.config;
    if (mode === 'min') return thresholdMode === 'rel' ? a < this.best * (1 - threshold) : a < this.best - threshold;
    return thresholdMode === 'rel' ? a > this.best * (threshold + 1) : a > this.best + threshold;
  }

  private worst(): number {
    return this.config.mode === 'min' ? Infinity : -Infinity;
  }

  state(): object {
    const { minLrs, ...rest } = this.config;
    return {
      kind: 'ReduceLROnPlateau',
      ...rest,
      minLr: [...minLrs],
      lastEpoch: this.lastEpoch,
      lrs: [...this.current],
      best: Number.isFinite(this.best) ? this.best : null,
      numBadEpochs: this.numBadEpochs,
      cooldownCounter: this.cooldownCounter,
    };
  }

  load(state: object): void {
    const where = 'ReduceLROnPlateau.load';
    const s = checkStateHead(where, state, 'ReduceLROnPlateau', this.current.length);
    const config = checkPlateauOptions(where, s, this.current.length);
    if (s.best !== null) check(where, 'state.best', s.best, FINITE);
    check(where, 'state.numBadEpochs', s.numBadEpochs, NON_NEGATIVE_INTEGER);
    check(where, 'state.cooldownCounter', s.cooldownCounter, NON_NEGATIVE_INTEGER);
    this.config = config;
    this.lastEpoch = s.lastEpoch as number;
    this.current = [...(s.lrs as number[])];
    this.best = s.best === null ? this.worst() : (s.best as number);
    this.numBadEpochs = s.numBadEpochs as number;
    this.cooldownCounter = s.cooldownCounter as number;
  }
}

function checkPlateauOptions(where: string, options: ReduceLROnPlateauOptions, groups: number): PlateauConfig {
  if (!isRecord(options)) throw invalidArgument(where, 'options', 'an options object', options);
  const mode = options.mode ?? 'min';
  if (mode !== 'min' && mode !== 'max') throw invalidArgument(where, 'mode', "'min' or 'max'", mode);
  const thresholdMode = options.thresholdMode ?? 'rel';
  if (thresholdMode !== 'rel' && thresholdMode !== 'abs') throw invalidArgument(where, 'thresholdMode', "'rel' or 'abs'", thresholdMode);
  const factor = options.factor ?? 0.1;
  // PyTorch refuses factor >= 1 (the lr would never drop); a negative one would make it negative.
  check(
    where,
    'factor',
    factor,
    rule('a number in [0, 1)', (v) => typeof v === 'number' && v >= 0 && v < 1),
  );
  const patience = options.patience ?? 10;
  check(where, 'patience', patience, NON_NEGATIVE_INTEGER);
  const threshold = options.threshold ?? 1e-4;
  check(where, 'threshold', threshold, FINITE);
  const cooldown = options.cooldown ?? 0;
  check(where, 'cooldown', cooldown, NON_NEGATIVE_INTEGER);
  const eps = options.eps ?? 1e-8;
  check(where, 'eps', eps, NON_NEGATIVE);
  const minLr = options.minLr ?? 0;
  let minLrs: number[];
  if (Array.isArray(minLr)) {
    check(where, 'minLr', minLr, LRS);
    if (minLr.length !== groups)
      throw new InvalidInputError(`${where}: minLr has ${minLr.length} values, expected one per group (${groups})`);
    minLrs = [...minLr];
  } else {
    check(where, 'minLr', minLr, NON_NEGATIVE);
    minLrs = new Array<number>(groups).fill(minLr);
  }
  return { mode, factor, patience, threshold, thresholdMode, cooldown, eps, minLrs };
}
