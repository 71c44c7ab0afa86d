/** canonicalizeStateDict, takeTensor, checkNoUnexpected, checkFinite and the CpuTensor helpers. */
import { describe, expect, it } from 'vitest';
import { CheckpointError, StateDictError } from '../../src/errors';
import {
  canonicalizeStateDict,
  checkFinite,
  checkNoUnexpected,
  numel,
  takeTensor,
  toFloat32,
  toFloat64,
  type CpuTensor,
  type StateDict,
} from '../../src/weights';
import { float16BitsToNumber } from '../../src/weights/storage';

const t = (shape: number[], fill = 0): CpuTensor => ({ dtype: 'float32', shape, data: new Float32Array(numel(shape)).fill(fill) });
const dict = (entries: [string, unknown][]) => new Map<unknown, unknown>(entries);

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}

describe('canonicalizeStateDict', () => {
  it('keeps a flat state dict as is', () => {
    const sd = canonicalizeStateDict(
      dict([
        ['a.weight', t([2])],
        ['a.bias', t([1])],
      ]),
    );
    expect([...sd.keys()]).toEqual(['a.weight', 'a.bias']);
  });

  it('unwraps the first wrapper key in order of preference', () => {
    const inner = (k: string) => dict([[k, t([1])]]);
    const root = dict([
      ['net', inner('from_net')],
      ['params', inner('from_params')],
      ['params_ema', inner('from_ema')],
    ]);
    expect([...canonicalizeStateDict(root).keys()]).toEqual(['from_ema']);
    root.delete('params_ema');
    expect([...canonicalizeStateDict(root).keys()]).toEqual(['from_params']);
    // A wrapper key whose value holds no tensors is skipped.
    root.set('params', dict([['lr', 0.1]]));
    expect([...canonicalizeStateDict(root).keys()]).toEqual(['from_net']);
    expect([
      ...canonicalizeStateDict(
        dict([
          ['model_state_dict', inner('x')],
          ['epoch', 3],
        ]),
      ).keys(),
    ]).toEqual(['x']);
  });

  it('unwraps single-key dicts and flattens nesting with dots', () => {
    const root = dict([
      [
        'generator',
        dict([
          [
            'body',
            dict([
              ['0', dict([['weight', t([1])]])],
              ['1', t([1])],
            ]),
          ],
        ]),
      ],
    ]);
    expect([...canonicalizeStateDict(root).keys()]).toEqual(['0.weight', '1']);
  });

  it('strips module. and netG. only when every key has them', () => {
    const all = canonicalizeStateDict(
      dict([
        ['module.netG.a', t([1])],
        ['module.netG.b', t([1])],
      ]),
    );
    expect([...all.keys()]).toEqual(['a', 'b']);
    const some = canonicalizeStateDict(
      dict([
        ['module.a', t([1])],
        ['b', t([1])],
      ]),
    );
    expect([...some.keys()]).toEqual(['module.a', 'b']);
  });

  it('drops non-tensor entries and survives cycles', () => {
    const root = dict([
      ['w', t([1])],
      ['epoch', 5],
      ['name', 'x'],
      ['list', [t([1])]],
    ]);
    root.set('self', root);
    expect([...canonicalizeStateDict(root).keys()]).toEqual(['w']);
  });

  it('explains inputs without tensors', () => {
    const none = catchError(() =>
      canonicalizeStateDict(
        dict([
          ['epoch', 1],
          ['optimizer', dict([])],
        ]),
      ),
    ) as CheckpointError;
    expect(none.code).toBe('CHECKPOINT_FORMAT');
    expect(none.message).toMatch(/no tensors found.*'epoch', 'optimizer'/);
    expect((catchError(() => canonicalizeStateDict(t([2]))) as CheckpointError).message).toMatch(/single tensor/);
    expect((catchError(() => canonicalizeStateDict([1, 2])) as CheckpointError).message).toMatch(/list/);
  });

  it('rejects two tensors with the same flattened name', () => {
    const root = dict([
      ['a.b', t([1])],
      ['a', dict([['b', t([1])]])],
    ]);
    expect((catchError(() => canonicalizeStateDict(root)) as CheckpointError).message).toMatch(/'a.b'/);
  });
});

