import { DisposedError, GPUOperationError, InvalidInputError, LimitExceededError, TrainingDivergedError } from '../errors';
import { BOOLEAN, checkArgs, checkOptionFields, FUNCTION, instanceOf, NUMBERS, OBJECT, oneOf, POSITIVE_NUMBER, rule } from '../check-args';
import { GPUContext } from '../gpu/context';
import { Graph, type TensorValue } from '../gpu/graph';
import { Plan } from '../gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, type Shape4 } from '../gpu/tensor';
import { ForwardBuilder } from '../layers/forward-builder';
import { GradientTape } from '../layers/gradient-tape';
import type { Parameter } from '../layers/module';
import type { BatchNormMode } from '../layers/training-graph';
import type { Network } from '../models/network';
import type { TrainingSet } from './data/training-set';
import { type FitOptions, type FitResult, fitTrainer } from './fit';
import { type AddedLoss, addLoss, checkLossConfig, type LossConfig, lossNeedsMask } from './loss-config';
import { neighbor2NeighborLoss } from './neighbor2neighbor-loss';
import { NetworkState, type NetworkTraining, type OptimizerState, type TrainedTensor } from './network-state';
import { DEFAULT_LR } from './parameter-groups';
import { checkSelfSupervision, type SelfSupervision } from './self-supervision';

export type { OptimizerState, TrainedTensor } from './network-state';

/**
 * The optimizer, frozen parameters, parameter groups and gradient clipping (off by default, as KAIR; milesial's
 * U-Net uses 1.0) come from NetworkTraining.
 */
