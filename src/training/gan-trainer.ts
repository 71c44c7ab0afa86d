import { checkArgs, checkOptionFields, FINITE_NUMBER, instanceOf, NUMBERS, OBJECT, oneOf, BOOLEAN, rule } from '../check-args';
import { DisposedError, InvalidInputError, TrainingDivergedError } from '../errors';
import { GPUContext } from '../gpu/context';
import { Graph, type TensorValue } from '../gpu/graph';
import type { Plan } from '../gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, type Shape4 } from '../gpu/tensor';
import { concatChannels } from '../kernels/concat';
import { relativisticGanLoss, vanillaGanLosses } from '../kernels/loss-bce';
import { sumTensors } from '../kernels/reduce';
import { concat } from '../layers/autograd-ops';
import { ForwardBuilder } from '../layers/forward-builder';
import { GradientTape } from '../layers/gradient-tape';
import type { Module, Parameter } from '../layers/module';
import type { BatchNormMode, TrainingGraph } from '../layers/training-graph';
import type { Network } from '../models/network';
import { addLoss, checkLossConfig, type LossConfig, lossNeedsMask } from './loss-config';
import { NetworkState, type NetworkTraining, type TrainedTensor } from './network-state';
import { DEFAULT_LR } from './parameter-groups';
import { compileWithAdvice } from './trainer';

export interface GanTrainerOptions {
  /** The generator's input batch, PyTorch-style [N, C, H, W]. */
  batchShape: readonly [n: number, c: number, h: number, w: number];
  generator: NetworkTraining;
  discriminator: NetworkTraining;
  /** The generator's content loss against the target (pix2pix: L1 with weight λ = 100); none by default. */
  content?: LossConfig;
  /** The weight of the adversarial term in the generator's loss (1 by default, as pix2pix; ESRGAN 5e-3). */
  adversarialWeight?: number;
  /**
   * 'vanilla' (default): pix2pix's BCE losses, D updated first. 'relativistic': ESRGAN's relativistic average
   * losses in BasicSR's order, G updated first (through D as it was), then D.
   */
  ganLoss?: 'vanilla' | 'relativistic';
  /**
   * pix2pix's conditional discriminator, which judges cat(input, image) along channels (input and output of one
   * size); by default it judges the image alone.
   */
  conditional?: boolean;
  batchNorm?: BatchNormMode;
  /** Also read the generator's output back after each step. */
  returnOutput?: boolean;
}

export interface GanStepResult {
  /** ½[ℓ(D(real), 1) + ℓ(D(G(x)), 0)], before the discriminator's update. */
  discriminatorLoss: number;
  /** adversarialWeight·ℓ(D'(G(x)), 1) with D' the updated discriminator. */
  adversarialLoss: number;
  /** The content loss of G(x) against the target (0 without one). */
  contentLoss: number;
  /** 1-based count of steps done. */
  step: number;
  output?: Float32Array;
}

/**
 * Trains a generator against a discriminator (a PatchGAN, say), one step all on the GPU in one plan. With the
 * vanilla GAN loss (BCE with logits), as pix2pix's `optimize_parameters` (training.md §2.6):
 *   fake = G(x)
 *   discriminator: L_D = ½[ℓ(D(fake.detach()), 0) + ℓ(D(real), 1)], backward, D's update;
 *   generator, D frozen: L_G = w·ℓ(D(fake), 1) + content(fake, target), backward through the updated D into G,
 *   G's update.
 * With the relativistic average loss, as BasicSR's ESRGAN: G's step first (through D as it was), then D's.
 * D's BatchNorms stay in train mode throughout, as PyTorch's (their running statistics move with each of its
 * forwards). The discriminator's passes share its parameters: their gradients add up.
 */
export class GanTrainer {
  private stepCount = 0;
  private disposed = false;
  private running: Promise<unknown> = Promise.resolve();
  /** The learning rates the next step uses (schedules set them between steps). */
  generatorLearningRate: number;
  discriminatorLearningRate: number;

  private constructor(
    readonly ctx: GPUContext,
    readonly generator: Network,
    readonly discriminator: Module,
    private readonly options: GanTrainerOptions,
    private readonly plan: Plan,
    private readonly g: NetworkState,
    private readonly d: NetworkState,
    private readonly shapes: { input: Shape4; output: Shape4 },
    /** Frees both networks' arenas and what the content loss put on the GPU. */
    private readonly release: () => void,
  ) {
    this.generatorLearningRate = options.generator.optimizer.lr ?? DEFAULT_LR;
    this.discriminatorLearningRate = options.discriminator.optimizer.lr ?? DEFAULT_LR;
  }

