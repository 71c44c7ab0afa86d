import { inflateSync as nodeInflateSync } from 'node:zlib';

import { deflateSync, inflateSync, zlibSync } from 'fflate';
import { describe, expect, it } from 'vitest';

import { InflateError } from '../../src/compression/inflate';
import { inflateInto, inflatedByteCount, unzlibInto } from '../../src/io/bounded-inflate';
import { MIB, deflateZeros, zlibZeros } from './bombs';
import { concat, pseudoRandomBytes } from './helpers';

/** The InflateError `fn` throws. */
function inflateError(fn: () => unknown): InflateError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InflateError);
    return err as InflateError;
  }
  throw new Error('expected an InflateError');
}

describe('bomb helpers', () => {
  it('build valid streams of zeros (checked with fflate and node:zlib)', () => {
    const raw = inflateSync(deflateZeros(3));
    expect(raw.length).toBe(3 * MIB);
    expect(raw.every((b) => b === 0)).toBe(true);
    // node:zlib checks the Adler-32 trailer.
    const viaNode = new Uint8Array(nodeInflateSync(zlibZeros(3)));
    expect(viaNode.length).toBe(3 * MIB);
    // About 1 KB per MiB: a 256 MiB bomb is a quarter of a megabyte.
    expect(zlibZeros(256).length).toBeLessThan(300_000);
  });
});

describe('inflateInto', () => {
  it('decodes what fflate decodes, for many sizes, contents and levels', () => {
    for (let t = 0; t < 20; t++) {
      const n = [0, 1, 100, 40_000, 70_000, 400_000][t % 6] + t;
      const data = pseudoRandomBytes(n, t);
      if (t % 2) for (let i = 0; i < n; i++) data[i] &= 3; // compressible
      const level = (t % 10) as 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;
      const dst = new Uint8Array(n);
      const r = inflateInto(deflateSync(data, { level }), dst);
      expect(r).toEqual({ produced: n, overrun: false });
      expect(Buffer.from(dst).equals(Buffer.from(data))).toBe(true);
      const z = new Uint8Array(n);
      expect(unzlibInto(zlibSync(data, { level }), z)).toEqual({ produced: n, overrun: false });
      expect(Buffer.from(z).equals(Buffer.from(data))).toBe(true);
    }
  });

  it('decodes stored blocks (level 0), copied straight from the input', () => {
    const data = pseudoRandomBytes(1_000_000, 8);
    const dst = new Uint8Array(data.length);
    expect(inflateInto(deflateSync(data, { level: 0 }), dst)).toEqual({ produced: data.length, overrun: false });
    expect(Buffer.from(dst).equals(Buffer.from(data))).toBe(true);
  });

  it('reports one byte too many as an overrun, and a short stream as fewer bytes', () => {
    const data = pseudoRandomBytes(100_000, 5);
    const z = deflateSync(data);
    const short = new Uint8Array(99_999);
    expect(inflateInto(z, short)).toEqual({ produced: 99_999, overrun: true });
    expect(Buffer.from(short).equals(Buffer.from(data.subarray(0, 99_999)))).toBe(true);
    expect(inflateInto(z, new Uint8Array(100_001))).toEqual({ produced: 100_000, overrun: false });
  });

  it('stops a 256 MiB bomb at the first byte past a 1-byte destination', () => {
    const bomb = deflateZeros(256);
    const before = inflatedByteCount();
    const t0 = performance.now();
    const r = inflateInto(bomb, new Uint8Array(1));
    const ms = performance.now() - t0;
    expect(r).toEqual({ produced: 1, overrun: true });
    // Nothing is produced beyond the destination: the count is exact.
    expect(inflatedByteCount() - before).toBe(1);
    expect(ms).toBeLessThan(1_000); // the whole bomb takes seconds and gigabytes; stopping takes microseconds
  });

  it('stops a bomb hidden after the expected data, and ignores bytes after the end of the stream', () => {
    // 1 MiB of zeros is expected; the stream carries 64 MiB.
    const before = inflatedByteCount();
    expect(inflateInto(deflateZeros(64), new Uint8Array(MIB))).toEqual({ produced: MIB, overrun: true });
    expect(inflatedByteCount() - before).toBe(MIB);
    // Junk after a complete stream is not output: it is not an overrun (and it is never read).
    const data = pseudoRandomBytes(5000, 9);
    const withJunk = concat(deflateSync(data), pseudoRandomBytes(4 * MIB, 10));
    const t0 = performance.now();
    expect(inflateInto(withJunk, new Uint8Array(5000))).toEqual({ produced: 5000, overrun: false });
    // Nor when the stream ended short of the destination (the caller reports the missing bytes).
    expect(inflateInto(withJunk, new Uint8Array(9000))).toEqual({ produced: 5000, overrun: false });
    expect(performance.now() - t0).toBeLessThan(2_000);
  });

  it('refuses a stream that is not zlib, or asks for a preset dictionary, and corrupt data', () => {
    expect(() => unzlibInto(Uint8Array.of(0x12, 0x34, 0, 0, 0, 0), new Uint8Array(4))).toThrow(/invalid zlib header/);
    expect(() => unzlibInto(Uint8Array.of(0x78, 0xbb, 0, 0, 0, 0, 0, 0), new Uint8Array(4))).toThrow(/preset dictionary/);
    expect(inflateError(() => inflateInto(Uint8Array.of(0xff, 0xff, 0xff, 0xff), new Uint8Array(4))).failure).toBe('corrupt');
    // Cut short inside a block: an error (not a short result), which says how far decoding got.
    const z = deflateSync(pseudoRandomBytes(10_000, 3));
    const err = inflateError(() => inflateInto(z.subarray(0, z.length - 10), new Uint8Array(10_000)));
    expect(err.failure).toBe('truncated');
    expect(err.produced).toBeLessThan(10_000);
    expect(inflateError(() => inflateInto(new Uint8Array(0), new Uint8Array(1))).failure).toBe('truncated');
  });

  it('counts exactly the bytes written, whether the stream fits, ends early, overruns or is cut off', () => {
    const data = pseudoRandomBytes(50_000, 12);
    for (let i = 0; i < data.length; i++) data[i] &= 7;
    const z = deflateSync(data, { level: 6 });
    const cases: [Uint8Array, number, number][] = [
      [z, data.length, data.length], // fits
      [z, data.length + 100, data.length], // ends early
      [z, 1234, 1234], // overrun: the destination is full
    ];
    for (const [src, size, expected] of cases) {
      const before = inflatedByteCount();
      expect(inflateInto(src, new Uint8Array(size)).produced).toBe(expected);
      expect(inflatedByteCount() - before).toBe(expected);
    }
    const before = inflatedByteCount();
    const err = inflateError(() => inflateInto(z.subarray(0, z.length >> 1), new Uint8Array(data.length)));
    expect(err.produced).toBeGreaterThan(0);
    expect(inflatedByteCount() - before).toBe(err.produced);
  });
});
