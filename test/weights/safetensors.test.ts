/**
 * safetensors: files from an independent Python writer that follows the published format (fixtures), our
 * writer (byte-identical to it on the same conventions, and write -> read round trips for every dtype), the
 * half-precision encoders (checked against exhaustive decoding and a brute-force nearest-value search), and
 * one test per header-validation rule.
 */
import { describe, expect, it } from 'vitest';
import {
  dtypeByteSize,
  numberToBfloat16Bits,
  numberToFloat16Bits,
  numel,
  readSafetensors,
  readSafetensorsHeader,
  sniffCheckpoint,
  writeSafetensors,
  type CpuTensor,
  type DType,
} from '../../src/weights';
import { float16BitsToNumber } from '../../src/weights/storage';
import { EXPECTED, expectCheckpointError, expectTensorMatches, fixture, rng } from './helpers';

const ascii = (s: string) => new TextEncoder().encode(s);

/** A safetensors file from a header string and a data length (data bytes are 0..n-1 mod 256). */
function file(header: string, dataLength: number, declared?: number | bigint): Uint8Array {
  const h = ascii(header);
  const out = new Uint8Array(8 + h.length + dataLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(declared ?? h.length), true);
  out.set(h, 8);
  for (let i = 0; i < dataLength; i++) out[8 + h.length + i] = i & 0xff;
  return out;
}

const entry = (dtype: string, shape: number[], begin: number, end: number) =>
  `{"dtype":"${dtype}","shape":${JSON.stringify(shape)},"data_offsets":[${begin},${end}]}`;

describe('files written by the reference-format Python writer', () => {
  const cases = Object.entries(EXPECTED.fixtures).filter(([, f]) => f.format === 'safetensors');

  it('has fixtures', () => expect(cases.length).toBeGreaterThanOrEqual(2));

  for (const [name, expected] of cases) {
    it(`${name}: tensors and metadata equal what was written`, () => {
      const bytes = fixture(name);
      expect(sniffCheckpoint(bytes).kind).toBe('safetensors');
      const { tensors, metadata } = readSafetensors(bytes, { name });
      expect(Object.fromEntries(metadata)).toEqual(expected.metadata);
      expect([...tensors.keys()].sort()).toEqual(Object.keys(expected.state_dict!).sort());
      for (const [key, t] of Object.entries(expected.state_dict!)) expectTensorMatches(tensors.get(key), t, key);
      // half precision decodes to float32 but keeps its stored dtype, as readPth does
      expect(tensors.get('f16')!.data).toBeInstanceOf(Float32Array);
      expect(tensors.get('bf16')!.data).toBeInstanceOf(Float32Array);
      expect(tensors.get('bn.num_batches_tracked')!.data).toBeInstanceOf(BigInt64Array);
    });
  }

  it('our writer reproduces st_basic.safetensors byte for byte (same conventions, independent code)', () => {
    const original = fixture('st_basic.safetensors');
    const { tensors, metadata } = readSafetensors(original);
    expect(EXPECTED.fixtures['st_basic.safetensors'].byte_identical_rewrite).toBe(true);
    const rewritten = writeSafetensors(tensors, { metadata });
    expect(Buffer.from(rewritten).equals(Buffer.from(original))).toBe(true);
    // ...and the reordered layout normalises to the same bytes, minus the metadata
    const other = readSafetensors(fixture('st_reordered.safetensors'));
    expect(Buffer.from(writeSafetensors(other.tensors, { metadata })).equals(Buffer.from(original))).toBe(true);
  });

  it('the header is padded to 8 bytes and every tensor starts at a multiple of its element size', () => {
    const header = readSafetensorsHeader(fixture('st_basic.safetensors'));
    expect(header.dataStart % 8).toBe(0);
    for (const e of header.entries) expect(e.begin % dtypeByteSize(e.dtype), e.name).toBe(0);
  });
});

