/**
 * writePth: PyTorch 1.13 zip checkpoints (training.md §5). CI has no Python, so the file is checked here with
 * our own readers (every name, shape, dtype and value back bit for bit, key order kept), structurally (stored
 * entries, 64-byte aligned data, '<archive>/version' = "3\n", a protocol-2 pickle made only of opcodes the
 * 1.13 weights_only unpickler knows, and never a float opcode), against a data.pkl that torch.save itself
 * wrote, and against the committed test/fixtures/training/written-dncnn-br.pth, which
 * tools/torch/check_written_checkpoint.py loads into a KAIR DnCNN with torch.load(weights_only=True) +
 * load_state_dict(strict=True). Regenerate that file after an intended format change with
 *   WEBGPU_RESTORE_WRITE_FIXTURES=1 npx vitest run --project node test/weights/pth-write.test.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { readPth, readTorchObject, ZipArchive, type CpuTensor } from '../../src/weights';
import { writePth, type CheckpointEntry } from '../../src/weights/pth-write';

const WRITTEN_DNCNN_PTH = new URL('../fixtures/training/written-dncnn-br.pth', import.meta.url);
const WRITE_FIXTURES = process.env.WEBGPU_RESTORE_WRITE_FIXTURES === '1';

/** KAIR DnCNN (in 1, out 1, nc 8, nb 5, act_mode 'BR') state_dict entries with deterministic values. */
function dncnnEntries(): CheckpointEntry[] {
  const entries: CheckpointEntry[] = [];
  let i = 0;
  const floats = (n: number, offset = 0) => Array.from({ length: n }, () => offset + (((i++ * 7) % 1000) - 500) * 0.001);
  const conv = (layer: number, cin: number, cout: number) => {
    entries.push({ name: `model.${layer}.weight`, shape: [cout, cin, 3, 3], dtype: 'float32', data: floats(cout * cin * 9) });
    entries.push({ name: `model.${layer}.bias`, shape: [cout], dtype: 'float32', data: floats(cout) });
  };
  conv(0, 1, 8);
  for (const layer of [2, 5, 8]) {
    conv(layer, 8, 8);
    const bn = `model.${layer + 1}`;
    entries.push({ name: `${bn}.weight`, shape: [8], dtype: 'float32', data: floats(8, 1) });
    entries.push({ name: `${bn}.bias`, shape: [8], dtype: 'float32', data: floats(8) });
    entries.push({ name: `${bn}.running_mean`, shape: [8], dtype: 'float32', data: floats(8) });
    entries.push({ name: `${bn}.running_var`, shape: [8], dtype: 'float32', data: floats(8, 1) });
    entries.push({ name: `${bn}.num_batches_tracked`, shape: [], dtype: 'int64', data: [1000 + layer] });
  }
  conv(11, 8, 1);
  return entries;
}
const DNCNN_BATCH_NORMS = ['model.3', 'model.6', 'model.9'];

/** The entry's values as the reader should return them: f32-rounded floats, int64 as bigint. */
function expectedData(e: CheckpointEntry): Float32Array | BigInt64Array {
  if (e.dtype === 'int64') return e.data instanceof BigInt64Array ? e.data : BigInt64Array.from(e.data as number[], (v) => BigInt(v));
  return e.data instanceof Float32Array ? e.data : Float32Array.from(e.data as number[]);
}

/** Same names in the same order, same shapes and dtypes, bit-identical values (compared as raw bytes). */
function expectSameTensors(read: ReadonlyMap<string, CpuTensor>, entries: readonly CheckpointEntry[]): void {
  expect([...read.keys()]).toEqual(entries.map((e) => e.name));
  for (const e of entries) {
    const t = read.get(e.name)!;
    expect(t.dtype, e.name).toBe(e.dtype);
    expect(t.shape, e.name).toEqual([...e.shape]);
    const want = expectedData(e);
    expect(t.data.constructor, e.name).toBe(want.constructor);
    const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    expect(bytes(t.data).equals(bytes(want)), `values of ${e.name}`).toBe(true);
  }
}

