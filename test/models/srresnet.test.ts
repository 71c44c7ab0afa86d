import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { loadStateDict } from '../../src/layers/module';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { recogniseSRResNet, SRResNet, type SRResNetConfig } from '../../src/models/srresnet';
import { getTestContext } from '../helpers/gpu';
import { loadNetworkFixture, runNetworkFixture } from '../helpers/network-fixtures';
import { relL2 } from '../helpers/random';

const FOLDER = 'srresnet';
// Tiny real checkpoints (x4 with one shared PReLU slope per layer as upstream, x2 grayscale with per-channel
// slopes) and the full-size configuration (64 features, 16 blocks) with seeded weights. The seeded network's
// outputs are large, so its clamped output is 99.8 % exactly 0 or 1: the `_noclamp` cases (the same network
// with clampOutput false, PyTorch's forward without its final clamp) check the values themselves.
const FIXTURES = [
  'tiny_x4_shared',
  'tiny_x4_shared_noclamp',
  'tiny_x2_channel',
  'tiny_x2_channel_noclamp',
  'full_x4',
  'full_x4_noclamp',
  'full_x2_channel_noclamp',
  'tiny_x8_rgb_to_gray_noclamp',
];

// Full-size networks on a software adapter: first-time shader compilation plus the run can take minutes when
// the machine is busy.
const FIXTURE_TIMEOUT_MS = 600_000;

const load = (name: string) => loadNetworkFixture<SRResNetConfig>(FOLDER, name);

async function keyShapes(name: string): Promise<Map<string, { shape: number[] }>> {
  const f = await load(name);
  return new Map([...f.stateDict].map(([k, t]) => [k, { shape: [...t.shape] }]));
}

describe('SRResNet against PyTorch', () => {
  for (const name of FIXTURES) {
    it(
      name,
      async () => {
        const ctx = await getTestContext();
        const f = await load(name);
        // The keys cannot tell whether the caller wants the clamp; the recogniser follows the reference forward.
        expect(recogniseSRResNet(f.stateDict)).toEqual({ ...f.config, clampOutput: true });
        const network = new SRResNet(f.config);
        const y = await runNetworkFixture(ctx, network, f);
        const [n, , h, w] = f.inputShape;
        expect(y.shape).toEqual([n, f.config.outChannels, h * f.config.scale, w * f.config.scale]);
        expect(y.shape).toEqual(f.outputShape);
        expect(relL2(y.data, f.output)).toBeLessThanOrEqual(1e-4);
        if (f.config.clampOutput) expect(y.data.every((v) => v >= 0 && v <= 1)).toBe(true);
      },
      FIXTURE_TIMEOUT_MS,
    );
  }
});

describe('SRResNet checkpoints', () => {
  it('other networks are not recognised', () => {
    expect(recogniseSRResNet(new Map([['conv_first.weight', { shape: [64, 3, 3, 3] }]]))).toBeNull();
    expect(recogniseSRResNet(new Map([['model.0.weight', { shape: [64, 1, 3, 3] }]]))).toBeNull();
  });

  it('the per-channel PReLU behind PixelShuffle maps conv channel k to slope ⌊k/4⌋ (differs from the shared layout)', async () => {
    const f = await load('tiny_x2_channel');
    const slopes = f.stateDict.get('upsampling.0.upsample_block.2.weight')!;
    expect(slopes.shape).toEqual([f.config.features]);
    expect(new Set(slopes.data as Float32Array).size).toBe(f.config.features); // distinct slopes: a wrong mapping shows
  });
});

describe('SRResNet: wrong channel counts and inconsistent checkpoints', () => {
  it('rejects an RGB image for a grayscale model', async () => {
    const ctx = await getTestContext();
    const f = await load('tiny_x2_channel');
    const network = new SRResNet(f.config);
    loadStateDict(network, f.stateDict);
    const model = new RestorationModel(ctx, network, 'srresnet tiny');
    await expect(model.runFloat({ width: 2, height: 2, channels: 3, data: new Float32Array(12) })).rejects.toBeInstanceOf(
      InvalidInputError,
    );
    model.dispose();
  });

  it('the constructor rejects x3 (the upsample blocks are PixelShuffle(2)) and bad PReLU modes', () => {
    const ok: SRResNetConfig = { inChannels: 3, outChannels: 3, features: 8, blocks: 1, scale: 4, prelu: 'shared', clampOutput: true };
    expect(() => new SRResNet({ ...ok, scale: 3 as never })).toThrow(InvalidInputError);
    expect(() => new SRResNet({ ...ok, prelu: 'none' as never })).toThrow(InvalidInputError);
  });

  it('a checkpoint with shared slopes does not load into a per-channel network', async () => {
    const f = await load('tiny_x4_shared');
    expect(() => loadStateDict(new SRResNet({ ...f.config, prelu: 'channel' }), f.stateDict)).toThrow(/conv1\.1\.weight/);
  });

  const cases: [string, string, (k: Map<string, { shape: number[] }>) => void, RegExp][] = [
    [
      'mixed shared and per-channel PReLUs',
      'tiny_x4_shared',
      (k) => k.set('trunk.1.rcb.2.weight', { shape: [8] }),
      /PReLU slopes must all be/,
    ],
    [
      'PReLU slopes of another width',
      'tiny_x2_channel',
      (k) => {
        for (const key of [...k.keys()]) if (/(^conv1\.1|rcb\.2|upsample_block\.2)\.weight$/.test(key)) k.set(key, { shape: [4] });
      },
      /PReLU slopes must all be.*\[4\]/,
    ],
    [
      'upsample conv not 4·features',
      'tiny_x4_shared',
      (k) => k.set('upsampling.1.upsample_block.0.weight', { shape: [72, 8, 3, 3] }),
      /upsampling\.1\.upsample_block\.0\.weight/,
    ],
    ['a 3×3 head conv', 'tiny_x4_shared', (k) => k.set('conv1.0.weight', { shape: [8, 3, 3, 3] }), /conv1\.0\.weight.*9×9/],
    [
      'a trunk conv of the wrong width',
      'tiny_x2_channel',
      (k) => k.set('trunk.0.rcb.3.weight', { shape: [8, 16, 3, 3] }),
      /trunk\.0\.rcb\.3\.weight/,
    ],
    ['a missing BatchNorm', 'tiny_x4_shared', (k) => k.delete('conv2.1.running_mean'), /conv2\.1\.running_mean/],
    [
      'a missing trunk block',
      'tiny_x4_shared',
      (k) => {
        for (const key of [...k.keys()]) if (key.startsWith('trunk.0.')) k.delete(key);
      },
      /residual block 0 is missing/,
    ],
    [
      'no upsample block',
      'tiny_x2_channel',
      (k) => {
        for (const key of [...k.keys()]) if (key.startsWith('upsampling.')) k.delete(key);
      },
      /0 upsample blocks/,
    ],
  ];
  for (const [what, name, edit, message] of cases) {
    it(`recogniser: ${what}`, async () => {
      const keys = await keyShapes(name);
      edit(keys);
      expect(() => recogniseSRResNet(keys)).toThrow(InvalidInputError);
      expect(() => recogniseSRResNet(keys)).toThrow(message);
    });
  }
});
