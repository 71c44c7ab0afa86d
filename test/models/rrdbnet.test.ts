import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { networkFromCheckpoint } from '../../src/models/load';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { type RRDBNetConfig, RRDBNet, recogniseRRDBNet, rrdbNetFromStateDict } from '../../src/models/rrdbnet';
import { canonicaliseRRDBNetKeys, detectRRDBNetKeyScheme, type RRDBNetKeyScheme, toBasicSRKey } from '../../src/models/rrdbnet-keys';
import { recogniseSINSR } from '../../src/models/sinsr';
import { readPth } from '../../src/weights/pth';
import type { StateDict } from '../../src/weights/state-dict';
import { readFixtureBytes, readFixtureF32, readFixtureJson } from '../helpers/fixture-loader';
import { getTestContext } from '../helpers/gpu';
import { relL2 } from '../helpers/random';
import { type ManifestEntry, seededStateDict } from '../helpers/seeded-weights';

/** Fixtures from tools/torch/make_rrdb_sinsr_fixtures.py (PyTorch 1.13, our own definitions in tools/torch/nets). */
const DIR = 'test/fixtures/rrdbnet';

interface Fixture {
  name: string;
  config: RRDBNetConfig;
  keyScheme: RRDBNetKeyScheme;
  sd: StateDict;
  inputShape: [number, number, number, number];
  outputShape: [number, number, number, number];
  input: Float32Array;
  output: Float32Array;
}

async function loadFixture(name: string): Promise<Fixture> {
  const meta = await readFixtureJson<{
    config: RRDBNetConfig;
    keyScheme: RRDBNetKeyScheme;
    checkpoint?: string;
    seed?: number;
    manifest?: ManifestEntry[];
    inputShape: Fixture['inputShape'];
    outputShape: Fixture['outputShape'];
  }>(`${DIR}/${name}.json`);
  const sd = meta.checkpoint
    ? readPth(await readFixtureBytes(`${DIR}/${meta.checkpoint}`), { name })
    : seededStateDict(meta.seed!, meta.manifest!);
  return {
    name,
    config: meta.config,
    keyScheme: meta.keyScheme,
    sd,
    inputShape: meta.inputShape,
    outputShape: meta.outputShape,
    input: await readFixtureF32(`${DIR}/${name}.input.f32`),
    output: await readFixtureF32(`${DIR}/${name}.output.f32`),
  };
}

const FIXTURES = [
  'tiny_x4_basicsr', // {'params': …}
  'tiny_x4_basicsr_ema', // {'params_ema': …, 'params': other weights}
  'tiny_x4_xinntao',
  'tiny_x4_old',
  'tiny_x2_basicsr_ema',
  'tiny_x1_basicsr',
  'odd_gray_x4_basicsr', // num_feat 6, num_grow_ch 3: concatenation pieces with gaps
  'full_esrgan_x4', // 64 / 32 / 23 blocks, seeded weights, LR 12×10
];

describe('RRDBNet against PyTorch', () => {
  for (const name of FIXTURES) {
    it(
      name,
      async () => {
        const ctx = await getTestContext();
        const f = await loadFixture(name);
        expect(recogniseRRDBNet(f.sd)).toEqual({ config: f.config, scheme: f.keyScheme });
        expect(recogniseSINSR(f.sd)).toBeNull();
        const network = rrdbNetFromStateDict(f.sd);
        expect(network.config).toEqual(f.config);
        const model = new RestorationModel(ctx, network, name);
        const [, c, h, w] = f.inputShape;
        const { image } = await model.runFloat({ width: w, height: h, channels: c, data: f.input });
        model.dispose();
        expect([1, image.channels, image.height, image.width]).toEqual(f.outputShape);
        const err = relL2(image.data, f.output);
        console.log(`${name}: relative L2 vs PyTorch ${err.toExponential(2)}`);
        expect(err).toBeLessThanOrEqual(1e-4);
      },
      600_000,
    ); // the full network's first run compiles its pipelines: minutes on lavapipe with a cold shader cache
  }
});

