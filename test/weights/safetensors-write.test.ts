/**
 * writeSafetensorsEntries: the writePth entries as a safetensors file. Checked with our reader (names, shapes,
 * dtypes, values bit for bit), against the format by hand (8-byte header length, JSON header padded with
 * spaces to a multiple of 8, F32 / I64 codes, data_offsets tiling the buffer, each tensor aligned to its
 * element size), and against the committed test/fixtures/training/written-dncnn-br.safetensors, which holds
 * the tensors of written-dncnn-br.pth (tools/torch/check_written_checkpoint.py --safetensors compares the
 * two in PyTorch). Regenerate it (after the .pth) with
 *   WEBGPU_RESTORE_WRITE_FIXTURES=1 npx vitest run --project node test/weights/safetensors-write.test.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { readPth, readSafetensors, type CpuTensor } from '../../src/weights';
import type { CheckpointEntry } from '../../src/weights/pth-write';
import { writeSafetensorsEntries } from '../../src/weights/safetensors-write';

const FIXTURES = new URL('../fixtures/training/', import.meta.url);
const WRITE_FIXTURES = process.env.WEBGPU_RESTORE_WRITE_FIXTURES === '1';

const bytesOf = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

function expectSameTensors(read: ReadonlyMap<string, CpuTensor>, entries: readonly CheckpointEntry[]): void {
  expect([...read.keys()].sort()).toEqual(entries.map((e) => e.name).sort());
  for (const e of entries) {
    const t = read.get(e.name)!;
    expect(t.dtype, e.name).toBe(e.dtype);
    expect(t.shape, e.name).toEqual([...e.shape]);
    const want =
      e.dtype === 'int64'
        ? e.data instanceof BigInt64Array
          ? e.data
          : BigInt64Array.from(e.data as number[], (v) => BigInt(v))
        : Float32Array.from(e.data as ArrayLike<number>);
    expect(bytesOf(t.data).equals(bytesOf(want)), `values of ${e.name}`).toBe(true);
  }
}

const ENTRIES: CheckpointEntry[] = [
  { name: 'model.0.weight', shape: [2, 1, 3, 3], dtype: 'float32', data: Array.from({ length: 18 }, (_, i) => i * 0.001 - 0.009) },
  { name: 'model.1.num_batches_tracked', shape: [], dtype: 'int64', data: [12] },
  { name: 'model.1.running_var', shape: [2], dtype: 'float32', data: Float32Array.of(NaN, -Infinity) },
  { name: 'big', shape: [1], dtype: 'int64', data: BigInt64Array.of(2n ** 62n + 1n) },
];

describe('writeSafetensorsEntries', () => {
  it('reads back with readSafetensors: names, shapes, dtypes, values bit for bit, metadata', () => {
    const file = readSafetensors(writeSafetensorsEntries(ENTRIES, { format: 'pt', steps: '20' }));
    expectSameTensors(file.tensors, ENTRIES);
    expect(Object.fromEntries(file.metadata)).toEqual({ format: 'pt', steps: '20' });
  });

  it('follows the format: u64 header length, space-padded JSON to 8 bytes, F32/I64, offsets tiling the data', () => {
    const bytes = writeSafetensorsEntries(ENTRIES);
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLength) % 8).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
    expect(text.trimEnd().endsWith('}')).toBe(true);
    expect(/^ *$/.test(text.slice(text.trimEnd().length))).toBe(true);
    const header = JSON.parse(text) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    expect(header['model.0.weight']).toMatchObject({ dtype: 'F32', shape: [2, 1, 3, 3] });
    expect(header['model.1.num_batches_tracked']).toMatchObject({ dtype: 'I64', shape: [] });
    const ranges = Object.values(header)
      .map((h) => h.data_offsets)
      .sort((a, b) => a[0] - b[0]);
    let at = 0;
    for (const [begin, end] of ranges) {
      expect(begin).toBe(at);
      at = end;
    }
    expect(at).toBe(bytes.length - 8 - headerLength);
    for (const h of Object.values(header)) expect(h.data_offsets[0] % (h.dtype === 'I64' ? 8 : 4)).toBe(0);
    expect(text).not.toContain('__metadata__');
  });

  it('holds the tensors of written-dncnn-br.pth, as the committed fixture does byte for byte', () => {
    const sd = readPth(readFileSync(new URL('written-dncnn-br.pth', FIXTURES)));
    const entries: CheckpointEntry[] = [...sd].map(([name, t]) => ({
      name,
      shape: t.shape,
      dtype: t.dtype as 'float32' | 'int64',
      data: t.data as Float32Array | BigInt64Array,
    }));
    const bytes = writeSafetensorsEntries(entries, { source: 'test/weights/safetensors-write.test.ts' });
    expectSameTensors(readSafetensors(bytes).tensors, entries);
    const fixture = new URL('written-dncnn-br.safetensors', FIXTURES);
    if (WRITE_FIXTURES) writeFileSync(fixture, bytes);
    expect(Buffer.from(bytes).equals(readFileSync(fixture))).toBe(true);
  });

  const ok = (): CheckpointEntry => ({ name: 'w', shape: [3], dtype: 'float32', data: [1, 2, 3] });
  const refusals: [string, () => unknown, RegExp][] = [
    [
      'shape/data length mismatch',
      () => writeSafetensorsEntries([{ ...ok(), shape: [4] }]),
      /entry 0 \('w'\).*\[4\] has 4 elements but the data has 3/,
    ],
    ['duplicate names', () => writeSafetensorsEntries([ok(), ok()]), /entry 1 \('w'\).*used twice/],
    ['unknown dtype', () => writeSafetensorsEntries([{ ...ok(), dtype: 'F16' as never }]), /'w'.*dtype "F16"/],
    [
      '__metadata__ as a name',
      () => writeSafetensorsEntries([{ ...ok(), name: '__metadata__' }]),
      /'__metadata__' cannot be a tensor name/,
    ],
    ['non-string metadata', () => writeSafetensorsEntries([ok()], { steps: 20 as never }), /metadata value of 'steps'/],
  ];
  for (const [what, call, message] of refusals) {
    it(`refuses ${what} with InvalidInputError`, () => {
      expect(call).toThrow(InvalidInputError);
      expect(call).toThrow(message);
    });
  }
});
