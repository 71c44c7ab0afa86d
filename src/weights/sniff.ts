/**
 * Recognise what a "weights file" really is from its first bytes. Most loading failures in practice are
 * not corrupt checkpoints but the wrong file: a Git LFS pointer committed instead of the weights, an HTML
 * error page saved by a downloader, a safetensors file given to the .pth reader. Naming the actual kind
 * turns those into one-line diagnoses.
 */

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
  | 'text'
  | 'unknown';

export interface SniffResult {
  kind: CheckpointKind;
  /** A phrase for error messages, e.g. "a Git LFS pointer (oid sha256:ab12..., 2224903 bytes)". */
  description: string;
}

/** The first pickle of a legacy (pre-1.6) torch.save file: protocol 2, LONG1 0x1950a86a20f9469cfc6c. */
export const TORCH_LEGACY_MAGIC = Uint8Array.from([
  0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
]);
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

/** `ab 12 ...` plus a printable rendering, for "unknown format" messages. */
export function describeFirstBytes(bytes: Uint8Array, n = 16): string {
  const head = bytes.subarray(0, n);
  const hex = [...head].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  const printable = [...head].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
  return `${hex}${bytes.length > n ? ' ...' : ''} ("${printable}")`;
}

function isMostlyText(bytes: Uint8Array): boolean {
  const head = bytes.subarray(0, 512);
  let printable = 0;
  for (const b of head) if ((b >= 0x20 && b < 0x7f) || b === 0x0a || b === 0x0d || b === 0x09 || b >= 0x80) printable++;
  return head.length > 0 && printable / head.length > 0.95 && !head.includes(0);
}

export function sniffCheckpoint(bytes: Uint8Array): SniffResult {
  if (bytes.length === 0) return { kind: 'empty', description: 'an empty file (0 bytes)' };
  if (startsWith(bytes, [0x50, 0x4b, 0x03, 0x04]) || startsWith(bytes, [0x50, 0x4b, 0x05, 0x06])) {
    return { kind: 'torch-zip', description: 'a zip archive (PyTorch >= 1.6 format)' };
  }
  if (hasLegacyMagic(bytes)) {
    return { kind: 'torch-legacy', description: 'a legacy (pre-1.6) PyTorch checkpoint' };
  }
  if (bytes[0] === 0x80 && bytes.length >= 2 && bytes[1] >= 2 && bytes[1] <= 5) {
    return { kind: 'pickle', description: `a Python pickle (protocol ${bytes[1]})` };
  }
  if (startsWith(bytes, ascii('version https://git-lfs'))) {
    const text = textHead(bytes, 512);
    const oid = /oid (\S+)/.exec(text)?.[1];
    const size = /size (\d+)/.exec(text)?.[1];
    const detail = [oid && `oid ${oid}`, size && `${size} bytes`].filter(Boolean).join(', ');
    return {
      kind: 'git-lfs-pointer',
      description: `a Git LFS pointer file${detail ? ` (${detail})` : ''}, not the weights themselves; run 'git lfs pull' or download the real file`,
    };
  }
  const safetensors = sniffSafetensors(bytes);
  if (safetensors) return safetensors;
  if (startsWith(bytes, [0x1f, 0x8b])) return { kind: 'gzip', description: 'a gzip-compressed file; decompress it first' };
  if (startsWith(bytes, ascii('ustar'), 257)) {
    return { kind: 'tar', description: 'a tar archive (the pre-0.1.10 PyTorch format, or an archive to extract first)' };
  }
  if (startsWith(bytes, [0x93, ...ascii('NUMPY')])) return { kind: 'numpy', description: 'a NumPy .npy array file' };
  if (startsWith(bytes, [0x89, ...ascii('HDF\r\n'), 0x1a, 0x0a])) {
    return { kind: 'hdf5', description: 'an HDF5 file (Keras/TensorFlow weights?), not a PyTorch checkpoint' };
  }
  // Skip a UTF-8 BOM and leading whitespace before looking for markup.
  let i = startsWith(bytes, [0xef, 0xbb, 0xbf]) ? 3 : 0;
  while (i < bytes.length && i < 1024 && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  if (bytes[i] === 0x3c /* '<' */) {
    const head = textHead(bytes.subarray(i), 200).toLowerCase();
    const title = /<title>([^<]{0,80})/i.exec(textHead(bytes, 4096))?.[1]?.trim();
    const what = head.startsWith('<?xml') && !head.includes('<html') ? 'an XML document' : 'an HTML page';
    return {
      kind: 'html',
      description: `${what}${title ? ` ("${title}")` : ''}, not a checkpoint; the download probably failed or returned an error or login page`,
    };
  }
  if (isMostlyText(bytes)) {
    const first = textHead(bytes, 60).split('\n')[0];
    return { kind: 'text', description: `a text file starting with "${first}", not a checkpoint` };
  }
  return { kind: 'unknown', description: `an unrecognised file whose first bytes are ${describeFirstBytes(bytes)}` };
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
  // Real headers are small; the reference implementation refuses anything above 100 MB.
  if (headerLength < 2n || headerLength > 100_000_000n) return undefined;
  return { kind: 'safetensors', description: `a safetensors file (${headerLength}-byte header)` };
}