  static async create(ctx: GPUContext, generator: Network, discriminator: Module, options: GanTrainerOptions): Promise<GanTrainer> {
    checkArgs(
      'GanTrainer.create',
      [ctx, generator, discriminator, options],
      [
        ['ctx', instanceOf(GPUContext)],
        ['generator', MODULE],
        ['discriminator', MODULE],
        ['options', OBJECT],
      ],
    );
    checkOptionFields('GanTrainer.create', options, GAN_OPTION_FIELDS);
    if (!options.batchShape || !options.generator || !options.discriminator) {
      throw new InvalidInputError('GanTrainer.create: options need batchShape, generator and discriminator');
    }
    if (options.content) {
      checkLossConfig(options.content);
      if (lossNeedsMask(options.content)) throw new InvalidInputError('GanTrainer: a content loss with masks is not supported');
    }
    if (options.batchShape[1] !== generator.inChannels) {
      throw new InvalidInputError(
        `${generator.architecture} takes ${generator.inChannels} channel(s), the batch has ${options.batchShape[1]}`,
      );
    }
    let built = buildGanStep(ctx, generator, discriminator, options, { g: new Set(), d: new Set() });
    if (built.unused.g.size + built.unused.d.size > 0) {
      built.dispose();
      built = buildGanStep(ctx, generator, discriminator, options, built.unused);
    }
    try {
      const plan = await compileWithAdvice(ctx, built.graph, options.batchShape);
      return new GanTrainer(ctx, generator, discriminator, options, plan, built.g, built.d, built.shapes, built.dispose);
    } catch (e) {
      built.dispose();
      throw e;
    }
  }

  get steps(): number {
    return this.stepCount;
  }

