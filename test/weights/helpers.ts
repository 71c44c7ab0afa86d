/** Shared helpers for the checkpoint-reader tests: fixture loading and comparison against PyTorch's values. */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { CheckpointError } from '../../src/errors';
import type { CpuTensor } from '../../src/weights';

export const FIXTURES = new URL('../fixtures/weights/', import.meta.url);
/** The real KAIR DnCNN checkpoint lives next to the repository, in the shared data folder. */
/** The built-in model the package ships (a copy of shared/data/weights/dncnn_25.pth, checked by sha256 below). */
export const DNCNN_URL = new URL('../../assets/dncnn_25.pth', import.meta.url);

export function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(name, FIXTURES)));
}

export interface ExpectedTensor {
  dtype: string;
  shape: number[];
  /** Floats as numbers or 'nan' / 'inf' / '-inf'; int64 as decimal strings; other ints and bools as numbers. */
  values: (number | string)[];
}

export interface ExpectedFixture {
  format: string;
  state_dict?: Record<string, ExpectedTensor>;
  top_level_keys?: string[];
  scalars?: Record<string, number | string>;
  unsafe_global?: string;
  marker_file?: string;
  first_nonfinite?: string;
  loaded_by_torch?: boolean;
  /** Whole pickled models: the class of the root module (null when the model sits inside a dict). */
  module_class?: string | null;
  /** safetensors: the __metadata__ written. */
  metadata?: Record<string, string>;
  /** safetensors written with our writer's conventions, so writing its tensors back gives the same bytes. */
  byte_identical_rewrite?: boolean;
}

export const EXPECTED = JSON.parse(readFileSync(new URL('expected.json', FIXTURES), 'utf8')) as {
  torch_version: string;
  fixtures: Record<string, ExpectedFixture>;
};

function expectedNumber(v: number | string): number {
  if (v === 'nan') return NaN;
  if (v === 'inf') return Infinity;
  if (v === '-inf') return -Infinity;
  return v as number;
}

/** Exact comparison (Object.is per element, so -0 and NaN count) of a tensor with PyTorch's values. */
export function expectTensorMatches(actual: CpuTensor | undefined, expected: ExpectedTensor, key: string): void {
  expect(actual, `tensor '${key}'`).toBeDefined();
  const t = actual!;
  expect(t.dtype, `dtype of '${key}'`).toBe(expected.dtype);
  expect(t.shape, `shape of '${key}'`).toEqual(expected.shape);
  expect(t.data.length, `length of '${key}'`).toBe(expected.values.length);
  if (t.dtype === 'int64') {
    expect(t.data).toBeInstanceOf(BigInt64Array);
    const got = Array.from(t.data as BigInt64Array, (x) => x.toString());
    expect(got, `values of '${key}'`).toEqual(expected.values);
    return;
  }
  const got = Array.from(t.data as ArrayLike<number>);
  const want = expected.values.map(expectedNumber);
  const mismatches = got.flatMap((g, i) => (Object.is(g, want[i]) ? [] : [`[${i}] ${g} != ${want[i]}`]));
  expect(mismatches, `values of '${key}'`).toEqual([]);
}

/** Run `fn`, require a CheckpointError with one of `codes`, and return it for further checks. */
export function expectCheckpointError(fn: () => unknown, codes: readonly string[]): CheckpointError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected an error').toBeDefined();
  if (!(caught instanceof CheckpointError)) {
    throw new Error(`expected a CheckpointError, got ${String(caught)}`, { cause: caught });
  }
  expect(codes).toContain(caught.code);
  return caught;
}

/** Small deterministic PRNG (mulberry32) for the fuzz tests. */
export { seededRandom as rng } from '../helpers/random';