describe('takeTensor / checkNoUnexpected / checkFinite', () => {
  const sd: StateDict = new Map([
    ['model.0.weight', t([64, 1, 3, 3])],
    ['model.0.bias', t([64])],
    ['model.2.weight', t([64, 64, 3, 3])],
    ['bn.num_batches_tracked', { dtype: 'int64', shape: [], data: new BigInt64Array([3n]) }],
  ]);

  it('returns a tensor with the expected shape', () => {
    expect(takeTensor(sd, 'model.0.bias', [64]).shape).toEqual([64]);
    expect(takeTensor(sd, 'model.0.bias').shape).toEqual([64]);
  });

  it('MISSING_KEY names the key and lists similar available keys', () => {
    const err = catchError(() => takeTensor(sd, 'model.4.weight', [64, 64, 3, 3])) as StateDictError;
    expect(err).toBeInstanceOf(StateDictError);
    expect(err.code).toBe('MISSING_KEY');
    expect(err.keys).toEqual(['model.4.weight']);
    expect(err.message).toContain("'model.4.weight'");
    expect(err.message).toContain("'model.0.weight'");
  });

  it('SHAPE_MISMATCH names key, expected and actual shapes', () => {
    const err = catchError(() => takeTensor(sd, 'model.0.weight', [64, 3, 3, 3])) as StateDictError;
    expect(err.code).toBe('SHAPE_MISMATCH');
    expect(err.keys).toEqual(['model.0.weight']);
    expect(err.message).toContain('[64, 1, 3, 3]');
    expect(err.message).toContain('[64, 3, 3, 3]');
    expect((catchError(() => takeTensor(sd, 'model.0.bias', [64, 1])) as StateDictError).code).toBe('SHAPE_MISMATCH');
  });

  it('UNEXPECTED_KEY lists extras but ignores num_batches_tracked', () => {
    expect(() => checkNoUnexpected(sd, ['model.0.weight', 'model.0.bias', 'model.2.weight'])).not.toThrow();
    const err = catchError(() => checkNoUnexpected(sd, ['model.0.weight'])) as StateDictError;
    expect(err.code).toBe('UNEXPECTED_KEY');
    expect(err.keys).toEqual(['model.0.bias', 'model.2.weight']);
    expect(err.message).toContain("'model.2.weight'");
  });

  it('checkFinite names the first tensor with NaN or Infinity and ignores integer tensors', () => {
    expect(() => checkFinite(sd)).not.toThrow();
    const bad: StateDict = new Map([
      ['ok', t([2], 1)],
      ['inf', { dtype: 'float16', shape: [2], data: new Float32Array([1, Infinity]) }],
      ['nan', { dtype: 'float64', shape: [1], data: new Float64Array([NaN]) }],
    ]);
    const err = catchError(() => checkFinite(bad)) as CheckpointError;
    expect(err.code).toBe('CHECKPOINT_FORMAT');
    expect(err.message).toMatch(/'inf'.*\+Infinity.*index 1/);
  });
});

describe('CpuTensor helpers', () => {
  it('numel of scalars and empty shapes', () => {
    expect(numel([])).toBe(1);
    expect(numel([0, 3])).toBe(0);
    expect(numel([64, 1, 3, 3])).toBe(576);
  });

  it('toFloat32 / toFloat64 convert every dtype', () => {
    const f32 = t([2], 1.5);
    expect(toFloat32(f32)).toBe(f32.data); // no copy
    expect(Array.from(toFloat64(f32))).toEqual([1.5, 1.5]);
    const i64: CpuTensor = { dtype: 'int64', shape: [2], data: new BigInt64Array([-3n, 2n ** 40n]) };
    expect(Array.from(toFloat32(i64))).toEqual([-3, 2 ** 40]);
    expect(Array.from(toFloat64(i64))).toEqual([-3, 2 ** 40]);
    const bool: CpuTensor = { dtype: 'bool', shape: [2], data: new Uint8Array([1, 0]) };
    expect(Array.from(toFloat32(bool))).toEqual([1, 0]);
    const i8: CpuTensor = { dtype: 'int8', shape: [1], data: new Int8Array([-128]) };
    expect(Array.from(toFloat64(i8))).toEqual([-128]);
  });

  it('rejects data whose length does not match the shape', () => {
    const err = catchError(() => toFloat32({ dtype: 'float32', shape: [3], data: new Float32Array(2) })) as CheckpointError;
    expect(err.code).toBe('CHECKPOINT_FORMAT');
  });

  it('decodes float16 bit patterns exactly', () => {
    expect(float16BitsToNumber(0x3c00)).toBe(1);
    expect(float16BitsToNumber(0x7bff)).toBe(65504);
    expect(float16BitsToNumber(0x0001)).toBe(2 ** -24);
    expect(Object.is(float16BitsToNumber(0x8000), -0)).toBe(true);
    expect(float16BitsToNumber(0xfc00)).toBe(-Infinity);
    expect(float16BitsToNumber(0x7e00)).toBeNaN();
  });
});
