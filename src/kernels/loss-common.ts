import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import { formatShape } from '../gpu/tensor';

/** A loss and its gradient: `loss` is [1, 1, 1, 1] with the scalar in channel 0; `grad` = d loss / d pred. */
export interface LossResult {
  loss: TensorValue;
  grad: TensorValue;
}

/** `weight` multiplies both the loss and its gradient, so several weighted losses can be summed (sumTensors). */
export interface LossOptions {
  label: string;
  weight?: number;
}

/** The checked weight (1 if not given). */
export function lossWeight(options: LossOptions): number {
  const w = options.weight ?? 1;
  if (!Number.isFinite(w)) throw new InvalidInputError(`${options.label}: weight must be a finite number, got ${w}`);
  return w;
}

export function checkLossShapes(pred: TensorValue, other: TensorValue, what: string, label: string): void {
  if (pred.shape.some((d, i) => d !== other.shape[i])) {
    throw new InvalidInputError(`${label}: ${what} ${formatShape(other.shape)} does not match pred ${formatShape(pred.shape)}`);
  }
}

/** WGSL: the sum of a vec4's lanes, in a fixed order. */
export function laneSum(v: string): string {
  return `((${v}).x + (${v}).y) + ((${v}).z + (${v}).w)`;
}