export interface TrainerOptions extends NetworkTraining {
  /** The batch the plan is compiled for, PyTorch-style [N, C, H, W] of the network input. */
  batchShape: readonly [n: number, c: number, h: number, w: number];
  /**
   * The loss against the batch's target. Self-supervised training sets it: Noise2Void's blind-spot MSE (n2v, n2v2)
   * or Neighbor2Neighbor's own (which needs no target; `batchShape` is then the noisy batch, even sides).
   */
  loss?: LossConfig;
  /** Train from noisy images alone (self-supervision.ts); `fit` then makes the batches the method needs. */
  selfSupervised?: SelfSupervision;
  /** BatchNorm in 'train' mode (batch statistics, PyTorch's `model.train()`), the default. */
  batchNorm?: BatchNormMode;
  /** Also read the network output back after each step (for tests and previews). */
  returnOutput?: boolean;
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

/**
 * One batch, NCHW float32: the network input, its target and (for masked losses) the one-channel mask; for
 * Neighbor2Neighbor the noisy batch alone as `input`, the pair choice of every 2×2 cell ([N, H/2, W/2], 0–7:
 * NEIGHBOR_PAIR_TABLE) and γ.
 */
export interface TrainingBatch {
  input: ArrayLike<number>;
  target?: ArrayLike<number>;
  mask?: ArrayLike<number>;
  choices?: ArrayLike<number>;
  gamma?: number;
}

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
  private running: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly ctx: GPUContext,
    readonly model: Network,
    private readonly options: TrainerOptions,
    private readonly stepPlan: Plan,
    private readonly state: NetworkState,
    private readonly inputShape: Shape4,
    private readonly outputShape: Shape4,
    /** Frees the arenas and what the loss put on the GPU. */
    private readonly release: () => void,
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
    if (options.batchShape === undefined || options.optimizer === undefined) {
      throw new InvalidInputError('Trainer.create: options need batchShape and optimizer');
    }
    const [, c] = options.batchShape;
    if (c !== model.inChannels)
      throw new InvalidInputError(`${model.architecture} takes ${model.inChannels} channel(s), the batch has ${c}`);
    options = { ...options, ...methodLoss(options) };
    // A parameter no output depends on gets no gradient; PyTorch then skips it (no weight decay, no state), so
    // the step is built again with such parameters kept fixed.
    let built = buildStep(ctx, model, options, new Set());
    if (built.unused.size > 0) {
      built.dispose();
      built = buildStep(ctx, model, options, built.unused);
    }
    const { state, graph, prediction, dispose } = built;
    try {
      const plan = await compileWithAdvice(ctx, graph, options.batchShape);
      return new Trainer(ctx, model, options, plan, state, prediction.input, prediction.output, dispose);
    } catch (e) {
      dispose();
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

  /** Whether every batch needs a mask (the weighted-mask MSE, Noise2Void's blind spots). */
  get needsMask(): boolean {
    return this.options.loss !== undefined && lossNeedsMask(this.options.loss);
  }

  /** How the trainer learns from noisy images alone, if it does. */
  get selfSupervised(): SelfSupervision | undefined {
    return this.options.selfSupervised;
  }

  /** Updates done so far. */
  get steps(): number {
    return this.stepCount;
  }

  /**
   * One training step on a batch (NCHW float32 input and target, the shapes the trainer was made for). Steps are
   * serialised. A loss that is NaN or infinite stops with TrainingDivergedError naming the step.
   */
  step(batch: TrainingBatch): Promise<StepResult> {
    try {
      checkArgs('Trainer.step', [batch], [['batch', OBJECT]]);
      checkOptionFields(
        'Trainer.step',
        batch,
        { input: NUMBERS, target: NUMBERS, mask: NUMBERS, choices: NUMBERS, gamma: FINITE_NUMBER },
        'batch',
      );
      if (this.isNeighbor2Neighbor) {
        if (batch.choices === undefined || batch.gamma === undefined) {
          throw new InvalidInputError('Trainer.step: Neighbor2Neighbor needs batch.choices ([N, H/2, W/2], 0–7) and batch.gamma');
        }
      } else if (batch.target === undefined) {
        throw new InvalidInputError('Trainer.step: the batch needs a target');
      }
      if (this.needsMask && batch.mask === undefined) {
        throw new InvalidInputError(
          `Trainer.step: the ${this.options.loss!.kind} loss needs batch.mask ([N, 1, H, W], 1 inside defects or at blind spots)`,
        );
      }
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    const next = this.running.then(() => this.stepNow(batch));
    this.running = next.catch(() => undefined);
    return next;
  }

  private get isNeighbor2Neighbor(): boolean {
    return this.options.selfSupervised?.method === 'neighbor2neighbor';
  }

  /** The plan's inputs for a batch, in the order buildStep declared them. */
  private planInputs(batch: TrainingBatch): Float32Array[] {
    const input = nchwToNhwcPadded(batch.input, this.inputShape);
    if (this.isNeighbor2Neighbor) {
      const [n, h, w] = this.inputShape;
      const choices = nchwToNhwcPadded(batch.choices!, [n, h / 2, w / 2, 1]);
      return [input, choices, Float32Array.of(batch.gamma!, 0, 0, 0)];
    }
    const target = nchwToNhwcPadded(batch.target!, this.outputShape);
    if (!this.needsMask) return [input, target];
    return [input, target, nchwToNhwcPadded(batch.mask!, [...this.outputShape.slice(0, 3), 1] as unknown as Shape4)];
  }

  private async stepNow(batch: TrainingBatch): Promise<StepResult> {
    if (this.disposed) throw new DisposedError('trainer');
    const t = this.stepCount + 1;
    const lr = this.lrNow;
    const inputs = this.planInputs(batch);
    this.state.writeScalars(lr, t);
    this.copyState('backup');
    const { outputs } = await this.stepPlan.run(inputs);
    const loss = outputs[0][0];
    if (!Number.isFinite(loss)) {
      // The update already ran on NaN gradients: put back the state from before this step.
      this.copyState('restore');
      throw new TrainingDivergedError(t, loss);
    }
    this.stepCount = t;
    this.state.countStep();
    return {
      loss,
      lr,
      step: t,
      ...(this.options.returnOutput ? { output: nhwcPaddedToNchw(outputs[1], this.outputShape) } : {}),
    };
  }

  private copyState(direction: 'backup' | 'restore'): void {
    const encoder = this.ctx.device.createCommandEncoder({ label: `training state ${direction}` });
    this.state.copyState(encoder, direction);
    this.ctx.device.queue.submit([encoder.finish()]);
  }

  /**
   * The model's state_dict as it is now on the GPU: parameters, running statistics and num_batches_tracked, by
   * PyTorch name and in the module's order (what a .pth of the trained model holds).
   */
  async stateDict(): Promise<Map<string, TrainedTensor>> {
    await this.running;
    return this.state.stateDict();
  }

  /**
   * The gradients of the last step by parameter name (for checks against PyTorch); parameters that got none
   * (frozen, or unused by the forward, whose .grad PyTorch leaves None) are absent.
   */
  async gradients(): Promise<Map<string, Float32Array>> {
    await this.running;
    return this.state.gradients();
  }

  /**
   * The optimizer's state for a resume: the step count, the learning rate, and each state tensor by
   * `<role>.<parameter name>` (exp_avg.model.0.weight, momentum_buffer.…).
   */
  async optimizerState(): Promise<OptimizerState> {
    await this.running;
    return { step: this.stepCount, lr: this.lrNow, tensors: await this.state.optimizerTensors() };
  }

  /**
   * Continues from a saved state: the step count (bias corrections and SGD's first step follow it), the learning
   * rate, and the optimizer's tensors, which must all be present with the parameters' sizes.
   */
  restoreOptimizerState(state: OptimizerState, numBatchesTracked?: ReadonlyMap<string, number>): void {
    if (!Number.isInteger(state.step) || state.step < 0)
      throw new InvalidInputError(`resume: step must be an integer ≥ 0, got ${state.step}`);
    this.state.restoreOptimizerTensors(state.tensors, numBatchesTracked);
    this.stepCount = state.step;
    this.learningRate = state.lr;
  }

  /**
   * Copies the trained values into the model's parameters (float64 on the CPU) and folds its BatchNorms again,
   * so it runs through the inference path (RestorationModel) as it is now.
   */
  async syncToModel(): Promise<void> {
    await this.running;
    await this.state.syncToModel();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.stepPlan.dispose();
    void this.running.then(() => this.release());
  }
}

/**
 * The step's graph: forward (keeping what the backward needs), loss, backward, clipping and the update, with the
 * parameters in `alsoFixed` kept fixed. Reports the learning parameters that got no gradient.
 */
function buildStep(ctx: GPUContext, model: Network, options: TrainerOptions, alsoFixed: Set<Parameter>) {
  const state = NetworkState.create(ctx, model, model.architecture, options, alsoFixed);
  let release = () => {};
  try {
    const [n, c, h, w] = options.batchShape;
    const graph = new Graph();
    const tape = new GradientTape(graph);
    const training = state.trainingGraph(tape, options.batchNorm ?? 'train');
    const input = graph.input([n, h, w, c], 'input');
    const builder = new ForwardBuilder(ctx, graph, training);
    let prediction: TensorValue;
    let added: AddedLoss;
    if (options.selfSupervised?.method === 'neighbor2neighbor') {
      const nb2nb = neighbor2NeighborLoss(builder, model, graph, input);
      prediction = nb2nb.prediction;
      added = { loss: nb2nb.loss, grad: nb2nb.grad, dispose: () => {} };
    } else {
      prediction = model.forward(builder, input, { label: model.architecture });
      const target = graph.input(prediction.shape, 'target');
      // A one-channel mask applies to every channel of its pixel.
      const needsMask = lossNeedsMask(options.loss!);
      const mask = needsMask ? graph.input([...prediction.shape.slice(0, 3), 1] as unknown as Shape4, 'mask') : undefined;
      added = addLoss(graph, options.loss!, prediction, target, { ...(mask ? { mask } : {}), ctx });
    }
    release = added.dispose;
    training.backward([[prediction, added.grad]]);
    state.addUpdate(graph);
    graph.output(added.loss);
    if (options.returnOutput) graph.output(prediction);
    const dispose = () => {
      state.dispose();
      added.dispose();
    };
    // Neighbor2Neighbor's output is f(g1 y), half the input's size; the others', the target's size.
    return { dispose, state, graph, prediction: { input: input.shape, output: prediction.shape }, unused: state.unused(training) };
  } catch (e) {
    state.dispose();
    release();
    throw e;
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
const FINITE_NUMBER = rule('a finite number', (v) => typeof v === 'number' && Number.isFinite(v));
const TRAINER_OPTION_FIELDS = {
  batchShape: BATCH_SHAPE,
  loss: OBJECT,
  selfSupervised: OBJECT,
  optimizer: OBJECT,
  clipGradNorm: POSITIVE_NUMBER,
  batchNorm: oneOf(['train', 'frozen']),
  frozen: FUNCTION,
  returnOutput: BOOLEAN,
  parameterGroups: rule('an array of { params, lr?, weightDecay? }', (v) => Array.isArray(v)),
};

/**
 * The loss a method implies: Noise2Void's blind-spot MSE for n2v and n2v2, Neighbor2Neighbor's own (no LossConfig);
 * a supervised trainer must be given one.
 */
function methodLoss(options: TrainerOptions): { loss?: LossConfig } {
  const self = options.selfSupervised;
  if (self === undefined) {
    if (options.loss === undefined) throw new InvalidInputError('Trainer.create: options need a loss (or selfSupervised)');
    checkLossConfig(options.loss);
    return { loss: options.loss };
  }
  checkSelfSupervision(self);
  if (self.method === 'neighbor2neighbor') {
    if (options.loss !== undefined) throw new InvalidInputError('Trainer.create: Neighbor2Neighbor has a loss of its own; give no loss');
    const [, , h, w] = options.batchShape;
    if (h % 2 !== 0 || w % 2 !== 0) throw new InvalidInputError(`Neighbor2Neighbor needs even patch sides, got ${h}×${w}`);
    return {};
  }
  if (options.loss !== undefined && options.loss.kind !== 'blind-spot') {
    throw new InvalidInputError(`Trainer.create: ${self.method} trains with the blind-spot loss, not ${options.loss.kind}`);
  }
  return { loss: { kind: 'blind-spot' } };
}

/**
 * Compiles the step's plan; a batch the device cannot hold (a tensor past maxBufferSize, or out of memory) fails
 * with the same typed error, saying which batch and what to lower.
 */
export async function compileWithAdvice(ctx: GPUContext, graph: Graph, batchShape: TrainerOptions['batchShape']): Promise<Plan> {
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