/** Offset of an entry's data: after its local header, name and (local) extra field. */
function dataOffset(file: Uint8Array, localHeaderOffset: number): number {
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  expect(dv.getUint32(localHeaderOffset, true)).toBe(0x04034b50);
  return localHeaderOffset + 30 + dv.getUint16(localHeaderOffset + 26, true) + dv.getUint16(localHeaderOffset + 28, true);
}

/**
 * Opcodes of a pickle, walked with each opcode's argument length (pickletools' table, for the opcodes the
 * PyTorch 1.13 weights_only unpickler accepts plus the float ones it refuses). Fails on anything else.
 */
function opcodes(pickle: Uint8Array): string[] {
  const dv = new DataView(pickle.buffer, pickle.byteOffset, pickle.byteLength);
  const fixed: Record<number, [string, number]> = {
    0x80: ['PROTO', 1],
    0x28: ['MARK', 0],
    0x2e: ['STOP', 0],
    0x4a: ['BININT', 4],
    0x4b: ['BININT1', 1],
    0x4d: ['BININT2', 2],
    0x47: ['BINFLOAT', 8],
    0x51: ['BINPERSID', 0],
    0x52: ['REDUCE', 0],
    0x62: ['BUILD', 0],
    0x68: ['BINGET', 1],
    0x6a: ['LONG_BINGET', 4],
    0x71: ['BINPUT', 1],
    0x72: ['LONG_BINPUT', 4],
    0x73: ['SETITEM', 0],
    0x74: ['TUPLE', 0],
    0x75: ['SETITEMS', 0],
    0x29: ['EMPTY_TUPLE', 0],
    0x7d: ['EMPTY_DICT', 0],
    0x85: ['TUPLE1', 0],
    0x86: ['TUPLE2', 0],
    0x87: ['TUPLE3', 0],
    0x88: ['NEWTRUE', 0],
    0x89: ['NEWFALSE', 0],
    0x4e: ['NONE', 0],
  };
  const ops: string[] = [];
  for (let at = 0; at < pickle.length;) {
    const op = pickle[at++];
    if (op === 0x58) {
      ops.push('BINUNICODE');
      at += 4 + dv.getUint32(at, true);
    } else if (op === 0x63) {
      ops.push('GLOBAL');
      for (let lines = 0; lines < 2; at++) if (pickle[at] === 0x0a) lines++;
    } else if (op === 0x8a) {
      ops.push('LONG1');
      at += 1 + pickle[at];
    } else if (op === 0x46) {
      ops.push('FLOAT');
      while (pickle[at++] !== 0x0a);
    } else {
      const known = fixed[op];
      if (!known) throw new Error(`opcode 0x${op.toString(16)} at ${at - 1} is not one the 1.13 weights_only unpickler accepts`);
      ops.push(known[0]);
      at += known[1];
    }
  }
  return ops;
}

const dncnn = () => writePth(dncnnEntries(), { batchNormVersions: DNCNN_BATCH_NORMS });

