/**
 * Seeded fuzzing of every container the readers accept: zip .pth (stored, deflated, Zip64), legacy .pth,
 * whole pickled models and safetensors. Besides blind corruption (truncation, byte and bit flips), the
 * mutators know where the declared lengths live - pickle opcode arguments, zip header fields, legacy
 * storage record counts, the safetensors header length and the numbers in its JSON - and write huge, off by
 * one, or wrong values there. Every case must end quickly with a RestoreError or a load whose tensors are
 * self-consistent; a RangeError, TypeError, hang or huge allocation fails the test. Cases are reproducible
 * from the seed printed with a failure.
 */
import { describe, expect, it } from 'vitest';
import { RestoreError } from '../../src/errors';
import { crc32, maxTensorBytesFor, numel, readCheckpoint, unpickleAt, ZipArchive } from '../../src/weights';
import { moduleClassFromPid, parseStoragePid, torchGlobals } from '../../src/weights/torch-pickle';
import { dtypeByteSize } from '../../src/weights/tensor';
import { fixture, rng } from './helpers';
import { bombEntry, buildZip, deflated, torchPickle, type TensorSpec } from './torch-zip-builder';

type Rand = () => number;
/** A little-endian integer field of `width` bytes at `at`. */
interface Field {
  at: number;
  width: number;
}

const pick = <T>(r: Rand, items: readonly T[]): T => items[Math.floor(r() * items.length)];
const int = (r: Rand, n: number) => Math.floor(r() * n);

// ---- pickle opcode scanner: where the integer and length arguments are -----------------------------------

const FIXED_ARGS: Record<number, number> = {
  0x80: 1,
  0x95: 8,
  0x4a: 4,
  0x4b: 1,
  0x4d: 2,
  0x47: 8,
  0x68: 1,
  0x6a: 4,
  0x71: 1,
  0x72: 4,
  0x82: 1,
  0x83: 2,
  0x84: 4,
};
const LENGTH_PREFIXED: Record<number, number> = {
  0x8a: 1,
  0x55: 1,
  0x43: 1,
  0x8c: 1,
  0x8b: 4,
  0x54: 4,
  0x42: 4,
  0x58: 4,
  0x8d: 8,
  0x8e: 8,
  0x96: 8,
};
const LINE_ARGS: Record<number, number> = { 0x49: 1, 0x4c: 1, 0x46: 1, 0x53: 1, 0x56: 1, 0x50: 1, 0x70: 1, 0x67: 1, 0x63: 2, 0x69: 2 };

/** Integer fields of the pickle starting at `start`, and where it ends (just past STOP). */
function pickleFields(bytes: Uint8Array, start: number): { fields: Field[]; end: number } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fields: Field[] = [];
  let p = start;
  while (p < bytes.length) {
    const op = bytes[p++];
    if (op === 0x2e) return { fields, end: p };
    if (op in FIXED_ARGS) {
      fields.push({ at: p, width: FIXED_ARGS[op] });
      p += FIXED_ARGS[op];
    } else if (op in LENGTH_PREFIXED) {
      const w = LENGTH_PREFIXED[op];
      fields.push({ at: p, width: w });
      const n = w === 1 ? bytes[p] : w === 4 ? dv.getUint32(p, true) : Number(dv.getBigUint64(p, true));
      p += w + n;
    } else if (op in LINE_ARGS) {
      for (let k = 0; k < LINE_ARGS[op]; k++) p = bytes.indexOf(0x0a, p) + 1;
    }
  }
  throw new Error('pickle without STOP');
}

// ---- zip: header fields, and a CRC fix-up so pickle mutations get past the CRC check -----------------------

