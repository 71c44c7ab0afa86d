/**
 * The writing side of zip.ts, for PyTorch checkpoints: every entry stored (method 0), sizes and CRC-32 in
 * the local header (no data descriptor), and each entry's data starting on a multiple of 64 bytes. The
 * alignment is what PyTorch's own writer (caffe2 PyTorchStreamWriter) does, with the same device: a local
 * extra field of id "FB" whose body is 'Z' padding, so that a reader may map storages in place.
 * No Zip64 records: an archive that would need them (4 GiB, 65535 entries) is refused.
 */
import { InvalidInputError } from '../errors';
import { crc32 } from './zip';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const LOCAL_SIZE = 30;
const CENTRAL_SIZE = 46;
const EOCD_SIZE = 22;
/** Version 2.0: what stored entries with UTF-8 names need. */
const VERSION = 20;
/** General-purpose flag bit 11: names are UTF-8 (state-dict keys may be any Python string). */
const FLAG_UTF8 = 0x0800;
/** 1980-01-01 00:00 in MS-DOS form: fixed, so that the same tensors always give the same bytes. */
const DOS_DATE = (0 << 9) | (1 << 5) | 1;
const DOS_TIME = 0;
/** PyTorch's alignment padding: extra-field header id "FB" (bytes 'F', 'B'), body filled with 'Z'. */
const EXTRA_ALIGN_ID = 0x4246;
const PAD_BYTE = 0x5a;
const EXTRA_HEADER = 4;
const MAX_U32 = 0xffffffff;
const MAX_ENTRIES = 0xffff;

export interface StoredZipEntry {
  /** Path inside the archive ('archive/data/0'). */
  name: string;
  data: Uint8Array;
}

export interface WriteStoredZipOptions {
  /** Data offset alignment in bytes (default 64, as PyTorch). */
  alignment?: number;
  /** Prefix of error messages. */
  label?: string;
}

interface Placed {
  name: Uint8Array;
  data: Uint8Array;
  crc: number;
  headerOffset: number;
  /** Length of the local header's FB extra field (header + padding). */
  extraLength: number;
}

/** A zip archive of `entries` in the given order, all stored, each entry's data aligned. */
export function writeStoredZip(entries: readonly StoredZipEntry[], options: WriteStoredZipOptions = {}): Uint8Array {
  const alignment = options.alignment ?? 64;
  const label = options.label ?? 'zip archive';
  if (entries.length > MAX_ENTRIES - 1) {
    throw new InvalidInputError(`${label}: ${entries.length} entries need Zip64 records, which this writer does not write`);
  }
  const encoder = new TextEncoder();
  const placed: Placed[] = [];
  let at = 0;
  for (const e of entries) {
    const name = encoder.encode(e.name);
    if (name.length > 0xffff) throw new InvalidInputError(`${label}: entry name '${e.name.slice(0, 40)}…' is too long for a zip`);
    // Like PyTorch's getPadding: the FB field is always written, its padding brings the data to the boundary.
    const unpadded = at + LOCAL_SIZE + name.length + EXTRA_HEADER;
    const extraLength = EXTRA_HEADER + ((alignment - (unpadded % alignment)) % alignment);
    placed.push({ name, data: e.data, crc: crc32(e.data), headerOffset: at, extraLength });
    at += LOCAL_SIZE + name.length + extraLength + e.data.length;
  }
  const centralStart = at;
  const centralSize = placed.reduce((n, p) => n + CENTRAL_SIZE + p.name.length, 0);
  const total = centralStart + centralSize + EOCD_SIZE;
  if (centralStart + centralSize > MAX_U32 || placed.some((p) => p.data.length > MAX_U32)) {
    throw new InvalidInputError(`${label}: ${total} bytes need Zip64 records, which this writer does not write (at most 4 GiB)`);
  }

  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  for (const p of placed) writeLocal(out, dv, p);
  let c = centralStart;
  for (const p of placed) c = writeCentral(out, dv, c, p);
  dv.setUint32(c, SIG_EOCD, true);
  dv.setUint16(c + 8, placed.length, true); // entries on this disk
  dv.setUint16(c + 10, placed.length, true); // entries in total
  dv.setUint32(c + 12, centralSize, true);
  dv.setUint32(c + 16, centralStart, true);
  return out;
}

function writeLocal(out: Uint8Array, dv: DataView, p: Placed): void {
  const at = p.headerOffset;
  dv.setUint32(at, SIG_LOCAL, true);
  dv.setUint16(at + 4, VERSION, true);
  dv.setUint16(at + 6, FLAG_UTF8, true);
  dv.setUint16(at + 8, 0, true); // stored
  dv.setUint16(at + 10, DOS_TIME, true);
  dv.setUint16(at + 12, DOS_DATE, true);
  dv.setUint32(at + 14, p.crc, true);
  dv.setUint32(at + 18, p.data.length, true);
  dv.setUint32(at + 22, p.data.length, true);
  dv.setUint16(at + 26, p.name.length, true);
  dv.setUint16(at + 28, p.extraLength, true);
  out.set(p.name, at + LOCAL_SIZE);
  const extra = at + LOCAL_SIZE + p.name.length;
  dv.setUint16(extra, EXTRA_ALIGN_ID, true);
  dv.setUint16(extra + 2, p.extraLength - EXTRA_HEADER, true);
  out.fill(PAD_BYTE, extra + EXTRA_HEADER, extra + p.extraLength);
  out.set(p.data, extra + p.extraLength);
}

/** The central directory record of `p` at `at`; returns where the next one starts. */
function writeCentral(out: Uint8Array, dv: DataView, at: number, p: Placed): number {
  dv.setUint32(at, SIG_CENTRAL, true);
  dv.setUint16(at + 4, VERSION, true); // made by (MS-DOS attributes)
  dv.setUint16(at + 6, VERSION, true); // needed to extract
  dv.setUint16(at + 8, FLAG_UTF8, true);
  dv.setUint16(at + 10, 0, true); // stored
  dv.setUint16(at + 12, DOS_TIME, true);
  dv.setUint16(at + 14, DOS_DATE, true);
  dv.setUint32(at + 16, p.crc, true);
  dv.setUint32(at + 20, p.data.length, true);
  dv.setUint32(at + 24, p.data.length, true);
  dv.setUint16(at + 28, p.name.length, true);
  // Extra length, comment length, disk number, internal and external attributes: all 0. The alignment
  // padding lives in the local header only (zip.ts takes the data offset from there).
  dv.setUint32(at + 42, p.headerOffset, true);
  out.set(p.name, at + CENTRAL_SIZE);
  return at + CENTRAL_SIZE + p.name.length;
}