describe('writePth: a KAIR DnCNN-BR state_dict', () => {
  it('reads back with readPth and readTorchObject: names in order, shapes, dtypes, values bit for bit', () => {
    const entries = dncnnEntries();
    const bytes = writePth(entries, { batchNormVersions: DNCNN_BATCH_NORMS });
    expectSameTensors(readPth(bytes, { name: 'written.pth' }), entries);
    // The raw object: the OrderedDict, with _metadata set by BUILD as torch.load would.
    const raw = readTorchObject(bytes) as Map<string, unknown>;
    const metadata = raw.get('_metadata') as Map<string, Map<string, number>>;
    expect([...metadata.keys()]).toEqual(['', ...DNCNN_BATCH_NORMS]);
    expect([...metadata.values()].map((m) => m.get('version'))).toEqual([1, 2, 2, 2]);
  });

  it('is laid out as PyTorch 1.13 writes it: stored entries, 64-byte aligned data, one folder, version 3', () => {
    const bytes = dncnn();
    const archive = new ZipArchive(bytes);
    const keys = Array.from({ length: 25 }, (_, i) => String(i)).sort(); // torch.save writes them in sorted order
    expect(archive.entries.map((e) => e.name)).toEqual(['archive/data.pkl', ...keys.map((k) => `archive/data/${k}`), 'archive/version']);
    for (const e of archive.entries) {
      expect(e.method, e.name).toBe(0);
      expect(dataOffset(bytes, e.localHeaderOffset) % 64, `alignment of ${e.name}`).toBe(0);
    }
    expect(new TextDecoder().decode(archive.read('archive/version'))).toBe('3\n');
    // Storage '3' is the fourth tensor (model.2.bias, 8 floats); '24' the last (model.11.bias, 1 float).
    expect(archive.get('archive/data/3')!.uncompressedSize).toBe(32);
    expect(archive.get('archive/data/24')!.uncompressedSize).toBe(4);
    expect(archive.get('archive/data/8')!.uncompressedSize).toBe(8); // model.3.num_batches_tracked: one int64
  });

  it('pickles at protocol 2 with no float opcode, and num_batches_tracked as a 0-d LongStorage tensor', () => {
    const pickle = new ZipArchive(dncnn()).read('archive/data.pkl');
    expect([pickle[0], pickle[1]]).toEqual([0x80, 0x02]);
    const ops = opcodes(pickle);
    expect(ops).not.toContain('BINFLOAT');
    expect(ops).not.toContain('FLOAT');
    expect(ops.at(-1)).toBe('STOP');
    const text = Buffer.from(pickle).toString('latin1');
    expect(text.split('torch\nLongStorage\n').length - 1).toBe(1); // one GLOBAL, then memo references
    // Storage '8' (model.3.num_batches_tracked): pid ('storage', LongStorage, '8', 'cpu', 1), then storage
    // offset 0, size () and stride () as EMPTY_TUPLEs, requires_grad False.
    const at = text.indexOf('X\u0001\u0000\u0000\u00008'); // BINUNICODE '8'
    const after = [...pickle.subarray(at + 6, at + 20)].map((b, i) => ([1, 8].includes(i) ? '?' : b)); // skip memo indices
    const [BINPUT, BINGET, BININT1, TUPLE, BINPERSID, EMPTY_TUPLE, NEWFALSE] = [0x71, 0x68, 0x4b, 0x74, 0x51, 0x29, 0x89];
    const cpu = 7; // 'cpu' was the 8th object memoised (after OrderedDict, its (), 'model.0.weight', …)
    expect(after).toEqual([BINPUT, '?', BINGET, cpu, BININT1, 1, TUPLE, BINPUT, '?', BINPERSID, BININT1, 0, EMPTY_TUPLE, EMPTY_TUPLE]);
    expect(pickle[at + 20]).toBe(NEWFALSE);
    const nbt = readPth(dncnn()).get('model.6.num_batches_tracked')!;
    expect(nbt).toEqual({ dtype: 'int64', shape: [], data: BigInt64Array.of(1005n) });
  });

  it('equals the committed fixture byte for byte (tools/torch/check_written_checkpoint.py loads it in PyTorch)', () => {
    const bytes = dncnn();
    if (WRITE_FIXTURES) writeFileSync(WRITTEN_DNCNN_PTH, bytes);
    const committed = new Uint8Array(readFileSync(WRITTEN_DNCNN_PTH));
    expect(Buffer.from(bytes).equals(Buffer.from(committed))).toBe(true);
  });
});

