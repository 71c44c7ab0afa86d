import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { namedParameters } from '../../src/layers/module';
import { networkFromStateDict } from '../../src/models/load';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { recogniseRRDBNet } from '../../src/models/rrdbnet';
import { recogniseSINSR, SINSR, SINSR_ARCH7, SINSR_CBAM, type SINSRConfig, sinsrFromStateDict } from '../../src/models/sinsr';
import type { StateDict } from '../../src/weights/state-dict';
import { readFixtureF32, readFixtureJson } from '../helpers/fixture-loader';
import { getTestContext } from '../helpers/gpu';
import { relL2 } from '../helpers/random';
import { type ManifestEntry, seededStateDict } from '../helpers/seeded-weights';

/**
 * The SINSR generator and its CBAM variant against our PyTorch definition (tools/torch/nets/sinsr.py) with seeded
 * weights (no trained weights exist); fixtures from tools/torch/make_rrdb_sinsr_fixtures.py. Inputs in [-1, 1].
 */
const DIR = 'test/fixtures/sinsr';

interface Fixture {
  architecture: string;
  config: SINSRConfig;
  sd: StateDict;
  inputShape: [number, number, number, number];
  outputShape: [number, number, number, number];
  input: Float32Array;
  output: Float32Array;
}

async function loadFixture(name: string): Promise<Fixture> {
  const meta = await readFixtureJson<{
    architecture: string;
    config: SINSRConfig;
    seed: number;
    manifest: ManifestEntry[];
    inputShape: Fixture['inputShape'];
    outputShape: Fixture['outputShape'];
  }>(`${DIR}/${name}.json`);
  return {
    architecture: meta.architecture,
    config: meta.config,
    sd: seededStateDict(meta.seed, meta.manifest),
    inputShape: meta.inputShape,
    outputShape: meta.outputShape,
    input: await readFixtureF32(`${DIR}/${name}.input.f32`),
    output: await readFixtureF32(`${DIR}/${name}.output.f32`),
  };
}

const FIXTURES = [
  'tiny', // first 6, F 8, growth 3: concatenation pieces with gaps; F/4 = 2
  'tiny_cbam',
  'arch7', // networks.md's architecture_7: 2,212,711 parameters
  'arch7_cbam',
];

describe('SINSR against PyTorch', () => {
  for (const name of FIXTURES) {
    it(
      name,
      async () => {
        const ctx = await getTestContext();
        const f = await loadFixture(name);
        expect(recogniseSINSR(f.sd)).toEqual(f.config);
        expect(recogniseRRDBNet(f.sd)).toBeNull();
        const network = sinsrFromStateDict(f.sd);
        expect(network.architecture).toBe(f.architecture);
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
    ); // first runs compile many pipelines: minutes on lavapipe with a cold shader cache
  }
});

describe('SINSR configuration, recognition and input errors', () => {
  it('has the parameter count networks.md gives for architecture_7', () => {
    const count = (c: SINSRConfig) => namedParameters(new SINSR(c)).reduce((s, [, p]) => s + p.shape.reduce((a, b) => a * b, 1), 0);
    expect(count(SINSR_ARCH7)).toBe(2_212_711);
    // CBAM adds per RDB: MLP 64·8 + 8 + 8·64 + 64, and a 2·49 spatial kernel; 5 RDBs × 6 RRDBs.
    expect(count(SINSR_CBAM) - count(SINSR_ARCH7)).toBe(30 * (64 * 8 + 8 + 8 * 64 + 64 + 98));
  });

  it('networkFromStateDict recognises SINSR and SINSR-CBAM state_dicts', async () => {
    for (const name of ['tiny', 'tiny_cbam']) {
      const f = await loadFixture(name);
      const network = networkFromStateDict(f.sd, undefined, name);
      expect(network).toBeInstanceOf(SINSR);
      expect(network.architecture).toBe(f.architecture);
      expect((network as SINSR).config).toEqual(f.config);
    }
  });

  it('returns null for keys of another network and throws for inconsistent ones', async () => {
    expect(recogniseSINSR(new Map([['model.0.weight', { shape: [64, 1, 3, 3] }]]))).toBeNull();
    const f = await loadFixture('tiny');
    const keys = new Map([...f.sd].map(([k, t]) => [k, { shape: [...t.shape] }]));
    const bad = new Map(keys);
    bad.set('branch2.0.rdbs.1.layers.1.conv.weight', { shape: [3, 10, 3, 3] });
    expect(() => recogniseSINSR(bad)).toThrow(InvalidInputError);
    expect(() => recogniseSINSR(bad)).toThrow(/branch2\.0\.rdbs\.1\.layers\.1\.conv\.weight.*\[3, 10, 3, 3\].*\[3, 11, 3, 3\]/);
    const missing = new Map(keys);
    missing.delete('branch4.0.conv_res.bias');
    expect(() => recogniseSINSR(missing)).toThrow(/branch4\.0\.conv_res\.bias' is missing/);
    const oddFeat = new Map(keys);
    oddFeat.set('branch1.0.conv_res.weight', { shape: [6, 6, 3, 3] });
    expect(() => recogniseSINSR(oddFeat)).toThrow(/multiple of 4/);
  });

  it('rejects a wrong channel count and an odd size', async () => {
    const ctx = await getTestContext();
    const f = await loadFixture('tiny');
    const model = new RestorationModel(ctx, sinsrFromStateDict(f.sd), 'tiny');
    await expect(model.runFloat({ width: 4, height: 4, channels: 1, data: new Float32Array(16) })).rejects.toBeInstanceOf(
      InvalidInputError,
    );
    await expect(model.runFloat({ width: 5, height: 4, channels: 3, data: new Float32Array(60) })).rejects.toThrow(/even height and width/);
    model.dispose();
  });
});
