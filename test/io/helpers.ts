/** Test-only helpers for building (possibly broken) PNG files byte by byte. Node-only (uses node:zlib). */
import { deflateSync } from 'node:zlib';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

export function ihdr(width: number, height: number, bitDepth: number, colorType: number, interlace = 0): Uint8Array {
  const d = new Uint8Array(13);
  const dv = new DataView(d.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  d[8] = bitDepth;
  d[9] = colorType;
  d[12] = interlace;
  return chunk('IHDR', d);
}

export function zlib(raw: Uint8Array): Uint8Array {
  return new Uint8Array(deflateSync(raw));
}

/** A whole PNG from an IHDR description and the raw (filtered) scanline bytes. */
export function buildPng(opts: {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  raw: Uint8Array;
  palette?: number[];
  extra?: Uint8Array[];
}): Uint8Array {
  const parts = [SIGNATURE, ihdr(opts.width, opts.height, opts.bitDepth, opts.colorType)];
  if (opts.palette) parts.push(chunk('PLTE', Uint8Array.from(opts.palette)));
  parts.push(...(opts.extra ?? []));
  parts.push(chunk('IDAT', zlib(opts.raw)), chunk('IEND', new Uint8Array(0)));
  return concat(...parts);
}

/** Deterministic pseudo-random bytes (LCG), independent of the library's RNG. */
export function pseudoRandomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** Decodes a base64 fixture array of little-endian uint8 / uint16 / float32 samples (bit depth 8, 16, 32). */
export function fromBase64(b64: string, bitDepth: 8 | 16 | 32): Uint8Array | Uint16Array | Float32Array {
  const bytes = new Uint8Array(Buffer.from(b64, 'base64'));
  if (bitDepth === 8) return bytes;
  const copy = bytes.slice().buffer; // aligned
  return bitDepth === 16 ? new Uint16Array(copy) : new Float32Array(copy);
}

/** An expected page in the fixture manifests written by tools/make_io_fixtures.py. */
export interface ExpectedPage {
  width: number;
  height: number;
  channels: 1 | 3;
  bitDepth: 8 | 16 | 32;
  data: string;
  alpha?: string;
}

/** Deterministic pseudo-random samples for a bit depth (floats spread over [-2, 2) with some exact values). */
export function pseudoRandomSamples(n: number, bitDepth: 8 | 16 | 32, seed: number): Uint8Array | Uint16Array | Float32Array {
  const bytes = pseudoRandomBytes(4 * n, seed);
  if (bitDepth === 8) return bytes.slice(0, n);
  if (bitDepth === 16) {
    const out = new Uint16Array(n);
    for (let i = 0; i < n; i++) out[i] = (bytes[2 * i] << 8) | bytes[2 * i + 1];
    return out;
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = ((bytes[4 * i] << 16) | (bytes[4 * i + 1] << 8) | bytes[4 * i + 2]) / 2 ** 24;
    out[i] = i % 17 === 0 ? [0, -0, 1, -1, 1e-30, 3e38][i % 6] : u * 4 - 2;
  }
  return out;
}