describe('writePth: data.pkl as torch.save writes it', () => {
  // Python (torch 1.13): sd = OrderedDict(conv.weight=[[[[0.5]]],[[[-2.]]]], bn.running_mean=[1., 2.],
  // bn.num_batches_tracked=tensor(7)); sd._metadata = OrderedDict([('', {'version': 1}), ('bn', {'version': 2})]);
  // torch.save(sd, buf); base64 of 'archive/data.pkl'.
  const TORCH_DATA_PKL =
    'gAJjY29sbGVjdGlvbnMKT3JkZXJlZERpY3QKcQApUnEBKFgLAAAAY29udi53ZWlnaHRxAmN0b3JjaC5fdXRpbHMKX3JlYnVpbGRfdGVuc29yX3YyCnEDKChYBwAAAHN0' +
    'b3JhZ2VxBGN0b3JjaApGbG9hdFN0b3JhZ2UKcQVYAQAAADBxBlgDAAAAY3B1cQdLAnRxCFFLAChLAksBSwFLAXRxCShLAUsBSwFLAXRxColoAClScQt0cQxScQ1YDwAA' +
    'AGJuLnJ1bm5pbmdfbWVhbnEOaAMoKGgEaAVYAQAAADFxD2gHSwJ0cRBRSwBLAoVxEUsBhXESiWgAKVJxE3RxFFJxFVgWAAAAYm4ubnVtX2JhdGNoZXNfdHJhY2tlZHEW' +
    'aAMoKGgEY3RvcmNoCkxvbmdTdG9yYWdlCnEXWAEAAAAycRhoB0sBdHEZUUsAKSmJaAApUnEadHEbUnEcdX1xHVgJAAAAX21ldGFkYXRhcR5oAClScR8oWAAAAABxIH1x' +
    'IVgHAAAAdmVyc2lvbnEiSwFzWAIAAABibnEjfXEkaCJLAnN1c2Iu';
  const entries: CheckpointEntry[] = [
    { name: 'conv.weight', shape: [2, 1, 1, 1], dtype: 'float32', data: [0.5, -2] },
    { name: 'bn.running_mean', shape: [2], dtype: 'float32', data: [1, 2] },
    { name: 'bn.num_batches_tracked', shape: [], dtype: 'int64', data: [7] },
  ];

  it('is byte-identical to torch.save for the same OrderedDict with _metadata', () => {
    const pickle = new ZipArchive(writePth(entries, { batchNormVersions: ['bn'] })).read('archive/data.pkl');
    expect(Buffer.from(pickle).toString('base64')).toBe(TORCH_DATA_PKL);
  });

  it('without batchNormVersions ends after the items (no BUILD), like torch.save of a plain OrderedDict', () => {
    const pickle = new ZipArchive(writePth(entries)).read('archive/data.pkl');
    const torchItems = Buffer.from(TORCH_DATA_PKL, 'base64').subarray(0, 349); // up to SETITEMS ('u')
    expect(Buffer.from(pickle).equals(Buffer.concat([torchItems, Buffer.from('.')]))).toBe(true);
    expect(opcodes(pickle)).not.toContain('BUILD');
  });
});

