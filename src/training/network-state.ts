import { InvalidInputError } from '../errors';
import type { GPUContext } from '../gpu/context';
import { writeBuffer } from '../gpu/context';
import { BufferUsage } from '../gpu/flags';
import type { Graph } from '../gpu/graph';
import { ParameterArena } from '../gpu/parameter-arena';
import { releaseCumulativeAverageFactors, writeCumulativeAverageFactors } from '../layers/batchnorm-training';
import type { GradientTape } from '../layers/gradient-tape';
import {
  bufferParameters,
  foldBatchNorms,
  type Module,
  namedModules,
  namedParameters,
  type Parameter,
  unfoldBatchNorms,
  untrainableKinds,
} from '../layers/module';
import { type BatchNormMode, TrainingGraph } from '../layers/training-graph';
import {
  addGradientClipping,
  addOptimizerUpdate,
  checkOptimizerConfig,
  type OptimizerConfig,
  optimizerScalars,
  optimizerStateRoles,
} from './optimizer-config';
import { groupLearningRate, type ParameterGroup, type ResolvedGroup, resolveParameterGroups } from './parameter-groups';

/** How one network trains: its optimizer, the parameters that stay fixed, parameter groups and clipping. */
export interface NetworkTraining {
  optimizer: OptimizerConfig;
  /** Parameters (by state_dict name) that stay fixed: no gradient, no update, as PyTorch skips `requires_grad=False`. */
  frozen?: (name: string) => boolean;
  /** torch.optim's param_groups: parameters with their own learning rate or weight decay (parameter-groups.ts). */
  parameterGroups?: readonly ParameterGroup[];
  /** clip_grad_norm_(max_norm, 2) before every update. */
  clipGradNorm?: number;
}

/** What `--resume` needs beyond the weights (kept in a sidecar: PyTorch's safe loader refuses floats). */
export interface OptimizerState {
  step: number;
  lr: number;
  tensors: Map<string, Float32Array>;
}

/** A state_dict entry as PyTorch keeps it: float32 tensors and the int64 `num_batches_tracked` counters. */
export type TrainedTensor =
  | { shape: readonly number[]; dtype: 'float32'; data: Float32Array }
  | { shape: readonly number[]; dtype: 'int64'; data: readonly number[] };

/** Bytes between the optimizer scalars of two parameter groups (a storage binding offset must be 256-aligned). */
const SCALARS_SLOT = 256;

/**
 * One network's training state on the GPU, between steps: parameters that learn (with their gradients and the
 * optimizer's state) in one arena, each parameter group back to back; frozen parameters and buffers (running
 * statistics) in another; the per-step optimizer scalars; and the num_batches_tracked counters. A trainer owns
 * one (or two for a GAN) and adds its forward, backward and update dispatches to a graph through it.
 */
export class NetworkState {
  private readonly numBatchesTracked = new Map<object, number>();
  private readonly graphs: TrainingGraph[] = [];
  private disposed = false;

  private constructor(
    private readonly ctx: GPUContext,
    readonly model: Module,
    readonly name: string,
    private readonly training: NetworkTraining,
    readonly learning: ParameterArena,
    readonly fixed: ParameterArena,
    private readonly scalars: GPUBuffer,
    private readonly groups: readonly ResolvedGroup[],
  ) {}

