import { DisposedError, GPUOperationError, InvalidInputError, LimitExceededError, TrainingDivergedError } from '../errors';
import { BOOLEAN, checkArgs, checkOptionFields, FUNCTION, instanceOf, NUMBERS, OBJECT, oneOf, POSITIVE_NUMBER, rule } from '../check-args';
import { GPUContext } from '../gpu/context';
import { writeBuffer } from '../gpu/context';
import { BufferUsage } from '../gpu/flags';
import { Graph } from '../gpu/graph';
import { ParameterArena } from '../gpu/parameter-arena';
import { Plan } from '../gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, type Shape4 } from '../gpu/tensor';
import { ForwardBuilder } from '../layers/forward-builder';
import { GradientTape } from '../layers/gradient-tape';
import {
  bufferParameters,
  untrainableKinds,
  foldBatchNorms,
  namedModules,
  namedParameters,
  type Parameter,
  unfoldBatchNorms,
} from '../layers/module';
import { type BatchNormMode, TrainingGraph } from '../layers/training-graph';
import type { Network } from '../models/network';
import type { TrainingSet } from './data/training-set';
import { type FitOptions, type FitResult, fitTrainer } from './fit';
import { addLoss, checkLossConfig, type LossConfig, lossNeedsMask } from './loss-config';
import { DEFAULT_LR, groupLearningRate, type ParameterGroup, type ResolvedGroup, resolveParameterGroups } from './parameter-groups';
import {
  addGradientClipping,
  addOptimizerUpdate,
  checkOptimizerConfig,
  type OptimizerConfig,
  optimizerScalars,
  optimizerStateRoles,
} from './optimizer-config';

export interface TrainerOptions {
  /** The batch the plan is compiled for, PyTorch-style [N, C, H, W] of the network input. */
  batchShape: readonly [n: number, c: number, h: number, w: number];
  loss: LossConfig;
  optimizer: OptimizerConfig;
  /** clip_grad_norm_(max_norm, 2) before every update; off by default (KAIR), milesial uses 1.0. */
  clipGradNorm?: number;
  /** BatchNorm in 'train' mode (batch statistics, PyTorch's `model.train()`), the default. */
  batchNorm?: BatchNormMode;
  /** Parameters (by state_dict name) that stay fixed: no gradient, no update, as PyTorch skips `requires_grad=False`. */
  frozen?: (name: string) => boolean;
  /** Also read the network output back after each step (for tests and previews). */
  returnOutput?: boolean;
  /** torch.optim's param_groups: parameters with their own learning rate or weight decay (parameter-groups.ts). */
  parameterGroups?: readonly ParameterGroup[];
}

/** What `--resume` needs beyond the weights (kept in a sidecar: PyTorch's safe loader refuses floats). */
export interface OptimizerState {
  step: number;
  lr: number;
  tensors: Map<string, Float32Array>;
}

export interface StepResult {
  /** The loss of this step's batch, before the update. */
  loss: number;
  /** The learning rate the update used. */
  lr: number;
  /** 1-based count of updates done so far. */
  step: number;
  /** The network output [N, C, H, W] (only with `returnOutput`). */
  output?: Float32Array;
}

/** A state_dict entry as PyTorch keeps it: float32 tensors and the int64 `num_batches_tracked` counters. */
export type TrainedTensor =
  | { shape: readonly number[]; dtype: 'float32'; data: Float32Array }
  | { shape: readonly number[]; dtype: 'int64'; data: readonly number[] };

/**
 * Trains a network on the GPU, one step per `step(batch)`: a plan compiled once for the batch shape runs the
 * forward pass (keeping what the backward needs), the loss, the backward pass, optional gradient clipping and the
 * optimizer update, all as dispatches of one graph. Parameters, gradients and optimizer state live in GPU arenas
 * in PyTorch's layout between steps; nothing comes back to the CPU but the loss, unless asked.
 */
