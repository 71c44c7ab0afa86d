import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { loadStateDict } from '../../src/layers/module';
import { recogniseResNet34UNet, ResNet34UNet, type ResNet34UNetConfig } from '../../src/models/resnet34-unet';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { getTestContext } from '../helpers/gpu';
import { relL2 } from '../helpers/random';
import { loadUNetFixture, RESNET34_UNET_FIXTURES } from '../helpers/unet-fixtures';

async function modelFor(name: string, config: Partial<ResNet34UNetConfig> = {}) {
  const f = await loadUNetFixture<ResNet34UNetConfig>(name);
  const network = new ResNet34UNet({ ...f.config, ...config });
  loadStateDict(network, f.weights);
  return { f, model: new RestorationModel(await getTestContext(), network, name) };
}

const shapesOf = (sd: Map<string, { shape: number[] }>) => new Map([...sd].map(([k, t]) => [k, { shape: [...t.shape] }]));

// The first case compiles most of the network's pipelines: tens of seconds each on lavapipe when Mesa's cache is cold.
const FIRST_RUN_TIMEOUT_MS = 600_000;

describe('smp U-Net (ResNet34 encoder) against PyTorch', () => {
  for (const name of RESNET34_UNET_FIXTURES) {
    it(
      name,
      async () => {
        const f = await loadUNetFixture<ResNet34UNetConfig>(name);
        // Everything but what weights cannot show (sigmoid, padding) comes from the keys; those take defaults.
        expect(recogniseResNet34UNet(f.weights)).toEqual({ ...f.config, sigmoid: false, padMode: 'replicate', sizePolicy: 'pad' });
        const network = new ResNet34UNet(f.config);
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

describe('smp U-Net weights', () => {
  it('has the 338 keys of smp.Unet(resnet34, scse), the unused attention1 of the last block included', async () => {
    const f = await loadUNetFixture<ResNet34UNetConfig>('r34_scse_rgb_96x128');
    expect(f.weights.size).toBe(338);
    expect(f.weights.has('decoder.blocks.4.attention1.attention.cSE.1.weight')).toBe(true);
    const copy = new Map(f.weights);
    copy.delete('decoder.blocks.4.attention1.attention.sSE.0.bias');
    expect(() => recogniseResNet34UNet(copy)).toThrow(/decoder\.blocks\.4\.attention1\.attention\.sSE\.0\.bias' is missing/);
  });

  it('returns null for weights of another network', () => {
    expect(recogniseResNet34UNet(new Map([['model.0.weight', { shape: [64, 1, 3, 3] }]]))).toBeNull();
    expect(recogniseResNet34UNet(new Map([['inc.double_conv.0.weight', { shape: [64, 1, 3, 3] }]]))).toBeNull();
    // A bare torchvision ResNet, or smp's FPN (same encoder and head, another decoder), is not this U-Net.
    expect(recogniseResNet34UNet(new Map([['encoder.conv1.weight', { shape: [64, 3, 7, 7] }]]))).toBeNull();
    const fpn = new Map([
      ['encoder.conv1.weight', { shape: [64, 3, 7, 7] }],
      ['decoder.p5.weight', { shape: [256, 512, 1, 1] }],
      ['segmentation_head.0.weight', { shape: [1, 128, 3, 3] }],
    ]);
    expect(recogniseResNet34UNet(fpn)).toBeNull();
  });

  it('throws InvalidInputError for smp-like weights that do not fit', async () => {
    const f = await loadUNetFixture<ResNet34UNetConfig>('r34_plain_rgb_40x52_zeros');
    const keys = shapesOf(f.weights);

    const reshaped = new Map(keys);
    reshaped.set('decoder.blocks.1.conv2.0.weight', { shape: [64, 32, 3, 3] });
    expect(() => recogniseResNet34UNet(reshaped)).toThrow(InvalidInputError);
    expect(() => recogniseResNet34UNet(reshaped)).toThrow(
      /decoder\.blocks\.1\.conv2\.0\.weight' has shape \[64, 32, 3, 3\], expected \[64, 64, 3, 3\]/,
    );

    const bottleneck = new Map(keys);
    bottleneck.set('encoder.layer1.0.conv3.weight', { shape: [256, 64, 1, 1] });
    expect(() => recogniseResNet34UNet(bottleneck)).toThrow(/Bottleneck ResNet encoder/);

    const resnet18 = new Map([...keys].filter(([k]) => !k.startsWith('encoder.layer1.2.')));
    expect(() => recogniseResNet34UNet(resnet18)).toThrow(/\[2, 4, 6, 3\] blocks per stage/);

    const headless = new Map(keys);
    headless.delete('segmentation_head.0.weight');
    expect(() => recogniseResNet34UNet(headless)).toThrow(/lack a 4-D 'segmentation_head\.0\.weight'/);

    const otherEncoder = new Map([...keys].filter(([k]) => !k.startsWith('encoder.')));
    otherEncoder.set('encoder._conv_stem.weight', { shape: [32, 3, 3, 3] });
    expect(() => recogniseResNet34UNet(otherEncoder)).toThrow(/encoder is not a ResNet/);

    const extra = new Map(keys);
    extra.set('encoder.fc.weight', { shape: [1000, 512] });
    expect(() => recogniseResNet34UNet(extra)).toThrow(/'encoder\.fc\.weight' is unexpected/);
  });
});

describe('smp U-Net input errors', () => {
  it('rejects an image with the wrong channel count', async () => {
    const { model } = await modelFor('r34_scse_gray_sigmoid_70x90');
    const rgb = { width: 32, height: 32, channels: 3, data: new Float32Array(3 * 1024) };
    await expect(model.runFloat(rgb)).rejects.toBeInstanceOf(InvalidInputError);
    await expect(model.runFloat(rgb)).rejects.toThrow(/grayscale.*1 channel.*RGB \(3 channels\)/);
    model.dispose();
  });

  it('strict sizes reject what is not a multiple of 32, as smp 0.3 does', async () => {
    const { f, model } = await modelFor('r34_scse_gray_sigmoid_70x90', { sizePolicy: 'strict' });
    const image = { width: 90, height: 70, channels: 1, data: f.input };
    await expect(model.runFloat(image)).rejects.toBeInstanceOf(InvalidInputError);
    await expect(model.runFloat(image)).rejects.toThrow(/multiples of 32, got 90×70; pad the image to 96×96/);
    model.dispose();
  });

  it('reflect padding rejects images smaller than the padding it needs', async () => {
    const { model } = await modelFor('r34_plain_rgb_40x52_zeros', { padMode: 'reflect' });
    const tiny = { width: 8, height: 8, channels: 3, data: new Float32Array(3 * 64) };
    await expect(model.runFloat(tiny)).rejects.toBeInstanceOf(InvalidInputError);
    model.dispose();
  });

  it('rejects invalid configurations', () => {
    const base: ResNet34UNetConfig = {
      inChannels: 3,
      outChannels: 1,
      decoderChannels: [256, 128, 64, 32, 16],
      attention: 'scse',
      sigmoid: false,
      sizePolicy: 'pad',
      padMode: 'replicate',
    };
    expect(() => new ResNet34UNet({ ...base, inChannels: 0 })).toThrow(InvalidInputError);
    expect(() => new ResNet34UNet({ ...base, decoderChannels: [256, 128, 64, 32] })).toThrow(/needs 5 decoder channel counts/);
    expect(() => new ResNet34UNet({ ...base, decoderChannels: [256, 128, 64, 32, 8] })).toThrow(/SCSE on 8 channels/);
    expect(() => new ResNet34UNet({ ...base, sizePolicy: 'crop' as 'pad' })).toThrow(/unknown sizePolicy/);
  });
});
