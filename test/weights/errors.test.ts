/**
 * Wrong, cut-off and corrupted files: every failure must be a CheckpointError with a useful code and
 * message, never a RangeError, TypeError or hang.
 */
import { describe, expect, it } from 'vitest';
import { readPth, sniffCheckpoint } from '../../src/weights';
import { expectCheckpointError, fixture, rng } from './helpers';

const TRUNCATED_OR_FORMAT = ['CHECKPOINT_TRUNCATED', 'CHECKPOINT_FORMAT'] as const;
const ascii = (s: string) => new TextEncoder().encode(s);

describe('truncated files', () => {
  for (const name of ['zip_basic.pth', 'zip64_comment.pth', 'zip_deflate_renamed.pth', 'legacy_basic.pth']) {
    it(`${name}: 10%, 50%, 60%, 99%, header only and 0 bytes`, () => {
      const bytes = fixture(name);
      const cuts = [0.1, 0.5, 0.6, 0.99].map((f) => Math.floor(bytes.length * f));
      for (const cut of [...cuts, 30, 14, bytes.length - 1]) {
        const err = expectCheckpointError(() => readPth(bytes.subarray(0, cut), { name }), TRUNCATED_OR_FORMAT);
        expect(err.code, `cut at ${cut}`).toBe('CHECKPOINT_TRUNCATED');
        expect(err.message).toMatch(/truncated or incomplete/);
        expect(err.message).toContain(name);
      }
      const empty = expectCheckpointError(() => readPth(bytes.subarray(0, 0), { name }), TRUNCATED_OR_FORMAT);
      expect(empty.message).toMatch(/empty/);
    });

    it(`${name}: every prefix fails cleanly`, () => {
      const bytes = fixture(name);
      for (let cut = 0; cut < bytes.length; cut++) {
        expectCheckpointError(() => readPth(bytes.subarray(0, cut)), TRUNCATED_OR_FORMAT);
      }
    });
  }
});

describe('files that are not checkpoints', () => {
  it('Git LFS pointer', () => {
    const text =
      'version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2143aab6e0b0c0c3f2f5fb27a0e4f1ab3c2de0a1b2c3d4e5f60718293a4b\nsize 2224903\n';
    expect(sniffCheckpoint(ascii(text)).kind).toBe('git-lfs-pointer');
    const err = expectCheckpointError(() => readPth(ascii(text), { name: 'dncnn_25.pth' }), ['CHECKPOINT_FORMAT']);
    expect(err.message).toMatch(/Git LFS pointer/);
    expect(err.message).toMatch(/git lfs pull/);
    expect(err.message).toContain('2224903 bytes');
  });

  it('HTML page (failed download)', () => {
    for (const page of [
      '<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>Not Found</body></html>',
      '\n  <html><body>Sign in</body></html>',
    ]) {
      const err = expectCheckpointError(() => readPth(ascii(page)), ['CHECKPOINT_FORMAT']);
      expect(err.message).toMatch(/HTML page/);
      expect(err.message).toMatch(/download/);
    }
    // The page's title is its content: not repeated (a service passing user paths would leak files).
    const message = readPthMessage('<!DOCTYPE html><title>404 Not Found</title>');
    expect(message).not.toContain('404 Not Found');
    expect(message).toMatch(/HTML page \(43 bytes\)/);
  });

  it('safetensors', () => {
    const header = ascii('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}');
    const bytes = new Uint8Array(8 + header.length + 4);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
    bytes.set(header, 8);
    const err = expectCheckpointError(() => readPth(bytes), ['CHECKPOINT_FORMAT']);
    expect(err.message).toMatch(/safetensors/);
  });

  it('random bytes', () => {
    const next = rng(7);
    for (let n = 0; n < 20; n++) {
      const bytes = Uint8Array.from({ length: 64 + n * 37 }, () => Math.floor(next() * 256));
      bytes[0] = 0x07; // avoid accidentally starting with a recognised magic
      const err = expectCheckpointError(() => readPth(bytes), ['CHECKPOINT_FORMAT']);
      expect(err.message).toContain(`a file of ${bytes.length} bytes in no format this reader knows`);
      expect(err.message).not.toMatch(/\b07\b/);
    }
  });

  it('the legacy magic number alone', () => {
    const magic = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);
    expect(sniffCheckpoint(magic).kind).toBe('torch-legacy');
    const err = expectCheckpointError(() => readPth(magic), ['CHECKPOINT_TRUNCATED']);
    expect(err.message).toMatch(/truncated or incomplete/);
  });

  it('a plain pickle that is not a torch file', () => {
    // pickle.dumps({'a': 1}, protocol=2)
    const bytes = Uint8Array.from([0x80, 0x02, 0x7d, 0x71, 0x00, 0x58, 0x01, 0, 0, 0, 0x61, 0x71, 0x01, 0x4b, 0x01, 0x73, 0x2e]);
    const err = expectCheckpointError(() => readPth(bytes), ['CHECKPOINT_FORMAT']);
    expect(err.message).toMatch(/not a torch.save checkpoint/);
  });

  it('other common mix-ups: gzip, numpy, text, empty, zip without data.pkl', () => {
    expect(readPthMessage(Uint8Array.from([0x1f, 0x8b, 8, 0, 0, 0]))).toMatch(/gzip/);
    expect(readPthMessage(Uint8Array.from([0x93, ...ascii('NUMPY'), 1, 0]))).toMatch(/NumPy/);
    expect(readPthMessage(ascii('model.0.weight: 0.1, 0.2\n'))).toMatch(/text file/);
    expect(readPthMessage(new Uint8Array(0))).toMatch(/empty/);
    // An empty zip archive: just an end-of-central-directory record.
    const emptyZip = new Uint8Array(22);
    emptyZip.set([0x50, 0x4b, 0x05, 0x06]);
    expect(readPthMessage(emptyZip)).toMatch(/zip archive is empty/);
  });
});

function readPthMessage(bytes: Uint8Array | string): string {
  const data = typeof bytes === 'string' ? ascii(bytes) : bytes;
  return expectCheckpointError(() => readPth(data), TRUNCATED_OR_FORMAT).message;
}

describe('corrupted files (seeded fuzz)', () => {
  // Flip bytes anywhere in the file: the result must be a successful read or a CheckpointError.
  for (const name of ['legacy_basic.pth', 'zip_basic.pth', 'zip_protocol4.pth']) {
    it(`${name}: 1500 random corruptions`, () => {
      const original = fixture(name);
      const next = rng(name.length * 7919);
      for (let iter = 0; iter < 1500; iter++) {
        const bytes = original.slice();
        const flips = 1 + Math.floor(next() * 4);
        for (let k = 0; k < flips; k++) {
          // Bias towards the pickle, which sits at the start of both formats.
          const at = next() < 0.7 ? Math.floor(next() * Math.min(bytes.length, 1200)) : Math.floor(next() * bytes.length);
          bytes[at] = Math.floor(next() * 256);
        }
        try {
          readPth(bytes);
        } catch (err) {
          if (!(err instanceof Error) || err.name !== 'CheckpointError') {
            throw new Error(`iteration ${iter}: unexpected ${String(err)}`, { cause: err });
          }
        }
      }
    });
  }
});
