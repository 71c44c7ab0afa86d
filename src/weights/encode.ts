/**
 * The inverse of storage.ts's decoding: a CpuTensor's values as little-endian bytes of a given dtype, for the
 * writers (safetensors). Half-precision values are rounded to nearest-even, so data that was decoded from
 * float16 / bfloat16 encodes back to exactly the original bits.
 */
import { InvalidInputError } from '../errors';
import { formatShape, isFloatDType, numel, toFloat32, toFloat64, type CpuTensor, type DType, type TensorData } from './tensor';

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE binary16 bits of `x`, rounded to nearest-even (overflow to ±Inf, NaN kept quiet). */
export function numberToFloat16Bits(x: number): number {
  f32[0] = x; // the float32 rounding first is harmless: binary16 values are a subset of binary32's
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal (or zero) half: shift the full significand right, rounding to nearest-even.
    if (e < -10) return sign;
    const full = mant | 0x800000;
    const shift = 14 - e;
    let half = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rest > mid || (rest === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++; // may carry into the exponent, up to Inf: correct
  return sign | half;
}

/** bfloat16 bits of `x` (the top half of its float32, rounded to nearest-even; NaN stays NaN). */
export function numberToBfloat16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

function bytesOf(data: TensorData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Little-endian bytes of a typed array (a copy on big-endian hosts, a view otherwise). */
function littleEndian(data: TensorData, size: number): Uint8Array {
  if (HOST_LITTLE_ENDIAN || size === 1) return bytesOf(data);
  const raw = bytesOf(data);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += size) for (let k = 0; k < size; k++) out[i + k] = raw[i + size - 1 - k];
  return out;
}

function intData(t: CpuTensor, dtype: DType): TensorData {
  const ok: Record<string, (d: TensorData) => boolean> = {
    int64: (d) => d instanceof BigInt64Array,
    int32: (d) => d instanceof Int32Array,
    int16: (d) => d instanceof Int16Array,
    int8: (d) => d instanceof Int8Array,
    uint8: (d) => d instanceof Uint8Array,
    bool: (d) => d instanceof Uint8Array,
  };
  if (!ok[dtype](t.data)) {
    throw new InvalidInputError(`a ${dtype} tensor of shape ${formatShape(t.shape)} holds a ${t.data.constructor.name}`);
  }
  if (dtype === 'bool') return Uint8Array.from(t.data as Uint8Array, (v) => (v ? 1 : 0));
  return t.data;
}

/**
 * The tensor's values as little-endian bytes of `dtype` (default: its own dtype). Floating tensors may be
 * written as any floating dtype; integer and bool tensors only as their own.
 */
export function encodeTensor(t: CpuTensor, dtype: DType = t.dtype): Uint8Array {
  const n = numel(t.shape);
  if (t.data.length !== n) {
    throw new InvalidInputError(`tensor of shape ${formatShape(t.shape)} has ${t.data.length} elements, expected ${n}`);
  }
  if (isFloatDType(dtype) !== isFloatDType(t.dtype)) {
    throw new InvalidInputError(`cannot write a ${t.dtype} tensor as ${dtype}`);
  }
  switch (dtype) {
    case 'float32':
      return littleEndian(toFloat32(t), 4);
    case 'float64':
      return littleEndian(t.data instanceof Float64Array ? t.data : toFloat64(t), 8);
    case 'float16':
    case 'bfloat16': {
      const src = toFloat32(t);
      const encode = dtype === 'float16' ? numberToFloat16Bits : numberToBfloat16Bits;
      const out = new Uint8Array(2 * n);
      for (let i = 0; i < n; i++) {
        const h = encode(src[i]);
        out[2 * i] = h & 0xff;
        out[2 * i + 1] = h >>> 8;
      }
      return out;
    }
    case 'int64':
      return littleEndian(intData(t, dtype), 8);
    case 'int32':
      return littleEndian(intData(t, dtype), 4);
    case 'int16':
      return littleEndian(intData(t, dtype), 2);
    case 'int8':
    case 'uint8':
    case 'bool':
      return bytesOf(intData(t, dtype));
  }
}
