/**
 * Decompression bombs in zip checkpoints, generated here (never committed): what a checkpoint makes the
 * reader inflate is bounded before anything is inflated, and measured by counting the bytes of every
 * buffer the zip reader allocates to inflate into (onInflate), not by RSS. The bound checked for every
 * file that loads:
 *
 *   inflated bytes <= data.pkl's declared size + 2 x (declared tensor bytes) + 1 MiB
 *
 * where the tensor bytes are the sum over tensors of elements x element size as stored.
 */
import { describe, expect, it } from 'vitest';
import { readCheckpoint, ZipArchive, type StateDict } from '../../src/weights';
import { dtypeByteSize, numel } from '../../src/weights/tensor';
import { MAX_PICKLE_BYTES } from '../../src/weights/torch-zip';
import { expectCheckpointError, fixture } from './helpers';
import { bombEntry, buildZip, crc32OfZeros, deflated, stored, torchPickle, torchZip, zeroBomb, type TensorSpec } from './torch-zip-builder';

const MiB = 2 ** 20;

function tensorBytes(sd: StateDict): number {
  let n = 0;
  for (const t of sd.values()) n += numel(t.shape) * dtypeByteSize(t.dtype);
  return n;
}

/** Read with the inflate counter; returns the state dict and the bytes inflated. */
function readCounting(bytes: Uint8Array): { sd: StateDict; inflated: number; buffers: number[] } {
  const buffers: number[] = [];
  const sd = readCheckpoint(bytes, { name: 'bomb.pth', onInflate: (n) => buffers.push(n) });
  return { sd, inflated: buffers.reduce((a, b) => a + b, 0), buffers };
}

function failCounting(bytes: Uint8Array, codes: string[]): { message: string; inflated: number } {
  let inflated = 0;
  const err = expectCheckpointError(() => readCheckpoint(bytes, { name: 'bomb.pth', onInflate: (n) => (inflated += n) }), codes);
  return { message: err.message, inflated };
}

const weights = (n: number) => new Uint8Array(Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.1).buffer);