describe('writePth: other inputs', () => {
  it('keeps the order of 1001 keys (two SETITEMS batches, memo indices past 255)', () => {
    const entries: CheckpointEntry[] = Array.from({ length: 1001 }, (_, i) => ({
      name: `layer${(i * 389) % 1001}.weight`,
      shape: [1],
      dtype: 'float32' as const,
      data: Float32Array.of(i),
    }));
    const bytes = writePth(entries, { archiveName: 'big' });
    expectSameTensors(readPth(bytes), entries);
    const ops = opcodes(new ZipArchive(bytes).read('big/data.pkl'));
    expect(ops.filter((o) => o === 'SETITEMS').length).toBe(1);
    expect(ops.filter((o) => o === 'SETITEM').length).toBe(1); // the 1001st item alone, as CPython batches
    expect(ops).toContain('LONG_BINPUT');
  });

  it('writes NaN, ±Infinity, -0, subnormals, empty and zero-size tensors, typed arrays and number arrays alike', () => {
    const entries: CheckpointEntry[] = [
      { name: 'w', shape: [2, 3], dtype: 'float32', data: Float32Array.of(NaN, Infinity, -Infinity, -0, 1e-45, 3.4e38) },
      { name: 'empty', shape: [0, 3], dtype: 'float32', data: new Float32Array(0) },
      { name: 'ints', shape: [3], dtype: 'int64', data: BigInt64Array.of(-(2n ** 63n), 0n, 2n ** 63n - 1n) },
      { name: 'scalar', shape: [], dtype: 'float32', data: [0.1] },
    ];
    const back = readPth(writePth(entries));
    expectSameTensors(back, entries);
    expect(readTorchObject(writePth(entries), {}) instanceof Map).toBe(true);
  });

  it('uses the archive name as the top folder', () => {
    const archive = new ZipArchive(writePth([{ name: 'a', shape: [1], dtype: 'float32', data: [1] }], { archiveName: 'dncnn_finetuned' }));
    expect(archive.entries.map((e) => e.name)).toEqual(['dncnn_finetuned/data.pkl', 'dncnn_finetuned/data/0', 'dncnn_finetuned/version']);
  });
});

describe('writePth refuses bad entries with InvalidInputError naming them', () => {
  const ok = (): CheckpointEntry => ({ name: 'conv.weight', shape: [2, 2], dtype: 'float32', data: [1, 2, 3, 4] });
  const cases: [string, () => unknown, RegExp][] = [
    [
      'shape/data length mismatch',
      () => writePth([{ ...ok(), shape: [2, 3] }]),
      /'conv\.weight'.*\[2, 3\] has 6 elements but the data has 4/,
    ],
    ['duplicate names', () => writePth([ok(), { ...ok(), data: [0, 0, 0, 0] }]), /entry 1 \('conv\.weight'\).*used twice/],
    ['unknown dtype', () => writePth([{ ...ok(), dtype: 'float64' as never }]), /'conv\.weight'.*dtype "float64"/],
    ['negative dimension', () => writePth([{ ...ok(), shape: [-2, -2] }]), /'conv\.weight'.*non-negative integers/],
    ['fractional int64', () => writePth([{ name: 'n', shape: [2], dtype: 'int64', data: [1, 2.5] }]), /'n'.*2\.5 at index 1/],
    ['Float32Array for int64', () => writePth([{ name: 'n', shape: [1], dtype: 'int64', data: Float32Array.of(1) }]), /'n'.*Float32Array/],
    ['BigInt64Array for float32', () => writePth([{ ...ok(), data: new BigInt64Array(4) }]), /'conv\.weight'.*BigInt64Array/],
    [
      'float num_batches_tracked',
      () => writePth([{ name: 'bn.num_batches_tracked', shape: [], dtype: 'float32', data: [3] }]),
      /'bn\.num_batches_tracked'.*int64 scalar/,
    ],
    [
      '1-d num_batches_tracked',
      () => writePth([{ name: 'bn.num_batches_tracked', shape: [1], dtype: 'int64', data: [3] }]),
      /int64 scalar/,
    ],
    ['empty name', () => writePth([{ ...ok(), name: '' }]), /entry 0: the name must be a non-empty string/],
    ['not an array', () => writePth({} as never), /entries must be an array/],
    [
      'BatchNorm prefix without nbt',
      () => writePth([ok()], { batchNormVersions: ['conv'] }),
      /'conv'.*no entry 'conv\.num_batches_tracked'/,
    ],
    ['archive name with a slash', () => writePth([ok()], { archiveName: 'a/b' }), /archiveName/],
  ];
  for (const [what, call, message] of cases) {
    it(what, () => {
      expect(call).toThrow(InvalidInputError);
      expect(call).toThrow(message);
    });
  }
});
