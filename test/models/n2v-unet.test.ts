import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { Graph } from '../../src/gpu/graph';
import { ForwardBuilder } from '../../src/layers/forward-builder';
import { loadStateDict, namedParameters } from '../../src/layers/module';
import { networkFromStateDict } from '../../src/models/load';
import { N2VUNet, type N2VUNetConfig, n2vUNetConfig, recogniseN2VUNet } from '../../src/models/n2v-unet';
import { recogniseStateDict } from '../../src/models/registry';
import { recogniseResNet34UNet } from '../../src/models/resnet34-unet';
import { recogniseUNet } from '../../src/models/unet';
import { RestorationModel } from '../../src/runtime/restoration-model';
import type { StateDict } from '../../src/weights/state-dict';
import { readPth } from '../../src/weights/pth';
import { readFixtureBytes, readFixtureF32, readFixtureJson } from '../helpers/fixture-loader';
import { getTestContext } from '../helpers/gpu';
import { relL2 } from '../helpers/random';
import { type ManifestEntry, seededStateDict } from '../helpers/seeded-weights';

/*
 * CAREamics' N2V and N2V2 U-Nets against PyTorch 1.13 (tools/torch/make_n2v_unet_fixtures.py, network
 * tools/torch/n2v_unet.py, itself checked against CAREamics' own modules): width-8 networks from real torch.save
 * state_dicts (N2V also without BatchNorm and with the residual, which leave the keys as they are) and the
 * CAREamics defaults (width 32) from seeded weights, at sizes that are multiples of 4 and sizes that are not
 * (replicate-padded, then cropped).
 */

interface N2VFixture {
  name: string;
  config: N2VUNetConfig;
  checkpoint?: string;
  inputShape: [number, number, number, number];
  outputShape: [number, number, number, number];
  sensitivity: number;
  weights: StateDict;
  input: Float32Array;
  output: Float32Array;
}

const DIR = 'test/fixtures/n2v-unet/';

async function loadFixture(name: string): Promise<N2VFixture> {
  const meta = await readFixtureJson<Omit<N2VFixture, 'weights' | 'input' | 'output'> & { seed: number; manifest?: ManifestEntry[] }>(
    `${DIR}${name}.json`,
  );
  const weights = meta.checkpoint
    ? readPth(await readFixtureBytes(`${DIR}${meta.checkpoint}`), { name: meta.checkpoint })
    : seededStateDict(meta.seed, meta.manifest!);
  return {
    ...meta,
    name,
    weights,
    input: await readFixtureF32(`${DIR}${name}.input.f32`),
    output: await readFixtureF32(`${DIR}${name}.output.f32`),
  };
}

const FIXTURES = [
  'n2v_tiny_gray_20x28',
  'n2v_tiny_gray_23x37',
  'n2v_tiny_gray_20x28_nobn',
  'n2v_tiny_gray_12x16_residual',
  'n2v2_tiny_gray_20x28',
  'n2v2_tiny_gray_23x37',
  'n2v_full_gray_20x28',
  'n2v2_full_rgb_30x22',
];

const keyShapes = (sd: StateDict) => new Map([...sd].map(([k, t]) => [k, { shape: [...t.shape] }]));

// The first case compiles most of the network's pipelines: long on lavapipe when Mesa's cache is cold.
const FIRST_RUN_TIMEOUT_MS = 600_000;

describe('CAREamics N2V / N2V2 U-Net against PyTorch', () => {
  for (const name of FIXTURES) {
    it(
      name,
      async () => {
        const f = await loadFixture(name);
        // The keys give everything but BatchNorm use, the residual and the size policy, which they cannot show.
        const { useBatchNorm, residual, sizePolicy, ...visible } = f.config;
        expect(recogniseN2VUNet(f.weights)).toEqual({ ...n2vUNetConfig(1, 1), ...visible });
        const network = new N2VUNet(f.config);
        loadStateDict(network, f.weights);
        const model = new RestorationModel(await getTestContext(), network, name);
        const [, c, h, w] = f.inputShape;
        const { image } = await model.runFloat({ width: w, height: h, channels: c, data: f.input });
        model.dispose();
        expect([image.channels, image.height, image.width]).toEqual(f.outputShape.slice(1));
        const err = relL2(image.data, f.output);
        console.log(`${name}: relative L2 vs PyTorch ${err.toExponential(2)} (input sensitivity ${f.sensitivity})`);
        expect(err).toBeLessThanOrEqual(1e-4);
      },
      FIRST_RUN_TIMEOUT_MS,
    );
  }
});

