import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { Graph } from '../../src/gpu/graph';
import { ForwardBuilder } from '../../src/layers/forward-builder';
import { loadStateDict } from '../../src/layers/module';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { recogniseUNet, UNet, type UNetConfig } from '../../src/models/unet';
import { getTestContext } from '../helpers/gpu';
import { relL2 } from '../helpers/random';
import { loadUNetFixture, UNET_FIXTURES } from '../helpers/unet-fixtures';

async function modelFor(name: string, config?: Partial<UNetConfig>) {
  const f = await loadUNetFixture<UNetConfig>(name);
  const network = new UNet({ ...f.config, ...config });
  loadStateDict(network, f.weights);
  return { f, model: new RestorationModel(await getTestContext(), network, name) };
}

// The first case compiles most of the network's pipelines: tens of seconds each on lavapipe when Mesa's cache is cold.
const FIRST_RUN_TIMEOUT_MS = 600_000;

describe('milesial U-Net against PyTorch', () => {
  for (const name of UNET_FIXTURES) {
    it(
      name,
      async () => {
        const f = await loadUNetFixture<UNetConfig>(name);
        // The recogniser infers everything but the sigmoid, which leaves no trace in the weights.
        expect(recogniseUNet(f.weights)).toEqual({ ...f.config, sigmoid: false });
        const network = new UNet(f.config);
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

describe('milesial U-Net checkpoints', () => {
  it("drops milesial's mask_values list when reading the .pth, and tolerates it as a tensor", async () => {
    const f = await loadUNetFixture<UNetConfig>('unet_tiny_transposed_rgb_16x16');
    expect(f.weights.has('mask_values')).toBe(false); // a Python list: not a tensor, so readPth leaves it out
    f.weights.set('mask_values', { dtype: 'int64', shape: [2], data: new BigInt64Array([0n, 1n]) });
    expect(recogniseUNet(f.weights)).toEqual(f.config);
    expect(() => loadStateDict(new UNet(f.config), f.weights)).not.toThrow();
  });

  it('returns null for weights of another network', () => {
    const dncnn = new Map([
      ['model.0.weight', { shape: [64, 1, 3, 3] }],
      ['model.0.bias', { shape: [64] }],
    ]);
    expect(recogniseUNet(dncnn)).toBeNull();
    expect(recogniseUNet(new Map([['encoder.conv1.weight', { shape: [64, 3, 7, 7] }]]))).toBeNull();
  });

  it('throws InvalidInputError for U-Net-like weights that do not fit', async () => {
    const f = await loadUNetFixture<UNetConfig>('unet_tiny_bilinear_gray_23x37');
    const keys = new Map([...f.weights].map(([k, t]) => [k, { shape: [...t.shape] }]));

    const missing = new Map(keys);
    missing.delete('up3.conv.double_conv.4.running_var');
    expect(() => recogniseUNet(missing)).toThrow(InvalidInputError);
    expect(() => recogniseUNet(missing)).toThrow(/up3\.conv\.double_conv\.4\.running_var' is missing/);

    const reshaped = new Map(keys);
    reshaped.set('down2.maxpool_conv.1.double_conv.0.weight', { shape: [16, 9, 3, 3] });
    expect(() => recogniseUNet(reshaped)).toThrow(
      /down2\.maxpool_conv\.1\.double_conv\.0\.weight' has shape \[16, 9, 3, 3\], expected \[16, 8, 3, 3\]/,
    );

    const extra = new Map(keys);
    extra.set('up5.up.weight', { shape: [4, 2, 2, 2] });
    expect(() => recogniseUNet(extra)).toThrow(/'up5\.up\.weight' is unexpected/);

    const headless = new Map(keys);
    headless.delete('inc.double_conv.0.weight');
    expect(() => recogniseUNet(headless)).toThrow(InvalidInputError);
  });
});

describe('milesial U-Net input errors', () => {
  it('rejects an image with the wrong channel count', async () => {
    const { model } = await modelFor('unet_tiny_bilinear_gray_23x37');
    const rgb = { width: 20, height: 20, channels: 3, data: new Float32Array(3 * 400) };
    await expect(model.runFloat(rgb)).rejects.toBeInstanceOf(InvalidInputError);
    await expect(model.runFloat(rgb)).rejects.toThrow(/grayscale.*1 channel.*RGB \(3 channels\)/);
    model.dispose();
    // The network itself checks too, for callers that build graphs directly.
    const network = new UNet({ inChannels: 3, outChannels: 2, bilinear: false, baseChannels: 4, sigmoid: false });
    const ctx = await getTestContext();
    const g = new Graph();
    expect(() => network.forward(new ForwardBuilder(ctx, g), g.input([1, 32, 32, 1]))).toThrow(/expects 3 image channel\(s\), got 1/);
  });

  it('rejects images smaller than 16×16', async () => {
    const { model } = await modelFor('unet_tiny_transposed_rgb_16x16');
    const small = { width: 40, height: 15, channels: 3, data: new Float32Array(3 * 600) };
    await expect(model.runFloat(small)).rejects.toBeInstanceOf(InvalidInputError);
    await expect(model.runFloat(small)).rejects.toThrow(/at least 16×16.*got 40×15/);
    model.dispose();
  });

  it('rejects a configuration with no channels', () => {
    expect(() => new UNet({ inChannels: 0, outChannels: 1, bilinear: true, baseChannels: 4, sigmoid: false })).toThrow(InvalidInputError);
  });
});
