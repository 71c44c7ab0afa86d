import { checkArgs, checkOptionFields, FINITE_NUMBER, instanceOf, NUMBERS, OBJECT, oneOf, BOOLEAN, rule } from '../check-args';
import { DisposedError, InvalidInputError, TrainingDivergedError } from '../errors';
import { GPUContext } from '../gpu/context';
import { Graph, type TensorValue } from '../gpu/graph';
import { Plan } from '../gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw, type Shape4 } from '../gpu/tensor';
import { concatChannels } from '../kernels/concat';
import { vanillaGanLosses } from '../kernels/loss-bce';
import { sumTensors } from '../kernels/reduce';
import { concat } from '../layers/autograd-ops';
import { ForwardBuilder } from '../layers/forward-builder';
import { GradientTape } from '../layers/gradient-tape';
import type { Module, Parameter } from '../layers/module';
import type { BatchNormMode } from '../layers/training-graph';
import type { Network } from '../models/network';
import { addLoss, checkLossConfig, type LossConfig, lossNeedsMask } from './loss-config';
import { NetworkState, type NetworkTraining, type TrainedTensor } from './network-state';
import { DEFAULT_LR } from './parameter-groups';

export interface GanTrainerOptions {
  /** The generator's input batch, PyTorch-style [N, C, H, W]. */
  batchShape: readonly [n: number, c: number, h: number, w: number];
  generator: NetworkTraining;
  discriminator: NetworkTraining;
  /** The generator's content loss against the target (pix2pix: L1 with weight λ = 100); none by default. */
  content?: LossConfig;
  /** The weight of the adversarial term in the generator's loss (1 by default, as pix2pix). */
  adversarialWeight?: number;
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
 * Trains a generator against a discriminator (a PatchGAN, say) with the vanilla GAN loss (BCE with logits), one
 * step as pix2pix's `optimize_parameters` (training.md §2.6), all on the GPU in one plan:
 *   fake = G(x)
 *   discriminator: L_D = ½[ℓ(D(fake.detach()), 0) + ℓ(D(real), 1)], backward, D's update;
 *   generator, D frozen: L_G = w·ℓ(D(fake), 1) + content(fake, target), backward through the updated D into G,
 *   G's update.
 * D's BatchNorms stay in train mode throughout, as PyTorch's (their running statistics move with each of its
 * three forwards). The discriminator's two passes share its parameters: their gradients add up.
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
      const plan = await Plan.compile(ctx, built.graph);
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
    if (conditional && (input.shape[1] !== fake.shape[1] || input.shape[2] !== fake.shape[2])) {
      throw new InvalidInputError(`a conditional discriminator needs input and output of one size, got ×${generator.scale}`);
    }

    // The discriminator's step: its tape does not track G's output, which is so detached from G.
    const dTraining = d.trainingGraph(new GradientTape(graph), batchNorm);
    const dBuilder = new ForwardBuilder(ctx, graph, dTraining);
    const judged = (image: TensorValue, label: string) => (conditional ? concatChannels(graph, input, image, {}, label) : image);
    const logitsFake = discriminator.forward(dBuilder, judged(fake, 'cat(x, G(x))'), { label: 'D(fake)' });
    const logitsReal = discriminator.forward(dBuilder, judged(target, 'cat(x, y)'), { label: 'D(real)' });
    const dLosses = vanillaGanLosses(graph, { real: logitsReal, fake: logitsFake }, { label: 'D loss', forGenerator: false });
    dTraining.backward([
      [logitsFake, dLosses.fake.grad],
      [logitsReal, dLosses.real!.grad],
    ]);
    d.addUpdate(graph);
    const discriminatorLoss = sumTensors(graph, [dLosses.real!.loss, dLosses.fake.loss], 'D loss');

    // The generator's step: the updated discriminator, frozen, passes the adversarial gradient back to G(x).
    const frozenD = d.trainingGraph(new GradientTape(graph), batchNorm, false);
    frozenD.tape.track(fake);
    const frozenBuilder = new ForwardBuilder(ctx, graph, frozenD);
    const judgedByG = conditional ? concat(frozenBuilder, input, fake, {}, 'cat(x, G(x)) for G') : fake;
    const logitsG = discriminator.forward(frozenBuilder, judgedByG, { label: "D'(fake)" });
    const adversarial = vanillaGanLosses(
      graph,
      { fake: logitsG },
      { label: 'G adversarial', forGenerator: true, weight: options.adversarialWeight ?? 1 },
    ).fake;
    frozenD.backward([[logitsG, adversarial.grad]]);
    const adversarialGrad = frozenD.tape.gradient(fake);
    if (!adversarialGrad) throw new InvalidInputError('the discriminator passed no gradient back to the generator output');
    const content = options.content ? addLoss(graph, options.content, fake, target, { ctx }) : undefined;
    release = content ? content.dispose : release;
    const gradient = content ? sumTensors(graph, [adversarialGrad, content.grad], 'G loss gradient') : adversarialGrad;
    gTraining.backward([[fake, gradient]]);
    g.addUpdate(graph);

    graph.output(discriminatorLoss);
    graph.output(adversarial.loss);
    if (content) graph.output(content.loss);
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