function zipFields(bytes: Uint8Array): Field[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fields: Field[] = [];
  const layout: Record<number, [number, number][]> = {
    0x04034b50: [
      [18, 4],
      [22, 4],
      [26, 2],
      [28, 2],
    ],
    0x02014b50: [
      [10, 2],
      [20, 4],
      [24, 4],
      [28, 2],
      [30, 2],
      [32, 2],
      [42, 4],
    ],
    0x06054b50: [
      [8, 2],
      [10, 2],
      [12, 4],
      [16, 4],
      [20, 2],
    ],
    0x06064b50: [
      [24, 8],
      [32, 8],
      [40, 8],
      [48, 8],
    ],
    0x07064b50: [[8, 8]],
  };
  for (let p = 0; p + 4 <= bytes.length; p++) {
    const spec = layout[dv.getUint32(p, true)];
    if (spec) for (const [off, width] of spec) if (p + off + width <= bytes.length) fields.push({ at: p + off, width });
  }
  // The Zip64 extra fields (id 0x0001) of central headers hold 8-byte sizes and offsets.
  for (let p = 0; p + 46 <= bytes.length; p++) {
    if (dv.getUint32(p, true) !== 0x02014b50) continue;
    const extra = p + 46 + dv.getUint16(p + 28, true);
    if (extra + 4 <= bytes.length && dv.getUint16(extra, true) === 1) {
      for (let q = extra + 4; q + 8 <= Math.min(bytes.length, extra + 4 + dv.getUint16(extra + 2, true)); q += 8)
        fields.push({ at: q, width: 8 });
    }
  }
  return fields;
}

/** Absolute offset of each stored entry's data, for the pickle scanner and the CRC fix-up. */
function zipEntries(bytes: Uint8Array): { name: string; start: number; size: number; central: number; local: number }[] {
  const archive = new ZipArchive(bytes);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const centrals: number[] = [];
  for (let p = 0; p + 46 <= bytes.length; p++) if (dv.getUint32(p, true) === 0x02014b50) centrals.push(p);
  return archive.entries.map((e, i) => {
    const local = e.localHeaderOffset;
    const start = local + 30 + dv.getUint16(local + 26, true) + dv.getUint16(local + 28, true);
    return { name: e.name, start, size: e.compressedSize, central: centrals[i], local };
  });
}

function fixCrcs(bytes: Uint8Array, entries: ReturnType<typeof zipEntries>): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const e of entries) {
    if (e.start + e.size > bytes.length) continue;
    const crc = crc32(bytes.subarray(e.start, e.start + e.size));
    dv.setUint32(e.central + 16, crc, true);
    dv.setUint32(e.local + 14, crc, true);
  }
}

// ---- legacy .pth: the storage record counts after the pickles -----------------------------------------------

function legacyFields(bytes: Uint8Array): Field[] {
  const fields: Field[] = [];
  let at = 0;
  for (let k = 0; k < 3; k++) {
    const p = pickleFields(bytes, at);
    fields.push(...p.fields);
    at = p.end;
  }
  const objectStart = at;
  const itemSize = new Map<string, number>();
  const object = unpickleAt(bytes, objectStart, {
    globals: torchGlobals('scan', { materialize: () => null }),
    unknownGlobals: 'inert',
    persistentLoad: (pid) => {
      const cls = moduleClassFromPid(pid, 'scan');
      if (cls) return cls;
      const s = parseStoragePid(pid, 'scan');
      itemSize.set(s.key, dtypeByteSize(s.dtype));
      return { key: s.key, dtype: s.dtype, numel: s.numel, bytes: new Uint8Array(0) };
    },
  });
  fields.push(...pickleFields(bytes, objectStart).fields);
  const keys = unpickleAt(bytes, object.end, { globals: new Map() });
  fields.push(...pickleFields(bytes, object.end).fields);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = keys.end;
  for (const key of keys.value as string[]) {
    fields.push({ at: p, width: 8 });
    p += 8 + Number(dv.getBigInt64(p, true)) * itemSize.get(String(key))!;
  }
  expect(p).toBe(bytes.length); // the scan understood the whole file
  return fields;
}

// ---- mutations ---------------------------------------------------------------------------------------------

function writeInt(bytes: Uint8Array, f: Field, value: bigint): void {
  for (let k = 0; k < f.width; k++) bytes[f.at + k] = Number((value >> BigInt(8 * k)) & 0xffn);
}

