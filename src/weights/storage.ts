/**
 * Turning raw storage bytes plus a PyTorch view (offset, size, stride) into a contiguous CpuTensor.
 * Shared by every container format (zip, legacy, and later safetensors), so all of them get the same
 * bounds checks and the same little-endian decoding.
 */
import { CheckpointError } from '../errors';
import { dtypeByteSize, formatShape, numel, type CpuTensor, type DType, type TensorData } from './tensor';

/**
 * Refuse tensors bigger than this many elements: a malicious view with huge sizes and stride 0 over a
 * one-element storage would otherwise make us allocate gigabytes. 2^30 float32 is 4 GiB, far beyond any
 * image-restoration layer.
 */
export const MAX_TENSOR_ELEMENTS = 2 ** 30;

/** Whether this machine is little-endian; checkpoints always are, so LE hosts can reinterpret bytes directly. */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Decode IEEE half precision (binary16) bits to a number; exact, including subnormals, ±0, ±Inf and NaN. */
export function float16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * Decode `count` consecutive little-endian elements starting at `byteOffset` into a fresh typed array.
 * The caller has already checked that the range lies inside `bytes`.
 */
export function decodeElements(bytes: Uint8Array, byteOffset: number, count: number, dtype: DType): TensorData {
  const size = dtypeByteSize(dtype);
  // Copy into a fresh ArrayBuffer that starts at 0, so the typed-array views below are always aligned no
  // matter where the storage sat in the file. (Not `bytes.slice`: on a Node Buffer that is a view, not a copy.)
  const raw = new Uint8Array(count * size);
  raw.set(bytes.subarray(byteOffset, byteOffset + count * size));
  const buf = raw.buffer;
  if (!HOST_LITTLE_ENDIAN) return decodeWithDataView(raw, count, dtype);
  switch (dtype) {
    case 'float32':
      return new Float32Array(buf, 0, count);
    case 'float64':
      return new Float64Array(buf, 0, count);
    case 'int64':
      return new BigInt64Array(buf, 0, count);
    case 'int32':
      return new Int32Array(buf, 0, count);
    case 'int16':
      return new Int16Array(buf, 0, count);
    case 'int8':
      return new Int8Array(buf, 0, count);
    case 'uint8':
      return raw;
    case 'bool':
      // PyTorch only writes 0/1, but normalise so a stray byte cannot produce "true" values other than 1.
      for (let i = 0; i < count; i++) raw[i] = raw[i] ? 1 : 0;
      return raw;
    case 'float16': {
      const half = new Uint16Array(buf, 0, count);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = float16BitsToNumber(half[i]);
      return out;
    }
    case 'bfloat16': {
      // bfloat16 is the top half of a float32, so shifting the bits into place is an exact conversion.
      const half = new Uint16Array(buf, 0, count);
      const out = new Float32Array(count);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = half[i] << 16;
      return out;
    }
  }
}

/** Portable (big-endian host) path: read every element explicitly as little-endian. */
function decodeWithDataView(raw: Uint8Array, count: number, dtype: DType): TensorData {
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const fill = <T extends { [i: number]: number | bigint }>(out: T, read: (i: number) => number | bigint): T => {
    for (let i = 0; i < count; i++) out[i] = read(i);
    return out;
  };
  switch (dtype) {
    case 'float32':
      return fill(new Float32Array(count), (i) => dv.getFloat32(i * 4, true));
    case 'float64':
      return fill(new Float64Array(count), (i) => dv.getFloat64(i * 8, true));
    case 'int64':
      return fill(new BigInt64Array(count), (i) => dv.getBigInt64(i * 8, true));
    case 'int32':
      return fill(new Int32Array(count), (i) => dv.getInt32(i * 4, true));
    case 'int16':
      return fill(new Int16Array(count), (i) => dv.getInt16(i * 2, true));
    case 'int8':
      return fill(new Int8Array(count), (i) => dv.getInt8(i));
    case 'uint8':
      return fill(new Uint8Array(count), (i) => dv.getUint8(i));
    case 'bool':
      return fill(new Uint8Array(count), (i) => (dv.getUint8(i) ? 1 : 0));
    case 'float16':
      return fill(new Float32Array(count), (i) => float16BitsToNumber(dv.getUint16(i * 2, true)));
    case 'bfloat16': {
      const tmp = new DataView(new ArrayBuffer(4));
      return fill(new Float32Array(count), (i) => {
        tmp.setUint32(0, dv.getUint16(i * 2, true) << 16);
        return tmp.getFloat32(0);
      });
    }
  }
}

/** Raw bytes of one storage, as found in the container. */
export interface StorageBytes {
  /** Key inside the checkpoint (zip entry name / legacy storage key), for error messages. */
  key: string;
  dtype: DType;
  /** Number of elements the pickle says the storage has. */
  numel: number;
  /**
   * The storage's bytes: all of them, or (for a compressed zip entry) as far as the tensors that use the
   * storage reach. May be a getter that produces them on first use (see lazyStorage).
   */
  readonly bytes: Uint8Array;
}

/**
 * A storage whose bytes are produced by `load` on first use and kept. Zip readers use it so a compressed
 * storage is inflated only when a tensor is built from it: one that no tensor uses costs nothing.
 */
export function lazyStorage(key: string, dtype: DType, numel: number, load: () => Uint8Array): StorageBytes {
  let bytes: Uint8Array | undefined;
  return {
    key,
    dtype,
    numel,
    get bytes(): Uint8Array {
      bytes ??= load();
      return bytes;
    },
  };
}

/**
 * How many bytes from the start of its storage a view reads: (offset + highest element index + 1) times the
 * element size. 0 for an empty view, and for a malformed one (materializeView reports those).
 */