  /** One step on a batch (NCHW input and target). A loss that is not finite stops with TrainingDivergedError. */
  step(batch: { input: ArrayLike<number>; target: ArrayLike<number> }): Promise<GanStepResult> {
    try {
      checkArgs('GanTrainer.step', [batch], [['batch', OBJECT]]);
      checkOptionFields('GanTrainer.step', batch, { input: NUMBERS, target: NUMBERS }, 'batch');
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    const next = this.running.then(() => this.stepNow(batch));
    this.running = next.catch(() => undefined);
    return next;
  }

  private async stepNow(batch: { input: ArrayLike<number>; target: ArrayLike<number> }): Promise<GanStepResult> {
    if (this.disposed) throw new DisposedError('GAN trainer');
    const t = this.stepCount + 1;
    this.g.writeScalars(this.generatorLearningRate, t);
    this.d.writeScalars(this.discriminatorLearningRate, t);
    this.copyState('backup');
    const { outputs } = await this.plan.run([
      nchwToNhwcPadded(batch.input, this.shapes.input),
      nchwToNhwcPadded(batch.target, this.shapes.output),
    ]);
    const withContent = this.options.content !== undefined;
    const [discriminatorLoss, adversarialLoss, contentLoss] = [outputs[0][0], outputs[1][0], withContent ? outputs[2][0] : 0];
    const bad = [discriminatorLoss, adversarialLoss, contentLoss].find((v) => !Number.isFinite(v));
    if (bad !== undefined) {
      this.copyState('restore');
      throw new TrainingDivergedError(t, bad);
    }
    this.stepCount = t;
    this.g.countStep();
    this.d.countStep();
    return {
      discriminatorLoss,
      adversarialLoss,
      contentLoss,
      step: t,
      ...(this.options.returnOutput ? { output: nhwcPaddedToNchw(outputs[withContent ? 3 : 2], this.shapes.output) } : {}),
    };
  }

  private copyState(direction: 'backup' | 'restore'): void {
    const encoder = this.ctx.device.createCommandEncoder({ label: `GAN state ${direction}` });
    this.g.copyState(encoder, direction);
    this.d.copyState(encoder, direction);
    this.ctx.device.queue.submit([encoder.finish()]);
  }

  /** The generator's or the discriminator's state_dict as it is now. */
  async stateDict(which: 'generator' | 'discriminator'): Promise<Map<string, TrainedTensor>> {
    await this.running;
    return (which === 'generator' ? this.g : this.d).stateDict();
  }

  /** The last step's gradients of one network by parameter name. */
  async gradients(which: 'generator' | 'discriminator'): Promise<Map<string, Float32Array>> {
    await this.running;
    return (which === 'generator' ? this.g : this.d).gradients();
  }

  /** Copies one network's trained values into its parameters (BatchNorms folded again) for the inference path. */
  async syncToModel(which: 'generator' | 'discriminator' = 'generator'): Promise<void> {
    await this.running;
    await (which === 'generator' ? this.g : this.d).syncToModel();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.plan.dispose();
    void this.running.then(() => this.release());
  }
}

const MODULE = rule('a Module with forward', (v) => typeof v === 'object' && v !== null && typeof (v as Module).forward === 'function');
const BATCH_SHAPE = rule(
  '[N, C, H, W] of positive integers',
  (v) => Array.isArray(v) && v.length === 4 && v.every((d) => Number.isInteger(d) && d > 0),
);
const GAN_OPTION_FIELDS = {
  batchShape: BATCH_SHAPE,
  generator: OBJECT,
  discriminator: OBJECT,
  content: OBJECT,
  adversarialWeight: FINITE_NUMBER,
  conditional: BOOLEAN,
  ganLoss: oneOf(['vanilla', 'relativistic']),
  batchNorm: oneOf(['train', 'frozen']),
  returnOutput: BOOLEAN,
};

/** The whole step in one graph (see GanTrainer); reports the parameters of either network that got no gradient. */
function buildGanStep(
  ctx: GPUContext,
  generator: Network,
  discriminator: Module,
  options: GanTrainerOptions,
  alsoFixed: { g: Set<Parameter>; d: Set<Parameter> },
) {
  const g = NetworkState.create(ctx, generator, 'generator', options.generator, alsoFixed.g);
  let d: NetworkState | undefined;
  let release = () => {};
  try {
    d = NetworkState.create(ctx, discriminator, 'discriminator', options.discriminator, alsoFixed.d);
    const batchNorm = options.batchNorm ?? 'train';
    const [n, c, h, w] = options.batchShape;
    const graph = new Graph();
    const gTraining = g.trainingGraph(new GradientTape(graph), batchNorm);
    const input = graph.input([n, h, w, c], 'input');
    const fake = generator.forward(new ForwardBuilder(ctx, graph, gTraining), input, { label: 'G' });
    const target = graph.input(fake.shape, 'target');
    const conditional = options.conditional ?? false;
    const relativistic = (options.ganLoss ?? 'vanilla') === 'relativistic';
    if (relativistic && conditional) throw new InvalidInputError('the relativistic GAN loss takes an unconditional discriminator');
    if (conditional && (input.shape[1] !== fake.shape[1] || input.shape[2] !== fake.shape[2])) {
      throw new InvalidInputError(`a conditional discriminator needs input and output of one size, got ×${generator.scale}`);
    }

    const passes: Passes = {
      ctx,
      graph,
      discriminator,
      d,
      batchNorm,
      input,
      fake,
      target,
      conditional,
      adversarialWeight: options.adversarialWeight ?? 1,
    };
    let discriminatorStep: { loss: TensorValue; training: TrainingGraph } | undefined;
    const generatorStep = () => {
      const adversarial = (relativistic ? relativisticGeneratorPass : vanillaGeneratorPass)(passes);
      const content = options.content ? addLoss(graph, options.content, fake, target, { ctx }) : undefined;
      release = content ? content.dispose : release;
      const gradient = content ? sumTensors(graph, [adversarial.grad, content.grad], 'G loss gradient') : adversarial.grad;
      gTraining.backward([[fake, gradient]]);
      g.addUpdate(graph);
      return { adversarial: adversarial.loss, content: content?.loss };
    };
    // pix2pix updates D first and G through the updated D; BasicSR's ESRGAN updates G first, then D.
    if (!relativistic) discriminatorStep = vanillaDiscriminatorStep(passes);
    const generated = generatorStep();
    if (relativistic) discriminatorStep = relativisticDiscriminatorStep(passes);
    const dTraining = discriminatorStep!.training;

    graph.output(discriminatorStep!.loss);
    graph.output(generated.adversarial);
    if (generated.content) graph.output(generated.content);
    if (options.returnOutput) graph.output(fake);
    return {
      dispose: () => {
        g.dispose();
        d!.dispose();
        release();
      },
      graph,
      g,
      d,
      shapes: { input: input.shape, output: fake.shape },
      unused: { g: g.unused(gTraining), d: d.unused(dTraining) },
    };
  } catch (e) {
    g.dispose();
    d?.dispose();
    release();
    throw e;
  }
}

/** What the discriminator's and the generator's passes share. */
interface Passes {
  ctx: GPUContext;
  graph: Graph;
  discriminator: Module;
  d: NetworkState;
  batchNorm: BatchNormMode;
  input: TensorValue;
  fake: TensorValue;
  target: TensorValue;
  conditional: boolean;
  adversarialWeight: number;
}

/** A discriminator pass that learns (its gradients go to D's arena); G's output is not tracked there: detached. */
function learningDiscriminator(p: Passes) {
  const training = p.d.trainingGraph(new GradientTape(p.graph), p.batchNorm);
  const builder = new ForwardBuilder(p.ctx, p.graph, training);
  const judged = (image: TensorValue, label: string) =>
    p.conditional ? concatChannels(p.graph, p.input, image, {}, `cat(x, ${label})`) : image;
  const judge = (image: TensorValue, label: string) => p.discriminator.forward(builder, judged(image, label), { label: `D(${label})` });
  return { training, judge };
}

/**
 * The frozen discriminator of the generator's step, on G(x) (tracked, so the gradient reaches G) and, when `real`
 * is asked for, on the target (untracked: its logits are detached).
 */
function frozenDiscriminator(p: Passes) {
  const training = p.d.trainingGraph(new GradientTape(p.graph), p.batchNorm, false);
  training.tape.track(p.fake);
  const builder = new ForwardBuilder(p.ctx, p.graph, training);
  const judge = (image: TensorValue, label: string) => {
    const judged = p.conditional ? concat(builder, p.input, image, {}, `cat(x, ${label}) for G`) : image;
    return p.discriminator.forward(builder, judged, { label: `D'(${label})` });
  };
  return { training, judge };
}

/** The adversarial gradient with respect to G(x), played back through the frozen discriminator. */
function adversarialGradient(training: TrainingGraph, logits: TensorValue, grad: TensorValue, fake: TensorValue): TensorValue {
  training.backward([[logits, grad]]);
  const g = training.tape.gradient(fake);
  if (!g) throw new InvalidInputError('the discriminator passed no gradient back to the generator output');
  return g;
}

/** pix2pix: L_D = ½[ℓ(D(G(x).detach()), 0) + ℓ(D(y), 1)] (fake first, as its backward_D), then D's update. */
function vanillaDiscriminatorStep(p: Passes) {
  const { training, judge } = learningDiscriminator(p);
  const logitsFake = judge(p.fake, 'G(x)');
  const logitsReal = judge(p.target, 'y');
  const losses = vanillaGanLosses(p.graph, { real: logitsReal, fake: logitsFake }, { label: 'D loss', forGenerator: false });
  training.backward([
    [logitsFake, losses.fake.grad],
    [logitsReal, losses.real!.grad],
  ]);
  p.d.addUpdate(p.graph);
  return { loss: sumTensors(p.graph, [losses.real!.loss, losses.fake.loss], 'D loss'), training };
}

/** pix2pix: w·ℓ(D(G(x)), 1) through the (updated) frozen discriminator. */
function vanillaGeneratorPass(p: Passes): { loss: TensorValue; grad: TensorValue } {
  const { training, judge } = frozenDiscriminator(p);
  const logits = judge(p.fake, 'G(x)');
  const { fake } = vanillaGanLosses(p.graph, { fake: logits }, { label: 'G adversarial', forGenerator: true, weight: p.adversarialWeight });
  return { loss: fake.loss, grad: adversarialGradient(training, logits, fake.grad, p.fake) };
}

/**
 * BasicSR's ESRGAN generator term (models/esrgan_model.py): real = D(y).detach(), fake = D(G(x)),
 * w·½[ℓ(real − mean fake, 0) + ℓ(fake − mean real, 1)], back-propagated through fake only.
 */
function relativisticGeneratorPass(p: Passes): { loss: TensorValue; grad: TensorValue } {
  const { training, judge } = frozenDiscriminator(p);
  const real = judge(p.target, 'y');
  const fake = judge(p.fake, 'G(x)');
  const r = relativisticGanLoss(p.graph, real, fake, { label: 'G adversarial', forGenerator: true, weight: p.adversarialWeight });
  return { loss: r.loss, grad: adversarialGradient(training, fake, r.gradFake, p.fake) };
}

/**
 * BasicSR's ESRGAN discriminator step, after G's update, with its three forwards (each moves D's BatchNorm
 * statistics, as there): f = D(G(x)).detach() for the mean, r = D(y), then D(G(x).detach()) again, which the
 * fake term's gradient goes through: ½ℓ(r − mean f, 1) + ½ℓ(f − mean r.detach(), 0), then D's update. The
 * second D(G(x)) equals the first (same weights, same batch), so the loss kernel reads the first.
 */
function relativisticDiscriminatorStep(p: Passes) {
  const { training, judge } = learningDiscriminator(p);
  const fakeForMean = judge(p.fake, 'G(x) for the mean');
  const real = judge(p.target, 'y');
  const fake = judge(p.fake, 'G(x)');
  const r = relativisticGanLoss(p.graph, real, fakeForMean, { label: 'D loss', forGenerator: false });
  training.backward([
    [real, r.gradReal],
    [fake, r.gradFake],
  ]);
  p.d.addUpdate(p.graph);
  return { loss: r.loss, training };
}
