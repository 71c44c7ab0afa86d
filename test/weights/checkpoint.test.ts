/** readCheckpoint: one entry point for .pth (zip, legacy, whole models) and safetensors, bytes or Blob. */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  readCheckpoint,
  readCheckpointContents,
  readCheckpointContentsAsync,
  readPth,
  readSafetensorsHeader,
  writeSafetensors,
  type CpuTensor,
} from '../../src/weights';
import { DNCNN_URL, EXPECTED, expectCheckpointError, expectTensorMatches, fixture } from './helpers';

const ascii = (s: string) => new TextEncoder().encode(s);

describe('readCheckpoint', () => {
  it('reads every readable fixture and reports its format', () => {
    for (const [name, expected] of Object.entries(EXPECTED.fixtures).filter(([, f]) => f.state_dict)) {
      const contents = readCheckpointContents(fixture(name), { name });
      expect(contents.format, name).toBe(expected.format);
      expect([...contents.stateDict.keys()], name).toEqual(Object.keys(expected.state_dict!));
      if (expected.format === 'safetensors') expect(Object.fromEntries(contents.metadata)).toEqual(expected.metadata);
      else expect(contents.metadata.size).toBe(0);
    }
  });

  it('accepts a Uint8Array, an ArrayBuffer, a Blob and a File (async, name from the File)', async () => {
    const bytes = fixture('module_zip.pth');
    const want = EXPECTED.fixtures['module_zip.pth'].state_dict!;
    const fromBlob = await readCheckpoint(new Blob([bytes.slice().buffer]));
    const fromArrayBuffer = readCheckpoint(bytes.slice().buffer);
    for (const sd of [readCheckpoint(bytes), fromArrayBuffer, fromBlob]) {
      for (const [key, t] of Object.entries(want)) expectTensorMatches(sd.get(key), t, key);
    }
    const lfs = new File([ascii('version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 12\n')], 'dncnn.pth');
    await expect(readCheckpoint(lfs)).rejects.toThrow(/dncnn\.pth: .*Git LFS pointer/);
    const contents = await readCheckpointContentsAsync(new File([fixture('st_basic.safetensors').slice().buffer], 'w.safetensors'));
    expect(contents.format).toBe('safetensors');
  });

  it('unwraps safetensors keys like .pth ones (module. prefix)', () => {
    const t: CpuTensor = { dtype: 'float32', shape: [1], data: new Float32Array([2]) };
    const bytes = writeSafetensors(
      new Map([
        ['module.a.weight', t],
        ['module.a.bias', t],
      ]),
    );
    expect([...readCheckpoint(bytes).keys()]).toEqual(['a.bias', 'a.weight']);
  });

  it('pth -> safetensors -> readCheckpoint: the same state dict', () => {
    for (const name of ['legacy_basic.pth', 'module_nested_legacy_protocol1.pth', 'wrapped_params_ema.pth']) {
      const sd = readPth(fixture(name));
      const back = readCheckpoint(writeSafetensors(sd, { metadata: { source: name } }));
      expect([...back.keys()].sort()).toEqual([...sd.keys()].sort());
      for (const [key, t] of Object.entries(EXPECTED.fixtures[name].state_dict!)) expectTensorMatches(back.get(key), t, key);
    }
  });

  it('dncnn_25.pth (KAIR, legacy format) converts to safetensors with bit-identical tensors', () => {
    const sd = readCheckpoint(new Uint8Array(readFileSync(DNCNN_URL)), { name: 'dncnn_25.pth' });
    const converted = writeSafetensors(sd, { metadata: { architecture: 'DnCNN' } });
    const back = readCheckpointContents(converted, { name: 'dncnn_25.safetensors' });
    expect(back.format).toBe('safetensors');
    expect([...back.stateDict.keys()]).toEqual([...sd.keys()].sort());
    for (const [key, t] of sd) {
      const b = back.stateDict.get(key)!;
      expect(b.shape, key).toEqual(t.shape);
      expect(Buffer.from(b.data.buffer).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), key).toBe(true);
    }
    // float32 data plus a small header: the same size as the weights
    expect(converted.length - readSafetensorsHeader(converted).dataStart).toBe(555_137 * 4);
  });

  it('says what a wrong file is', () => {
    const cases: [Uint8Array, RegExp][] = [
      [ascii('version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 2224903\n'), /Git LFS pointer.*git lfs pull/],
      [ascii('<!DOCTYPE html><html><head><title>404 Not Found</title></head></html>'), /HTML page \(69 bytes\).*download/],
      [new Uint8Array(0), /empty/],
      [Uint8Array.from([0x1f, 0x8b, 8, 0]), /gzip/],
      [ascii('just some notes\n'), /text file/],
      [Uint8Array.from([0x80, 0x02, 0x4e, 0x2e]), /not a torch\.save checkpoint/],
    ];
    for (const [bytes, message] of cases) {
      const err = expectCheckpointError(() => readCheckpoint(bytes, { name: 'weights.pth' }), ['CHECKPOINT_FORMAT']);
      expect(err.message).toMatch(message);
      expect(err.message).toContain('weights.pth');
    }
    expect(() => readCheckpoint('x' as unknown as Uint8Array)).toThrow(/Uint8Array, an ArrayBuffer or a Blob/);
  });

  it('readPth points safetensors users to readCheckpoint', () => {
    const err = expectCheckpointError(() => readPth(fixture('st_basic.safetensors')), ['CHECKPOINT_FORMAT']);
    expect(err.message).toMatch(/readCheckpoint/);
  });
});

describe('browser compatibility', () => {
  it('src/weights imports no Node built-ins and uses no Buffer, process or require', () => {
    const dir = new URL('../../src/weights/', import.meta.url);
    const offenders: string[] = [];
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      const code = readFileSync(new URL(f, dir), 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/\/\/.*$/gm, '');
      if (/from\s+['"](node:|fs['"]|path['"]|crypto['"]|zlib['"]|buffer['"])|\brequire\(|\bBuffer\.|\bprocess\./.test(code))
        offenders.push(f);
      for (const m of code.matchAll(/from\s+['"]([^'"]+)['"]/g)) {
        if (!m[1].startsWith('.') && m[1] !== 'fflate') offenders.push(`${f}: ${m[1]}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
