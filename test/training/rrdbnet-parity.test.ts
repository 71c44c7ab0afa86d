import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { namedParameters, untrainableKinds } from '../../src/layers/module';
import { RRDBNet } from '../../src/models/rrdbnet';
import { getTestContext } from '../helpers/gpu';
import { checkTrainingParity, readTrainingFixture } from '../helpers/training-parity';
import { Trainer } from '../../src/training/trainer';

/*
 * Whole training steps of BasicSR's RRDBNet (num_feat 8, num_grow_ch 4) against PyTorch 1.13
 * (tools/torch/make_rrdbnet_training_fixtures.py): dense concatenations, LeakyReLU 0.2 fused into the convolutions,
 * the 0.2 residual scaling in every RDB and RRDB, the trunk's long skip, two nearest ×2 upsamplings and, for ×2,
 * pixel_unshuffle in front; 20 steps of Adam (BasicSR's betas) and of SGD with momentum.
 */

interface RRDBNetFixtureConfig {
  in: number;
  out: number;
  numFeat: number;
  numGrowCh: number;
  numBlock: number;
  scale: 2 | 4;
}

const FILES = ['rrdbnet-x4-l1-adam', 'rrdbnet-x2-mse-sgd'];

describe('RRDBNet training steps equal PyTorch 1.13', () => {
  for (const file of FILES) {
    it(
      file,
      async () => {
        const fx = await readTrainingFixture<RRDBNetFixtureConfig>(`test/fixtures/training/${file}`, true);
        const { in: inChannels, out: outChannels, numFeat, numGrowCh, numBlock, scale } = fx.config;
        const model = new RRDBNet({ inChannels, outChannels, numFeat, numGrowCh, numBlock, scale });
        await checkTrainingParity(await getTestContext(), model, fx);
      },
      180_000,
    );
  }

  it('has no module without a backward', () => {
    const model = new RRDBNet({ inChannels: 3, outChannels: 3, numFeat: 8, numGrowCh: 4, numBlock: 2, scale: 2 });
    expect(untrainableKinds(model)).toEqual([]);
  });

  it('names the input size that pixel_unshuffle cannot split', async () => {
    const model = new RRDBNet({ inChannels: 1, outChannels: 1, numFeat: 8, numGrowCh: 4, numBlock: 1, scale: 2 });
    for (const [, p] of namedParameters(model)) p.data = new Float64Array(p.shape.reduce((a, b) => a * b, 1));
    const create = Trainer.create(await getTestContext(), model, {
      batchShape: [1, 1, 7, 6],
      loss: { kind: 'l1' },
      optimizer: { kind: 'sgd', lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false },
    });
    await expect(create).rejects.toThrow(InvalidInputError);
    await expect(create).rejects.toThrow(/multiples of 2, got 7×6/);
  });
});
