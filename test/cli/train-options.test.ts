import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/errors';
import { lpipsPaths } from '../../src/cli/lpips-option';
import { archScale, lossFrom, networkFromArch, TRAINABLE_ARCHS, vggFrom } from '../../src/cli/train-options';
import { progressLine } from '../../src/cli/train-outputs';
import { namedParameters, untrainableKinds } from '../../src/layers/module';
import type { Network } from '../../src/models/network';
import { alexnet, vgg } from '../../src/models/vgg';

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

describe('train --loss …perceptual --vgg', () => {
  // Only the layer names and the backbone matter to the flags: no weights are loaded.
  const vgg19 = vgg(19, { widths: [2, 2, 2, 2, 2] });
  const vgg16 = vgg(16, { widths: [2, 2, 2, 2, 2] });

  it('adds the perceptual term with the network of --vgg, its weight and criterion, and the layers after the last colon', () => {
    expect(lossFrom({ loss: 'l1+0.01*perceptual', vgg: 'v.pth' }, vgg19)).toEqual({
      kind: 'sum',
      terms: [{ kind: 'l1' }, { kind: 'perceptual', network: vgg19, weight: 0.01 }],
    });
    expect(lossFrom({ loss: 'perceptual:fro', vgg: 'v.pth:conv5_4=1,relu4_4=0.5' }, vgg19)).toEqual({
      kind: 'perceptual',
      network: vgg19,
      criterion: 'fro',
      layerWeights: { conv5_4: 1, relu4_4: 0.5 },
    });
    expect(lossFrom({ loss: 'mse+perceptual:l2', vgg: 'v16.pth:conv5_3' }, vgg16)).toEqual({
      kind: 'sum',
      terms: [{ kind: 'mse' }, { kind: 'perceptual', network: vgg16, criterion: 'l2', layerWeights: { conv5_3: 1 } }],
    });
  });

  it('reads --vgg: the file, and a layer list only where the text after the last colon is one', () => {
    const loss = 'l1+perceptual';
    expect(vggFrom({ loss, vgg: 'vgg19.pth' })).toEqual({ path: 'vgg19.pth' });
    expect(vggFrom({ loss, vgg: 'w/vgg19.pth:conv2_2=1' })).toEqual({ path: 'w/vgg19.pth', layerWeights: { conv2_2: 1 } });
    expect(vggFrom({ loss, vgg: 'C:\\w\\vgg19.pth' })).toEqual({ path: 'C:\\w\\vgg19.pth' });
    expect(vggFrom({ loss, vgg: 'C:\\w\\vgg19.pth:relu5_4= 2, conv1_1=0' })).toEqual({
      path: 'C:\\w\\vgg19.pth',
      layerWeights: { relu5_4: 2, conv1_1: 0 },
    });
    expect(vggFrom({ loss: 'l1' })).toBeUndefined();
  });

  it('names the flag: perceptual without --vgg, --vgg without perceptual, a layer the network lacks, bad weights', () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ loss: 'l1+0.1*perceptual' }, /--loss perceptual needs --vgg/],
      [{ loss: 'l1', vgg: 'v.pth' }, /--vgg is the network of the perceptual loss: add a term such as \+0\.01\*perceptual/],
      [{ vgg: 'v.pth' }, /--vgg is the network of the perceptual loss/],
      [{ loss: 'perceptual:mse', vgg: 'v.pth' }, /--loss perceptual: must be one of l1, l2, fro, got 'mse'/],
      [{ loss: 'perceptual', vgg: 'v.pth:conv5_4=x' }, /--vgg conv5_4 needs a number ≥ 0, got 'x'/],
      [{ loss: 'perceptual', vgg: 'v.pth:conv5_4=-1' }, /--vgg conv5_4 needs a number ≥ 0/],
      [{ loss: 'perceptual', vgg: 'v.pth:conv5_4,conv5_4=2' }, /--vgg names conv5_4 twice/],
      [{ loss: 'perceptual', vgg: ':conv5_4' }, /--vgg needs a file before ':conv5_4'/],
      [{ loss: 'perceptual', vgg: '' }, /--vgg needs a file/],
    ];
    for (const [values, message] of bad) {
      expect(() => vggFrom(values), JSON.stringify(values)).toThrow(UsageError);
      expect(() => vggFrom(values), JSON.stringify(values)).toThrow(message);
      expect(() => lossFrom(values, vgg19), JSON.stringify(values)).toThrow(message);
    }
    expect(() => lossFrom({ loss: 'perceptual', vgg: 'v.pth:conv5_4' }, vgg16)).toThrow(
      /--vgg: vgg16 has no layer 'conv5_4' \(its convolutions: conv1_1, .*conv5_3; relu/,
    );
    expect(() => lossFrom({ loss: 'perceptual', vgg: 'v.pth:conv9_1' }, vgg19)).toThrow(UsageError);
    expect(() => lossFrom({ loss: 'perceptual', vgg: 'a.pth' }, alexnet({ widths: [2, 2, 2, 2, 2] }))).toThrow(
      /--vgg holds alexnet weights; the perceptual loss needs torchvision's vgg19 or vgg16/,
    );
  });
});

describe('train --lpips', () => {
  it('takes BACKBONE.pth,HEADS.pth, naming the flag and the command otherwise', () => {
    expect(lpipsPaths('vgg16.pth, lpips-vgg.pth', 'train')).toEqual(['vgg16.pth', 'lpips-vgg.pth']);
    for (const bad of ['vgg16.pth', 'a,b,c', 'a,', ',b']) {
      expect(() => lpipsPaths(bad, 'train'), bad).toThrow(UsageError);
      expect(() => lpipsPaths(bad, 'train'), bad).toThrow(/--lpips takes two files separated by a comma \(BACKBONE.pth,HEADS.pth\)/);
    }
  });

  it('prints the validation LPIPS in the progress line when there is one', () => {
    const p = { step: 5, totalSteps: 10, epoch: 1, loss: 0.01, lr: 1e-3, etaSeconds: 3 };
    expect(progressLine({ ...p, validation: { psnr: 30.123, ssim: 0.88123, lpips: 0.123456 } })).toMatch(
      / val 30\.12 dB 0\.8812 lpips 0\.1235 eta 0m03s$/,
    );
    expect(progressLine({ ...p, validation: { psnr: 30.123, ssim: 0.88123 } })).not.toContain('lpips');
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
      'n2v-unet': { architecture: /^N2VUNet$/, scale: 1 },
      'n2v2-unet': { architecture: /^N2VUNet$/, scale: 1 },
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

  it("has CAREamics' N2V U-Net widths: 333,729 parameters (324,513 for N2V2) and 1,088 BatchNorm statistics", () => {
    // Counted in PyTorch from CAREamics' UNet(conv_dims=2, depth=2, num_channels_init=32, n2v2=False/True).
    expect(count(networkFromArch('n2v-unet', 1, undefined, 0))).toBe(333_729 + 1_088);
    expect(count(networkFromArch('n2v2-unet', 1, undefined, 0))).toBe(324_513 + 1_088);
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
