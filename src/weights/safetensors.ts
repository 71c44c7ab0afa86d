/**
 * safetensors (huggingface/safetensors), read and written without any dependency:
 *   [u64 little-endian N] [N bytes of UTF-8 JSON header, possibly padded with spaces] [byte buffer]
 * The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end)} relative to the byte
 * buffer, plus an optional "__metadata__" object of string -> string. Like the reference implementation we
 * validate everything before touching the data: the header size, the JSON (duplicate keys rejected), every
 * dtype and shape, and that the tensors' byte ranges tile the buffer exactly - no gaps, no overlaps, nothing
 * left over. A file cut short reports CHECKPOINT_TRUNCATED. Values are not checked (NaN/Inf are legal).
 */
import { CheckpointError, InvalidInputError } from '../errors';
import { encodeTensor } from './encode';
import { decodeElements, MAX_TENSOR_ELEMENTS } from './storage';
import { dtypeByteSize, formatShape, isFloatDType, numel, type CpuTensor, type DType } from './tensor';
import { JsonSyntaxError, parseStrictJson, type JsonValue } from './strict-json';

/** The reference implementation refuses larger headers; real ones are a few kB to a few MB. */
export const MAX_SAFETENSORS_HEADER = 100_000_000;
const METADATA_KEY = '__metadata__';

const DTYPE_FROM_CODE: ReadonlyMap<string, DType> = new Map<string, DType>([
  ['F16', 'float16'],
  ['BF16', 'bfloat16'],
  ['F32', 'float32'],
  ['F64', 'float64'],
  ['I8', 'int8'],
  ['U8', 'uint8'],
  ['I16', 'int16'],
  ['I32', 'int32'],
  ['I64', 'int64'],
  ['BOOL', 'bool'],
]);
const CODE_FROM_DTYPE: ReadonlyMap<DType, string> = new Map([...DTYPE_FROM_CODE].map(([code, dtype]) => [dtype, code]));

/** One tensor's header entry, validated. Offsets are absolute positions in the file. */
export interface SafetensorsEntry {
  name: string;
  dtype: DType;
  shape: number[];
  /** Absolute byte range [begin, end) of the tensor's data in the file. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Entries in header order. */
  entries: SafetensorsEntry[];
  /** `__metadata__`, in header order (empty when absent). */
  metadata: Map<string, string>;
  /** Where the byte buffer starts (8 + header length). */
  dataStart: number;
}

export interface SafetensorsFile {
  /** Tensors in header order; float16/bfloat16 decoded to Float32Array with the stored dtype kept. */
  tensors: Map<string, CpuTensor>;
  metadata: Map<string, string>;
}

export interface ReadSafetensorsOptions {
  /** Name of the file, used in error messages. */
  name?: string;
}

