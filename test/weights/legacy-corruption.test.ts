/**
 * The legacy (pre-1.6) format has no checksum: a flipped bit used to load silently, and a flip of a float's
 * top exponent bit turns a weight into ~1e37, which makes a network output a constant image. Such values
 * (and NaN/Infinity) are now refused naming the tensor, while every real checkpoint and fixture still loads:
 * integers of any size, BatchNorm statistics, the fixtures' deliberately extreme float values.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readCheckpoint, readTorchObject, type CpuTensor } from '../../src/weights';
import { MAX_PLAUSIBLE_MAGNITUDE } from '../../src/weights/plausible-values';
import { DNCNN_URL, EXPECTED, expectCheckpointError, fixture, rng } from './helpers';

/** Offset in `file` of element 0 of a float32 tensor, found by searching for its first values' bytes. */
function offsetOf(file: Uint8Array, t: CpuTensor): number {
  const head = new Uint8Array((t.data as Float32Array).slice(0, 8).buffer);
  const at = Buffer.from(file).indexOf(Buffer.from(head));
  expect(at, 'tensor bytes found in the file').toBeGreaterThan(0);
  return at;
}

/** `file` with float32 element `index` of the tensor at `offset` overwritten. */
function withValue(file: Uint8Array, offset: number, index: number, value: number): Uint8Array {
  const out = file.slice();
  new DataView(out.buffer).setFloat32(offset + 4 * index, value, true);
  return out;
}

const dncnnBytes = new Uint8Array(readFileSync(DNCNN_URL));

describe('legacy checkpoints: values no trained network holds are refused', () => {
  const dncnn = readCheckpoint(dncnnBytes, { name: 'dncnn_25.pth' });

  it('refuses a flipped top exponent bit in any weight, naming the tensor and the index', () => {
    // 24 corrupted copies, one flip each, like the files that used to load as near-constant networks.
    const r = rng(24);
    const keys = [...dncnn.keys()];
    for (let k = 0; k < 24; k++) {
      const key = keys[Math.floor(r() * keys.length)];
      const t = dncnn.get(key)!;
      // The flips the bound is for: weights with 3e-8 <= |w| < 2 become >= 1e31 or non-finite. (For |w| >= 2
      // the flip shrinks the weight, which the value cannot reveal.)
      let index: number;
      do index = Math.floor(r() * t.data.length);
      while (!(Math.abs(t.data[index] as number) >= 3e-8 && Math.abs(t.data[index] as number) < 2));
      const bytes = dncnnBytes.slice();
      bytes[offsetOf(dncnnBytes, t) + 4 * index + 3] ^= 0x40; // bit 30: the exponent's top bit
      const err = expectCheckpointError(() => readCheckpoint(bytes, { name: 'dncnn_25.pth' }), ['CHECKPOINT_FORMAT']);
      expect(err.message).toContain(`dncnn_25.pth: tensor '${key}' (float32 ${JSON.stringify(t.shape).replace(/,/g, ', ')})`);
      expect(err.message).toContain(`at flat index ${index}`);
      expect(err.message).toMatch(/no checksum/);
    }
  });

  it('refuses NaN and infinities', () => {
    const t = dncnn.get('model.0.bias')!;
    const at = offsetOf(dncnnBytes, t);
    for (const [value, text] of [
      [NaN, 'NaN'],
      [Infinity, '+Infinity'],
      [-Infinity, '-Infinity'],
    ] as const) {
      const err = expectCheckpointError(() => readCheckpoint(withValue(dncnnBytes, at, 5, value)), ['CHECKPOINT_FORMAT']);
      expect(err.message).toContain(`tensor 'model.0.bias' (float32 [64]) holds ${text} at flat index 5`);
    }
    // readTorchObject, which keeps the saved structure, refuses it too.
    expectCheckpointError(() => readTorchObject(withValue(dncnnBytes, at, 0, NaN)), ['CHECKPOINT_FORMAT']);
  });

  it(`draws the line at ${MAX_PLAUSIBLE_MAGNITUDE}`, () => {
    const t = dncnn.get('model.2.weight')!;
    const at = offsetOf(dncnnBytes, t);
    expect(readCheckpoint(withValue(dncnnBytes, at, 0, 1e30)).get('model.2.weight')!.data[0]).toBeCloseTo(1e30, -24);
    expect(() => readCheckpoint(withValue(dncnnBytes, at, 0, -2e31))).toThrow(/holds -2\.000e\+31 at flat index 0/);
  });

  it('still loads dncnn_25.pth and every legacy fixture, extreme test values and large integers included', () => {
    expect(dncnn.size).toBe(34);
    const legacy = Object.entries(EXPECTED.fixtures).filter(([, f]) => f.format === 'torch-legacy' && f.state_dict);
    expect(legacy.length).toBeGreaterThanOrEqual(5);
    for (const [name, f] of legacy) {
      expect([...readCheckpoint(fixture(name)).keys()], name).toEqual(Object.keys(f.state_dict!));
    }
    const basic = readCheckpoint(fixture('legacy_basic.pth'));
    expect(basic.get('bf16')!.data).toContain(1.0002555517425873e30);
    expect(basic.get('i64')!.data).toContain(1099511627776n);
  });

  it('accepts large BatchNorm statistics and counters, refuses a running_var of 1e35', () => {
    const file = fixture('module_legacy.pth');
    const sd = readCheckpoint(file);
    const runningVar = sd.get('dncnn.3.running_var')!;
    const at = offsetOf(file, runningVar);
    // A variance of 1e12 (activations around 1e6) is unusual but possible: loads.
    expect(readCheckpoint(withValue(file, at, 1, 1e12)).get('dncnn.3.running_var')!.data[1]).toBe(Math.fround(1e12));
    const err = expectCheckpointError(() => readCheckpoint(withValue(file, at, 1, 1e35)), ['CHECKPOINT_FORMAT']);
    expect(err.message).toContain("tensor 'dncnn.3.running_var'");

    // num_batches_tracked is an int64: any value is fine.
    const counter = sd.get('dncnn.3.num_batches_tracked')!;
    expect(counter.data).toEqual(new BigInt64Array([3n]));
    const bytes = file.slice();
    const haystack = Buffer.from(bytes);
    const needle = Buffer.from(new BigInt64Array([3n]).buffer);
    const positions: number[] = [];
    for (let p = haystack.indexOf(needle); p >= 0; p = haystack.indexOf(needle, p + 1)) positions.push(p);
    // Overwrite every int64 3 in the storage area (the counters), leaving the pickle alone.
    const storageStart = offsetOf(file, sd.get('dncnn.0.weight')!);
    for (const p of positions.filter((q) => q > storageStart)) new DataView(bytes.buffer).setBigInt64(p, 2n ** 62n, true);
    const huge = readCheckpoint(bytes);
    expect([...huge].filter(([k]) => k.endsWith('num_batches_tracked')).map(([, t]) => t.data[0])).toContain(2n ** 62n);
  });
});