describe('CAREamics U-Net checkpoints', () => {
  it('are recognised from their keys, N2V and N2V2 apart, and claim no other network', async () => {
    const n2v = await loadFixture('n2v_tiny_gray_20x28');
    const n2v2 = await loadFixture('n2v2_tiny_gray_20x28');
    expect(recogniseStateDict(n2v.weights).architecture.name).toBe('N2VUNet');
    expect(recogniseN2VUNet(n2v.weights)).toMatchObject({ n2v2: false, depth: 2, numChannelsInit: 8, inChannels: 1, outChannels: 1 });
    expect(recogniseN2VUNet(n2v2.weights)).toMatchObject({ n2v2: true, depth: 2, numChannelsInit: 8 });
    // The other U-Nets' recognisers leave these keys alone, and this one leaves theirs.
    expect(recogniseUNet(n2v.weights)).toBeNull();
    expect(recogniseResNet34UNet(n2v.weights)).toBeNull();
    expect(recogniseN2VUNet(new Map([['inc.double_conv.0.weight', { shape: [4, 1, 3, 3] }]]))).toBeNull();
    expect(recogniseN2VUNet(new Map([['encoder.conv1.weight', { shape: [64, 3, 7, 7] }]]))).toBeNull();
    expect(recogniseN2VUNet(new Map([['decoder.blocks.0.conv1.0.weight', { shape: [256, 768, 3, 3] }]]))).toBeNull();
  });

  it('the default CAREamics configuration has the documented keys and shapes', () => {
    const shapes = Object.fromEntries(namedParameters(new N2VUNet(n2vUNetConfig(1, 1))).map(([k, p]) => [k, p.shape]));
    expect(Object.keys(shapes)).toHaveLength(62); // + 10 num_batches_tracked = PyTorch's 72 entries
    expect(shapes['encoder.encoder_blocks.0.conv1.weight']).toEqual([32, 1, 3, 3]);
    expect(shapes['encoder.encoder_blocks.2.conv2.weight']).toEqual([64, 64, 3, 3]);
    expect(shapes['decoder.bottleneck.conv1.weight']).toEqual([128, 64, 3, 3]);
    expect(shapes['decoder.bottleneck.batch_norm1.running_var']).toEqual([128]);
    expect(shapes['decoder.decoder_blocks.1.conv1.weight']).toEqual([64, 128, 3, 3]);
    expect(shapes['decoder.decoder_blocks.3.conv1.weight']).toEqual([32, 64, 3, 3]);
    expect(shapes['final_conv.weight']).toEqual([1, 32, 1, 1]);
    const n2v2 = Object.fromEntries(namedParameters(new N2VUNet(n2vUNetConfig(1, 1, { n2v2: true }))).map(([k, p]) => [k, p.shape]));
    expect(n2v2['decoder.decoder_blocks.3.conv1.weight']).toEqual([32, 32, 3, 3]);
  });

  it('throws InvalidInputError for CAREamics-like weights that do not fit', async () => {
    const keys = keyShapes((await loadFixture('n2v_tiny_gray_20x28')).weights);

    const missing = new Map(keys);
    missing.delete('decoder.decoder_blocks.1.batch_norm2.running_var');
    expect(() => recogniseN2VUNet(missing)).toThrow(/decoder\.decoder_blocks\.1\.batch_norm2\.running_var' is missing/);

    const reshaped = new Map(keys);
    reshaped.set('decoder.bottleneck.conv2.weight', { shape: [16, 31, 3, 3] });
    expect(() => recogniseN2VUNet(reshaped)).toThrow(/bottleneck\.conv2\.weight' has shape \[16, 31, 3, 3\], expected \[16, 32, 3, 3\]/);

    const extra = new Map(keys);
    extra.set('encoder.encoder_blocks.1.kernel', { shape: [3, 3] });
    expect(() => recogniseN2VUNet(extra)).toThrow(/'encoder\.encoder_blocks\.1\.kernel' is unexpected/);

    const headless = new Map(keys);
    headless.delete('final_conv.weight');
    expect(() => recogniseN2VUNet(headless)).toThrow(InvalidInputError);
  });

  it('refuses channel groups (independent_channels with 3 channels) with a message that says so', () => {
    // CAREamics' UNet(in_channels=3, independent_channels=True): widths ×3, every convolution grouped.
    const grouped = keyShapes(new Map());
    const plain = new N2VUNet(n2vUNetConfig(1, 3, { numChannelsInit: 8 }));
    for (const [k, p] of namedParameters(plain)) {
      grouped.set(k, { shape: p.shape.length === 4 ? [p.shape[0] * 3, ...p.shape.slice(1)] : [p.shape[0] * 3] });
    }
    grouped.set('final_conv.weight', { shape: [3, 8, 1, 1] });
    expect(() => recogniseN2VUNet(grouped)).toThrow(/independent_channels with several channels is not supported/);
  });

  it('loads through the registry with an explicit configuration (BatchNorm off)', async () => {
    const f = await loadFixture('n2v_tiny_gray_20x28_nobn');
    const network = networkFromStateDict(f.weights, { architecture: 'N2VUNet', config: f.config });
    expect(network).toBeInstanceOf(N2VUNet);
    expect((network as N2VUNet).config.useBatchNorm).toBe(false);
    network.release();
  });
});

describe('CAREamics U-Net inputs', () => {
  it('rejects sizes that are not multiples of 2^depth under the strict policy, and a wrong channel count', async () => {
    const ctx = await getTestContext();
    const g = new Graph();
    const b = new ForwardBuilder(ctx, g);
    const strict = new N2VUNet(n2vUNetConfig(1, 1, { numChannelsInit: 8, sizePolicy: 'strict' }));
    expect(() => strict.forward(b, g.input([1, 22, 20, 1]))).toThrow(/multiples of 4, got 20×22; pad the image to 20×24/);
    expect(() => strict.forward(b, g.input([1, 20, 20, 3]))).toThrow(/expects 1 image channel\(s\), got 3/);
  });

  it('rejects impossible configurations', () => {
    expect(() => new N2VUNet(n2vUNetConfig(0, 1))).toThrow(InvalidInputError);
    expect(() => new N2VUNet(n2vUNetConfig(1, 1, { depth: 0 }))).toThrow(InvalidInputError);
    expect(() => new N2VUNet(n2vUNetConfig(1, 2, { residual: true }))).toThrow(/residual connection needs as many output channels/);
    expect(() => new N2VUNet(n2vUNetConfig(1, 1, { sizePolicy: 'crop' as 'pad' }))).toThrow(/sizePolicy/);
  });
});
