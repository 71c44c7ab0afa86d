import { describe, it } from 'vitest';
import { MSRResNet } from '../../src/models/msrresnet';
import { getTestContext } from '../helpers/gpu';
import { checkTrainingParity, readTrainingFixture } from '../helpers/training-parity';

/*
 * Whole training steps of BasicSR's MSRResNet (8 features, 2 blocks, ×2 and ×4) against PyTorch 1.13
 * (tools/torch/make_msrresnet_training_fixtures.py): LeakyReLU 0.1 fused into the convolutions, residual blocks,
 * PixelShuffle, and the bilinear base added to the output, through 20 steps of Adam (BasicSR's betas) and SGD.
 */

interface MSRResNetFixtureConfig {
  in: number;
  out: number;
  features: number;
  blocks: number;
  scale: 2 | 4;
}

const FILES = ['msrresnet-x2-l1-adam', 'msrresnet-x4-mse-sgd'];

describe('MSRResNet training steps equal PyTorch 1.13', () => {
  for (const file of FILES) {
    it(
      file,
      async () => {
        const fx = await readTrainingFixture<MSRResNetFixtureConfig>(`test/fixtures/training/${file}`, true);
        const { in: inChannels, out: outChannels, features, blocks, scale } = fx.config;
        await checkTrainingParity(await getTestContext(), new MSRResNet({ inChannels, outChannels, features, blocks, scale }), fx);
      },
      180_000,
    );
  }
});
