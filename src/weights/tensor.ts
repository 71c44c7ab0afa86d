/**
 * The CPU-side tensor that every checkpoint reader produces. It is deliberately a plain data record (no
 * methods) so it can cross worker boundaries with structured clone and be uploaded to GPU buffers as-is.
 */
import { CheckpointError } from '../errors';
import { formatShape } from '../format-shape';

/** Element types as stored in the checkpoint. float16/bfloat16 keep their name even though data is widened. */
export type DType = 'float16' | 'bfloat16' | 'float32' | 'float64' | 'uint8' | 'int8' | 'int16' | 'int32' | 'int64' | 'bool';

export type TensorData = Float32Array | Float64Array | Int32Array | Uint8Array | Int8Array | Int16Array | BigInt64Array;

/**
 * A dense, contiguous, row-major tensor. `data.length === numel(shape)`.
 * - float16 and bfloat16 are decoded to Float32Array (exact: both are subsets of float32); `dtype` still says
 *   what the file stored, so a caller can tell the weights were half precision.
 * - int64 stays BigInt64Array so values above 2^53 are not silently rounded.
 * - bool is a Uint8Array of 0/1.
 * The data never aliases the input file bytes: readers copy, so callers may mutate it freely.
 */
export interface CpuTensor {
  dtype: DType;
  shape: number[];
  data: TensorData;
}

/** Size in bytes of one element of `dtype` as stored on disk. */
export function dtypeByteSize(dtype: DType): number {
  switch (dtype) {
    case 'float64':
    case 'int64':
      return 8;
    case 'float32':
    case 'int32':
      return 4;
    case 'float16':
    case 'bfloat16':
    case 'int16':
      return 2;
    case 'uint8':
    case 'int8':
    case 'bool':
      return 1;
  }
}

export function isFloatDType(dtype: DType): boolean {
  return dtype === 'float16' || dtype === 'bfloat16' || dtype === 'float32' || dtype === 'float64';
}

/** Number of elements of a tensor with this shape; 1 for a scalar (shape []). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** True when `x` looks like a CpuTensor (used to tell tensors from other unpickled values). */
export function isCpuTensor(x: unknown): x is CpuTensor {
  if (typeof x !== 'object' || x === null) return false;
  const t = x as Partial<CpuTensor>;
  return typeof t.dtype === 'string' && Array.isArray(t.shape) && ArrayBuffer.isView(t.data);
}

export { formatShape };

function checkData(t: CpuTensor): void {
  const expected = numel(t.shape);
  if (t.data.length !== expected) {
    throw new CheckpointError(
      'CHECKPOINT_FORMAT',
      `tensor of dtype ${t.dtype} and shape ${formatShape(t.shape)} has ${t.data.length} elements, expected ${expected}`,
    );
  }
}

/**
 * The values as float32. Float32 (and decoded float16/bfloat16) data is returned without copying, so the
 * result may share memory with `t.data`; other dtypes are converted into a new array (ints round to nearest).
 */
export function toFloat32(t: CpuTensor): Float32Array {
  checkData(t);
  const d = t.data;
  if (d instanceof Float32Array) return d;
  if (d instanceof BigInt64Array) {
    const out = new Float32Array(d.length);
    for (let i = 0; i < d.length; i++) out[i] = Number(d[i]);
    return out;
  }
  if (
    d instanceof Float64Array ||
    d instanceof Int32Array ||
    d instanceof Int16Array ||
    d instanceof Int8Array ||
    d instanceof Uint8Array
  ) {
    return Float32Array.from(d);
  }
  throw new CheckpointError('CHECKPOINT_FORMAT', `cannot convert a tensor of dtype ${String(t.dtype)} to float32`);
}

/**
 * The values as float64 (always a new array, so callers can accumulate in place). int64 values beyond
 * 2^53 lose precision, as they would in PyTorch's `.double()`.
 */
export function toFloat64(t: CpuTensor): Float64Array {
  checkData(t);
  const d = t.data;
  if (d instanceof BigInt64Array) {
    const out = new Float64Array(d.length);
    for (let i = 0; i < d.length; i++) out[i] = Number(d[i]);
    return out;
  }
  if (
    d instanceof Float32Array ||
    d instanceof Float64Array ||
    d instanceof Int32Array ||
    d instanceof Int16Array ||
    d instanceof Int8Array ||
    d instanceof Uint8Array
  ) {
    return Float64Array.from(d);
  }
  throw new CheckpointError('CHECKPOINT_FORMAT', `cannot convert a tensor of dtype ${String(t.dtype)} to float64`);
}
