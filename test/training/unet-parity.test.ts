import { describe, it } from 'vitest';
import { UNet } from '../../src/models/unet';
import { getTestContext } from '../helpers/gpu';
import { checkTrainingParity, readTrainingFixture } from '../helpers/training-parity';

/*
 * Whole training steps of milesial's U-Net (base width 2, both upsamplers, one with a sigmoid output) against
 * PyTorch 1.13 (tools/torch/make_unet_training_fixtures.py), on a 40×36 batch whose pooling floors and whose Up
 * blocks pad: max pool, transposed convolution, bilinear upsampling, padded concatenation, BatchNorm in train
 * mode and sigmoid, through 20 steps of Adam and of SGD with momentum and weight decay.
 */

interface UNetFixtureConfig {
  n_channels: number;
  n_classes: number;
  bilinear: boolean;
  base: number;
  sigmoid: boolean;
}

const FILES = ['unet-transposed-mse-adam', 'unet-bilinear-l1-sgd'];

describe('U-Net training steps equal PyTorch 1.13', () => {
  for (const file of FILES) {
    it(
      file,
      async () => {
        const fx = await readTrainingFixture<UNetFixtureConfig>(`test/fixtures/training/${file}`, true);
        const { n_channels, n_classes, bilinear, base, sigmoid } = fx.config;
        const model = new UNet({ inChannels: n_channels, outChannels: n_classes, bilinear, baseChannels: base, sigmoid });
        await checkTrainingParity(await getTestContext(), model, fx);
      },
      180_000,
    );
  }
});