describe('writeSafetensors round trips', () => {
  const make = (dtype: DType, shape: number[], seed: number): CpuTensor => {
    const n = numel(shape);
    const r = rng(seed);
    switch (dtype) {
      case 'float32':
      case 'float16':
      case 'bfloat16': {
        // values already representable in the stored dtype, as a reader would produce them
        const bits = new Uint16Array(n).map(() => Math.floor(r() * 65536));
        const data = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          if (dtype === 'float16') data[i] = float16BitsToNumber(bits[i]);
          else if (dtype === 'bfloat16') data[i] = new Float32Array(new Uint32Array([bits[i] << 16]).buffer)[0];
          else data[i] = (r() - 0.5) * 1e3;
        }
        return { dtype, shape, data };
      }
      case 'float64':
        return { dtype, shape, data: Float64Array.from({ length: n }, () => (r() - 0.5) * 1e300) };
      case 'int64':
        return { dtype, shape, data: BigInt64Array.from({ length: n }, () => BigInt(Math.floor((r() - 0.5) * 2 ** 53)) * 1024n) };
      case 'int32':
        return { dtype, shape, data: Int32Array.from({ length: n }, () => Math.floor((r() - 0.5) * 2 ** 32)) };
      case 'int16':
        return { dtype, shape, data: Int16Array.from({ length: n }, () => Math.floor((r() - 0.5) * 65536)) };
      case 'int8':
        return { dtype, shape, data: Int8Array.from({ length: n }, () => Math.floor((r() - 0.5) * 256)) };
      case 'uint8':
        return { dtype, shape, data: Uint8Array.from({ length: n }, () => Math.floor(r() * 256)) };
      case 'bool':
        return { dtype, shape, data: Uint8Array.from({ length: n }, () => (r() < 0.5 ? 1 : 0)) };
    }
  };
  const dtypes: DType[] = ['float32', 'float16', 'bfloat16', 'float64', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool'];

  it('every dtype, scalars, empty tensors and odd sizes come back identical (NaN bits aside)', () => {
    const sd = new Map<string, CpuTensor>();
    dtypes.forEach((dtype, i) => {
      sd.set(`layer.${dtype}`, make(dtype, [3, 5, 7], i));
      sd.set(`scalar.${dtype}`, make(dtype, [], 100 + i));
      sd.set(`empty.${dtype}`, make(dtype, [0, 2], 200 + i));
      sd.set(`odd.${dtype}`, make(dtype, [1, 3], 300 + i));
    });
    sd.set('0', make('float32', [2], 999)); // an integer-like name keeps its place
    const bytes = writeSafetensors(sd, { metadata: { arch: 'test', '1': 'one' } });
    expect(readSafetensorsHeader(bytes).dataStart % 8).toBe(0);
    const back = readSafetensors(bytes);
    expect(Object.fromEntries(back.metadata)).toEqual({ arch: 'test', '1': 'one' });
    expect([...back.tensors.keys()]).toEqual([...sd.keys()].sort());
    for (const [k, t] of sd) {
      const b = back.tensors.get(k)!;
      expect(b.dtype, k).toBe(t.dtype);
      expect(b.shape, k).toEqual(t.shape);
      expect(b.data.constructor, k).toBe(t.data.constructor);
      const same = Array.from(b.data as ArrayLike<number>).every(
        (v, i) => Object.is(v, (t.data as ArrayLike<number>)[i]) || (Number.isNaN(v) && Number.isNaN((t.data as ArrayLike<number>)[i])),
      );
      expect(same, k).toBe(true);
    }
  });

  it('pth -> safetensors -> read gives the tensors PyTorch saved', async () => {
    const { readPth } = await import('../../src/weights');
    for (const name of ['zip_basic.pth', 'module_nested_zip_protocol4.pth']) {
      const sd = readPth(fixture(name));
      const back = readSafetensors(writeSafetensors(sd)).tensors;
      const want = EXPECTED.fixtures[name].state_dict!;
      for (const [key, t] of Object.entries(want)) expectTensorMatches(back.get(key), t, key);
    }
  });

  it('floatDType casts floating tensors only', () => {
    const sd = new Map<string, CpuTensor>([
      ['w', { dtype: 'float32', shape: [3], data: Float32Array.from([1 / 3, 65519, 70000]) }],
      ['n', { dtype: 'int64', shape: [1], data: new BigInt64Array([5n]) }],
    ]);
    const back = readSafetensors(writeSafetensors(sd, { floatDType: 'float16' })).tensors;
    expect(back.get('w')!.dtype).toBe('float16');
    expect(Array.from(back.get('w')!.data as Float32Array)).toEqual([0.333251953125, 65504, Infinity]);
    expect(back.get('n')!.dtype).toBe('int64');
  });

  it('refuses bad input: data/shape mismatch, wrong array type, reserved name, non-string metadata', () => {
    const bad = (sd: Map<string, CpuTensor>, opts = {}) => expect(() => writeSafetensors(sd, opts)).toThrow(/./);
    bad(new Map([['a', { dtype: 'float32', shape: [3], data: new Float32Array(2) }]]));
    bad(new Map([['a', { dtype: 'int32', shape: [2], data: new Float32Array(2) }]]));
    bad(new Map([['__metadata__', { dtype: 'float32', shape: [1], data: new Float32Array(1) }]]));
    bad(new Map(), { metadata: { a: 1 as unknown as string } });
  });
});

