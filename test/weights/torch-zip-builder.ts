/**
 * Builds torch-style zip checkpoints byte by byte for the bomb tests: a protocol-2 data.pkl of
 * _rebuild_tensor_v2 calls, a zip writer that writes whatever sizes and CRCs it is told (honest or not), and
 * deflate streams of any length of zeros generated in a few bits per 258 bytes, so that gigabyte-sized
 * bombs never exist anywhere but in the generated stream.
 */
import { deflateSync } from 'fflate';
import { crc32 } from '../../src/weights';

// ---- data.pkl -----------------------------------------------------------------------------------------------

export interface TensorSpec {
  /** State-dict key. */
  name: string;
  /** Storage key: the entry '<folder>/data/<storage>'. */
  storage: string;
  dtype?: 'float32' | 'int64';
  /** Element count the persistent id declares for the storage. */
  storageNumel: number;
  offset?: number;
  size: number[];
  /** Row-major strides by default. */
  stride?: number[];
}

const STORAGE_CLASS = { float32: 'FloatStorage', int64: 'LongStorage' } as const;
export const ITEM_SIZE = { float32: 4, int64: 8 } as const;

class PickleWriter {
  private readonly parts: number[] = [];
  op(...bytes: number[]): this {
    this.parts.push(...bytes);
    return this;
  }
  text(s: string): this {
    const b = new TextEncoder().encode(s);
    this.op(0x58, b.length & 0xff, (b.length >> 8) & 0xff, (b.length >> 16) & 0xff, b.length >>> 24, ...b); // BINUNICODE
    return this;
  }
  global(module: string, name: string): this {
    return this.op(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`)); // GLOBAL
  }
  int(v: number): this {
    if (v >= 0 && v < 2 ** 31) return this.op(0x4a, v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >>> 24); // BININT
    // LONG1: little-endian two's complement, with a zero byte on top when the sign bit would be set.
    const bytes: number[] = [];
    for (let x = BigInt(v); x > 0n; x >>= 8n) bytes.push(Number(x & 0xffn));
    if (bytes.length === 0 || bytes[bytes.length - 1] & 0x80) bytes.push(0);
    return this.op(0x8a, bytes.length, ...bytes);
  }
  tuple(values: readonly number[]): this {
    this.op(0x28); // MARK
    for (const v of values) this.int(v);
    return this.op(0x74); // TUPLE
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

function rowMajor(size: readonly number[]): number[] {
  const stride = new Array<number>(size.length);
  let s = 1;
  for (let k = size.length - 1; k >= 0; k--) {
    stride[k] = s;
    s *= size[k];
  }
  return stride;
}

/** pickle.dumps({name: _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()), ...}, 2). */
export function torchPickle(tensors: readonly TensorSpec[]): Uint8Array {
  const w = new PickleWriter().op(0x80, 2, 0x7d, 0x28); // PROTO 2, EMPTY_DICT, MARK
  for (const t of tensors) {
    const dtype = t.dtype ?? 'float32';
    w.text(t.name).global('torch._utils', '_rebuild_tensor_v2').op(0x28); // MARK (the call's arguments)
    w.op(0x28).text('storage').global('torch', STORAGE_CLASS[dtype]).text(t.storage).text('cpu').int(t.storageNumel);
    w.op(0x74, 0x51); // TUPLE, BINPERSID
    w.int(t.offset ?? 0)
      .tuple(t.size)
      .tuple(t.stride ?? rowMajor(t.size));
    w.op(0x89).global('collections', 'OrderedDict').op(0x29, 0x52); // False, OrderedDict()
    w.op(0x74, 0x52); // TUPLE, REDUCE
  }
  return w.op(0x75, 0x2e).bytes(); // SETITEMS, STOP
}

// ---- zip ----------------------------------------------------------------------------------------------------

export interface ZipSpec {
  name: string;
  /** The bytes as they stand in the archive (already deflated for method 8). */
  data: Uint8Array;
  method: 0 | 8;
  /** What the headers declare. */
  uncompressedSize: number;
  crc: number;
}

export function stored(name: string, data: Uint8Array): ZipSpec {
  return { name, data, method: 0, uncompressedSize: data.length, crc: crc32(data) };
}

export function deflated(name: string, data: Uint8Array): ZipSpec {
  return { name, data: deflateSync(data), method: 8, uncompressedSize: data.length, crc: crc32(data) };
}

/** A plain zip (no Zip64: every size below 4 GiB), entries in the given order. */
export function buildZip(entries: readonly ZipSpec[]): Uint8Array {
  const enc = new TextEncoder();
  const names = entries.map((e) => enc.encode(e.name));
  const localSize = entries.reduce((n, e, i) => n + 30 + names[i].length + e.data.length, 0);
  const centralSize = names.reduce((n, name) => n + 46 + name.length, 0);
  const out = new Uint8Array(localSize + centralSize + 22);
  const dv = new DataView(out.buffer);
  const offsets: number[] = [];
  let at = 0;
  entries.forEach((e, i) => {
    offsets.push(at);
    dv.setUint32(at, 0x04034b50, true);
    dv.setUint16(at + 4, 20, true);
    dv.setUint16(at + 8, e.method, true);
    dv.setUint32(at + 14, e.crc, true);
    dv.setUint32(at + 18, e.data.length, true);
    dv.setUint32(at + 22, e.uncompressedSize, true);
    dv.setUint16(at + 26, names[i].length, true);
    out.set(names[i], at + 30);
    out.set(e.data, at + 30 + names[i].length);
    at += 30 + names[i].length + e.data.length;
  });
  const centralStart = at;
  entries.forEach((e, i) => {
    dv.setUint32(at, 0x02014b50, true);
    dv.setUint16(at + 4, 20, true);
    dv.setUint16(at + 6, 20, true);
    dv.setUint16(at + 10, e.method, true);
    dv.setUint32(at + 16, e.crc, true);
    dv.setUint32(at + 20, e.data.length, true);
    dv.setUint32(at + 24, e.uncompressedSize, true);
    dv.setUint16(at + 28, names[i].length, true);
    dv.setUint32(at + 42, offsets[i], true);
    out.set(names[i], at + 46);
    at += 46 + names[i].length;
  });
  dv.setUint32(at, 0x06054b50, true);
  dv.setUint16(at + 8, entries.length, true);
  dv.setUint16(at + 10, entries.length, true);
  dv.setUint32(at + 12, at - centralStart, true);
  dv.setUint32(at + 16, centralStart, true);
  return out;
}

/** A torch checkpoint zip: 'archive/data.pkl' first (stored), then the given storage entries. */
export function torchZip(tensors: readonly TensorSpec[], storages: readonly ZipSpec[], pickle = torchPickle(tensors)): Uint8Array {
  return buildZip([stored('archive/data.pkl', pickle), ...storages]);
}

// ---- deflate bombs ------------------------------------------------------------------------------------------

class BitWriter {
  private bytes = new Uint8Array(1024);
  private length = 0;
  private buffer = 0;
  private count = 0;
  /** `n` bits of `value`, least significant first (how deflate stores everything but Huffman codes). */
  bits(value: number, n: number): void {
    this.buffer |= value << this.count;
    this.count += n;
    while (this.count >= 8) {
      this.byte(this.buffer & 0xff);
      this.buffer >>>= 8;
      this.count -= 8;
    }
  }
  /** A Huffman code, which deflate stores most significant bit first. */
  code(code: number, n: number): void {
    let reversed = 0;
    for (let k = 0; k < n; k++) reversed |= ((code >> k) & 1) << (n - 1 - k);
    this.bits(reversed, n);
  }
  private byte(b: number): void {
    if (this.length === this.bytes.length) {
      const grown = new Uint8Array(this.bytes.length * 2);
      grown.set(this.bytes);
      this.bytes = grown;
    }
    this.bytes[this.length++] = b;
  }
  finish(): Uint8Array {
    if (this.count > 0) this.bits(0, 8 - this.count);
    return this.bytes.slice(0, this.length);
  }
}

/**
 * A raw deflate stream that inflates to exactly `outputBytes` zero bytes: one fixed-Huffman block of a
 * literal 0 followed by 258-byte copies at distance 1 (13 bits each, about 160:1). 1 GiB takes 6.8 MB.
 */
export function zeroBomb(outputBytes: number): Uint8Array {
  const w = new BitWriter();
  w.bits(1, 1); // BFINAL
  w.bits(1, 2); // fixed Huffman codes
  const literalZero = () => w.code(0x30, 8); // literals 0-143 are the 8-bit codes 0x30-0xbf
  let left = outputBytes;
  if (left > 0) {
    literalZero();
    left--;
  }
  for (; left >= 258; left -= 258) {
    w.code(0xc5, 8); // length symbol 285 (258 bytes): 8-bit code 0xc0 + (285 - 280)
    w.code(0, 5); // distance symbol 0 (1 byte back)
  }
  for (; left > 0; left--) literalZero();
  w.code(0, 7); // end of block (symbol 256: the 7-bit code 0)
  return w.finish();
}

/** CRC-32 of `n` zero bytes, without allocating them. */
export function crc32OfZeros(n: number): number {
  const chunk = new Uint8Array(Math.min(n, 1 << 20));
  let crc = 0;
  for (let left = n; left > 0; left -= chunk.length) crc = crc32(left >= chunk.length ? chunk : chunk.subarray(0, left), crc);
  return crc;
}

/** A deflated entry whose stream inflates to `actualBytes` zeros; the headers declare `declaredBytes`. */
export function bombEntry(name: string, actualBytes: number, declaredBytes = actualBytes, crc = 0): ZipSpec {
  return { name, data: zeroBomb(actualBytes), method: 8, uncompressedSize: declaredBytes, crc };
}