function asBytes(bytes: Uint8Array | ArrayBuffer): Uint8Array {
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  if (!(bytes instanceof Uint8Array)) throw new InvalidInputError('expected a Uint8Array or ArrayBuffer');
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Parse and validate the header, without decoding any tensor. `bytes` must be the whole file: the data
 * ranges are checked against it (use this for `inspect`-style listings).
 */
export function readSafetensorsHeader(input: Uint8Array | ArrayBuffer, options: ReadSafetensorsOptions = {}): SafetensorsHeader {
  const bytes = asBytes(input);
  const label = options.name ?? 'safetensors file';
  const format = (message: string): CheckpointError => new CheckpointError('CHECKPOINT_FORMAT', `${label}: ${message}`);
  const truncated = (message: string): CheckpointError =>
    new CheckpointError('CHECKPOINT_TRUNCATED', `${label}: ${message}; the file is truncated or incomplete`);

  if (bytes.length < 8) throw truncated(`${bytes.length} bytes is too short for the 8-byte header length`);
  const declared = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (declared > BigInt(MAX_SAFETENSORS_HEADER)) {
    throw format(`declares a ${declared}-byte header, more than the ${MAX_SAFETENSORS_HEADER} bytes safetensors allows`);
  }
  const headerLength = Number(declared);
  const dataStart = 8 + headerLength;
  if (dataStart > bytes.length) {
    throw truncated(`the header needs bytes 8..${dataStart} but the file has only ${bytes.length} bytes`);
  }
  if (headerLength < 2 || bytes[8] !== 0x7b /* { */) throw format('the header does not start with a JSON object');

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart));
  } catch {
    throw format('the header is not valid UTF-8');
  }
  let root: JsonValue;
  try {
    root = parseStrictJson(text);
  } catch (err) {
    if (err instanceof JsonSyntaxError) throw format(`invalid JSON header: ${err.message}`);
    throw err;
  }
  if (!(root instanceof Map)) throw format('the header is not a JSON object');

  const metadata = new Map<string, string>();
  const entries: SafetensorsEntry[] = [];
  const bufferLength = bytes.length - dataStart;
  for (const [name, info] of root) {
    if (name === METADATA_KEY) {
      if (!(info instanceof Map)) throw format(`"${METADATA_KEY}" must be an object of strings`);
      for (const [k, v] of info) {
        if (typeof v !== 'string') throw format(`"${METADATA_KEY}" value of ${JSON.stringify(k)} is not a string`);
        metadata.set(k, v);
      }
      continue;
    }
    entries.push(parseEntry(name, info, dataStart, format));
  }
  checkTiling(entries, dataStart, bufferLength, format, truncated);
  return { entries, metadata, dataStart };
}

