import { InvalidInputError } from '../errors';
import type { BufferRange, TensorValue } from '../gpu/graph';
import type { ParameterArena } from '../gpu/parameter-arena';
import { accumulateFlat } from '../kernels/grad-accumulate';
import type { GradientTape } from './gradient-tape';
import type { Parameter } from './module';

/**
 * BatchNorm in training: 'train' normalises with batch statistics and updates the running ones (PyTorch's
 * `model.train()`); 'frozen' uses the running statistics as in eval mode and only learns γ and β (the choice for
 * fine-tuning with small batches).
 */
export type BatchNormMode = 'train' | 'frozen';

/**
 * What a module's `forward` sees when the builder builds a training graph: where each parameter lives on the
 * GPU (in PyTorch's layout, so the update, clipping and checkpoints need no repacking), whether it learns, and
 * the tape its backward is recorded on.
 */
export class TrainingGraph {
  /** Forward steps of BatchNorms in 'train' mode, in graph order: the trainer counts num_batches_tracked. */
  readonly batchNormsStepped: object[] = [];

  private readonly fixed: readonly ParameterArena[];

  constructor(
    readonly tape: GradientTape,
    /** Arenas of parameters that learn (one per parameter group), with roles 'value' and 'grad'. */
    private readonly learning: readonly ParameterArena[],
    /** Parameters that stay as they are (frozen) and buffers (running statistics), role 'value'. */
    fixed: ParameterArena | readonly ParameterArena[],
    readonly batchNorm: BatchNormMode,
  ) {
    this.fixed = Array.isArray(fixed) ? fixed : [fixed as ParameterArena];
  }

  private arenaOf(p: Parameter): ParameterArena | undefined {
    return this.learning.find((a) => a.has(p)) ?? this.fixed.find((a) => a.has(p));
  }

  /** Whether `p` learns (gets a gradient and an update). */
  learns(p: Parameter): boolean {
    return this.learning.some((a) => a.has(p));
  }

  /** The GPU range holding `p`'s current value (PyTorch layout, vec4-padded with zeros). */
  value(p: Parameter, what: string): BufferRange {
    const arena = this.arenaOf(p);
    if (!arena) throw new InvalidInputError(`${what}: this parameter is not part of the training run`);
    return arena.range(p, 'value');
  }

  /**
   * The GPU range the backward writes `p`'s gradient into (overwritten each step). A parameter used several
   * times in one step (shared weights: a discriminator run on real and on generated images) gets a range of
   * its own per later use; `backward` sums them into the gradient afterwards.
   */
  grad(p: Parameter, what: string): BufferRange {
    const arena = this.learning.find((a) => a.has(p));
    if (!arena) throw new InvalidInputError(`${what}: this parameter does not learn`);
    const use = (this.gradUses.get(p) ?? 0) + 1;
    this.gradUses.set(p, use);
    if (use === 1) return arena.range(p, 'grad');
    this.extraUses.set(arena, Math.max(this.extraUses.get(arena) ?? 1, use));
    return arena.range(p, `${EXTRA_USE_ROLE}${use}`);
  }

  /** Whether a backward asked for `p`'s gradient (false for a parameter no output depends on). */
  gradientRequested(p: Parameter): boolean {
    return this.gradUses.has(p);
  }

  /**
   * Where the backward of a module whose parameters stay fixed may write their gradients, which its kernels
   * compute anyway (BatchNorm's γ and β in a frozen discriminator): a scratch role nobody reads.
   */
  discardedGrad(p: Parameter, what: string): BufferRange {
    const arena = this.arenaOf(p);
    if (!arena) throw new InvalidInputError(`${what}: this parameter is not part of the training run`);
    return arena.range(p, 'discarded grad');
  }

  /**
   * Plays the tape back from `seeds`, then adds the gradients of the later uses of shared parameters into their
   * gradient, in the order of the uses (the reverse of the forward order, as PyTorch accumulates `.grad`).
   */
  backward(seeds: readonly (readonly [TensorValue, TensorValue])[]): void {
    this.tape.backward(seeds);
    for (const [arena, uses] of this.extraUses) {
      for (let use = 2; use <= uses; use++) {
        const label = `${arena.label}: gradient of use ${use} of shared parameters`;
        accumulateFlat(this.tape.graph, arena.whole('grad'), arena.whole(`${EXTRA_USE_ROLE}${use}`), arena.elements, label);
      }
    }
  }

  private readonly gradUses = new Map<Parameter, number>();
  private readonly extraUses = new Map<ParameterArena, number>();
}

/** Arena roles of the gradients of later uses of a shared parameter: 'grad of use 2', … */
const EXTRA_USE_ROLE = 'grad of use ';
