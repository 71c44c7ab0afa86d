/**
 * `inspect` and `convert`: checkpoints described and converted by the built CLI. The real KAIR DnCNN σ=25
 * release must be recognised as DnCNN-17 'R', convert to safetensors that hold exactly its tensors, and
 * denoise to byte-identical output from either file.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpointContents } from '../../src/weights/checkpoint';
import { toFloat64 } from '../../src/weights/tensor';
import { cli, expectCleanFailure, expectSuccess, FIXTURE, KAIR_DNCNN_25, requireBuiltCli, sampleCrop, tempDir, writePng } from './helpers';

let dir: string;
let removeDir: () => void;

beforeAll(() => {
  requireBuiltCli();
  ({ path: dir, remove: removeDir } = tempDir());
});

afterAll(() => removeDir?.());

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** The safetensors header, parsed here by hand (not by our reader): u64 length, then JSON. */
function safetensorsHeader(path: string): Record<string, any> {
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  return JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
}

describe('webgpu-restore inspect', () => {
  it('recognises the real KAIR dncnn_25.pth as DnCNN-17, act_mode R, legacy format', async () => {
    const r = await cli('inspect', KAIR_DNCNN_25);
    expectSuccess(r);
    expect(r.stdout).toMatch(/^format: PyTorch legacy/m);
    expect(r.stdout).toMatch(/^architecture: DnCNN \(denoise/m);
    expect(r.stdout).toMatch(/^config: .*nb=17.*actMode='R'/m);
    expect(r.stdout).toMatch(/^channels: 1 → 1, scale ×1$/m);
    expect(r.stdout).toMatch(/^tensors: 34$/m);
    expect(r.stdout).toMatch(/^dtypes: float32 \(34\)$/m);
    // 20 keys by default, in state_dict order.
    expect(r.stdout).toMatch(/keys \(first 20 of 34; --all/);
    expect(r.stdout).toMatch(/^ {2}model\.0\.weight +\[64, 1, 3, 3\] +float32$/m);
    expect(r.stdout).not.toMatch(/model\.32\.weight/);

    const all = await cli('inspect', KAIR_DNCNN_25, '--all');
    expect(all.stdout).toMatch(/^ {2}model\.32\.weight +\[1, 64, 3, 3\] +float32$/m);

    const json = JSON.parse((await cli('inspect', KAIR_DNCNN_25, '--json')).stdout);
    expect(json).toMatchObject({ format: 'torch-legacy', architecture: 'DnCNN', task: 'denoise', scale: 1, loads: true });
    expect(json.config).toEqual({ inChannels: 1, outChannels: 1, nc: 64, nb: 17, actMode: 'R' });
    expect(json.valueRange).toEqual([0, 1]);
    expect(json.keys).toHaveLength(34);
    // DnCNN-17 with 64 features: conv 1→64, 15 × conv 64→64, conv 64→1, each 3×3 with a bias.
    const params = 64 * 9 + 64 + 15 * (64 * 64 * 9 + 64) + 64 * 9 + 1;
    expect(json.parameters).toBe(params);
    expect(json.keys.slice(0, 2)).toEqual([
      { key: 'model.0.weight', shape: [64, 1, 3, 3], dtype: 'float32' },
      { key: 'model.0.bias', shape: [64], dtype: 'float32' },
    ]);
  });

  it('recognises an MSRResNet ×2 upscaler (zip format)', async () => {
    const json = JSON.parse((await cli('inspect', FIXTURE('msrresnet/tiny_x2.pth'), '--json')).stdout);
    expect(json).toMatchObject({ format: 'torch-zip', architecture: 'MSRResNet', task: 'upscale', scale: 2, inChannels: 3 });
    expect(json.config.scale).toBe(2);
  });

  it('refuses every hostile pickle with CHECKPOINT_UNSAFE, naming the global', async () => {
    const evil = readdirSync(FIXTURE('weights')).filter((n) => n.startsWith('evil_'));
    expect(evil.length).toBeGreaterThanOrEqual(5);
    for (const name of evil) {
      const r = await cli('inspect', FIXTURE(`weights/${name}`));
      expectCleanFailure(r, /^error \[CHECKPOINT_UNSAFE\]: .*global '/m, 1);
      expect(r.stdout, name).toBe(''); // nothing described from a refused file
    }
  });

  it('says what a Git LFS pointer or an HTML page saved as .pth really is', async () => {
    const lfs = join(dir, 'lfs.pth');
    writeFileSync(
      lfs,
      'version https://git-lfs.github.com/spec/v1\noid sha256:0451a70de9b672ae037270498fbb1c17a1c1c4403785df586ff65df5b858e5b0\nsize 2224903\n',
    );
    expectCleanFailure(await cli('inspect', lfs), /CHECKPOINT_FORMAT.*Git LFS pointer.*git lfs pull/, 1);
    const html = join(dir, 'page.pth');
    writeFileSync(html, '<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please sign in</body></html>\n');
    expectCleanFailure(await cli('inspect', html), /CHECKPOINT_FORMAT.*HTML page/, 1);
  });

  it('an unknown network: prints what the file holds, then the error (exit 1)', async () => {
    const r = await cli('inspect', FIXTURE('weights/zip_basic.pth'));
    expectCleanFailure(r, /INVALID_INPUT.*not a network we know/, 1);
    expect(r.stdout).toMatch(/^architecture: not recognised/m);
    expect(r.stdout).toMatch(/^ {2}conv\.weight +\[2, 3, 2, 2\]/m);
  });
});

describe('webgpu-restore convert', () => {
  it('dncnn_25.pth → safetensors + manifest with the same tensors, and the same denoised output', async () => {
    const out = join(dir, 'dncnn_25.safetensors');
    const r = await cli('convert', KAIR_DNCNN_25, '-o', out);
    expectSuccess(r);
    expect(r.stdout).toMatch(/wrote .*dncnn_25\.safetensors/);

    const header = safetensorsHeader(out);
    expect(header.__metadata__).toMatchObject({ architecture: 'DnCNN', format_version: '1' });
    expect(JSON.parse(header.__metadata__.config)).toEqual({ inChannels: 1, outChannels: 1, nc: 64, nb: 17, actMode: 'R' });
    expect(header['model.0.weight']).toMatchObject({ dtype: 'F32', shape: [64, 1, 3, 3] });

    const manifest = JSON.parse(readFileSync(join(dir, 'dncnn_25.json'), 'utf8'));
    expect(manifest).toMatchObject({
      architecture: 'DnCNN',
      task: 'denoise',
      inChannels: 1,
      outChannels: 1,
      scale: 1,
      valueRange: [0, 1],
      config: { nb: 17, actMode: 'R' },
    });
    expect(manifest.weights).toMatchObject({ file: 'dncnn_25.safetensors', dtype: 'float32', sha256: sha256(out) });
    expect(manifest.weights.bytes).toBe(statSync(out).size);
    expect(manifest.source).toMatchObject({ file: 'dncnn_25.pth', format: 'torch-legacy', sha256: sha256(KAIR_DNCNN_25) });

    // Exactly the tensors of the .pth, in float32.
    const original = readCheckpointContents(readFileSync(KAIR_DNCNN_25)).stateDict;
    const converted = readCheckpointContents(readFileSync(out)).stateDict;
    expect([...converted.keys()].sort()).toEqual([...original.keys()].sort());
    for (const [key, t] of original) {
      const c = converted.get(key)!;
      expect(c.shape, key).toEqual(t.shape);
      expect(c.dtype, key).toBe('float32');
      expect(Buffer.from(toFloat64(c).buffer).equals(Buffer.from(toFloat64(t).buffer)), key).toBe(true);
    }

    // Both files denoise a crop of the noisy Set12 sample to the same bytes.
    const input = writePng(join(dir, 'crop.png'), sampleCrop());
    const fromPth = join(dir, 'crop.pth.png');
    const fromSafetensors = join(dir, 'crop.safetensors.png');
    expectSuccess(await cli('denoise', input, '-o', fromPth, '--weights', KAIR_DNCNN_25, '-q'));
    expectSuccess(await cli('denoise', input, '-o', fromSafetensors, '--weights', out, '-q'));
    expect(readFileSync(fromSafetensors).equals(readFileSync(fromPth))).toBe(true);
    expect(readFileSync(fromPth).equals(readFileSync(input))).toBe(false);
  });

  it('never replaces the input, and an existing output only with --force', async () => {
    const src = FIXTURE('msrresnet/tiny_x2.pth');
    const out = join(dir, 'x2.safetensors');
    expectSuccess(await cli('convert', src, '-o', out, '-q'));
    const before = readFileSync(out);
    const again = await cli('convert', src, '-o', out);
    expectCleanFailure(again, /x2\.safetensors exists; use --force/, 1);
    expect(readFileSync(out).equals(before)).toBe(true);
    expectSuccess(await cli('convert', src, '-o', out, '--force', '-q'));

    // A safetensors file converted onto itself: refused even with --force, and left as it was.
    const self = await cli('convert', out, '-o', out, '--force');
    expectCleanFailure(self, /is the input file/, 1);
    expect(readFileSync(out).equals(before)).toBe(true);
  });

  it('--dtype f16 stores half precision that reads back within float16 rounding', async () => {
    const src = FIXTURE('msrresnet/tiny_x2.pth');
    const out = join(dir, 'x2_f16.safetensors');
    expectSuccess(await cli('convert', src, '-o', out, '--dtype', 'f16', '-q'));
    const header = safetensorsHeader(out);
    const entries = Object.entries(header).filter(([k]) => k !== '__metadata__');
    expect(entries.every(([, v]) => v.dtype === 'F16')).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, 'x2_f16.json'), 'utf8')).weights.dtype).toBe('float16');
    const original = readCheckpointContents(readFileSync(src)).stateDict;
    const half = readCheckpointContents(readFileSync(out)).stateDict;
    for (const [key, t] of original) {
      const a = toFloat64(t);
      const b = toFloat64(half.get(key)!);
      // float16 has an 11-bit significand: relative error ≤ 2^-11 (absolute near zero, subnormals).
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i]), key).toBeLessThanOrEqual(Math.abs(a[i]) * 2 ** -11 + 2 ** -24);
    }
    const json = JSON.parse((await cli('inspect', out, '--json')).stdout);
    expect(json).toMatchObject({ format: 'safetensors', architecture: 'MSRResNet', scale: 2, loads: true });
  });

  it('writes nothing for hostile or unknown checkpoints', async () => {
    const evil = join(dir, 'evil.safetensors');
    expectCleanFailure(await cli('convert', FIXTURE('weights/evil_os_system.pth'), '-o', evil), /CHECKPOINT_UNSAFE/, 1);
    const unknown = join(dir, 'unknown.safetensors');
    expectCleanFailure(await cli('convert', FIXTURE('weights/zip_basic.pth'), '-o', unknown), /not a network we know/, 1);
    for (const p of [evil, unknown, join(dir, 'evil.json'), join(dir, 'unknown.json')]) expect(existsSync(p), p).toBe(false);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});