export function viewByteExtent(view: TensorView, dtype: DType): number {
  const { storageOffset, size, stride } = view;
  if (!isNonNegativeInt(storageOffset) || size.length !== stride.length) return 0;
  if (!size.every(isNonNegativeInt) || !stride.every(isNonNegativeInt) || numel(size) === 0) return 0;
  let last = storageOffset;
  for (let k = 0; k < size.length; k++) last += (size[k] - 1) * stride[k];
  return (last + 1) * dtypeByteSize(dtype);
}

/** Bytes that materialised tensors may still occupy; shared by all tensors of one file. */
export interface TensorBudget {
  remaining: number;
}

/** Bytes one element of `dtype` occupies once decoded (half precision widens to float32). */
export function decodedByteSize(dtype: DType): number {
  return dtype === 'float16' || dtype === 'bfloat16' ? 4 : dtypeByteSize(dtype);
}

/** A tensor as described by `_rebuild_tensor_v2`: a strided view into a storage. */
export interface TensorView {
  storageOffset: number;
  size: number[];
  stride: number[];
}

function isNonNegativeInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/**
 * Materialise a (possibly non-contiguous, possibly offset) view of `storage` as a contiguous row-major
 * tensor, after checking that every element it touches lies inside the storage and inside the bytes.
 */
export function materializeView(storage: StorageBytes, view: TensorView, what: string, budget?: TensorBudget): CpuTensor {
  const { storageOffset, size, stride } = view;
  if (!isNonNegativeInt(storageOffset)) {
    throw new CheckpointError('CHECKPOINT_FORMAT', `${what}: invalid storage offset ${String(storageOffset)}`);
  }
  if (!Array.isArray(size) || !Array.isArray(stride) || size.length !== stride.length) {
    throw new CheckpointError('CHECKPOINT_FORMAT', `${what}: size and stride must be tuples of the same length`);
  }
  if (!size.every(isNonNegativeInt) || !stride.every(isNonNegativeInt)) {
    throw new CheckpointError(
      'CHECKPOINT_FORMAT',
      `${what}: size ${formatShape(size)} / stride ${formatShape(stride)} must be non-negative integers`,
    );
  }
  const count = numel(size);
  if (count > MAX_TENSOR_ELEMENTS) {
    throw new CheckpointError(
      'CHECKPOINT_FORMAT',
      `${what}: shape ${formatShape(size)} has ${count} elements, more than the supported ${MAX_TENSOR_ELEMENTS}`,
    );
  }
  const shape = size.slice();
  const itemSize = dtypeByteSize(storage.dtype);
  if (budget) {
    // Checked before anything is allocated: stride-0 views let a few bytes of pickle describe gigabytes.
    const outBytes = count * decodedByteSize(storage.dtype);
    if (outBytes > budget.remaining) {
      throw new CheckpointError(
        'CHECKPOINT_FORMAT',
        `${what}: shape ${formatShape(size)} needs ${outBytes} bytes but only ${budget.remaining} remain of the ` +
          `budget this file's size allows (a view repeating few stored values many times?)`,
      );
    }
    budget.remaining -= outBytes;
  }
  // An empty tensor reads nothing, so it must not make a lazy storage produce its bytes.
  if (count === 0) return { dtype: storage.dtype, shape, data: decodeElements(new Uint8Array(0), 0, 0, storage.dtype) };

  // Highest element index the view touches; strides are non-negative so this is the maximum.
  let last = storageOffset;
  for (let k = 0; k < size.length; k++) last += (size[k] - 1) * stride[k];
  if (last >= storage.numel) {
    throw new CheckpointError(
      'CHECKPOINT_FORMAT',
      `${what}: view (offset ${storageOffset}, size ${formatShape(size)}, stride ${formatShape(stride)}) reaches ` +
        `element ${last} but storage '${storage.key}' has only ${storage.numel} elements`,
    );
  }
  const span = last - storageOffset + 1;
  if ((storageOffset + span) * itemSize > storage.bytes.length) {
    throw new CheckpointError(
      'CHECKPOINT_TRUNCATED',
      `${what}: storage '${storage.key}' has ${storage.bytes.length} bytes but ${(storageOffset + span) * itemSize} ` +
        `are needed; the file is truncated or incomplete`,
    );
  }
  const src = decodeElements(storage.bytes, storageOffset * itemSize, span, storage.dtype);
  if (span === count && isRowMajor(size, stride)) return { dtype: storage.dtype, shape, data: src };
  return { dtype: storage.dtype, shape, data: gather(src, size, stride, count) };
}

/** Row-major contiguity, ignoring the stride of size-1 dimensions (PyTorch does the same). */
function isRowMajor(size: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let k = size.length - 1; k >= 0; k--) {
    if (size[k] !== 1 && stride[k] !== expected) return false;
    expected *= size[k];
  }
  return true;
}

/** Copy a strided view (relative to its first element) into a new contiguous array, odometer style. */
function gather(src: TensorData, size: readonly number[], stride: readonly number[], count: number): TensorData {
  const Ctor = src.constructor as new (n: number) => TensorData;
  const out = new Ctor(count);
  const from = src as unknown as { [i: number]: number | bigint };
  const to = out as unknown as { [i: number]: number | bigint };
  const nd = size.length;
  const idx = new Array<number>(nd).fill(0);
  let pos = 0;
  for (let i = 0; i < count; i++) {
    to[i] = from[pos];
    for (let k = nd - 1; k >= 0; k--) {
      idx[k]++;
      pos += stride[k];
      if (idx[k] < size[k]) break;
      pos -= stride[k] * size[k];
      idx[k] = 0;
    }
  }
  return out;
}
