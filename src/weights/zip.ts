/**
 * A minimal, defensive ZIP reader: just enough for PyTorch checkpoints (which are uncompressed zips with
 * Zip64 records) and for tools that re-pack them with deflate. It reads the central directory, never trusts
 * an offset or length without checking it against the buffer, and reports a cut-off download as
 * CHECKPOINT_TRUNCATED instead of letting a RangeError escape. A deflated entry is inflated into a buffer of
 * its declared size and refused at the first byte beyond it, so what a file may inflate to is known, from
 * its central directory, before anything is inflated.
 */
import { CheckpointError } from '../errors';
import { inflateRaw, InflateError, MAX_DEFLATE_RATIO, type InflateMode } from '../compression/inflate';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const EOCD_SIZE = 22;
const ZIP64_LOCATOR_SIZE = 20;
const ZIP64_EOCD_MIN_SIZE = 56;
const CENTRAL_SIZE = 46;
const LOCAL_SIZE = 30;
const MAX_COMMENT = 0xffff;
/** Extra-field id of the Zip64 extended information record. */
const EXTRA_ZIP64 = 0x0001;

export const METHOD_STORED = 0;
export const METHOD_DEFLATE = 8;

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate; anything else is rejected when read. */
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
}

export interface ZipReadOptions {
  /** Used as the prefix of error messages (typically the file name). */
  name?: string;
  /**
   * Check each entry's CRC-32 when it is read in full (default true). A stored CRC of 0 means "not recorded":
   * torch.save writes 0 when CRC computation is switched off (torch.serialization.set_crc32_options), so it
   * cannot be refused; the size checks still apply to such entries.
   */
  verifyCrc?: boolean;
  /** Refuse to inflate entries that declare more than this many bytes (default 2 GiB) - a zip-bomb guard. */
  maxEntrySize?: number;
  /**
   * Called with the size of every buffer allocated to inflate into, before inflating (stored entries are
   * returned in place and never reported). For measuring, or capping, what a file makes the reader allocate.
   */
  onInflate?: (bytes: number, entry: ZipEntry) => void;
}

const DEFAULT_MAX_ENTRY = 2 ** 31;

export class ZipArchive {
  readonly entries: readonly ZipEntry[];
  private readonly byName: Map<string, ZipEntry>;
  private readonly bytes: Uint8Array;
  private readonly label: string;
  private readonly verifyCrc: boolean;
  private readonly maxEntrySize: number;
  private readonly onInflate: ((bytes: number, entry: ZipEntry) => void) | undefined;

  constructor(bytes: Uint8Array, options: ZipReadOptions = {}) {
    this.bytes = bytes;
    this.label = options.name ?? 'zip archive';
    this.verifyCrc = options.verifyCrc ?? true;
    this.maxEntrySize = options.maxEntrySize ?? DEFAULT_MAX_ENTRY;
    this.onInflate = options.onInflate;
    this.entries = readCentralDirectory(new Reader(bytes, this.label));
    this.byName = new Map();
    for (const e of this.entries) {
      if (this.byName.has(e.name)) {
        throw new CheckpointError('CHECKPOINT_FORMAT', `${this.label}: zip archive has two entries named '${e.name}'`);
      }
      this.byName.set(e.name, e);
    }
  }

  get(name: string): ZipEntry | undefined {
    return this.byName.get(name);
  }

  /**
   * The uncompressed bytes of an entry, checked against its declared size and (when recorded) its CRC-32.
   * Stored entries are returned as a view into the archive bytes (no copy), so callers must copy before
   * mutating; deflated entries are inflated into a new buffer of exactly the declared size, and inflation
   * stops at the first byte beyond it (CHECKPOINT_FORMAT).
   */
  read(entryOrName: ZipEntry | string): Uint8Array {
    const entry = this.entry(entryOrName);
    const what = `zip entry '${entry.name}'`;
    const raw = this.compressedData(entry, what);
    let out: Uint8Array;
    if (entry.method === METHOD_STORED) {
      out = raw;
    } else {
      if (entry.uncompressedSize > this.maxEntrySize) {
        throw new CheckpointError(
          'CHECKPOINT_FORMAT',
          `${this.label}: ${what} declares ${entry.uncompressedSize} bytes, more than the allowed ${this.maxEntrySize}`,
        );
      }
      out = this.inflate(raw, entry, entry.uncompressedSize, 'exact', what);
    }
    if (this.verifyCrc && entry.crc32 !== 0) {
      const actual = crc32(out);
      if (actual !== entry.crc32) {
        throw new CheckpointError(
          'CHECKPOINT_FORMAT',
          `${this.label}: ${what} is corrupted (CRC-32 ${hex32(actual)}, expected ${hex32(entry.crc32)})`,
        );
      }
    }
    return out;
  }

