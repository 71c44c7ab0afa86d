/**
 * Every fixture written by tools/torch/make_weight_fixtures.py, read with our reader and compared with the
 * values PyTorch itself loaded from the same file (expected.json): state_dicts, whole pickled models (compared
 * with model.state_dict()) and safetensors files from an independent writer.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/errors';
import { checkFinite, readCheckpoint, readPth, readTorchObject, sniffCheckpoint, type CpuTensor } from '../../src/weights';
import { EXPECTED, expectCheckpointError, expectTensorMatches, fixture } from './helpers';

const entries = Object.entries(EXPECTED.fixtures);
const readable = entries.filter(([, f]) => f.state_dict);
const unsafe = entries.filter(([, f]) => f.unsafe_global);

describe('fixtures match PyTorch', () => {
  it('has fixtures of both container formats', () => {
    expect(readable.map(([, f]) => f.format)).toContain('torch-zip');
    expect(readable.map(([, f]) => f.format)).toContain('torch-legacy');
  });

  it('has whole pickled models of both container formats, and safetensors', () => {
    const modules = readable.filter(([, f]) => f.module_class !== undefined).map(([, f]) => f.format);
    expect(modules).toContain('torch-zip');
    expect(modules).toContain('torch-legacy');
    expect(readable.map(([, f]) => f.format)).toContain('safetensors');
  });

  for (const [name, expected] of readable) {
    it(`${name}: every tensor equals torch.load's`, () => {
      const bytes = fixture(name);
      expect(sniffCheckpoint(bytes).kind).toBe(expected.format);
      const want = expected.state_dict!;
      const readers = expected.format === 'safetensors' ? [readCheckpoint] : [readPth, readCheckpoint];
      for (const read of readers) {
        const sd = read(bytes, { name });
        expect([...sd.keys()]).toEqual(Object.keys(want));
        for (const [key, t] of Object.entries(want)) expectTensorMatches(sd.get(key), t, key);
      }
    });
  }

  for (const [name, expected] of entries.filter(([, f]) => f.top_level_keys)) {
    it(`${name}: readTorchObject keeps the saved structure`, () => {
      const root = readTorchObject(fixture(name), { name });
      expect(root).toBeInstanceOf(Map);
      const map = root as Map<unknown, unknown>;
      expect([...map.keys()]).toEqual(expected.top_level_keys);
      for (const [k, v] of Object.entries(expected.scalars ?? {})) expect(map.get(k)).toBe(v);
    });
  }
});

describe('tensor layouts', () => {
  const sd = readPth(fixture('zip_basic.pth'));
  const legacy = readPth(fixture('legacy_basic.pth'));
  const values = (t: CpuTensor | undefined) => Array.from(t!.data as Float32Array);

  it('materialises a transposed (non-contiguous) tensor in row-major order', () => {
    // torch.arange(12).reshape(3, 4).t()
    const t = sd.get('transposed')!;
    expect(t.shape).toEqual([4, 3]);
    expect(values(t)).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    expect(values(legacy.get('transposed'))).toEqual(values(t));
  });

  it('honours storage offsets and stride-0 views', () => {
    expect(values(sd.get('sliced'))).toEqual([7, 8, 9, 12, 13, 14, 17, 18, 19]);
    expect(values(sd.get('expanded'))).toEqual([1, 2, 3, 1, 2, 3]);
  });

  it('gives tensors that share a storage their own copies', () => {
    const a = sd.get('tied.a')!;
    const b = sd.get('tied.b')!;
    expect(Array.from(b.data.subarray(0, 3) as Float32Array)).toEqual(Array.from(a.data as Float32Array));
    expect(a.data.buffer).not.toBe(b.data.buffer);
  });

  it('reads scalars, empty tensors, parameters and int64 counters', () => {
    expect(sd.get('scalar')).toMatchObject({ dtype: 'float32', shape: [] });
    expect(Array.from(sd.get('scalar')!.data as Float32Array)).toEqual([3.5]);
    expect(sd.get('empty')).toMatchObject({ dtype: 'float32', shape: [0, 3] });
    expect(sd.get('empty')!.data.length).toBe(0);
    expect(Array.from(sd.get('param')!.data as Float32Array)).toEqual([0.25, -0.75]);
    expect(sd.get('bn.num_batches_tracked')!.data).toEqual(new BigInt64Array([42n]));
  });

  it('decodes half precision to Float32Array but keeps the stored dtype', () => {
    expect(sd.get('f16')!.dtype).toBe('float16');
    expect(sd.get('f16')!.data).toBeInstanceOf(Float32Array);
    expect(sd.get('bf16')!.dtype).toBe('bfloat16');
    expect(sd.get('bf16')!.data).toBeInstanceOf(Float32Array);
  });

  it('accepts a Buffer, an ArrayBuffer and a Uint8Array at an odd offset into a larger buffer', () => {
    const bytes = fixture('zip_basic.pth');
    const padded = new Uint8Array(bytes.length + 3);
    padded.set(bytes, 3);
    const inputs: (Uint8Array | ArrayBuffer)[] = [Buffer.from(bytes), bytes.slice().buffer, padded.subarray(3)];
    for (const input of inputs) {
      const other = readPth(input);
      expect(values(other.get('conv.weight'))).toEqual(values(sd.get('conv.weight')));
    }
  });
});

describe('wrappers and canonicalisation', () => {
  it('prefers params_ema over params and strips module.', () => {
    const sd = readPth(fixture('wrapped_params_ema.pth'));
    expect([...sd.keys()]).toEqual(['conv.weight', 'conv.bias']);
  });

  it('flattens nested dicts, strips netG. and drops optimizer state and non-tensors', () => {
    const sd = readPth(fixture('nested_netG.pth'));
    expect([...sd.keys()]).toEqual(['body.0.weight', 'body.0.bias', 'tail.weight', 'tail.bias']);
  });
});

describe('non-finite weights', () => {
  it('checkFinite names the first tensor with NaN/Inf', () => {
    const sd = readPth(fixture('nonfinite.pth'));
    const err = expectCheckpointError(() => checkFinite(sd), ['CHECKPOINT_FORMAT']);
    expect(err.message).toContain(`'${EXPECTED.fixtures['nonfinite.pth'].first_nonfinite}'`);
    expect(err.message).toContain('NaN');
    sd.delete('bad');
    expect(() => checkFinite(sd)).toThrow(/'worse'.*-Infinity/);
    sd.delete('worse');
    expect(() => checkFinite(sd)).not.toThrow();
  });
});

describe('forbidden globals', () => {
  for (const [name, expected] of unsafe) {
    it(`${name}: rejected as unsafe, naming '${expected.unsafe_global}'`, () => {
      const markerBefore = expected.marker_file ? existsSync(expected.marker_file) : false;
      const err = expectCheckpointError(() => readPth(fixture(name), { name }), ['CHECKPOINT_UNSAFE']);
      expect(err).toBeInstanceOf(CheckpointError);
      expect(err.message).toContain(`calls the global '${expected.unsafe_global}'`);
      expect(err.message).toContain(name);
      expect(err.message).toContain('state_dict'); // the advice on how to get a safe file
      expectCheckpointError(() => readCheckpoint(fixture(name), { name }), ['CHECKPOINT_UNSAFE']);
      // Nothing ran: the payload would have created this file.
      if (expected.marker_file && !markerBefore) expect(existsSync(expected.marker_file)).toBe(false);
    });
  }

  it('covers os, posix, subprocess, eval and getattr, also hidden inside a whole pickled model', () => {
    const names = unsafe.map(([, f]) => f.unsafe_global);
    for (const g of ['os.system', 'posix.system', 'subprocess.Popen', 'builtins.eval', 'builtins.getattr']) expect(names).toContain(g);
    expect(unsafe.some(([name, f]) => name.includes('module') && f.format === 'torch-legacy')).toBe(true);
  });
});
