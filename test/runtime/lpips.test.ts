import { afterAll, describe, expect, it } from 'vitest';
import { InvalidInputError, StateDictError } from '../../src/errors';
import type { RasterImage } from '../../src/io/image';
import { Lpips, lpips } from '../../src/runtime/lpips';
import { readCheckpoint } from '../../src/weights/checkpoint';
import type { StateDict } from '../../src/weights/state-dict';
import { readFixtureBytes, readFixtureF32, readFixtureJson } from '../helpers/fixture-loader';
import { getTestContext } from '../helpers/gpu';

/*
 * LPIPS v0.1 (the `lpips` package's definition, restated in tools/torch/perceptual_fixtures.py) on reduced vgg16 and
 * alexnet backbones with random seeded weights read from torch.save .pth files, against PyTorch 1.13 in float64.
 */

const DIR = 'test/fixtures/perceptual';

interface Stored {
  shape: [number, number, number, number];
  offset: number;
}

interface Fixture {
  lpips: Record<'vgg16' | 'alexnet', { a: Stored; b: Stored; distance: number[] }>;
  cli: { width: number; height: number; a: number[]; b: number[]; distance: number };
}

const pth = async (file: string): Promise<StateDict> => readCheckpoint(await readFixtureBytes(`${DIR}/${file}`), { name: file });

const opened: Lpips[] = [];
afterAll(() => opened.forEach((m) => m.dispose()));

async function model(backbone: 'vgg16' | 'alexnet'): Promise<Lpips> {
  const m = Lpips.fromStateDicts(
    await getTestContext(),
    await pth(`${backbone}.pth`),
    await pth(backbone === 'vgg16' ? 'lpips-vgg.pth' : 'lpips-alex.pth'),
  );
  opened.push(m);
  return m;
}

describe('LPIPS equals the lpips package (v0.1) in PyTorch 1.13', () => {
  for (const backbone of ['vgg16', 'alexnet'] as const) {
    it(`${backbone}: the distance of each image pair`, async () => {
      const fx = await readFixtureJson<Fixture>(`${DIR}/fixtures.json`);
      const bin = await readFixtureF32(`${DIR}/fixtures.bin`);
      const batch = (s: Stored) => ({
        shape: s.shape,
        data: bin.subarray(s.offset / 4, s.offset / 4 + s.shape.reduce((x, y) => x * y, 1)),
      });
      const { a, b, distance } = fx.lpips[backbone];
      const m = await model(backbone);
      expect(m.backbone).toBe(backbone);
      const d = await m.distances(batch(a), batch(b));
      expect(d.length).toBe(distance.length);
      d.forEach((v, i) => expect(Math.abs(v - distance[i]) / distance[i]).toBeLessThan(1e-4));
      // A second run on the cached plan gives the same bits; identical images are at distance 0.
      expect(await m.distances(batch(a), batch(b))).toEqual(d);
      expect([...(await m.distances(batch(a), batch(a)))]).toEqual(distance.map(() => 0));
    }, 60_000);
  }

  it('8-bit images are read in [0, 1]; a gray image is an RGB one with equal channels', async () => {
    const fx = await readFixtureJson<Fixture>(`${DIR}/fixtures.json`);
    const { width, height, a, b, distance } = fx.cli;
    const img = (data: number[]): RasterImage => ({ width, height, channels: 3, bitDepth: 8, data: Uint8Array.from(data) });
    const m = await model('vgg16');
    expect(Math.abs((await lpips(m, img(a), img(b))) - distance) / distance).toBeLessThan(1e-4);
    const gray = (data: number[]): RasterImage => ({
      width,
      height,
      channels: 1,
      bitDepth: 8,
      data: Uint8Array.from(data.filter((_, i) => i % 3 === 0)),
    });
    const rgbOfGray = (data: number[]): RasterImage => img(data.map((_, i) => data[i - (i % 3)]));
    const fromGray = await lpips(m, gray(a), gray(b));
    expect(Math.abs(fromGray - (await lpips(m, rgbOfGray(a), rgbOfGray(b)))) / fromGray).toBeLessThan(1e-6);
  }, 60_000);
});

describe('LPIPS refuses bad input with a typed error', () => {
  it('wrong keys or shapes in either .pth name the key', async () => {
    const ctx = await getTestContext();
    const backbone = await pth('vgg16.pth');
    const heads = await pth('lpips-vgg.pth');
    const noHead = new Map(heads);
    noHead.delete('lin3.model.1.weight');
    expect(() => Lpips.fromStateDicts(ctx, backbone, noHead)).toThrow(StateDictError);
    expect(() => Lpips.fromStateDicts(ctx, backbone, noHead)).toThrow(/lin3\.model\.1\.weight/);
    const misshapen = new Map(heads);
    misshapen.set('lin0.model.1.weight', heads.get('lin1.model.1.weight')!);
    expect(() => Lpips.fromStateDicts(ctx, backbone, misshapen)).toThrow(/lin0\.model\.1\.weight/);
    const extra = new Map(heads);
    extra.set('lin5.model.1.weight', heads.get('lin1.model.1.weight')!);
    expect(() => Lpips.fromStateDicts(ctx, backbone, extra)).toThrow(/lin5\.model\.1\.weight/);
    const noConv = new Map(backbone);
    noConv.delete('features.28.weight');
    expect(() => Lpips.fromStateDicts(ctx, noConv, heads)).toThrow(StateDictError);
    // AlexNet heads on a VGG backbone: the widths do not match.
    const alexHeads = await pth('lpips-alex.pth');
    expect(() => Lpips.fromStateDicts(ctx, backbone, alexHeads)).toThrow(StateDictError);
    const vgg19 = await pth('vgg19.pth');
    expect(() => Lpips.fromStateDicts(ctx, vgg19, heads)).toThrow(/vgg19/);
  });

  it('images of different sizes, or too small for relu5_3', async () => {
    const m = await model('vgg16');
    const img = (width: number, height: number): RasterImage => ({
      width,
      height,
      channels: 3,
      bitDepth: 8,
      data: new Uint8Array(width * height * 3).fill(7),
    });
    await expect(lpips(m, img(20, 16), img(20, 17))).rejects.toThrow(InvalidInputError);
    await expect(lpips(m, img(20, 16), img(20, 17))).rejects.toThrow(/sizes differ/);
    await expect(lpips(m, img(20, 15), img(20, 15))).rejects.toThrow(/too small for layer relu5_3.*16×16/);
    await expect(
      m.distances({ shape: [1, 2, 16, 16], data: new Float32Array(512) }, { shape: [1, 2, 16, 16], data: new Float32Array(512) }),
    ).rejects.toThrow(InvalidInputError);
  });
});
