import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import { type Activation, RELU } from '../kernels/activation';
import type { Epilogue, ForwardBuilder, ForwardOptions } from './forward-builder';
import { Module } from './module';

/**
 * A parameter-free activation. It has no kernel of its own: it runs in the epilogue of the module before it
 * (Sequential fuses it there through `asEpilogue`), so every place it appears costs no dispatch.
 */
abstract class FusedActivation extends Module {
  protected abstract readonly activation: Activation;

  /** As an epilogue of a module that trains, whose backward undoes it (or refuses it). */
  override get supportsTraining(): boolean {
    return true;
  }

  override asEpilogue(): Epilogue {
    return { activation: this.activation };
  }

  forward(_b: ForwardBuilder, _x: TensorValue, options: ForwardOptions = {}): TensorValue {
    throw new InvalidInputError(
      `${options.label ?? this.constructor.name}: ${this.constructor.name} runs fused into the module before it, not on its own`,
    );
  }
}

/** nn.ReLU. */
export class ReLU extends FusedActivation {
  protected readonly activation = RELU;
}

/** nn.LeakyReLU(negative_slope), 0.01 by default as PyTorch's. */
export class LeakyReLU extends FusedActivation {
  protected readonly activation: Activation;

  constructor(readonly negativeSlope = 0.01) {
    super();
    if (!(Number.isFinite(negativeSlope) && negativeSlope >= 0)) {
      throw new InvalidInputError(`LeakyReLU negative_slope must be a finite number ≥ 0, got ${negativeSlope}`);
    }
    this.activation = { kind: 'leakyRelu', alpha: negativeSlope };
  }
}

/** nn.GELU() (exact, erf). */
export class GELU extends FusedActivation {
  protected readonly activation: Activation = { kind: 'gelu' };
}

/** nn.Sigmoid. */
export class Sigmoid extends FusedActivation {
  protected readonly activation: Activation = { kind: 'sigmoid' };
}