/** Values that break length and offset arithmetic: all ones, sign bits, the file size and its neighbours. */
function nastyValue(r: Rand, width: number, fileLength: number, current: bigint): bigint {
  const bits = BigInt(8 * width);
  const all = (1n << bits) - 1n;
  const choices = [
    all,
    all >> 1n,
    1n << (bits - 1n),
    0n,
    1n,
    current + 1n,
    current - 1n,
    current * 2n,
    current + 8n,
    BigInt(fileLength),
    BigInt(fileLength + 1),
    BigInt(fileLength) * 1000n,
    0x7fffffffn,
    0xffffffffn,
    1n << 31n,
    BigInt(Math.floor(r() * 2 ** 32)) * BigInt(Math.floor(r() * 2 ** 20)),
  ];
  return pick(r, choices) & all;
}

function readInt(bytes: Uint8Array, f: Field): bigint {
  let v = 0n;
  for (let k = f.width - 1; k >= 0; k--) v = (v << 8n) | BigInt(bytes[f.at + k]);
  return v;
}

type Mutation = { kind: string; bytes: Uint8Array; mustFail?: boolean };

function blindMutation(r: Rand, original: Uint8Array): Mutation {
  const bytes = original.slice();
  const kind = int(r, 3);
  if (kind === 0) {
    // Truncation anywhere, more often near the ends where headers and trailers live.
    const cut = r() < 0.3 ? original.length - 1 - int(r, Math.min(64, original.length)) : int(r, original.length);
    return { kind: 'truncate', bytes: original.slice(0, cut), mustFail: true };
  }
  const n = 1 + int(r, 4);
  for (let k = 0; k < n; k++) {
    const at = int(r, bytes.length);
    if (kind === 1) bytes[at] = int(r, 256);
    else bytes[at] ^= 1 << int(r, 8);
  }
  return { kind: kind === 1 ? 'bytes' : 'bits', bytes };
}

function fieldMutation(r: Rand, original: Uint8Array, fields: readonly Field[]): Mutation {
  const bytes = original.slice();
  const n = 1 + int(r, 2);
  for (let k = 0; k < n; k++) {
    const f = pick(r, fields);
    writeInt(bytes, f, nastyValue(r, f.width, original.length, readInt(bytes, f)));
  }
  return { kind: 'field', bytes };
}

/** safetensors: rewrite the JSON header (numbers, dtypes, keys) and re-frame it with a consistent length. */
function headerMutation(r: Rand, original: Uint8Array): Mutation {
  const n = Number(new DataView(original.buffer, original.byteOffset).getBigUint64(0, true));
  let header = new TextDecoder().decode(original.subarray(8, 8 + n));
  const data = original.subarray(8 + n);
  const numbers = [...header.matchAll(/\d+/g)];
  const kind = int(r, 6);
  if (kind <= 2 && numbers.length > 0) {
    const m = pick(r, numbers);
    const replacement = pick(r, [
      '9007199254740993',
      '18446744073709551616',
      '-1',
      '1e309',
      '0',
      String(Number(m[0]) + 1),
      String(Number(m[0]) - 1),
      String(data.length),
      String(data.length + 1),
      '4294967296',
      '1.5',
      String(int(r, 1000)),
    ]);
    header = header.slice(0, m.index) + replacement + header.slice(m.index + m[0].length);
  } else if (kind === 3) {
    header = header.replace(pick(r, ['"F32"', '"F16"', '"I64"', '"BOOL"', '"F64"']), pick(r, ['"F64"', '"U8"', '"F8_E4M3"', '"I32"', '1']));
  } else if (kind === 4) {
    // Duplicate or drop a key.
    const keys = [...header.matchAll(/"([^"]+)":\{"dtype"/g)];
    const k = pick(r, keys);
    header =
      r() < 0.5
        ? header.replace(`"${k[1]}":`, `"${pick(r, keys)[1]}":`)
        : header.replace(`"${k[1]}":{"dtype"`, `"${k[1]}":{"dtype":"F32","dtype"`);
  } else {
    // Swap the offsets of two tensors.
    const offsets = [...header.matchAll(/"data_offsets":\[\d+,\d+\]/g)];
    const a = pick(r, offsets);
    const b = pick(r, offsets);
    header = header.replace(a[0], '\u0000').replace(b[0], a[0]).replace('\u0000', b[0]);
  }
  const h = new TextEncoder().encode(header);
  const bytes = new Uint8Array(8 + h.length + data.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(h.length), true);
  bytes.set(h, 8);
  bytes.set(data, 8 + h.length);
  return { kind: 'header', bytes };
}

