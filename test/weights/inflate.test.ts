/**
 * The bounded DEFLATE decoder (src/compression) behind the zip reader and the PNG/TIFF readers: byte-identical
 * to fflate on every kind of stream, and stopping where the declared size says - at the first byte too many, or
 * once a prefix is complete - without looking at the rest of the stream.
 */
import { deflateSync, inflateSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { inflateRaw, InflateError, type InflateFailure } from '../../src/compression/inflate';
import { rng } from './helpers';
import { zeroBomb } from './torch-zip-builder';

function failure(fn: () => unknown): InflateFailure {
  try {
    fn();
  } catch (err) {
    if (err instanceof InflateError) return err.failure;
    throw err;
  }
  throw new Error('expected an InflateError');
}

/** Random bytes, runs, small alphabets and zeros: data that exercises stored, fixed and dynamic blocks. */
function samples(): Uint8Array[] {
  const r = rng(11);
  const out: Uint8Array[] = [new Uint8Array(0), Uint8Array.of(7)];
  for (let k = 0; k < 40; k++) {
    const n = Math.floor(r() * (k % 5 === 0 ? 300_000 : 5000));
    const a = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      a[i] = [() => r() * 256, () => (i >> 6) % 5, () => 0, () => 97 + r() * 4][k % 4]() & 0xff;
    }
    out.push(a);
  }
  // float32 weights, like a storage
  out.push(new Uint8Array(Float32Array.from({ length: 20_000 }, () => (r() - 0.5) * 0.1).buffer));
  return out;
}

describe('inflateRaw', () => {
  const data = samples();

  it('decodes exactly what fflate decodes, at every compression level', () => {
    for (const [i, plain] of data.entries()) {
      for (const level of [0, 1, 6, 9] as const) {
        const packed = deflateSync(plain, { level });
        const out = new Uint8Array(plain.length);
        expect(inflateRaw(packed, out, 'exact')).toBe(plain.length);
        expect(Buffer.from(out).equals(Buffer.from(inflateSync(packed))), `sample ${i} level ${level}`).toBe(true);
      }
    }
  });

  it('reads a prefix without decoding the rest', () => {
    const r = rng(5);
    for (const plain of data) {
      const packed = deflateSync(plain, { level: 6 });
      const n = Math.floor(r() * (plain.length + 1));
      const out = new Uint8Array(n);
      inflateRaw(packed, out, 'prefix');
      expect(Buffer.from(out).equals(Buffer.from(plain.subarray(0, n)))).toBe(true);
    }
    // The part after the prefix is garbage here, and never looked at.
    const plain = new Uint8Array(100_000).fill(3);
    const packed = deflateSync(plain, { level: 0 }); // stored blocks: a byte offset maps to a stream offset
    const broken = packed.slice(0, 30_000);
    expect(() => inflateRaw(broken, new Uint8Array(10_000), 'prefix')).not.toThrow();
  });

  it('refuses one byte more than declared, before decoding the rest of the stream', () => {
    for (const plain of data.filter((d) => d.length > 0)) {
      const packed = deflateSync(plain, { level: 9 });
      expect(failure(() => inflateRaw(packed, new Uint8Array(plain.length - 1), 'exact'))).toBe('overrun');
    }
    // A 64 MiB bomb declared as 2304 bytes, cut off after its first 100 kB: had decoding gone on past the
    // declared size, it would have reached the cut and reported the stream as truncated instead.
    const bomb = zeroBomb(64 * 2 ** 20).subarray(0, 100_000);
    expect(failure(() => inflateRaw(bomb, new Uint8Array(2304), 'exact'))).toBe('overrun');
    expect(failure(() => inflateRaw(zeroBomb(10), new Uint8Array(0), 'exact'))).toBe('overrun');
  });

  it("'at-most' accepts a stream that ends early, and an overrun leaves every byte that fits written", () => {
    for (const plain of data.filter((d) => d.length > 1)) {
      const packed = deflateSync(plain, { level: 6 });
      expect(inflateRaw(packed, new Uint8Array(plain.length + 7), 'at-most')).toBe(plain.length);
      for (const mode of ['exact', 'at-most'] as const) {
        const out = new Uint8Array(plain.length - 1);
        let err: unknown;
        try {
          inflateRaw(packed, out, mode);
        } catch (caught) {
          err = caught;
        }
        expect(err).toBeInstanceOf(InflateError);
        expect((err as InflateError).failure).toBe('overrun');
        expect((err as InflateError).produced).toBe(out.length);
        expect(Buffer.from(out).equals(Buffer.from(plain.subarray(0, out.length)))).toBe(true);
      }
    }
  });

  it('reports streams that end early or are cut short as truncated', () => {
    const plain = data[5];
    const packed = deflateSync(plain);
    expect(failure(() => inflateRaw(packed, new Uint8Array(plain.length + 1), 'exact'))).toBe('truncated');
    expect(failure(() => inflateRaw(packed, new Uint8Array(plain.length + 1), 'prefix'))).toBe('truncated');
    for (const cut of [0, 1, 2, Math.floor(packed.length / 2), packed.length - 1]) {
      expect(failure(() => inflateRaw(packed.subarray(0, cut), new Uint8Array(plain.length), 'exact'))).toBe('truncated');
    }
  });

  it('reports invalid streams as corrupt, and random damage only ever as an InflateError', () => {
    expect(failure(() => inflateRaw(Uint8Array.of(0x07), new Uint8Array(1), 'exact'))).toBe('corrupt'); // block type 3
    // A stored block whose length and complement disagree.
    expect(failure(() => inflateRaw(Uint8Array.of(0x01, 0x05, 0x00, 0x00, 0x00), new Uint8Array(5), 'exact'))).toBe('corrupt');
    // A match 1 byte back with nothing before it: fixed block, length symbol 257, distance symbol 0.
    expect(failure(() => inflateRaw(Uint8Array.of(0x03, 0x02, 0x00), new Uint8Array(3), 'exact'))).toBe('corrupt');
    const r = rng(9);
    const packed = deflateSync(data[3], { level: 6 });
    let outcomes = 0;
    for (let k = 0; k < 3000; k++) {
      const bytes = packed.slice();
      for (let f = 0; f < 3; f++) bytes[Math.floor(r() * bytes.length)] ^= 1 << Math.floor(r() * 8);
      try {
        inflateRaw(bytes, new Uint8Array(data[3].length), 'exact');
      } catch (err) {
        if (!(err instanceof InflateError)) throw err;
        outcomes++;
      }
    }
    expect(outcomes).toBeGreaterThan(0);
  });
});