  /**
   * Puts `model`'s parameters on the GPU for training (BatchNorms unfolded). `alsoFixed` are learning parameters
   * to keep fixed anyway: those that get no gradient in the step (PyTorch skips a parameter whose .grad is None:
   * no weight decay, no state), which the trainer finds by building the step once (`unused`).
   */
  static create(ctx: GPUContext, model: Module, name: string, training: NetworkTraining, alsoFixed = new Set<Parameter>()): NetworkState {
    checkOptimizerConfig(training.optimizer);
    const untrainable = untrainableKinds(model);
    if (untrainable.length > 0) {
      throw new InvalidInputError(
        `${name} cannot be trained yet: ${untrainable.join(', ')} ${untrainable.length > 1 ? 'have' : 'has'} no backward pass`,
      );
    }
    unfoldBatchNorms(model);
    model.release();
    const named = namedParameters(model);
    const buffers = bufferParameters(model);
    const frozen = training.frozen ?? (() => false);
    const stays = (entry: [string, Parameter]) => buffers.has(entry[1]) || frozen(entry[0]) || alsoFixed.has(entry[1]);
    const learns = named.filter((e) => !stays(e));
    if (learns.length === 0) throw new InvalidInputError(`${name}: every parameter is frozen, nothing would learn`);
    const groups = resolveParameterGroups(learns, training.parameterGroups ?? [], training.optimizer);
    groups.forEach((g) => checkOptimizerConfig(g.optimizer));
    // Each group's parameters sit back to back, so one dispatch updates a group with its own options.
    const learning = new ParameterArena(ctx, arenaEntries(groups.flatMap((g) => g.params)), `${name} parameters`);
    const fixed = new ParameterArena(ctx, arenaEntries(named.filter(stays)), `${name} buffers`);
    const scalars = ctx.createBuffer(
      { size: SCALARS_SLOT * groups.length, usage: BufferUsage.STORAGE | BufferUsage.COPY_DST },
      `${name} optimizer step scalars`,
    );
    try {
      for (const [key, p] of named) (learning.has(p) ? learning : fixed).write(p, 'value', requireValues(p, key));
    } catch (e) {
      learning.dispose();
      fixed.dispose();
      scalars.destroy();
      throw e;
    }
    return new NetworkState(ctx, model, name, training, learning, fixed, scalars, groups);
  }

  /**
   * A view of this network for a forward pass on `tape`: it learns (its forward records gradients into the
   * arena), or, with `learns` false, it only passes gradients through to its input (a discriminator frozen for
   * the generator's step), reading the same values.
   */
  trainingGraph(tape: GradientTape, batchNorm: BatchNormMode, learns = true): TrainingGraph {
    const graph = learns
      ? new TrainingGraph(tape, [this.learning], this.fixed, batchNorm)
      : new TrainingGraph(tape, [], [this.learning, this.fixed], batchNorm);
    this.graphs.push(graph);
    return graph;
  }

  /** Learning parameters whose gradient no backward of `training` asked for: PyTorch leaves their .grad None. */
  unused(training: TrainingGraph): Set<Parameter> {
    return new Set(namedParameters(this.model).flatMap(([, p]) => (this.learning.has(p) && !training.gradientRequested(p) ? [p] : [])));
  }

  /** Gradient clipping (if asked) and one update dispatch per parameter group, after the backward. */
  addUpdate(graph: Graph): void {
    if (this.training.clipGradNorm !== undefined) addGradientClipping(graph, this.learning, this.training.clipGradNorm);
    this.groups.forEach((g, i) => {
      const slot = { buffer: this.scalars, offset: i * SCALARS_SLOT, size: SCALARS_SLOT };
      if (this.groups.length === 1) addOptimizerUpdate(graph, g.optimizer, this.learning, slot);
      else addOptimizerUpdate(graph, g.optimizer, this.learning, slot, { keys: g.params.map(([, p]) => p), label: g.label });
    });
  }

  /**
   * Before step `step` (1-based): each group's learning rate (the main one is `lr`) and bias corrections, and the
   * factors 1/num_batches_tracked of BatchNorm2d(momentum=None) forwards (counted from before this step).
   */
  writeScalars(lr: number, step: number): void {
    this.groups.forEach((g, i) => {
      const groupLr = groupLearningRate(g.optimizer, this.training.optimizer, lr);
      writeBuffer(this.ctx.device, this.scalars, i * SCALARS_SLOT, optimizerScalars(g.optimizer, groupLr, step));
    });
    writeCumulativeAverageFactors(this.ctx.device, this.graphs, (bn) => this.numBatchesTracked.get(bn) ?? 0);
  }

  /** After a step that ran: every BatchNorm forward in train mode counted, as PyTorch's num_batches_tracked. */
  countStep(): void {
    for (const graph of this.graphs) {
      for (const bn of graph.batchNormsStepped) this.numBatchesTracked.set(bn, (this.numBatchesTracked.get(bn) ?? 0) + 1);
    }
  }