// ---- the harness -------------------------------------------------------------------------------------------

interface Stats {
  cases: number;
  loaded: number;
  errors: Record<string, number>;
  slowestMs: number;
}

/** Sum of elements x stored element size over the tensors of a state dict. */
function tensorBytes(sd: Map<string, { shape: number[]; dtype: Parameters<typeof dtypeByteSize>[0] }>): number {
  let n = 0;
  for (const t of sd.values()) n += numel(t.shape) * dtypeByteSize(t.dtype);
  return n;
}

/** What a zip checkpoint that loaded may have inflated: its pickle, twice its tensor bytes, and 1 MiB. */
function inflateBound(bytes: Uint8Array, tensors: number): number {
  let pickle = 0;
  try {
    pickle = new ZipArchive(bytes).entries.find((e) => e.name.endsWith('/data.pkl'))?.uncompressedSize ?? 0;
  } catch {
    // not a zip: nothing may be inflated at all
  }
  return pickle + 2 * tensors + 2 ** 20;
}

function runCase(m: Mutation, what: string, stats: Stats): void {
  const t0 = performance.now();
  let inflated = 0;
  try {
    const sd = readCheckpoint(m.bytes, { name: 'fuzz', onInflate: (n) => (inflated += n) });
    if (m.mustFail) throw new Error(`${what}: a ${m.kind} mutation loaded without error`);
    for (const [key, t] of sd) {
      if (!ArrayBuffer.isView(t.data) || t.data.length !== numel(t.shape)) throw new Error(`${what}: inconsistent tensor '${key}'`);
    }
    if (inflated > inflateBound(m.bytes, tensorBytes(sd))) throw new Error(`${what}: inflated ${inflated} bytes, beyond the bound`);
    stats.loaded++;
  } catch (err) {
    if (!(err instanceof RestoreError)) {
      throw new Error(`${what} (${m.kind}): ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`, { cause: err });
    }
    stats.errors[err.code] = (stats.errors[err.code] ?? 0) + 1;
  }
  stats.cases++;
  stats.slowestMs = Math.max(stats.slowestMs, performance.now() - t0);
}

interface Target {
  name: string;
  cases: number;
  /** Structure-aware mutations, in addition to blind ones. */
  mutate: (r: Rand, original: Uint8Array) => Mutation;
}

function zipTarget(name: string, cases: number): Target {
  return {
    name,
    cases,
    mutate: (() => {
      let prepared: { headers: Field[]; pickle: Field[]; entries: ReturnType<typeof zipEntries> } | undefined;
      return (r: Rand, original: Uint8Array): Mutation => {
        if (!prepared) {
          const entries = zipEntries(original);
          const pkl = entries.find((e) => e.name.endsWith('/data.pkl'))!;
          const stored = new ZipArchive(original).get(pkl.name)!.method === 0;
          prepared = { headers: zipFields(original), pickle: stored ? pickleFields(original, pkl.start).fields : [], entries };
        }
        const { headers, pickle, entries } = prepared;
        if (pickle.length > 0 && r() < 0.5) {
          // Inside data.pkl or a storage, with the CRCs recomputed so the mutation reaches the parsers.
          const m = r() < 0.6 ? fieldMutation(r, original, pickle) : blindMutation(r, original);
          if (m.kind !== 'truncate') fixCrcs(m.bytes, entries);
          return m;
        }
        return fieldMutation(r, original, headers);
      };
    })(),
  };
}

