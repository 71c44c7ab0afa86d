import { describe, it } from 'vitest';
import { ResNet34UNet, resnet34UNetConfig } from '../../src/models/resnet34-unet';
import { getTestContext } from '../helpers/gpu';
import { checkTrainingParity, readTrainingFixture } from '../helpers/training-parity';

/*
 * Whole training steps of smp's Unet('resnet34', decoder_attention_type='scse'), reduced (stem 4, stages 4/4/8/8
 * with 2/2/1/1 blocks, decoder width 8, SCSE reduction 4), against PyTorch 1.13
 * (tools/torch/make_resunet_training_fixtures.py): BasicBlocks with identity and downsample shortcuts, the 7×7
 * stem, the 3×3 s2 p1 max pool, nearest ×2 with [up, skip] concatenation, SCSE attention and BatchNorm in train
 * mode, through 5 steps of AdamW on a 2×1×64×64 batch.
 */

interface ResUNetFixtureConfig {
  in_channels: number;
  classes: number;
  encoder_widths: number[];
  encoder_depths: number[];
  decoder_channels: number[];
  reduction: number;
}

describe('ResNet34-SCSE U-Net training steps equal PyTorch 1.13', () => {
  it('resunet-mse-adamw', async () => {
    const fx = await readTrainingFixture<ResUNetFixtureConfig>('test/fixtures/training/resunet-mse-adamw', true);
    const c = fx.config;
    const model = new ResNet34UNet(
      resnet34UNetConfig(c.in_channels, c.classes, {
        decoderChannels: c.decoder_channels,
        encoderWidths: c.encoder_widths,
        encoderDepths: c.encoder_depths,
        attentionReduction: c.reduction,
        sizePolicy: 'strict',
      }),
    );
    await checkTrainingParity(await getTestContext(), model, fx);
  }, 300_000);
});