export class Trainer {
  private stepCount = 0;
  private disposed = false;
  private lrNow: number;
  private readonly numBatchesTracked = new Map<object, number>();
  private running: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly ctx: GPUContext,
    readonly model: Network,
    private readonly options: TrainerOptions,
    private readonly stepPlan: Plan,
    private readonly learning: ParameterArena,
    private readonly fixed: ParameterArena,
    private readonly scalars: GPUBuffer,
    private readonly training: TrainingGraph,
    private readonly inputShape: Shape4,
    private readonly outputShape: Shape4,
    private readonly groups: readonly ResolvedGroup[],
  ) {
    this.lrNow = options.optimizer.lr ?? DEFAULT_LR;
  }

  static async create(ctx: GPUContext, model: Network, options: TrainerOptions): Promise<Trainer> {
    checkArgs(
      'Trainer.create',
      [ctx, model, options],
      [
        ['ctx', instanceOf(GPUContext)],
        ['model', NETWORK],
        ['options', OBJECT],
      ],
    );
    checkOptionFields('Trainer.create', options, TRAINER_OPTION_FIELDS);
    if (options.batchShape === undefined || options.loss === undefined || options.optimizer === undefined) {
      throw new InvalidInputError('Trainer.create: options need batchShape, loss and optimizer');
    }
    const [n, c, h, w] = options.batchShape;
    if (c !== model.inChannels)
      throw new InvalidInputError(`${model.architecture} takes ${model.inChannels} channel(s), the batch has ${c}`);
    checkOptimizerConfig(options.optimizer);
    checkLossConfig(options.loss);
    const untrainable = untrainableKinds(model);
    if (untrainable.length > 0) {
      throw new InvalidInputError(
        `${model.architecture} cannot be trained yet: ${untrainable.join(', ')} ${untrainable.length > 1 ? 'have' : 'has'} no backward pass`,
      );
    }
    unfoldBatchNorms(model);
    model.release();
    const named = namedParameters(model);
    const buffers = bufferParameters(model);
    const frozen = options.frozen ?? (() => false);
    const learns = named.filter(([name, p]) => !buffers.has(p) && !frozen(name));
    const stays = named.filter(([name, p]) => buffers.has(p) || frozen(name));
    if (learns.length === 0) throw new InvalidInputError(`${model.architecture}: every parameter is frozen, nothing would learn`);
    const groups = resolveParameterGroups(learns, options.parameterGroups ?? [], options.optimizer);
    groups.forEach((g) => checkOptimizerConfig(g.optimizer));
    // Each group's parameters sit back to back, so one dispatch updates a group with its own options.
    const learning = new ParameterArena(ctx, arenaEntries(groups.flatMap((g) => g.params)), `${model.architecture} parameters`);
    const fixed = new ParameterArena(ctx, arenaEntries(stays), `${model.architecture} buffers`);
    const scalars = ctx.createBuffer(
      { size: SCALARS_SLOT * groups.length, usage: BufferUsage.STORAGE | BufferUsage.COPY_DST },
      'optimizer step scalars',
    );
    try {
      for (const [name, p] of named) (learning.has(p) ? learning : fixed).write(p, 'value', requireValues(p, name));
      const graph = new Graph();
      const tape = new GradientTape(graph);
      const training = new TrainingGraph(tape, [learning], fixed, options.batchNorm ?? 'train');
      const inputShape: Shape4 = [n, h, w, c];
      const input = graph.input(inputShape, 'input');
      const prediction = model.forward(new ForwardBuilder(ctx, graph, training), input, { label: model.architecture });
      const target = graph.input(prediction.shape, 'target');
      // A one-channel mask applies to every channel of its pixel.
      const mask = lossNeedsMask(options.loss) ? graph.input([...prediction.shape.slice(0, 3), 1] as unknown as Shape4, 'mask') : undefined;
      const { loss, grad } = addLoss(graph, options.loss, prediction, target, mask);
      tape.backward([[prediction, grad]]);
      if (options.clipGradNorm !== undefined) addGradientClipping(graph, learning, options.clipGradNorm);
      groups.forEach((g, i) => {
        const slot = { buffer: scalars, offset: i * SCALARS_SLOT, size: SCALARS_SLOT };
        if (groups.length === 1) addOptimizerUpdate(graph, g.optimizer, learning, slot);
        else addOptimizerUpdate(graph, g.optimizer, learning, slot, { keys: g.params.map(([, p]) => p), label: g.label });
      });
      graph.output(loss);
      if (options.returnOutput) graph.output(prediction);
      const plan = await compileWithAdvice(ctx, graph, options.batchShape);
      return new Trainer(ctx, model, options, plan, learning, fixed, scalars, training, inputShape, prediction.shape, groups);
    } catch (e) {
      learning.dispose();
      fixed.dispose();
      scalars.destroy();
      throw e;
    }
  }

  /** The compiled step plan (for benchmarks: cost, dispatchCount, activationBytes, profile). */
  get plan(): Plan {
    return this.stepPlan;
  }

  /** The learning rate the next step uses (a schedule sets it between steps). */
  get learningRate(): number {
    return this.lrNow;
  }

  set learningRate(lr: number) {
    if (!(lr >= 0) || !Number.isFinite(lr)) throw new InvalidInputError(`learning rate must be a finite number ≥ 0, got ${lr}`);
    this.lrNow = lr;
  }

  /** The batch shape the plan was compiled for, PyTorch's [N, C, H, W]. */
  get batchShape(): readonly [n: number, c: number, h: number, w: number] {
    return this.options.batchShape;
  }

  /**
   * Trains on `set` (crops, augmentation, synthetic noise, validation, schedule, checkpoints, early stopping and
   * an AbortSignal: fit.ts).
   */
  fit(set: TrainingSet, options: FitOptions = {}): Promise<FitResult> {
    return fitTrainer(this, set, options);
  }

  /** Whether every batch needs a mask (the weighted-mask MSE). */
  get needsMask(): boolean {
    return lossNeedsMask(this.options.loss);
  }

  /** Updates done so far. */
  get steps(): number {
    return this.stepCount;
  }

  /**
   * One training step on a batch (NCHW float32 input and target, the shapes the trainer was made for). Steps are
   * serialised. A loss that is NaN or infinite stops with TrainingDivergedError naming the step.
   */
  step(batch: { input: ArrayLike<number>; target: ArrayLike<number>; mask?: ArrayLike<number> }): Promise<StepResult> {
    try {
      checkArgs('Trainer.step', [batch], [['batch', OBJECT]]);
      checkOptionFields('Trainer.step', batch, { input: NUMBERS, target: NUMBERS, mask: NUMBERS }, 'batch');
      if (lossNeedsMask(this.options.loss) && batch.mask === undefined) {
        throw new InvalidInputError(`Trainer.step: the masked-mse loss needs batch.mask ([N, 1, H, W], 1 inside defects)`);
      }
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    const next = this.running.then(() => this.stepNow(batch));
    this.running = next.catch(() => undefined);
    return next;
  }

  private async stepNow(batch: { input: ArrayLike<number>; target: ArrayLike<number>; mask?: ArrayLike<number> }): Promise<StepResult> {
    if (this.disposed) throw new DisposedError('trainer');
    const t = this.stepCount + 1;
    const lr = this.lrNow;
    this.groups.forEach((g, i) => {
      const groupLr = groupLearningRate(g.optimizer, this.options.optimizer, lr);
      writeBuffer(this.ctx.device, this.scalars, i * SCALARS_SLOT, optimizerScalars(g.optimizer, groupLr, t));
    });
    this.copyState('backup');
    const { outputs } = await this.stepPlan.run([
      nchwToNhwcPadded(batch.input, this.inputShape),
      nchwToNhwcPadded(batch.target, this.outputShape),
      ...(lossNeedsMask(this.options.loss)
        ? [nchwToNhwcPadded(batch.mask!, [...this.outputShape.slice(0, 3), 1] as unknown as Shape4)]
        : []),
    ]);
    const loss = outputs[0][0];
    if (!Number.isFinite(loss)) {
      // The update already ran on NaN gradients: put back the state from before this step.
      this.copyState('restore');
      throw new TrainingDivergedError(t, loss);
    }
    this.stepCount = t;
    for (const bn of this.training.batchNormsStepped) this.numBatchesTracked.set(bn, (this.numBatchesTracked.get(bn) ?? 0) + 1);
    return {
      loss,
      lr,
      step: t,
      ...(this.options.returnOutput ? { output: nhwcPaddedToNchw(outputs[1], this.outputShape) } : {}),
    };
  }

  /**
   * Copies everything a step changes (parameters, optimizer state, running statistics) to spare buffers before
   * the step ('backup'), or back ('restore') when the step's loss was not finite, so the trainer and its last
   * checkpoint stay at the last good step. Parameters are small beside activations; the copy costs little.
   */
  private copyState(direction: 'backup' | 'restore'): void {
    const encoder = this.ctx.device.createCommandEncoder({ label: `training state ${direction}` });
    const roles = ['value', ...optimizerStateRoles(this.options.optimizer)];
    for (const [arena, arenaRoles] of [
      [this.learning, roles],
      [this.fixed, ['value']],
    ] as const) {
      for (const role of arenaRoles) {
        if (direction === 'backup') arena.copy(encoder, role, `${role} before step`);
        else arena.copy(encoder, `${role} before step`, role);
      }
    }
    this.ctx.device.queue.submit([encoder.finish()]);
  }

  /**
   * The model's state_dict as it is now on the GPU: parameters, running statistics and num_batches_tracked, by
   * PyTorch name and in the module's order (what a .pth of the trained model holds).
   */
  async stateDict(): Promise<Map<string, TrainedTensor>> {
    await this.running;
    const learnt = await this.learning.read('value');
    const fixed = this.fixed.entries.length > 0 ? await this.fixed.read('value') : new Map<object, Float32Array>();
    const out = new Map<string, TrainedTensor>();
    const named = new Map(namedParameters(this.model).map(([k, p]) => [p, k]));
    for (const [name, module] of namedModules(this.model)) {
      for (const [key, p] of Object.entries(module.parameters())) {
        const data = learnt.get(p) ?? fixed.get(p);
        if (!data) throw new InvalidInputError(`${named.get(p) ?? key} is missing from the training arenas`);
        out.set(prefixed(name, key), { shape: p.shape, dtype: 'float32', data });
      }
      if (module.ignoredKeys().includes('num_batches_tracked')) {
        out.set(prefixed(name, 'num_batches_tracked'), {
          shape: [],
          dtype: 'int64',
          data: [this.numBatchesTracked.get(module) ?? 0],
        });
      }
    }
    return out;
  }

  /** The gradients of the last step by parameter name (for checks against PyTorch). */
  async gradients(): Promise<Map<string, Float32Array>> {
    await this.running;
    const grads = await this.learning.read('grad');
    const out = new Map<string, Float32Array>();
    for (const [name, p] of namedParameters(this.model)) {
      const g = grads.get(p);
      if (g) out.set(name, g);
    }
    return out;
  }

  /**
   * The optimizer's state for a resume: the step count, the learning rate, and each state tensor by
   * `<role>.<parameter name>` (exp_avg.model.0.weight, momentum_buffer.…), plus num_batches_tracked per BatchNorm.
   */
  async optimizerState(): Promise<OptimizerState> {
    await this.running;
    const tensors = new Map<string, Float32Array>();
    const names = namedParameters(this.model);
    for (const role of optimizerStateRoles(this.options.optimizer)) {
      const values = await this.learning.read(role);
      for (const [name, p] of names) {
        const v = values.get(p);
        if (v) tensors.set(`${role}.${name}`, v);
      }
    }
    return { step: this.stepCount, lr: this.lrNow, tensors };
  }

  /**
   * Continues from a saved state: the step count (bias corrections and SGD's first step follow it), the learning
   * rate, and the optimizer's tensors, which must all be present with the parameters' sizes.
   */
  restoreOptimizerState(state: OptimizerState, numBatchesTracked?: ReadonlyMap<string, number>): void {
    if (!Number.isInteger(state.step) || state.step < 0)
      throw new InvalidInputError(`resume: step must be an integer ≥ 0, got ${state.step}`);
    const learns = namedParameters(this.model).filter(([, p]) => this.learning.has(p));
    for (const role of optimizerStateRoles(this.options.optimizer)) {
      for (const [name, p] of learns) {
        const key = `${role}.${name}`;
        const v = state.tensors.get(key);
        if (!v) throw new InvalidInputError(`resume: the optimizer state has no '${key}'`);
        this.learning.write(p, role, v);
      }
    }
    this.stepCount = state.step;
    this.learningRate = state.lr;
    for (const [name, module] of namedModules(this.model)) {
      const count = numBatchesTracked?.get(prefixed(name, 'num_batches_tracked'));
      if (count !== undefined) this.numBatchesTracked.set(module, count);
    }
  }

  /**
   * Copies the trained values into the model's parameters (float64 on the CPU) and folds its BatchNorms again,
   * so it runs through the inference path (RestorationModel) as it is now.
   */
  async syncToModel(): Promise<void> {
    const state = await this.stateDict();
    for (const [name, p] of namedParameters(this.model)) p.data = Float64Array.from(state.get(name)!.data as Float32Array);
    this.model.release();
    foldBatchNorms(this.model);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.stepPlan.dispose();
    void this.running.then(() => {
      this.learning.dispose();
      this.fixed.dispose();
      this.scalars.destroy();
    });
  }
}