const TARGETS: Target[] = [
  zipTarget('zip_basic.pth', 2200),
  zipTarget('zip64_comment.pth', 1200),
  zipTarget('zip_deflate_renamed.pth', 800),
  zipTarget('module_nested_zip_protocol4.pth', 1500),
  {
    name: 'legacy_basic.pth',
    cases: 2200,
    mutate: (() => {
      let f: Field[] | undefined;
      return (r: Rand, o: Uint8Array) => fieldMutation(r, o, (f ??= legacyFields(o)));
    })(),
  },
  {
    name: 'module_legacy.pth',
    cases: 1200,
    mutate: (() => {
      let f: Field[] | undefined;
      return (r: Rand, o: Uint8Array) => fieldMutation(r, o, (f ??= legacyFields(o)));
    })(),
  },
  {
    name: 'st_basic.safetensors',
    cases: 3000,
    mutate: (r, o) =>
      r() < 0.6
        ? headerMutation(r, o)
        : fieldMutation(r, o, [
            { at: 0, width: 8 },
            { at: 0, width: 4 },
            { at: 0, width: 2 },
          ]),
  },
];

describe('seeded fuzz: every mutation ends in a RestoreError or a consistent load', () => {
  const total: Stats = { cases: 0, loaded: 0, errors: {}, slowestMs: 0 };

  for (const target of TARGETS) {
    it(`${target.name}: ${target.cases} mutations`, () => {
      const original = fixture(target.name);
      expect(readCheckpoint(original).size).toBeGreaterThan(0);
      const stats: Stats = { cases: 0, loaded: 0, errors: {}, slowestMs: 0 };
      const seed = 0x5eed + target.name.length * 7919;
      const r = rng(seed);
      for (let i = 0; i < target.cases; i++) {
        const m = r() < 0.4 ? blindMutation(r, original) : target.mutate(r, original);
        runCase(m, `${target.name} seed ${seed} case ${i}`, stats);
      }
      // Both outcomes occur, and no single case was slow (a hang or a huge allocation would be).
      expect(Object.keys(stats.errors).length).toBeGreaterThan(0);
      expect(stats.slowestMs).toBeLessThan(1000);
      total.cases += stats.cases;
      total.loaded += stats.loaded;
      total.slowestMs = Math.max(total.slowestMs, stats.slowestMs);
      for (const [k, v] of Object.entries(stats.errors)) total.errors[k] = (total.errors[k] ?? 0) + v;
    });
  }

  it('ran thousands of cases over all formats', () => {
    expect(total.cases).toBeGreaterThanOrEqual(10_000);
    expect(total.errors.CHECKPOINT_FORMAT).toBeGreaterThan(0);
    expect(total.errors.CHECKPOINT_TRUNCATED).toBeGreaterThan(0);
    console.log(
      `fuzz: ${total.cases} cases, ${total.loaded} loaded, errors ${JSON.stringify(total.errors)}, slowest ${total.slowestMs.toFixed(1)} ms`,
    );
  });
});

// ---- decompression bombs and overruns ------------------------------------------------------------------------

/** Offsets of the central and local header of every entry, for rewriting declared sizes and CRCs. */
function headerOffsets(bytes: Uint8Array): { central: number; local: number }[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const centrals: number[] = [];
  for (let p = 0; p + 46 <= bytes.length; p++) if (dv.getUint32(p, true) === 0x02014b50) centrals.push(p);
  return new ZipArchive(bytes).entries.map((e, i) => ({ central: centrals[i], local: e.localHeaderOffset }));
}

