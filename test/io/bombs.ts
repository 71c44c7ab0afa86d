/**
 * Test-only decompression bombs: Deflate and zlib streams of many zero bytes, built in milliseconds without
 * ever holding the zeros in memory. Node-only (uses node:zlib).
 *
 * How: node's zlib compresses 1 MiB of zeros with a sync flush, which ends the data in non-final blocks on a
 * byte boundary. Those blocks start with a literal 0 and otherwise only copy earlier zeros, so they decode the
 * same wherever they stand after the first copy; repeating them k times and closing with an empty final block
 * is a valid stream of k MiB of zeros (about 1 KB per MiB: 256 MiB from ~260 KB, like a real bomb).
 */
import { constants, deflateRawSync } from 'node:zlib';

const MIB = 1024 * 1024;

let zeroMiBBlocks: Uint8Array | undefined;

/** Non-final Deflate blocks that decode to 1 MiB of zeros, ending on a byte boundary. */
function oneMiBOfZeros(): Uint8Array {
  zeroMiBBlocks ??= new Uint8Array(deflateRawSync(new Uint8Array(MIB), { level: 9, finishFlush: constants.Z_SYNC_FLUSH }));
  return zeroMiBBlocks;
}

/** An empty final block with fixed Huffman codes: BFINAL = 1, BTYPE = 01, then the 7-bit end-of-block code. */
const FINAL_EMPTY_BLOCK = Uint8Array.of(0x03, 0x00);

/** A raw Deflate stream (RFC 1951) of `mib` MiB of zeros. */
export function deflateZeros(mib: number): Uint8Array {
  const block = oneMiBOfZeros();
  const out = new Uint8Array(block.length * mib + FINAL_EMPTY_BLOCK.length);
  for (let i = 0; i < mib; i++) out.set(block, i * block.length);
  out.set(FINAL_EMPTY_BLOCK, block.length * mib);
  return out;
}

/** A zlib stream (RFC 1950) of `mib` MiB of zeros, with the right Adler-32. */
export function zlibZeros(mib: number): Uint8Array {
  const body = deflateZeros(mib);
  const out = new Uint8Array(2 + body.length + 4);
  out[0] = 0x78; // Deflate, 32 KiB window
  out[1] = 0xda; // maximum compression, no dictionary; 0x78da is a multiple of 31
  out.set(body, 2);
  // Adler-32 of n zeros: a stays 1, b adds 1 per byte.
  const b = (mib * MIB) % 65521;
  new DataView(out.buffer).setUint32(2 + body.length, ((b << 16) | 1) >>> 0);
  return out;
}

export { MIB };
