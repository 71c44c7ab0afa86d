/**
 * Recognise what a "weights file" really is from its first bytes. Most loading failures in practice are
 * not corrupt checkpoints but the wrong file: a Git LFS pointer committed instead of the weights, an HTML
 * error page saved by a downloader, a safetensors file given to the .pth reader, an ONNX export. Naming the
 * actual kind turns those into one-line diagnoses.
 *
 * Descriptions name the kind and the size but never quote the file: a service that passes user-supplied
 * paths would otherwise leak the start of any file it can read (the first line of /etc/passwd, say) into
 * its error messages. The one exception is a Git LFS pointer's oid and size, and only when they have the
 * pointer format's exact shape (a sha256 hex digest, a decimal number).
 */
import { MAX_SAFETENSORS_HEADER } from './safetensors';

export type CheckpointKind =
  | 'empty'
  | 'torch-zip'
  | 'torch-legacy'
  | 'pickle'
  | 'safetensors'
  | 'git-lfs-pointer'
  | 'html'
  | 'gzip'
  | 'tar'
  | 'numpy'
  | 'hdf5'
  | 'onnx'
  | 'text'
  | 'unknown';

export interface SniffResult {
  kind: CheckpointKind;
  /** A phrase for error messages, e.g. "a gzip-compressed file (1234 bytes); decompress it first". */
  description: string;
}

/** The first pickle of a legacy (pre-1.6) torch.save file: protocol 2, LONG1 0x1950a86a20f9469cfc6c. */
export const TORCH_LEGACY_MAGIC = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);
/** The magic number itself, as the unpickler returns it. */
export const TORCH_LEGACY_MAGIC_NUMBER = 0x1950a86a20f9469cfc6cn;

function startsWith(bytes: Uint8Array, prefix: ArrayLike<number>, at = 0): boolean {
  if (bytes.length < at + prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[at + i] !== prefix[i]) return false;
  return true;
}

function ascii(s: string): number[] {
  return [...s].map((c) => c.charCodeAt(0));
}

function textHead(bytes: Uint8Array, n: number): string {
  return new TextDecoder('utf-8').decode(bytes.subarray(0, n));
}

/**
 * `ab 12 ...` plus a printable rendering of the first bytes. For a caller's own diagnostics only: error
 * messages never include it, since it is the file's content.
 */
export function describeFirstBytes(bytes: Uint8Array, n = 16): string {
  const head = bytes.subarray(0, n);
  const hex = [...head].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  const printable = [...head].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
  return `${hex}${bytes.length > n ? ' ...' : ''} ("${printable}")`;
}

function sizeText(bytes: Uint8Array): string {
  return `${bytes.length} byte${bytes.length === 1 ? '' : 's'}`;
}

function isMostlyText(bytes: Uint8Array): boolean {
  const head = bytes.subarray(0, 512);
  let printable = 0;
  for (const b of head) if ((b >= 0x20 && b < 0x7f) || b === 0x0a || b === 0x0d || b === 0x09 || b >= 0x80) printable++;
  return head.length > 0 && printable / head.length > 0.95 && !head.includes(0);
}