describe('RRDBNet key layouts', () => {
  it('maps xinntao and 2018 names onto BasicSR names', () => {
    expect(toBasicSRKey('RRDB_trunk.12.RDB3.conv5.bias', 'xinntao', 0)).toBe('body.12.rdb3.conv5.bias');
    expect(toBasicSRKey('trunk_conv.weight', 'xinntao', 0)).toBe('conv_body.weight');
    expect(toBasicSRKey('HRconv.bias', 'xinntao', 0)).toBe('conv_hr.bias');
    expect(toBasicSRKey('upconv2.weight', 'xinntao', 0)).toBe('conv_up2.weight');
    expect(toBasicSRKey('model.1.sub.22.RDB1.conv4.0.weight', 'old', 23)).toBe('body.22.rdb1.conv4.weight');
    expect(toBasicSRKey('model.1.sub.23.bias', 'old', 23)).toBe('conv_body.bias');
    expect(toBasicSRKey('model.0.weight', 'old', 23)).toBe('conv_first.weight');
    expect(toBasicSRKey('model.3.weight', 'old', 23)).toBe('conv_up1.weight');
    expect(toBasicSRKey('model.6.bias', 'old', 23)).toBe('conv_up2.bias');
    expect(toBasicSRKey('model.8.weight', 'old', 23)).toBe('conv_hr.weight');
    expect(toBasicSRKey('model.10.weight', 'old', 23)).toBe('conv_last.weight');
    // Unknown keys pass through, so that the strict load names them.
    expect(toBasicSRKey('model.5.weight', 'old', 23)).toBe('model.5.weight');
  });

  it('networkFromCheckpoint builds an RRDBNet from every layout (the 2018 one also has a DnCNN-like model.0.weight)', async () => {
    for (const name of ['tiny_x4_basicsr_ema', 'tiny_x4_xinntao', 'tiny_x4_old']) {
      const bytes = await readFixtureBytes(`${DIR}/${name}.pth`);
      const network = networkFromCheckpoint(bytes, { name });
      expect(network).toBeInstanceOf(RRDBNet);
      expect(network.scale).toBe(4);
    }
  });

  it('gives the same canonical state_dict for every layout of the same weights', async () => {
    const layouts = await Promise.all(['tiny_x4_basicsr', 'tiny_x4_xinntao', 'tiny_x4_old'].map(loadFixture));
    const canonical = layouts.map((f) => canonicaliseRRDBNetKeys(f.sd, detectRRDBNetKeyScheme(f.sd)!));
    const keys = [...canonical[0].keys()].sort();
    expect(keys.length).toBe(2 * (6 + 2 * 3 * 5)); // weight and bias of 6 single convs and 2 blocks × 3 RDBs × 5 convs
    for (const c of canonical.slice(1)) {
      expect([...c.keys()].sort()).toEqual(keys);
      for (const k of keys) expect(c.get(k)!.data).toEqual(canonical[0].get(k)!.data);
    }
  });
});

/** The keys and shapes of a state_dict, as recognisers see them. */
function shapesOf(sd: StateDict): Map<string, { shape: number[] }> {
  return new Map([...sd].map(([k, t]) => [k, { shape: [...t.shape] }]));
}

describe('RRDBNet recognition and input errors', () => {
  it('returns null for keys of another network', () => {
    const dncnn = new Map([
      ['model.0.weight', { shape: [64, 1, 3, 3] }],
      ['model.0.bias', { shape: [64] }],
    ]);
    expect(recogniseRRDBNet(dncnn)).toBeNull();
  });

  it('throws InvalidInputError for inconsistent shapes, missing blocks and impossible scales', async () => {
    const f = await loadFixture('tiny_x4_basicsr');
    const base = shapesOf(f.sd);
    const badConv = new Map(base);
    badConv.set('body.1.rdb2.conv3.weight', { shape: [4, 15, 3, 3] });
    expect(() => recogniseRRDBNet(badConv)).toThrow(InvalidInputError);
    expect(() => recogniseRRDBNet(badConv)).toThrow(/body\.1\.rdb2\.conv3\.weight.*\[4, 15, 3, 3\].*\[4, 16, 3, 3\]/);

    const gap = new Map([...base].filter(([k]) => !k.startsWith('body.0.')).map(([k, v]) => [k.replace(/^body\.1\./, 'body.3.'), v]));
    gap.set('body.0.rdb1.conv1.weight', base.get('body.0.rdb1.conv1.weight')!);
    expect(() => recogniseRRDBNet(gap)).toThrow(/blocks 1, 2 of 4 are missing/);

    const badScale = new Map(base);
    badScale.set('conv_first.weight', { shape: [8, 5, 3, 3] });
    expect(() => recogniseRRDBNet(badScale)).toThrow(/conv_first reads 5 channels/);

    const badOld = shapesOf((await loadFixture('tiny_x4_old')).sd);
    badOld.set('model.8.weight', { shape: [8, 8, 5, 5] });
    expect(() => recogniseRRDBNet(badOld)).toThrow(/conv_hr\.weight/);
  });

  it('rejects an image with the wrong channel count, and a size the ×2 unshuffle cannot divide', async () => {
    const ctx = await getTestContext();
    const f = await loadFixture('tiny_x4_basicsr');
    const model = new RestorationModel(ctx, rrdbNetFromStateDict(f.sd), 'tiny');
    const gray = { width: 5, height: 4, channels: 1, data: new Float32Array(20) };
    await expect(model.runFloat(gray)).rejects.toBeInstanceOf(InvalidInputError);
    await expect(model.runFloat(gray)).rejects.toThrow(/RGB.*grayscale/);
    model.dispose();

    const g = await loadFixture('tiny_x2_basicsr_ema');
    const x2 = new RestorationModel(ctx, rrdbNetFromStateDict(g.sd), 'tiny x2');
    const odd = { width: 5, height: 4, channels: 3, data: new Float32Array(60) };
    await expect(x2.runFloat(odd)).rejects.toThrow(/multiples of 2/);
    x2.dispose();
  });

  it('rejects impossible configurations', () => {
    expect(() => new RRDBNet({ inChannels: 3, outChannels: 3, numFeat: 8, numGrowCh: 4, numBlock: 1, scale: 3 as 4 })).toThrow(
      InvalidInputError,
    );
    expect(() => new RRDBNet({ inChannels: 0, outChannels: 3, numFeat: 8, numGrowCh: 4, numBlock: 1, scale: 4 })).toThrow(
      InvalidInputError,
    );
  });
});