  /**
   * Copies everything a step changes (parameters, optimizer state, running statistics) to spare buffers before
   * the step ('backup'), or back ('restore') when the step's loss was not finite, so the trainer and its last
   * checkpoint stay at the last good step. Parameters are small beside activations; the copy costs little.
   */
  copyState(encoder: GPUCommandEncoder, direction: 'backup' | 'restore'): void {
    const roles = ['value', ...optimizerStateRoles(this.training.optimizer)];
    for (const [arena, arenaRoles] of [
      [this.learning, roles],
      [this.fixed, ['value']],
    ] as const) {
      for (const role of arenaRoles) {
        if (direction === 'backup') arena.copy(encoder, role, `${role} before step`);
        else arena.copy(encoder, `${role} before step`, role);
      }
    }
  }

  /**
   * The model's state_dict as it is now on the GPU: parameters, running statistics and num_batches_tracked, by
   * PyTorch name and in the module's order (what a .pth of the trained model holds).
   */
  async stateDict(): Promise<Map<string, TrainedTensor>> {
    const learnt = await this.learning.read('value');
    const fixed = this.fixed.entries.length > 0 ? await this.fixed.read('value') : new Map<object, Float32Array>();
    const out = new Map<string, TrainedTensor>();
    const named = new Map(namedParameters(this.model).map(([k, p]) => [p, k]));
    for (const [moduleName, module] of namedModules(this.model)) {
      for (const [key, p] of Object.entries(module.parameters())) {
        const data = learnt.get(p) ?? fixed.get(p);
        if (!data) throw new InvalidInputError(`${named.get(p) ?? key} is missing from the training arenas`);
        out.set(prefixed(moduleName, key), { shape: p.shape, dtype: 'float32', data });
      }
      if (module.ignoredKeys().includes('num_batches_tracked')) {
        out.set(prefixed(moduleName, 'num_batches_tracked'), {
          shape: [],
          dtype: 'int64',
          data: [this.numBatchesTracked.get(module) ?? 0],
        });
      }
    }
    return out;
  }

  /** The gradients of the last step by parameter name (parameters that learn). */
  async gradients(): Promise<Map<string, Float32Array>> {
    const grads = await this.learning.read('grad');
    const out = new Map<string, Float32Array>();
    for (const [name, p] of namedParameters(this.model)) {
      const g = grads.get(p);
      if (g) out.set(name, g);
    }
    return out;
  }

  /** Each optimizer state tensor by `<role>.<parameter name>` (exp_avg.model.0.weight, momentum_buffer.…). */
  async optimizerTensors(): Promise<Map<string, Float32Array>> {
    const tensors = new Map<string, Float32Array>();
    const names = namedParameters(this.model);
    for (const role of optimizerStateRoles(this.training.optimizer)) {
      const values = await this.learning.read(role);
      for (const [name, p] of names) {
        const v = values.get(p);
        if (v) tensors.set(`${role}.${name}`, v);
      }
    }
    return tensors;
  }

  /** Puts saved optimizer tensors (all present, with the parameters' sizes) and num_batches_tracked back. */
  restoreOptimizerTensors(tensors: ReadonlyMap<string, Float32Array>, numBatchesTracked?: ReadonlyMap<string, number>): void {
    const learns = namedParameters(this.model).filter(([, p]) => this.learning.has(p));
    for (const role of optimizerStateRoles(this.training.optimizer)) {
      for (const [name, p] of learns) {
        const key = `${role}.${name}`;
        const v = tensors.get(key);
        if (!v) throw new InvalidInputError(`resume: the optimizer state has no '${key}'`);
        this.learning.write(p, role, v);
      }
    }
    for (const [moduleName, module] of namedModules(this.model)) {
      const count = numBatchesTracked?.get(prefixed(moduleName, 'num_batches_tracked'));
      if (count !== undefined) this.numBatchesTracked.set(module, count);
    }
  }

  /** Copies the trained values into the model's parameters (float64) and folds its BatchNorms again. */
  async syncToModel(): Promise<void> {
    const state = await this.stateDict();
    for (const [name, p] of namedParameters(this.model)) p.data = Float64Array.from(state.get(name)!.data as Float32Array);
    this.model.release();
    foldBatchNorms(this.model);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const graph of this.graphs) releaseCumulativeAverageFactors(graph);
    this.learning.dispose();
    this.fixed.dispose();
    this.scalars.destroy();
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
