import { InvalidInputError } from '../../errors';
import { createRng } from '../../io/noise';

/** Fractions of the images per split (PyTorch users' 70/20/10 by default, as in the seeds' training code). */
export interface SplitFractions {
  train: number;
  validation: number;
  test: number;
}

export const DEFAULT_SPLIT: SplitFractions = { train: 0.7, validation: 0.2, test: 0.1 };

/**
 * Splits `count` items (whole images, so no patch of a validation image is ever trained on) into train,
 * validation and test index lists with a seeded shuffle: the same seed gives the same split everywhere.
 * Validation and test get round(fraction · count) items; the training split keeps at least one.
 */
export function splitIndices(
  count: number,
  fractions: SplitFractions = DEFAULT_SPLIT,
  seed = 0,
): { train: number[]; validation: number[]; test: number[] } {
  const { train, validation, test } = fractions;
  if (
    ![train, validation, test].every((f) => Number.isFinite(f) && f >= 0) ||
    Math.abs(train + validation + test - 1) > 1e-9 ||
    train <= 0
  ) {
    throw new InvalidInputError(`split fractions must be ≥ 0, sum to 1 and train > 0, got ${train}/${validation}/${test}`);
  }
  const order = shuffled(count, seed);
  let nVal = Math.round(validation * count);
  let nTest = Math.round(test * count);
  while (count - nVal - nTest < 1 && (nVal > 0 || nTest > 0)) {
    if (nTest >= nVal && nTest > 0) nTest--;
    else nVal--;
  }
  return { validation: order.slice(0, nVal), test: order.slice(nVal, nVal + nTest), train: order.slice(nVal + nTest) };
}

/** 0 … count−1 in a seeded Fisher–Yates order. */
export function shuffled(count: number, seed: number): number[] {
  const rng = createRng(seed);
  const out = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