const NETWORK = rule(
  'a network (a Module with forward)',
  (v) => typeof v === 'object' && v !== null && typeof (v as Network).forward === 'function',
);
const BATCH_SHAPE = rule(
  '[N, C, H, W] of positive integers',
  (v) => Array.isArray(v) && v.length === 4 && v.every((d) => Number.isInteger(d) && d > 0),
);
const TRAINER_OPTION_FIELDS = {
  batchShape: BATCH_SHAPE,
  loss: OBJECT,
  optimizer: OBJECT,
  clipGradNorm: POSITIVE_NUMBER,
  batchNorm: oneOf(['train', 'frozen']),
  frozen: FUNCTION,
  returnOutput: BOOLEAN,
  parameterGroups: rule('an array of { params, lr?, weightDecay? }', (v) => Array.isArray(v)),
};

/** Bytes between the optimizer scalars of two parameter groups (a storage binding offset must be 256-aligned). */
const SCALARS_SLOT = 256;

/**
 * Compiles the step's plan; a batch the device cannot hold (a tensor past maxBufferSize, or out of memory) fails
 * with the same typed error, saying which batch and what to lower.
 */
async function compileWithAdvice(ctx: GPUContext, graph: Graph, batchShape: TrainerOptions['batchShape']): Promise<Plan> {
  try {
    return await Plan.compile(ctx, graph);
  } catch (e) {
    const [n, , h, w] = batchShape;
    const advice = `a training batch of ${n} × ${h}×${w} is too large for this device: use a smaller batch or patch`;
    if (e instanceof LimitExceededError) throw new LimitExceededError(e.limit, e.requested, e.allowed, advice);
    if (e instanceof GPUOperationError && e.code === 'GPU_OUT_OF_MEMORY') throw new GPUOperationError(e.code, advice, e.message);
    throw e;
  }
}

function prefixed(module: string, key: string): string {
  return module === '' ? key : `${module}.${key}`;
}

function arenaEntries(named: [string, Parameter][]) {
  return named.map(([label, p]) => ({ key: p, numel: p.shape.reduce((a, b) => a * b, 1), label }));
}

function requireValues(p: Parameter, name: string): Float64Array {
  if (!p.data) throw new InvalidInputError(`${name} has no values: load weights or initialise the model before training`);
  return p.data;
}
