/**
 * What error messages may say about a file that is not a checkpoint: its kind and its size, never its
 * content (a service passing user paths would otherwise leak any file it can read). And the two cases that
 * used to be "unrecognised": ONNX exports and safetensors headers over the size limit.
 */
import { describe, expect, it } from 'vitest';
import { readCheckpoint, readPth, sniffCheckpoint, MAX_SAFETENSORS_HEADER } from '../../src/weights';
import { expectCheckpointError } from './helpers';
import { buildZip, stored } from './torch-zip-builder';

const ascii = (s: string) => new TextEncoder().encode(s);

/** Messages of both entry points for `bytes`, after checking they fail with CHECKPOINT_FORMAT. */
function messages(bytes: Uint8Array): string[] {
  return [readCheckpoint, readPth].map(
    (read) => expectCheckpointError(() => read(bytes, { name: 'weights.pth' }), ['CHECKPOINT_FORMAT']).message,
  );
}

/** A minimal ONNX ModelProto: ir_version 8, producer 'pytorch' 2.1.0, a graph, an opset import. */
function onnxModel(): Uint8Array {
  const field = (tag: number, payload: Uint8Array) => [tag, payload.length, ...payload];
  const graph = Uint8Array.from([...field(0x0a, ascii('node')), ...field(0x12, ascii('main_graph'))]);
  const opset = Uint8Array.from([0x10, 17]);
  return Uint8Array.from([
    0x08,
    0x08,
    ...field(0x12, ascii('pytorch')),
    ...field(0x1a, ascii('2.1.0')),
    ...field(0x3a, graph),
    ...field(0x42, opset),
  ]);
}

describe('messages never quote the file', () => {
  const secret = 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n';

  it('a text file: kind and size only', () => {
    const bytes = ascii(secret);
    for (const message of messages(bytes)) {
      expect(message).toContain(`a text file (${bytes.length} bytes), not a checkpoint`);
      expect(message).not.toMatch(/root|daemon|bash/);
    }
  });

  it('binary files, HTML pages, XML: no bytes, no titles', () => {
    const binary = Uint8Array.from({ length: 300 }, (_, i) => (i * 151 + 7) & 0xff);
    binary.set(ascii('SECRET'), 1);
    for (const message of messages(binary)) {
      expect(message).toContain('a file of 300 bytes in no format this reader knows');
      expect(message).not.toMatch(/SECRET|S\.E|53 45/);
    }
    const page = ascii('<html><head><title>Internal admin: password reset</title></head></html>');
    for (const message of messages(page)) {
      expect(message).toMatch(/an HTML page \(\d+ bytes\)/);
      expect(message).not.toMatch(/admin|password/);
    }
  });

  it('a zip that is no checkpoint: its entry count, not its entry names', () => {
    const zip = buildZip([stored('payroll/2024-salaries.csv', ascii('x')), stored('notes.txt', ascii('y'))]);
    for (const message of messages(zip)) {
      expect(message).toContain("a zip archive of 2 entries without '<folder>/data.pkl'");
      expect(message).not.toMatch(/payroll|salaries|notes/);
    }
  });

  it('malformed text opcodes in a pickle: their length, not their text', () => {
    // PROTO 2, then INT with a line of text: what a binary file starting with 0x80 0x02 might hold.
    const bytes = Uint8Array.from([0x80, 0x02, 0x49, ...ascii('hunter2-password\n'), 0x2e]);
    for (const message of messages(bytes)) {
      expect(message).toMatch(/invalid INT literal \(16 characters\)/);
      expect(message).not.toContain('hunter2');
    }
  });

  it('a Git LFS pointer: only its oid and size, and only when they have the pointer format', () => {
    const oid = 'a'.repeat(64);
    expect(sniffCheckpoint(ascii(`version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\nsize 12\n`)).description).toContain(
      `oid sha256:${oid}, 12 bytes`,
    );
    const odd = sniffCheckpoint(ascii('version https://git-lfs.github.com/spec/v1\noid sha256:top-secret\nsize twelve\n'));
    expect(odd.kind).toBe('git-lfs-pointer');
    expect(odd.description).not.toMatch(/secret|twelve/);
  });
});

describe('ONNX models', () => {
  it('are recognised and refused with advice', () => {
    const model = onnxModel();
    expect(sniffCheckpoint(model).kind).toBe('onnx');
    for (const message of messages(model)) {
      expect(message).toContain(`an ONNX model (${model.length} bytes), which is not supported`);
      expect(message).toMatch(/PyTorch weights \(\.pth\/\.pt\) or a safetensors file/);
    }
  });

  it('are not claimed for other files starting with the byte 0x08', () => {
    expect(sniffCheckpoint(Uint8Array.from([0x08, 0x08, 0xff, 0xff, 0xff])).kind).toBe('unknown');
    expect(sniffCheckpoint(Uint8Array.from([0x08, 0x00, 0x12, 0x01, 0x41])).kind).toBe('unknown');
    expect(sniffCheckpoint(Uint8Array.from([0x08, 0x08, 0x12, 0x40, 0x41])).kind).toBe('unknown'); // length past the end
  });
});

describe('safetensors headers over the limit', () => {
  it('are reported as such, naming the header length and the limit', () => {
    const json = ascii('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}');
    const bytes = new Uint8Array(8 + json.length + 4);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(MAX_SAFETENSORS_HEADER + 1), true);
    bytes.set(json, 8);
    expect(sniffCheckpoint(bytes).kind).toBe('safetensors');
    const err = expectCheckpointError(() => readCheckpoint(bytes, { name: 'big.safetensors' }), ['CHECKPOINT_FORMAT']);
    expect(err.message).toContain(`declares a ${MAX_SAFETENSORS_HEADER + 1}-byte header, more than the ${MAX_SAFETENSORS_HEADER} bytes`);
    expect(readPth.bind(null, bytes)).toThrow(/safetensors file whose header length 100000001 exceeds the 100000000-byte limit/);
  });
});