function parseEntry(name: string, info: JsonValue, dataStart: number, format: (m: string) => CheckpointError): SafetensorsEntry {
  const what = `tensor ${JSON.stringify(name)}`;
  if (!(info instanceof Map)) throw format(`${what}: expected an object with dtype, shape and data_offsets`);
  const code = info.get('dtype');
  const shape = info.get('shape');
  const offsets = info.get('data_offsets');
  if (typeof code !== 'string') throw format(`${what}: missing or non-string "dtype"`);
  const dtype = DTYPE_FROM_CODE.get(code);
  if (!dtype) {
    throw format(`${what}: unsupported dtype ${JSON.stringify(code)} (supported: ${[...DTYPE_FROM_CODE.keys()].join(', ')})`);
  }
  const isIndex = (v: JsonValue): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (!Array.isArray(shape) || !shape.every(isIndex)) throw format(`${what}: "shape" must be a list of non-negative integers`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) {
    throw format(`${what}: "data_offsets" must be [begin, end] with non-negative integers`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw format(`${what}: data_offsets [${begin}, ${end}] end before they begin`);
  const dims = shape;
  // Compare in floating point first: a shape such as [2^40, 2^40] must not be multiplied out exactly.
  const count = dims.reduce((n, d) => n * d, 1);
  if (count > MAX_TENSOR_ELEMENTS) {
    throw format(`${what}: shape ${formatShape(dims)} has more than the supported ${MAX_TENSOR_ELEMENTS} elements`);
  }
  const expected = count * dtypeByteSize(dtype);
  if (end - begin !== expected) {
    throw format(`${what}: ${code} ${formatShape(dims)} needs ${expected} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
  }
  return { name, dtype, shape: dims, begin: dataStart + begin, end: dataStart + end };
}

/** The byte ranges must tile [0, bufferLength) exactly, as the format requires. */
function checkTiling(
  entries: readonly SafetensorsEntry[],
  dataStart: number,
  bufferLength: number,
  format: (m: string) => CheckpointError,
  truncated: (m: string) => CheckpointError,
): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = dataStart;
  for (const e of sorted) {
    const rel = (x: number) => x - dataStart;
    if (e.begin > at) throw format(`tensor ${JSON.stringify(e.name)} starts at ${rel(e.begin)}, leaving a gap after ${rel(at)}`);
    if (e.begin < at) throw format(`tensor ${JSON.stringify(e.name)} at [${rel(e.begin)}, ${rel(e.end)}) overlaps the tensor before it`);
    at = e.end;
  }
  const used = at - dataStart;
  if (used > bufferLength) {
    throw truncated(`the tensors need ${used} bytes of data but only ${bufferLength} follow the header`);
  }
  if (used < bufferLength) throw format(`${bufferLength - used} bytes after the last tensor belong to no tensor`);
}

/** Read a whole safetensors file: every tensor decoded (copied) plus the metadata. */
export function readSafetensors(input: Uint8Array | ArrayBuffer, options: ReadSafetensorsOptions = {}): SafetensorsFile {
  const bytes = asBytes(input);
  const header = readSafetensorsHeader(bytes, options);
  const tensors = new Map<string, CpuTensor>();
  for (const e of header.entries) {
    const count = numel(e.shape);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape.slice(), data: decodeElements(bytes, e.begin, count, e.dtype) });
  }
  return { tensors, metadata: header.metadata };
}

export interface WriteSafetensorsOptions {
  /** Stored as `__metadata__` (string values only). */
  metadata?: ReadonlyMap<string, string> | Readonly<Record<string, string>>;
  /** Write every floating-point tensor in this dtype instead of its own (e.g. 'float16' to halve the size). */
  floatDType?: 'float16' | 'bfloat16' | 'float32' | 'float64';
}

/**
 * Serialise a state dict. Header entries are in sorted key order after `__metadata__`; the data is laid out
 * by decreasing element size, then key, so every tensor starts at a multiple of its element size (as the
 * reference writer does) once the header is padded with spaces to a multiple of 8 bytes.
 */
export function writeSafetensors(tensors: ReadonlyMap<string, CpuTensor>, options: WriteSafetensorsOptions = {}): Uint8Array {
  const names = [...tensors.keys()].sort(compareStrings);
  const planned = names.map((name) => {
    if (name === METADATA_KEY) throw new InvalidInputError(`'${METADATA_KEY}' cannot be a tensor name`);
    const t = tensors.get(name)!;
    const dtype = options.floatDType && isFloatDType(t.dtype) ? options.floatDType : t.dtype;
    return { name, dtype, shape: t.shape.slice(), data: encodeTensor(t, dtype) };
  });
  const layout = [...planned].sort((a, b) => dtypeByteSize(b.dtype) - dtypeByteSize(a.dtype) || compareStrings(a.name, b.name));
  const offsets = new Map<string, [number, number]>();
  let size = 0;
  for (const p of layout) {
    offsets.set(p.name, [size, size + p.data.length]);
    size += p.data.length;
  }

  const metadata = options.metadata instanceof Map ? [...options.metadata] : Object.entries(options.metadata ?? {});
  // '__metadata__' goes first, like the reference writer.
  const parts: string[] = [];
  if (metadata.length > 0) {
    for (const [k, v] of metadata) {
      if (typeof v !== 'string') throw new InvalidInputError(`metadata value of '${k}' must be a string`);
    }
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${metadata.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
  }
  for (const p of planned) {
    const code = CODE_FROM_DTYPE.get(p.dtype)!;
    parts.push(
      `${JSON.stringify(p.name)}:{"dtype":${JSON.stringify(code)},"shape":${JSON.stringify(p.shape)},` +
        `"data_offsets":${JSON.stringify(offsets.get(p.name))}}`,
    );
  }
  // Written by hand rather than JSON.stringify(object): integer-like tensor names ("0") would be reordered.
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = json.length + ((8 - ((8 + json.length) % 8)) % 8);
  const out = new Uint8Array(8 + padded + size);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  const dataStart = 8 + padded;
  for (const p of layout) out.set(p.data, dataStart + offsets.get(p.name)![0]);
  return out;
}

/** Code-unit order, like Python's sorted() on ASCII names (and deterministic for any name). */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
