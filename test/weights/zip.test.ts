/** The ZIP reader: torch's layout, deflate, Zip64, and corrupted archives. */
import { describe, expect, it } from 'vitest';
import { crc32, readPth, ZipArchive } from '../../src/weights';
import { expectCheckpointError, fixture } from './helpers';

const ascii = (s: string) => new TextEncoder().encode(s);

/** Offset of the central-directory header of entry `name` (found by scanning for its signature). */
function centralHeader(bytes: Uint8Array, name: string): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const want = ascii(name);
  for (let at = 0; at + 46 <= bytes.length; at++) {
    if (dv.getUint32(at, true) !== 0x02014b50) continue;
    const n = dv.getUint16(at + 28, true);
    if (n === want.length && want.every((b, i) => bytes[at + 46 + i] === b)) return at;
  }
  throw new Error(`no central header for ${name}`);
}

function contents(archive: ZipArchive): Map<string, string> {
  return new Map(archive.entries.map((e) => [e.name.slice(e.name.indexOf('/')), Buffer.from(archive.read(e)).toString('hex')]));
}

describe('ZipArchive', () => {
  const basicBytes = fixture('zip_basic.pth');
  const basic = new ZipArchive(basicBytes, { name: 'zip_basic.pth' });

  it('lists torch entries and returns stored entries as views without copying', () => {
    const names = basic.entries.map((e) => e.name);
    expect(names).toContain('zip_basic/data.pkl');
    expect(names).toContain('zip_basic/version');
    expect(names.some((n) => n.startsWith('zip_basic/data/'))).toBe(true);
    const pkl = basic.read('zip_basic/data.pkl');
    expect(pkl.buffer).toBe(basicBytes.buffer);
    expect(pkl[0]).toBe(0x80); // PROTO
    expect(new TextDecoder().decode(basic.read('zip_basic/version')).trim()).toMatch(/^\d+$/);
  });

  it('inflates deflated entries (same bytes as the stored original)', () => {
    const deflated = new ZipArchive(fixture('zip_deflate_renamed.pth'));
    expect(deflated.entries.every((e) => e.method === 8)).toBe(true);
    expect(deflated.entries[0].name.startsWith('some_other_name/')).toBe(true);
    expect(contents(deflated)).toEqual(contents(basic));
  });

  it('reads Zip64 records and an archive comment', () => {
    const z64 = new ZipArchive(fixture('zip64_comment.pth'));
    expect(contents(z64)).toEqual(contents(basic));
  });

  it('computes the zip CRC-32', () => {
    expect(crc32(ascii('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it('detects corrupted data by CRC', () => {
    const bytes = basicBytes.slice();
    const entry = basic.entries.find((e) => e.name.startsWith('zip_basic/data/'))!;
    const data = basic.read(entry);
    bytes[data.byteOffset - basicBytes.byteOffset] ^= 0x55;
    const err = expectCheckpointError(() => new ZipArchive(bytes).read(entry.name), ['CHECKPOINT_FORMAT']);
    expect(err.message).toMatch(/corrupted/);
    expectCheckpointError(() => readPth(bytes), ['CHECKPOINT_FORMAT']);
  });

  it('rejects unsupported methods, encryption and broken local headers', () => {
    const name = 'zip_basic/data.pkl';
    const cd = centralHeader(basicBytes, name);

    const method = basicBytes.slice();
    new DataView(method.buffer).setUint16(cd + 10, 12, true);
    expect(expectCheckpointError(() => readPth(method), ['CHECKPOINT_FORMAT']).message).toMatch(/compression method 12/);

    const encrypted = basicBytes.slice();
    new DataView(encrypted.buffer).setUint16(cd + 8, 1, true);
    expect(expectCheckpointError(() => readPth(encrypted), ['CHECKPOINT_FORMAT']).message).toMatch(/encrypted/);

    // (Not data.pkl's own local header: that is the file's first bytes, so the file would not look like a zip.)
    const local = basicBytes.slice();
    const storageName = basic.entries.find((e) => e.name.startsWith('zip_basic/data/'))!.name;
    const localAt = new DataView(local.buffer).getUint32(centralHeader(basicBytes, storageName) + 42, true);
    local[localAt] = 0;
    expect(expectCheckpointError(() => readPth(local), ['CHECKPOINT_FORMAT']).message).toMatch(/local header/);

    const beyond = basicBytes.slice();
    new DataView(beyond.buffer).setUint32(cd + 42, beyond.length + 100, true);
    expectCheckpointError(() => readPth(beyond), ['CHECKPOINT_TRUNCATED']);
  });

  it('refuses impossible inflate sizes (zip-bomb guard) and broken deflate streams', () => {
    const original = fixture('zip_deflate_renamed.pth');
    const archive = new ZipArchive(original);
    const entry = archive.entries.find((e) => e.name.endsWith('/data.pkl'))!;
    const cd = centralHeader(original, entry.name);

    const bomb = original.slice();
    new DataView(bomb.buffer).setUint32(cd + 24, 0x7fffffff, true);
    expect(expectCheckpointError(() => new ZipArchive(bomb).read(entry.name), ['CHECKPOINT_FORMAT']).message).toMatch(
      /deflate cannot produce/,
    );
    // Through readPth the pickle's own limit refuses it first.
    expect(expectCheckpointError(() => readPth(bomb), ['CHECKPOINT_FORMAT']).message).toMatch(/allowed for a checkpoint's pickle/);

    const short = original.slice();
    new DataView(short.buffer).setUint32(cd + 20, Math.floor(entry.compressedSize / 2), true);
    expectCheckpointError(() => readPth(short), ['CHECKPOINT_TRUNCATED', 'CHECKPOINT_FORMAT']);
  });

  it('points a wrong central-directory offset at truncation', () => {
    const bytes = basicBytes.slice();
    const dv = new DataView(bytes.buffer);
    // torch writes Zip64 records: patch the Zip64 EOCD's directory offset (last 8 bytes of the 56-byte record).
    const locator = bytes.length - 22 - 20;
    expect(dv.getUint32(locator, true)).toBe(0x07064b50);
    const z64 = Number(dv.getBigUint64(locator + 8, true));
    dv.setBigUint64(z64 + 48, BigInt(bytes.length * 2), true);
    expect(expectCheckpointError(() => readPth(bytes), ['CHECKPOINT_TRUNCATED']).message).toMatch(/central directory/);
  });
});
