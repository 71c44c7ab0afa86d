import { InvalidInputError } from '../errors';
import type { Graph, TensorValue } from '../gpu/graph';
import { binary } from '../kernels/elementwise';

/** What a recorded step's backward is handed: the gradients of its outputs, and a way to pass gradients on. */
export interface BackwardContext {
  /** The gradient flowing into `t` (a forward output of this step), or undefined if nothing downstream used it. */
  gradOf(t: TensorValue): TensorValue | undefined;
  /** Adds `g` to the gradient of `t` (a forward input of this step); a no-op for tensors that need none. */
  addGrad(t: TensorValue, g: TensorValue): void;
  /** Whether `t` needs a gradient at all (it depends on something that learns), so its kernels can be skipped. */
  needsGrad(t: TensorValue): boolean;
}

interface TapeEntry {
  label: string;
  outputs: TensorValue[];
  backward: (c: BackwardContext) => void;
}

/**
 * Reverse mode over a graph: forward steps record a backward closure as they add their dispatches, and
 * `backward` replays them in reverse, appending the gradient dispatches to the same graph. The plan's liveness
 * analysis then keeps each activation alive until its last backward use, and frees it after.
 *
 * A tensor read by several steps gets the sum of their gradients, added in the fixed reverse order of the
 * steps (no atomics anywhere, so a run is bitwise reproducible). Steps whose outputs received no gradient are
 * skipped, and so are gradients of tensors that do not depend on anything that learns (the input image).
 */
export class GradientTape {
  private readonly entries: TapeEntry[] = [];
  /** Tensors that depend on a learnable parameter (or on an input marked as needing a gradient). */
  private readonly tracked = new Set<number>();
  private used = false;
  private readonly grads = new Map<number, TensorValue>();

  constructor(readonly graph: Graph) {}

  /** Marks `t` as needing a gradient (an input whose gradient the caller wants). */
  track(t: TensorValue): void {
    this.tracked.add(t.id);
  }

  needsGrad(t: TensorValue): boolean {
    return this.tracked.has(t.id);
  }

  /**
   * Records one forward step: its outputs need gradients when any input does or when the step itself holds
   * learnable parameters (`learns`). `backward` runs later, in reverse order.
   */
  record(
    label: string,
    inputs: readonly TensorValue[],
    outputs: readonly TensorValue[],
    learns: boolean,
    backward: (c: BackwardContext) => void,
  ): void {
    if (this.used) throw new InvalidInputError(`${label}: the tape has already been played back`);
    if (!learns && !inputs.some((t) => this.tracked.has(t.id))) return;
    for (const t of outputs) this.tracked.add(t.id);
    this.entries.push({ label, outputs: [...outputs], backward });
  }

  /** After `backward`: the summed gradient that reached `t`, if any (an input the caller tracked, say). */
  gradient(t: TensorValue): TensorValue | undefined {
    if (!this.used) throw new InvalidInputError('gradients exist once the tape has been played back');
    return this.grads.get(t.id);
  }

  /** Plays the tape back from `seeds` (a loss's gradient with respect to the network output, for one). */
  backward(seeds: readonly (readonly [TensorValue, TensorValue])[]): void {
    if (this.used) throw new InvalidInputError('the tape can be played back once');
    this.used = true;
    const grads = this.grads;
    const add = (t: TensorValue, g: TensorValue, label: string) => {
      if (!this.tracked.has(t.id)) return;
      if (g.shape.some((d, i) => d !== t.shape[i])) {
        throw new InvalidInputError(`${label}: gradient ${g.shape.join('x')} does not match tensor '${t.label}' ${t.shape.join('x')}`);
      }
      const before = grads.get(t.id);
      grads.set(t.id, before ? binary(this.graph, 'add', before, g, `${label} grad sum`) : g);
    };
    for (const [t, g] of seeds) add(t, g, 'seed');
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const entry = this.entries[i];
      if (!entry.outputs.some((t) => grads.has(t.id))) continue;
      entry.backward({
        gradOf: (t) => grads.get(t.id),
        addGrad: (t, g) => add(t, g, entry.label),
        needsGrad: (t) => this.tracked.has(t.id),
      });
    }
  }
}