describe('seeded fuzz: decompression bombs and overruns', () => {
  it('every deflated entry declared smaller than it inflates is refused, with or without a CRC', () => {
    const original = fixture('zip_deflate_renamed.pth');
    const archive = new ZipArchive(original);
    const headers = headerOffsets(original);
    const bound = inflateBound(original, tensorBytes(readCheckpoint(original)));
    const r = rng(0xb0b);
    let refused = 0;
    archive.entries.forEach((entry, i) => {
      if (entry.uncompressedSize === 0) return;
      for (let k = 0; k < 20; k++) {
        const bytes = original.slice();
        const dv = new DataView(bytes.buffer);
        const declared = Math.floor(r() * entry.uncompressedSize);
        for (const at of [headers[i].central + 24, headers[i].local + 22]) dv.setUint32(at, declared, true);
        if (r() < 0.5) for (const at of [headers[i].central + 16, headers[i].local + 14]) dv.setUint32(at, 0, true);
        let inflated = 0;
        try {
          readCheckpoint(bytes, { name: 'fuzz', onInflate: (n) => (inflated += n) });
          // Only an entry nothing reads (version, byteorder...) may still load.
          expect(entry.name).not.toMatch(/data\.pkl$|\/data\/\d+$/);
        } catch (err) {
          if (!(err instanceof RestoreError)) throw err;
          expect(err.code, `${entry.name} declared ${declared}`).toBe('CHECKPOINT_FORMAT');
          refused++;
        }
        expect(inflated).toBeLessThanOrEqual(bound);
      }
    });
    expect(refused).toBeGreaterThan(100);
  });

  it('generated bombs end quickly, in an error or a load within the inflate bound', () => {
    const r = rng(0xb0b0);
    const MiB = 2 ** 20;
    const errors: Record<string, number> = {};
    let loaded = 0;
    let slowest = 0;
    for (let k = 0; k < 120; k++) {
      // One or two storages; honest, lying-small or lying-large declared sizes; tensors anywhere in them.
      const storages = 1 + int(r, 2);
      const tensors: TensorSpec[] = [];
      const entries = [];
      for (let s = 0; s < storages; s++) {
        const numelDeclared = 1 + int(r, pick(r, [64, 4096, MiB, 16 * MiB]));
        const declaredBytes = numelDeclared * 4;
        const actual = pick(r, [declaredBytes, declaredBytes, Math.floor(declaredBytes / 2), declaredBytes * 2 + 1000, 64 * MiB]);
        entries.push(bombEntry(`archive/data/${s}`, actual, declaredBytes));
        for (let t = 0; t < 1 + int(r, 3); t++) {
          const count = 1 + int(r, Math.min(numelDeclared, pick(r, [4, 1024, numelDeclared])));
          const offset = int(r, numelDeclared - count + 1);
          tensors.push({ name: `t${s}.${t}`, storage: String(s), storageNumel: numelDeclared, offset, size: [count] });
        }
      }
      const pickle = torchPickle(tensors);
      // Sometimes the pickle itself overruns its declared size.
      const pickleEntry =
        r() < 0.2
          ? bombEntry('archive/data.pkl', pick(r, [pickle.length + 1, 2 * MiB, 80 * MiB]), pickle.length)
          : deflated('archive/data.pkl', pickle);
      const bytes = buildZip([pickleEntry, ...entries]);
      const declaredTensorBytes = tensors.reduce((n, t) => n + numel(t.size) * 4, 0);
      let inflated = 0;
      const t0 = performance.now();
      try {
        const sd = readCheckpoint(bytes, { name: 'bomb', onInflate: (n) => (inflated += n) });
        expect(tensorBytes(sd)).toBe(declaredTensorBytes);
        expect(inflated, 'the storages were inflated, and counted').toBeGreaterThan(0);
        loaded++;
      } catch (err) {
        if (!(err instanceof RestoreError)) throw new Error(`bomb case ${k}: ${String(err)}`, { cause: err });
        errors[err.code] = (errors[err.code] ?? 0) + 1;
      }
      slowest = Math.max(slowest, performance.now() - t0);
      // Loaded or not, never more than the pickle + 2 x the declared tensor bytes + 1 MiB, nor more than the
      // file may expand to.
      expect(inflated, `bomb case ${k}`).toBeLessThanOrEqual(pickle.length + 2 * declaredTensorBytes + MiB);
      expect(inflated).toBeLessThanOrEqual(maxTensorBytesFor(bytes.length) * 2 + MiB);
    }
    expect(loaded).toBeGreaterThan(0);
    expect(errors.CHECKPOINT_FORMAT).toBeGreaterThan(0);
    expect(errors.CHECKPOINT_TRUNCATED).toBeGreaterThan(0);
    expect(slowest).toBeLessThan(1000);
  });
});