  /**
   * The first `length` bytes of an entry, inflating no further than that: for a large entry of which only a
   * part is needed (a storage whose tensors use its start), so a small file cannot make the reader produce
   * gigabytes it will never use. Stored entries are read (and CRC-checked) whole, which costs no memory.
   * A deflated entry read in part cannot have its CRC checked, since that covers the whole entry.
   */
  readPrefix(entryOrName: ZipEntry | string, length: number): Uint8Array {
    const entry = this.entry(entryOrName);
    const what = `zip entry '${entry.name}'`;
    if (!(Number.isSafeInteger(length) && length >= 0 && length <= entry.uncompressedSize)) {
      throw new CheckpointError(
        'CHECKPOINT_FORMAT',
        `${this.label}: ${length} bytes are needed from ${what}, which declares only ${entry.uncompressedSize}`,
      );
    }
    if (entry.method === METHOD_STORED || length === entry.uncompressedSize) return this.read(entry).subarray(0, length);
    return this.inflate(this.compressedData(entry, what), entry, length, 'prefix', what);
  }

  private entry(entryOrName: ZipEntry | string): ZipEntry {
    const entry = typeof entryOrName === 'string' ? this.byName.get(entryOrName) : entryOrName;
    if (!entry) {
      throw new CheckpointError('CHECKPOINT_FORMAT', `${this.label}: zip archive has no entry '${entryOrName as string}'`);
    }
    return entry;
  }

  /** The entry's bytes as stored in the archive, after checking its local header and method. */
  private compressedData(entry: ZipEntry, what: string): Uint8Array {
    const r = new Reader(this.bytes, this.label);
    if (entry.flags & 1) {
      throw new CheckpointError('CHECKPOINT_FORMAT', `${this.label}: ${what} is encrypted, which is not supported`);
    }
    if (entry.method !== METHOD_STORED && entry.method !== METHOD_DEFLATE) {
      throw new CheckpointError(
        'CHECKPOINT_FORMAT',
        `${this.label}: ${what} uses compression method ${entry.method}; only stored (0) and deflate (8) are supported`,
      );
    }
    const at = entry.localHeaderOffset;
    r.need(at, LOCAL_SIZE, `local header of ${what}`);
    if (r.u32(at) !== SIG_LOCAL) {
      throw new CheckpointError('CHECKPOINT_FORMAT', `${this.label}: ${what} has no valid local header at offset ${at}`);
    }
    // The local header's name and extra field may differ in length from the central directory's copy
    // (PyTorch pads the local extra field to align data to 64 bytes), so the data offset comes from here.
    const dataStart = at + LOCAL_SIZE + r.u16(at + 26) + r.u16(at + 28);
    r.need(dataStart, entry.compressedSize, `data of ${what}`);
    if (entry.method === METHOD_STORED && entry.compressedSize !== entry.uncompressedSize) {
      throw new CheckpointError(
        'CHECKPOINT_FORMAT',
        `${this.label}: stored ${what} has compressed size ${entry.compressedSize} != size ${entry.uncompressedSize}`,
      );
    }
    return this.bytes.subarray(dataStart, dataStart + entry.compressedSize);
  }

  /** Inflate into a buffer of `length` bytes: all of the entry ('exact') or its start ('prefix'). */
  private inflate(raw: Uint8Array, entry: ZipEntry, length: number, mode: InflateMode, what: string): Uint8Array {
    // Deflate cannot expand data more than ~1032:1, so a larger declared size is a lie (or a zip bomb).
    if (entry.uncompressedSize > entry.compressedSize * MAX_DEFLATE_RATIO + 1024) {
      throw new CheckpointError(
        'CHECKPOINT_FORMAT',
        `${this.label}: ${what} declares ${entry.uncompressedSize} bytes from ${entry.compressedSize} compressed bytes, which deflate cannot produce`,
      );
    }
    this.onInflate?.(length, entry);
    const out = new Uint8Array(length);
    try {
      inflateRaw(raw, out, mode);
    } catch (err) {
      if (!(err instanceof InflateError)) throw err;
      throw inflateFailure(err, this.label, what, entry.uncompressedSize);
    }
    return out;
  }
}