describe('zip checkpoints: what is inflated is bounded by what the tensors need', () => {
  it('a fully deflated checkpoint inflates its pickle and tensors once, within the bound', () => {
    // zip_deflate_renamed.pth: every entry deflated, including views, slices and tied storages.
    const file = fixture('zip_deflate_renamed.pth');
    const { sd, inflated } = readCounting(file);
    const pickle = new ZipArchive(file).entries.find((e) => e.name.endsWith('/data.pkl'))!.uncompressedSize;
    expect(inflated).toBeGreaterThan(pickle);
    expect(inflated).toBeLessThanOrEqual(pickle + 2 * tensorBytes(sd) + MiB);

    const tensors: TensorSpec[] = [
      { name: 'conv.weight', storage: '0', storageNumel: 64 * 9, size: [64, 1, 3, 3] },
      { name: 'conv.bias', storage: '1', storageNumel: 64, size: [64] },
    ];
    const pkl = torchPickle(tensors);
    const bytes = buildZip([
      deflated('archive/data.pkl', pkl),
      deflated('archive/data/0', weights(576)),
      deflated('archive/data/1', weights(64)),
    ]);
    const generated = readCounting(bytes);
    // Exactly the pickle and the two storages, each allocated once at its declared size.
    expect(generated.buffers).toEqual([pkl.length, 576 * 4, 64 * 4]);
    expect(generated.inflated).toBe(pkl.length + tensorBytes(generated.sd));
  });

  it('inflates a huge storage only as far as its tensors reach', () => {
    // A 4-element tensor on a storage that declares 256 MiB and deflates to 256 MiB (honestly).
    const declared = 256 * MiB;
    const bytes = torchZip([{ name: 'w', storage: '0', storageNumel: declared / 4, size: [4] }], [bombEntry('archive/data/0', declared)]);
    expect(bytes.length).toBeLessThan(2 * MiB);
    const { sd, inflated, buffers } = readCounting(bytes);
    expect(Array.from(sd.get('w')!.data as Float32Array)).toEqual([0, 0, 0, 0]);
    expect(buffers).toEqual([16]);
    expect(inflated).toBeLessThanOrEqual(2 * tensorBytes(sd) + MiB);
  });

  it('never inflates an entry no tensor uses', () => {
    const tensors: TensorSpec[] = [{ name: 'w', storage: '0', storageNumel: 4, size: [4] }];
    const bytes = torchZip(tensors, [
      deflated('archive/data/0', weights(4)),
      // Neither a 512 MiB bomb nor a broken stream is touched when nothing refers to it.
      bombEntry('archive/data/1', 512 * MiB),
      { name: 'archive/data/2', data: Uint8Array.of(0xff, 0xff), method: 8, uncompressedSize: 100, crc: 1 },
    ]);
    const { buffers } = readCounting(bytes);
    expect(buffers).toEqual([16]);
  });

  it('refuses tensors declaring more than the file may expand to, before inflating anything', () => {
    // Four storages of 256 MiB zeros (a ~7 MB file), each used whole by a tensor: 1 GiB of tensors.
    const declared = 256 * MiB;
    const tensors: TensorSpec[] = [0, 1, 2, 3].map((k) => ({
      name: `w${k}`,
      storage: String(k),
      storageNumel: declared / 4,
      size: [declared / 4],
    }));
    const bytes = torchZip(
      tensors,
      tensors.map((t) => bombEntry(`archive/data/${t.storage}`, declared)),
    );
    const { message, inflated } = failCounting(bytes, ['CHECKPOINT_FORMAT']);
    expect(message).toMatch(/tensors take 1073741824 bytes once decoded, more than the \d+ bytes a \d+-byte file may expand to/);
    expect(inflated).toBe(0);
  });

  it('refuses a tiny tensor far into a large compressed storage, before inflating it', () => {
    const declared = 64 * MiB;
    const bytes = torchZip(
      [{ name: 'w', storage: '0', storageNumel: declared / 4, offset: declared / 4 - 1, size: [1] }],
      [bombEntry('archive/data/0', declared)],
    );
    const { message, inflated } = failCounting(bytes, ['CHECKPOINT_FORMAT']);
    expect(message).toMatch(/tensors \(4 bytes\) reach 67108864 bytes into compressed storages, more than the 1048584 bytes/);
    expect(inflated).toBe(0);
  });

  it(`refuses a data.pkl declaring more than ${MAX_PICKLE_BYTES} bytes, before inflating it`, () => {
    // 128 MiB of zeros as the pickle: the reader used to inflate all of it before the unpickler refused it.
    const declared = 128 * MiB;
    const pickle = { name: 'archive/data.pkl', data: zeroBomb(declared), method: 8 as const, uncompressedSize: declared, crc: 0 };
    const bytes = buildZip([pickle, deflated('archive/data/0', weights(4))]);
    const { message, inflated } = failCounting(bytes, ['CHECKPOINT_FORMAT']);
    expect(message).toContain(`'archive/data.pkl' declares ${declared} bytes, more than the ${MAX_PICKLE_BYTES} bytes (64 MiB)`);
    expect(inflated).toBe(0);
  });

  it('refuses an entry that inflates past its declared size, whatever its CRC says', () => {
    // Declares 2,304 bytes (576 floats) but inflates to 256 MiB; a CRC of 0 means "not recorded".
    const spec: TensorSpec[] = [{ name: 'w', storage: '0', storageNumel: 576, size: [576] }];
    for (const crc of [0, 0x12345678]) {
      const bytes = torchZip(spec, [bombEntry('archive/data/0', 256 * MiB, 2304, crc)]);
      const { message, inflated } = failCounting(bytes, ['CHECKPOINT_FORMAT']);
      expect(message).toMatch(/zip entry 'archive\/data\/0' inflates to more than its declared 2304 bytes/);
      expect(inflated).toBe(2304);
    }
    // The same for the pickle, which is always read whole.
    const bytes = buildZip([{ name: 'archive/data.pkl', data: zeroBomb(64 * MiB), method: 8, uncompressedSize: 100, crc: 0 }]);
    expect(failCounting(bytes, ['CHECKPOINT_FORMAT']).message).toMatch(/'archive\/data.pkl' inflates to more than its declared 100 bytes/);
  });

  it('checks the CRC of entries read whole, and accepts a CRC of 0 as "not recorded"', () => {
    const spec: TensorSpec[] = [{ name: 'w', storage: '0', storageNumel: 1024, size: [1024] }];
    const good = bombEntry('archive/data/0', 4096, 4096, crc32OfZeros(4096));
    expect(readCounting(torchZip(spec, [good])).sd.get('w')!.data.length).toBe(1024);
    expect(readCounting(torchZip(spec, [{ ...good, crc: 0 }])).sd.get('w')!.data.length).toBe(1024);
    const bad = expectCheckpointError(() => readCheckpoint(torchZip(spec, [{ ...good, crc: good.crc ^ 1 }])), ['CHECKPOINT_FORMAT']);
    expect(bad.message).toMatch(/is corrupted \(CRC-32/);
  });

  it('keeps every generated bomb within the bound, or refuses it', () => {
    // Storages of random declared and actual sizes, tensors of random extents: whatever happens, the bytes
    // inflated stay within the bound of the tensors that were declared.
    let seed = 1234;
    const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    let loaded = 0;
    for (let k = 0; k < 40; k++) {
      const storageNumel = 1 + Math.floor(next() * (k % 4 === 0 ? 8 * MiB : 4096));
      const actual = storageNumel * 4 + (next() < 0.3 ? Math.floor(next() * 4096) - 2048 : 0);
      const count = Math.max(1, Math.floor(next() * Math.min(storageNumel, 512)));
      const offset = Math.floor(next() * (storageNumel - count + 1));
      const spec: TensorSpec[] = [{ name: 'w', storage: '0', storageNumel, offset, size: [count] }];
      const bytes = torchZip(spec, [bombEntry('archive/data/0', Math.max(0, actual), storageNumel * 4)]);
      const pickleBytes = torchPickle(spec).length;
      let inflated = 0;
      try {
        const sd = readCheckpoint(bytes, { onInflate: (n) => (inflated += n) });
        loaded++;
        expect(inflated).toBeGreaterThanOrEqual(count * 4); // the tensor's bytes were inflated, and counted
        expect(inflated).toBeLessThanOrEqual(pickleBytes + 2 * tensorBytes(sd) + MiB);
      } catch (err) {
        expect((err as { code?: string }).code).toMatch(/^CHECKPOINT_(FORMAT|TRUNCATED)$/);
        expect(inflated).toBeLessThanOrEqual(pickleBytes + 2 * count * 4 + MiB);
      }
    }
    expect(loaded).toBeGreaterThan(0);
  });
});

describe('stored entries', () => {
  it('are read in place: nothing is inflated', () => {
    const bytes = torchZip([{ name: 'w', storage: '0', storageNumel: 4, size: [4] }], [stored('archive/data/0', weights(4))]);
    expect(readCounting(bytes).buffers).toEqual([]);
  });
});