describe('half-precision encoders', () => {
  it('float16: every finite bit pattern decodes and encodes back to itself', () => {
    const wrong: string[] = [];
    for (let h = 0; h < 65536; h++) {
      const v = float16BitsToNumber(h);
      const back = numberToFloat16Bits(v);
      if (Number.isNaN(v) ? !Number.isNaN(float16BitsToNumber(back)) : back !== h) wrong.push(`${h} -> ${back}`);
    }
    expect(wrong).toEqual([]);
  });

  it('float16: rounds to the nearest value, ties to even (brute-force reference in float64)', () => {
    const positives = Array.from({ length: 0x7c01 }, (_, h) => float16BitsToNumber(h)); // 0 .. +Inf, increasing
    const nearest = (x: number): number => {
      const a = Math.abs(x);
      let lo = 0;
      let hi = positives.length - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (positives[mid] <= a) lo = mid;
        else hi = mid;
      }
      // beyond the largest finite value, IEEE rounds to Inf from 65520 on
      let h: number;
      if (a >= 65520) h = 0x7c00;
      else {
        const dl = a - positives[lo];
        const dh = positives[hi] - a;
        h = dl < dh ? lo : dh < dl ? hi : lo % 2 === 0 ? lo : hi;
      }
      return (x < 0 || Object.is(x, -0) ? 0x8000 : 0) | h;
    };
    const r = rng(11);
    const samples: number[] = [];
    for (let i = 0; i < 20000; i++) {
      // float32 values spread over the whole half range, plus exact midpoints between neighbours
      const f = Math.fround((r() - 0.5) * 2 ** (Math.floor(r() * 44) - 28));
      samples.push(f);
      const h = Math.floor(r() * 0x7bff);
      samples.push(Math.fround((positives[h] + positives[h + 1]) / 2));
    }
    const wrong = samples
      .filter((x) => numberToFloat16Bits(x) !== nearest(x))
      .map((x) => `${x}: ${numberToFloat16Bits(x)} != ${nearest(x)}`);
    expect(wrong).toEqual([]);
  });

  it('bfloat16: exact values round-trip, others round to nearest even', () => {
    const asF32 = (bits: number) => new Float32Array(new Uint32Array([bits >>> 0]).buffer)[0];
    const wrong: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const v = asF32(h << 16);
      if (!Number.isNaN(v) && numberToBfloat16Bits(v) !== h) wrong.push(h);
    }
    expect(wrong).toEqual([]);
    expect(numberToBfloat16Bits(asF32(0x3f808000))).toBe(0x3f80); // tie, even stays
    expect(numberToBfloat16Bits(asF32(0x3f818000))).toBe(0x3f82); // tie, odd rounds up
    expect(numberToBfloat16Bits(asF32(0x3f808001))).toBe(0x3f81);
    expect(Number.isNaN(asF32(numberToBfloat16Bits(NaN) << 16))).toBe(true);
  });
});

