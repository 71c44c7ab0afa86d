import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/errors';
import { archScale, lossFrom, networkFromArch, TRAINABLE_ARCHS } from '../../src/cli/train-options';
import { namedParameters, untrainableKinds } from '../../src/layers/module';
import type { Network } from '../../src/models/network';

describe('train --loss', () => {
  it('reads one loss, with mse the default and masked-mse the default with --masks', () => {
    expect(lossFrom({})).toEqual({ kind: 'mse' });
    expect(lossFrom({ loss: 'l1' })).toEqual({ kind: 'l1' });
    expect(lossFrom({ masks: 'm', lambda: '2' })).toEqual({ kind: 'masked-mse', lambda: 2 });
  });

  it('reads a weighted sum with criteria and variants', () => {
    expect(lossFrom({ loss: 'l1+0.1*sobel+0.05*laplacian:mse+1e-4*tv:squared+0.5*ssim' })).toEqual({
      kind: 'sum',
      terms: [
        { kind: 'l1' },
        { kind: 'sobel', weight: 0.1 },
        { kind: 'laplacian', criterion: 'mse', weight: 0.05 },
        { kind: 'tv', variant: 'squared', weight: 1e-4 },
        { kind: 'ssim', weight: 0.5 },
      ],
    });
    expect(lossFrom({ loss: 'masked-mse + 0.2*sobel', masks: 'm', lambda: '3' })).toEqual({
      kind: 'sum',
      terms: [
        { kind: 'masked-mse', lambda: 3 },
        { kind: 'sobel', weight: 0.2 },
      ],
    });
  });

  it('names what it cannot read', () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ loss: 'l2' }, /--loss/],
      [{ loss: 'l1+x*sobel' }, /--loss weight needs a number/],
      [{ loss: 'l1:mse' }, /l1 takes no ':mse'/],
      [{ loss: 'sobel:huber' }, /--loss sobel:/],
      [{ loss: 'tv' }, /regulariser/],
      [{ loss: 'l1+' }, /cannot read ''/],
      [{ loss: 'l1', lambda: '2' }, /--lambda weighs the defects/],
      [{ loss: 'l1', masks: 'm', lambda: '2' }, /--loss masked-mse and --masks DIR go together/],
    ];
    for (const [values, message] of bad) {
      expect(() => lossFrom(values), JSON.stringify(values)).toThrow(UsageError);
      expect(() => lossFrom(values), JSON.stringify(values)).toThrow(message);
    }
  });
});

describe('train --arch', () => {
  const count = (model: Network) => namedParameters(model).reduce((n, [, p]) => n + p.shape.reduce((a, b) => a * b, 1), 0);

  it('builds every trainable architecture, every layer of it trainable', () => {
    const expected: Record<string, { architecture: RegExp; scale: number; valueRange?: 'symmetric' }> = {
      dncnn: { architecture: /^DnCNN/, scale: 1 },
      unet: { architecture: /^UNet/, scale: 1 },
      'resunet-scse': { architecture: /ResNet34/, scale: 1 },
      scunet: { architecture: /^SCUNet/, scale: 1 },
      msrresnet: { architecture: /^MSRResNet/, scale: 4 },
      srresnet: { architecture: /^SRResNet/, scale: 4 },
      rrdbnet: { architecture: /^RRDBNet/, scale: 4 },
      sinsr: { architecture: /^SINSR$/, scale: 4, valueRange: 'symmetric' },
      'sinsr-cbam': { architecture: /^SINSR-CBAM$/, scale: 4, valueRange: 'symmetric' },
    };
    expect([...TRAINABLE_ARCHS].sort()).toEqual(Object.keys(expected).sort());
    for (const arch of TRAINABLE_ARCHS) {
      const model = networkFromArch(arch, 1, undefined, 0);
      expect(model.architecture, arch).toMatch(expected[arch].architecture);
      expect([model.inChannels, model.outChannels, model.scale], arch).toEqual([1, 1, expected[arch].scale]);
      expect(model.valueRange === 'symmetric' ? 'symmetric' : undefined, arch).toBe(expected[arch].valueRange);
      expect(untrainableKinds(model), arch).toEqual([]);
      model.release();
    }
  });

  it("has the upstream widths: BasicSR's MSRResNet ×4 (1,517,571 parameters) and ESRGAN's RRDBNet (16,697,987)", () => {
    // Counted from the papers' layer lists for 3-channel images.
    expect(count(networkFromArch('msrresnet', 3, undefined, 0))).toBe(1_517_571);
    expect(count(networkFromArch('rrdbnet', 3, '4', 0))).toBe(16_697_987);
  });

  it('takes --scale for super-resolution networks only, within the scales each is built for', () => {
    expect(networkFromArch('msrresnet', 1, '2', 0).scale).toBe(2);
    expect(networkFromArch('srresnet', 1, '8', 0).scale).toBe(8);
    expect(archScale('rrdbnet', '1')).toBe(1);
    expect(archScale('sinsr', undefined)).toBe(4);
    expect(() => archScale('dncnn', '2')).toThrow(/--scale is for the super-resolution networks .*; dncnn is a denoiser/);
    expect(() => archScale('sinsr', '2')).toThrow(/--arch sinsr is built for ×4, not ×2/);
    expect(() => archScale('msrresnet', '8')).toThrow(/built for ×2, ×3, ×4, not ×8/);
    expect(() => networkFromArch('edsr', 1, undefined, 0)).toThrow(/--arch must be one of dncnn, unet, .*sinsr-cbam, got 'edsr'/);
  });

  it('initialises from the seed', () => {
    const weights = (seed: number) => namedParameters(networkFromArch('msrresnet', 1, '2', seed)).map(([, p]) => p.data![0]);
    expect(weights(3)).toEqual(weights(3));
    expect(weights(3)).not.toEqual(weights(4));
  });
});
