import { InvalidInputError } from '../errors';
import type { BufferRange } from '../gpu/graph';
import type { ParameterArena } from '../gpu/parameter-arena';
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

  constructor(
    readonly tape: GradientTape,
    /** Arenas of parameters that learn (one per parameter group), with roles 'value' and 'grad'. */
    private readonly learning: readonly ParameterArena[],
    /** Parameters that stay as they are (frozen) and buffers (running statistics), role 'value'. */
    private readonly fixed: ParameterArena,
    readonly batchNorm: BatchNormMode,
  ) {}

  private arenaOf(p: Parameter): ParameterArena | undefined {
    return this.learning.find((a) => a.has(p)) ?? (this.fixed.has(p) ? this.fixed : undefined);
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

  /** The GPU range the backward writes `p`'s gradient into (overwritten each step). */
  grad(p: Parameter, what: string): BufferRange {
    const arena = this.learning.find((a) => a.has(p));
    if (!arena) throw new InvalidInputError(`${what}: this parameter does not learn`);
    if (this.gradWritten.has(p)) {
      throw new InvalidInputError(`${what}: the parameter is used twice in one step; shared weights cannot be trained yet`);
    }
    this.gradWritten.add(p);
    return arena.range(p, 'grad');
  }

  private readonly gradWritten = new Set<Parameter>();
}