function inflateFailure(err: InflateError, label: string, what: string, declared: number): CheckpointError {
  switch (err.failure) {
    case 'overrun':
      return new CheckpointError(
        'CHECKPOINT_FORMAT',
        `${label}: ${what} inflates to more than its declared ${declared} bytes; refused (a zip bomb, or a corrupted size)`,
        { cause: err },
      );
    case 'truncated':
      return new CheckpointError(
        'CHECKPOINT_TRUNCATED',
        `${label}: cannot inflate ${what}: ${err.message}; the data is truncated or incomplete`,
        { cause: err },
      );
    case 'corrupt':
      return new CheckpointError('CHECKPOINT_FORMAT', `${label}: cannot inflate ${what}: ${err.message}`, { cause: err });
  }
}

/** Convenience wrapper: parse the central directory of `bytes`. */
export function openZip(bytes: Uint8Array, options?: ZipReadOptions): ZipArchive {
  return new ZipArchive(bytes, options);
}

/** Bounds-checked little-endian reads over the whole file. */
class Reader {
  private readonly dv: DataView;
  constructor(
    readonly bytes: Uint8Array,
    readonly label: string,
  ) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get length(): number {
    return this.bytes.length;
  }

  /** Throw CHECKPOINT_TRUNCATED unless [offset, offset + length) lies inside the file. */
  need(offset: number, length: number, what: string): void {
    if (!(offset >= 0 && length >= 0 && offset + length <= this.bytes.length)) {
      throw new CheckpointError(
        'CHECKPOINT_TRUNCATED',
        `${this.label}: ${what} (bytes ${offset}..${offset + length}) lies beyond the end of the ` +
          `${this.bytes.length}-byte file; the file is truncated or incomplete`,
      );
    }
  }

  u16(at: number): number {
    return this.dv.getUint16(at, true);
  }

  u32(at: number): number {
    return this.dv.getUint32(at, true);
  }

  /** 64-bit field as a number; offsets beyond 2^53 cannot be real for an in-memory buffer. */
  u64(at: number, what: string): number {
    const v = this.dv.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new CheckpointError('CHECKPOINT_FORMAT', `${this.label}: ${what} ${v} is not a plausible size or offset`);
    }
    return Number(v);
  }
}

interface Directory {
  count: number;
  offset: number;
  size: number;
}

/** Locate the End Of Central Directory record, scanning backwards over a possible archive comment. */
function findEocd(r: Reader): number {
  const lowest = Math.max(0, r.length - EOCD_SIZE - MAX_COMMENT);
  let fallback = -1;
  for (let at = r.length - EOCD_SIZE; at >= lowest; at--) {
    if (r.u32(at) !== SIG_EOCD) continue;
    const commentLength = r.u16(at + 20);
    // A record whose comment runs exactly to the end of the file is the real one; the same four bytes
    // can occur by chance inside stored data, so keep looking if the comment length does not fit.
    if (at + EOCD_SIZE + commentLength === r.length) return at;
    if (fallback < 0 && at + EOCD_SIZE + commentLength <= r.length) fallback = at;
  }
  if (fallback >= 0) return fallback;
  throw new CheckpointError(
    'CHECKPOINT_TRUNCATED',
    `${r.label}: no zip end-of-central-directory record found in ${r.length} bytes; ` +
      `the file is truncated or incomplete (an interrupted download?)`,
  );
}

function readDirectoryLocation(r: Reader, eocd: number): Directory {
  let dir: Directory = { count: r.u16(eocd + 10), size: r.u32(eocd + 12), offset: r.u32(eocd + 16) };
  const locator = eocd - ZIP64_LOCATOR_SIZE;
  if (locator >= 0 && r.u32(locator) === SIG_ZIP64_LOCATOR) {
    const at = r.u64(locator + 8, 'Zip64 end-of-central-directory offset');
    r.need(at, ZIP64_EOCD_MIN_SIZE, 'Zip64 end-of-central-directory record');
    if (r.u32(at) !== SIG_ZIP64_EOCD) {
      throw new CheckpointError('CHECKPOINT_FORMAT', `${r.label}: Zip64 locator points at offset ${at}, which is not a Zip64 record`);
    }
    dir = {
      count: r.u64(at + 32, 'Zip64 entry count'),
      size: r.u64(at + 40, 'Zip64 central directory size'),
      offset: r.u64(at + 48, 'Zip64 central directory offset'),
    };
  } else if (dir.count === 0xffff || dir.size === 0xffffffff || dir.offset === 0xffffffff) {
    throw new CheckpointError('CHECKPOINT_FORMAT', `${r.label}: zip needs Zip64 records but has no Zip64 locator`);
  }
  return dir;
}