export function sniffCheckpoint(bytes: Uint8Array): SniffResult {
  if (bytes.length === 0) return { kind: 'empty', description: 'an empty file (0 bytes)' };
  const size = sizeText(bytes);
  if (startsWith(bytes, [0x50, 0x4b, 0x03, 0x04]) || startsWith(bytes, [0x50, 0x4b, 0x05, 0x06])) {
    return { kind: 'torch-zip', description: 'a zip archive (PyTorch >= 1.6 format)' };
  }
  if (hasLegacyMagic(bytes)) {
    return { kind: 'torch-legacy', description: 'a legacy (pre-1.6) PyTorch checkpoint' };
  }
  if (bytes[0] === 0x80 && bytes.length >= 2 && bytes[1] >= 2 && bytes[1] <= 5) {
    return { kind: 'pickle', description: `a Python pickle (protocol ${bytes[1]})` };
  }
  if (startsWith(bytes, ascii('version https://git-lfs'))) return describeLfsPointer(bytes);
  const safetensors = sniffSafetensors(bytes);
  if (safetensors) return safetensors;
  if (startsWith(bytes, [0x1f, 0x8b])) return { kind: 'gzip', description: `a gzip-compressed file (${size}); decompress it first` };
  if (startsWith(bytes, ascii('ustar'), 257)) {
    return { kind: 'tar', description: `a tar archive (${size}; the pre-0.1.10 PyTorch format, or an archive to extract first)` };
  }
  if (startsWith(bytes, [0x93, ...ascii('NUMPY')])) return { kind: 'numpy', description: `a NumPy .npy array file (${size})` };
  if (startsWith(bytes, [0x89, ...ascii('HDF\r\n'), 0x1a, 0x0a])) {
    return { kind: 'hdf5', description: `an HDF5 file (${size}; Keras/TensorFlow weights?), not a PyTorch checkpoint` };
  }
  if (looksLikeOnnx(bytes)) {
    return {
      kind: 'onnx',
      description:
        `an ONNX model (${size}), which is not supported: load the network's original PyTorch weights ` +
        `(.pth/.pt) or a safetensors file of them instead`,
    };
  }
  // Skip a UTF-8 BOM and leading whitespace before looking for markup.
  let i = startsWith(bytes, [0xef, 0xbb, 0xbf]) ? 3 : 0;
  while (i < bytes.length && i < 1024 && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  if (bytes[i] === 0x3c /* '<' */) {
    const head = textHead(bytes.subarray(i), 200).toLowerCase();
    const what = head.startsWith('<?xml') && !head.includes('<html') ? 'an XML document' : 'an HTML page';
    return {
      kind: 'html',
      description: `${what} (${size}), not a checkpoint; the download probably failed or returned an error or login page`,
    };
  }
  if (isMostlyText(bytes)) return { kind: 'text', description: `a text file (${size}), not a checkpoint` };
  return { kind: 'unknown', description: `a file of ${size} in no format this reader knows` };
}

function describeLfsPointer(bytes: Uint8Array): SniffResult {
  const text = textHead(bytes, 512);
  // Only fields of the pointer format's exact shape are repeated; anything else in the file is not.
  const oid = /^oid (sha256:[0-9a-f]{64})$/m.exec(text)?.[1];
  const size = /^size (\d{1,20})$/m.exec(text)?.[1];
  const detail = [oid && `oid ${oid}`, size && `${size} bytes`].filter(Boolean).join(', ');
  return {
    kind: 'git-lfs-pointer',
    description: `a Git LFS pointer file${detail ? ` (${detail})` : ''}, not the weights themselves; run 'git lfs pull' or download the real file`,
  };
}

/**
 * ONNX files are protobuf ModelProto messages, which serialise field 1 (ir_version, a small varint) first,
 * then further fields of the message. Checking that the first few fields parse as ModelProto fields with
 * the right wire types is cheap and rules out files that merely start with the byte 0x08.
 */
function looksLikeOnnx(bytes: Uint8Array): boolean {
  if (bytes[0] !== 0x08 || !(bytes[1] >= 1 && bytes[1] <= 0x7f)) return false;
  let at = 2;
  let fields = 0;
  while (at < bytes.length && fields < 3) {
    const tag = bytes[at++];
    const wireType = tag & 7;
    const wanted = ONNX_MODEL_FIELDS.get(tag >> 3);
    if (tag >= 0x80 || wanted === undefined || wanted !== wireType) return false;
    const value = readVarint(bytes, at);
    if (!value) return false;
    at = value.end + (wireType === 2 ? value.value : 0);
    if (at > bytes.length) return false;
    fields++;
  }
  return fields > 0;
}

/** ModelProto field numbers (those that fit a one-byte tag) and their wire types: 0 varint, 2 bytes. */
const ONNX_MODEL_FIELDS: ReadonlyMap<number, number> = new Map([
  [1, 0], // ir_version
  [2, 2], // producer_name
  [3, 2], // producer_version
  [4, 2], // domain
  [5, 0], // model_version
  [6, 2], // doc_string
  [7, 2], // graph
  [8, 2], // opset_import
  [14, 2], // metadata_props
]);

function readVarint(bytes: Uint8Array, start: number): { value: number; end: number } | undefined {
  let value = 0;
  for (let at = start, shift = 0; at < bytes.length && shift < 50; at++, shift += 7) {
    value += (bytes[at] & 0x7f) * 2 ** shift;
    if (bytes[at] < 0x80) return { value, end: at + 1 };
  }
  return undefined;
}

/**
 * The legacy magic number as torch.save writes it with any pickle protocol: LONG1 after PROTO (and, from
 * protocol 4, a FRAME header), or the text LONG opcode for protocols 0/1.
 */
function hasLegacyMagic(bytes: Uint8Array): boolean {
  if (startsWith(bytes, TORCH_LEGACY_MAGIC)) return true;
  if (bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5) {
    const at = bytes[2] === 0x95 /* FRAME */ ? 11 : 2;
    return startsWith(bytes, TORCH_LEGACY_MAGIC.subarray(2), at);
  }
  return startsWith(bytes, ascii(`L${TORCH_LEGACY_MAGIC_NUMBER}L\n`));
}

/** safetensors: 8-byte little-endian JSON header length, then the JSON header itself. */
function sniffSafetensors(bytes: Uint8Array): SniffResult | undefined {
  if (bytes.length < 9 || bytes[8] !== 0x7b /* '{' */) return undefined;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const headerLength = dv.getBigUint64(0, true);
  if (headerLength < 2n) return undefined;
  if (headerLength <= BigInt(MAX_SAFETENSORS_HEADER)) {
    return { kind: 'safetensors', description: `a safetensors file (${headerLength}-byte header)` };
  }
  // Over the cap: still say what it is (the reader then names the limit), but only when the JSON visibly
  // starts like a safetensors header, so that arbitrary binary with a '{' as ninth byte is not claimed.
  if (bytes[9] === 0x22 /* '"' */ || bytes[9] === 0x7d /* '}' */) {
    return {
      kind: 'safetensors',
      description: `a safetensors file whose header length ${headerLength} exceeds the ${MAX_SAFETENSORS_HEADER}-byte limit`,
    };
  }
  return undefined;
}