describe('header validation', () => {
  const ok = `{"a":${entry('F32', [2], 0, 8)}}`;
  const reject = (bytes: Uint8Array, code: 'CHECKPOINT_FORMAT' | 'CHECKPOINT_TRUNCATED', message: RegExp) => {
    const err = expectCheckpointError(() => readSafetensors(bytes, { name: 'w.safetensors' }), [code]);
    expect(err.message).toMatch(message);
    expect(err.message).toContain('w.safetensors');
  };

  it('accepts a minimal file, trailing header spaces and an empty file of tensors', () => {
    expect([...readSafetensors(file(ok, 8)).tensors.keys()]).toEqual(['a']);
    expect(readSafetensors(file(`${ok}      `, 8)).tensors.size).toBe(1);
    expect(readSafetensors(file('{}', 0)).tensors.size).toBe(0);
    expect(readSafetensors(file(`{"__metadata__":{"k":"v"}}`, 0)).metadata.get('k')).toBe('v');
  });

  it('length prefix: too short, huge, beyond the file', () => {
    reject(new Uint8Array(5), 'CHECKPOINT_TRUNCATED', /too short/);
    reject(file(ok, 8, 2n ** 63n), 'CHECKPOINT_FORMAT', /more than the 100000000 bytes/);
    reject(file(ok, 8, 100_000_001), 'CHECKPOINT_FORMAT', /more than/);
    reject(file(ok, 8, 1000), 'CHECKPOINT_TRUNCATED', /header needs bytes 8\.\.1008/);
    reject(file(ok, 0).subarray(0, 20), 'CHECKPOINT_TRUNCATED', /truncated/);
  });

  it('JSON: not an object, invalid UTF-8, syntax errors, duplicate keys', () => {
    reject(file('[1,2]', 0), 'CHECKPOINT_FORMAT', /does not start with a JSON object/);
    const badUtf8 = file(`{"a":1}`, 0);
    badUtf8[10] = 0xff;
    reject(badUtf8, 'CHECKPOINT_FORMAT', /UTF-8/);
    reject(file('{"a":}', 0), 'CHECKPOINT_FORMAT', /invalid JSON header/);
    reject(file('{"a":1} x', 0), 'CHECKPOINT_FORMAT', /invalid JSON/);
    reject(file(`{"a":${entry('F32', [1], 0, 4)},"a":${entry('F32', [1], 4, 8)}}`, 8), 'CHECKPOINT_FORMAT', /duplicate key "a"/);
    reject(file(`{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}`, 4), 'CHECKPOINT_FORMAT', /duplicate key "dtype"/);
    reject(file('{"a":' + '['.repeat(100) + ']'.repeat(100) + '}', 0), 'CHECKPOINT_FORMAT', /nesting/);
  });

  it('tensor entries: dtype, shape and offsets', () => {
    reject(file(`{"a":${entry('F8_E4M3', [2], 0, 2)}}`, 2), 'CHECKPOINT_FORMAT', /unsupported dtype "F8_E4M3"/);
    reject(file(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, 4), 'CHECKPOINT_FORMAT', /dtype/);
    reject(file(`{"a":${entry('F32', [-1], 0, 4)}}`, 4), 'CHECKPOINT_FORMAT', /"shape"/);
    reject(file(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, 4), 'CHECKPOINT_FORMAT', /"shape"/);
    reject(file(`{"a":{"dtype":"F32","shape":"2","data_offsets":[0,4]}}`, 4), 'CHECKPOINT_FORMAT', /"shape"/);
    reject(file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, 4), 'CHECKPOINT_FORMAT', /data_offsets/);
    reject(file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,9007199254740993]}}`, 4), 'CHECKPOINT_FORMAT', /data_offsets/);
    reject(file(`{"a":${entry('F32', [1], 4, 0)}}`, 4), 'CHECKPOINT_FORMAT', /end before they begin/);
    reject(file(`{"a":${entry('F32', [3], 0, 8)}}`, 8), 'CHECKPOINT_FORMAT', /needs 12 bytes/);
    reject(file(`{"a":${entry('F32', [2 ** 40, 2 ** 40], 0, 8)}}`, 8), 'CHECKPOINT_FORMAT', /more than the supported/);
    reject(file(`{"a":7}`, 0), 'CHECKPOINT_FORMAT', /expected an object/);
  });

  it('the tensors must tile the byte buffer exactly', () => {
    reject(file(`{"a":${entry('F32', [1], 4, 8)}}`, 8), 'CHECKPOINT_FORMAT', /gap/);
    reject(file(`{"a":${entry('F32', [2], 0, 8)},"b":${entry('F32', [1], 4, 8)}}`, 8), 'CHECKPOINT_FORMAT', /overlaps/);
    reject(file(ok, 12), 'CHECKPOINT_FORMAT', /4 bytes after the last tensor/);
    reject(file(ok, 6), 'CHECKPOINT_TRUNCATED', /need 8 bytes of data but only 6/);
    // zero-sized tensors may sit anywhere on the tiling
    expect(readSafetensors(file(`{"e":${entry('F32', [0], 8, 8)},"a":${entry('F32', [2], 0, 8)}}`, 8)).tensors.get('e')!.shape).toEqual([
      0,
    ]);
  });

  it('__metadata__ must map strings to strings', () => {
    reject(file('{"__metadata__":{"a":1}}', 0), 'CHECKPOINT_FORMAT', /not a string/);
    reject(file('{"__metadata__":"x"}', 0), 'CHECKPOINT_FORMAT', /__metadata__/);
  });

  it('tensor data is copied: no aliasing of the file bytes, any alignment', () => {
    const bytes = file(`{"a":${entry('F32', [1], 0, 4)}}`, 4);
    const padded = new Uint8Array(bytes.length + 1);
    padded.set(bytes, 1);
    const t = readSafetensors(padded.subarray(1)).tensors.get('a')!;
    expect(t.data.buffer).not.toBe(padded.buffer);
    expect(t.data.byteOffset).toBe(0);
  });
});
