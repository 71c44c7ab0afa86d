/**
 * What a Trainer holds on the GPU, measured rather than recomputed: every buffer the context creates while the
 * trainer is made and while it runs its first step is recorded (size and label), then sorted into the step plan's
 * activation slots, the arenas (parameters, gradients, optimizer state, BatchNorm buffers), the copies of the
 * state a step takes before it updates (made on the first step, kept for a non-finite loss) and the rest
 * (uniforms, readback staging, the step scalars). Buffers destroyed again before the recording ends (the trainer
 * builds a step twice when some parameters get no gradient) are counted apart. Later steps allocate nothing more,
 * so the sum of what is left is the peak a step needs.
 */
import type { GPUContext } from '../src/gpu/context';

export interface AllocatedBuffer {
  label: string;
  bytes: number;
  /** Destroyed before the recording ended (e.g. the first build of a step that the trainer makes again). */
  destroyed?: boolean;
}

/**
 * Runs `work` with `ctx.createBuffer` wrapped so that every buffer it creates is recorded, and each one's
 * `destroy` so that a buffer freed again is marked. The context's buffer pool should be trimmed first, or
 * activation slots it still has are reused and not seen.
 */
export async function recordAllocations<T>(ctx: GPUContext, work: () => Promise<T>): Promise<{ result: T; buffers: AllocatedBuffer[] }> {
  const buffers: AllocatedBuffer[] = [];
  const create = ctx.createBuffer.bind(ctx);
  // An own property shadows the prototype's method for this context only; deleting it restores the method.
  ctx.createBuffer = (descriptor, what) => {
    const buffer = create(descriptor, what);
    const entry: AllocatedBuffer = { label: what, bytes: buffer.size };
    buffers.push(entry);
    const destroy = buffer.destroy.bind(buffer);
    buffer.destroy = () => {
      entry.destroyed = true;
      destroy();
    };
    return buffer;
  };
  try {
    return { result: await work(), buffers };
  } finally {
    Reflect.deleteProperty(ctx, 'createBuffer');
  }
}

const BACKUP_SUFFIX = ' before step';

export interface TrainerMemory {
  /** The step plan's activation slots (after liveness sharing): forward activations kept for the backward, gradients. */
  activations: number;
  /** The learnt parameters' values (arena 'value'). */
  parameters: number;
  /** Their gradients (arena 'grad'). */
  gradients: number;
  /** The optimizer's state (Adam: exp_avg and exp_avg_sq). */
  optimizerState: number;
  /** Tensors that do not learn (BatchNorm running statistics, frozen parameters). */
  buffers: number;
  /** The parameters, optimizer state and buffers as they were before the step (the '<role> before step' copies). */
  backups: number;
  /** Uniforms, readback staging, the optimizer's per-step scalars, timestamp queries. */
  other: number;
  /** What the trainer holds: the sum of the above. */
  total: number;
  /** Made and destroyed again while recording (not in `total`): a step graph built twice, temporary uploads. */
  freed: number;
}

/**
 * Sorts a trainer's buffers by the labels trainer.ts and its helpers give them: 'activation slot i' (plan.ts),
 * '<architecture> parameters <role>' and '<architecture> buffers <role>' (parameter-arena.ts; network-state.ts
 * names the backups '<role> before step'). A label that changes moves its bytes to `other`; the total stays right.
 */
export function classifyTrainerMemory(buffers: readonly AllocatedBuffer[], architecture: string): TrainerMemory {
  const m: TrainerMemory = {
    activations: 0,
    parameters: 0,
    gradients: 0,
    optimizerState: 0,
    buffers: 0,
    backups: 0,
    other: 0,
    total: 0,
    freed: 0,
  };
  const learnt = `${architecture} parameters `;
  const fixed = `${architecture} buffers `;
  for (const { label, bytes, destroyed } of buffers) {
    if (destroyed) {
      m.freed += bytes;
      continue;
    }
    m.total += bytes;
    if (label.startsWith('activation slot')) m.activations += bytes;
    else if ((label.startsWith(learnt) || label.startsWith(fixed)) && label.endsWith(BACKUP_SUFFIX)) m.backups += bytes;
    else if (label.startsWith(learnt)) {
      const role = label.slice(learnt.length);
      if (role === 'value') m.parameters += bytes;
      else if (role === 'grad') m.gradients += bytes;
      else m.optimizerState += bytes;
    } else if (label.startsWith(fixed)) m.buffers += bytes;
    else m.other += bytes;
  }
  return m;
}