function readCentralDirectory(r: Reader): ZipEntry[] {
  const eocd = findEocd(r);
  const dir = readDirectoryLocation(r, eocd);
  r.need(dir.offset, dir.size, 'central directory');
  if (dir.count * CENTRAL_SIZE > dir.size) {
    throw new CheckpointError(
      'CHECKPOINT_FORMAT',
      `${r.label}: central directory claims ${dir.count} entries but is only ${dir.size} bytes long`,
    );
  }
  const decoder = new TextDecoder('utf-8');
  const end = dir.offset + dir.size;
  const entries: ZipEntry[] = [];
  let at = dir.offset;
  for (let i = 0; i < dir.count; i++) {
    if (at + CENTRAL_SIZE > end) {
      throw new CheckpointError('CHECKPOINT_FORMAT', `${r.label}: central directory entry ${i} runs past the directory`);
    }
    if (r.u32(at) !== SIG_CENTRAL) {
      throw new CheckpointError('CHECKPOINT_FORMAT', `${r.label}: bad central directory entry ${i} at offset ${at}`);
    }
    const nameLength = r.u16(at + 28);
    const extraLength = r.u16(at + 30);
    const commentLength = r.u16(at + 32);
    const next = at + CENTRAL_SIZE + nameLength + extraLength + commentLength;
    if (next > end) {
      throw new CheckpointError('CHECKPOINT_FORMAT', `${r.label}: central directory entry ${i} runs past the directory`);
    }
    const nameStart = at + CENTRAL_SIZE;
    const entry: ZipEntry = {
      name: decoder.decode(r.bytes.subarray(nameStart, nameStart + nameLength)),
      flags: r.u16(at + 8),
      method: r.u16(at + 10),
      crc32: r.u32(at + 16),
      compressedSize: r.u32(at + 20),
      uncompressedSize: r.u32(at + 24),
      localHeaderOffset: r.u32(at + 42),
    };
    applyZip64Extra(r, entry, nameStart + nameLength, extraLength);
    entries.push(entry);
    at = next;
  }
  return entries;
}

/**
 * Replace saturated (0xFFFFFFFF) 32-bit fields by their 64-bit values from the Zip64 extra field. The
 * extra field lists only the saturated fields, in a fixed order.
 */
function applyZip64Extra(r: Reader, entry: ZipEntry, start: number, length: number): void {
  const needUncompressed = entry.uncompressedSize === 0xffffffff;
  const needCompressed = entry.compressedSize === 0xffffffff;
  const needOffset = entry.localHeaderOffset === 0xffffffff;
  if (!needUncompressed && !needCompressed && !needOffset) return;
  const end = start + length;
  let at = start;
  while (at + 4 <= end) {
    const id = r.u16(at);
    const size = r.u16(at + 2);
    const body = at + 4;
    if (body + size > end) break;
    if (id === EXTRA_ZIP64) {
      let p = body;
      const take = (what: string): number => {
        if (p + 8 > body + size) {
          throw new CheckpointError('CHECKPOINT_FORMAT', `${r.label}: Zip64 extra field of '${entry.name}' lacks the ${what}`);
        }
        const v = r.u64(p, `Zip64 ${what} of '${entry.name}'`);
        p += 8;
        return v;
      };
      if (needUncompressed) entry.uncompressedSize = take('uncompressed size');
      if (needCompressed) entry.compressedSize = take('compressed size');
      if (needOffset) entry.localHeaderOffset = take('local header offset');
      // A trailing disk-start number may follow; multi-disk archives are not supported, so it is ignored.
      return;
    }
    at = body + size;
  }
  throw new CheckpointError('CHECKPOINT_FORMAT', `${r.label}: zip entry '${entry.name}' needs a Zip64 extra field but has none`);
}

let crcTable: Uint32Array | undefined;

/**
 * CRC-32 (IEEE 802.3, as used by zip), table-driven. Pass the CRC of the preceding bytes as `previous` to
 * continue it over data that comes in pieces.
 */
export function crc32(data: Uint8Array, previous = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  const table = crcTable;
  let c = (previous ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function hex32(v: number): string {
  return `0x${v.toString(16).padStart(8, '0')}`;
}
