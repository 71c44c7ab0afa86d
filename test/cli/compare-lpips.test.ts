/**
 * `compare --lpips BACKBONE.pth,HEADS.pth`: the LPIPS distance beside PSNR and SSIM, against the lpips package's
 * definition in PyTorch 1.13 (tools/torch/perceptual_fixtures.py: a reduced vgg16 with random seeded weights).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RasterImage } from '../../src/io/image';
import { readFixtureJson } from '../helpers/fixture-loader';
import { cli, expectCleanFailure, expectSuccess, FIXTURE, requireBuiltCli, tempDir, writePng } from './helpers';

let dir: string;
let removeDir: () => void;

beforeAll(() => {
  requireBuiltCli();
  ({ path: dir, remove: removeDir } = tempDir());
});

afterAll(() => removeDir?.());

interface CliFixture {
  cli: { width: number; height: number; a: number[]; b: number[]; distance: number };
}

const BACKBONE = FIXTURE('perceptual/vgg16.pth');
const HEADS = FIXTURE('perceptual/lpips-vgg.pth');

async function pair(): Promise<{ a: string; b: string; distance: number }> {
  const { cli: fx } = await readFixtureJson<CliFixture>('test/fixtures/perceptual/fixtures.json');
  const img = (data: number[]): RasterImage => ({
    width: fx.width,
    height: fx.height,
    channels: 3,
    bitDepth: 8,
    data: Uint8Array.from(data),
  });
  return { a: writePng(join(dir, 'lpips-a.png'), img(fx.a)), b: writePng(join(dir, 'lpips-b.png'), img(fx.b)), distance: fx.distance };
}

describe('webgpu-restore compare --lpips', () => {
  it('prints the LPIPS distance beside PSNR and SSIM, and in --json', async () => {
    const { a, b, distance } = await pair();
    const text = await cli('compare', a, b, '--lpips', `${BACKBONE},${HEADS}`);
    expectSuccess(text);
    expect(text.stdout).toMatch(/^PSNR: \d+\.\d{4} dB$/m);
    expect(text.stdout).toMatch(/^SSIM: \d\.\d{6}$/m);
    const shown = /^LPIPS \(vgg16\): (\d\.\d{6})$/m.exec(text.stdout);
    expect(shown, text.stdout).not.toBeNull();
    expect(Math.abs(Number(shown![1]) - distance)).toBeLessThan(2e-6);

    const r = JSON.parse((await cli('compare', a, b, '--json', '--lpips', `${BACKBONE},${HEADS}`)).stdout);
    expect(r.lpipsBackbone).toBe('vgg16');
    expect(Math.abs(r.lpips - distance) / distance).toBeLessThan(1e-4);
    // Without the option nothing changes.
    const plain = JSON.parse((await cli('compare', a, b, '--json')).stdout);
    expect(plain.lpips).toBeUndefined();
    expect(plain.psnr).toBe(r.psnr);
  });

  it('bad --lpips values, wrong files and too small images fail cleanly', async () => {
    const { a, b } = await pair();
    expectCleanFailure(await cli('compare', a, b, '--lpips', BACKBONE), /two files separated by a comma/, 2);
    // The heads given as the backbone and the other way round: the missing key is named.
    expectCleanFailure(await cli('compare', a, b, '--lpips', `${HEADS},${BACKBONE}`), /MISSING_KEY.*features\.0\.weight/, 1);
    expectCleanFailure(await cli('compare', a, b, '--lpips', `${BACKBONE},${BACKBONE}`), /MISSING_KEY.*lin0\.model\.1\.weight/, 1);
    expectCleanFailure(await cli('compare', a, b, '--lpips', `${BACKBONE},${join(dir, 'missing.pth')}`), /cannot read/, 1);
    const tiny: RasterImage = { width: 12, height: 20, channels: 3, bitDepth: 8, data: new Uint8Array(12 * 20 * 3).fill(9) };
    const t1 = writePng(join(dir, 'tiny-1.png'), tiny);
    const t2 = writePng(join(dir, 'tiny-2.png'), { ...tiny, data: tiny.data.map((v) => v + 3) });
    expectCleanFailure(await cli('compare', t1, t2, '--lpips', `${BACKBONE},${HEADS}`), /INVALID_INPUT.*too small for layer relu5_3/, 1);
  });
});
