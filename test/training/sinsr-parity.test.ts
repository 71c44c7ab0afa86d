import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { namedParameters, untrainableKinds } from '../../src/layers/module';
import { SINSR, type SINSRConfig } from '../../src/models/sinsr';
import { Trainer } from '../../src/training/trainer';
import { getTestContext } from '../helpers/gpu';
import { checkTrainingParity, readTrainingFixture } from '../helpers/training-parity';

/*
 * Whole training steps of the SINSR generator (our PyTorch re-expression of aaivu/CSM-SR architecture_7,
 * tools/torch/nets/sinsr.py) at a reduced width against PyTorch 1.13 (tools/torch/make_sinsr_training_fixtures.py):
 * dense concatenations, dilated and depthwise convs, conv_res·0.2, the branches' 2×2 average pools and
 * depth_to_space (DCR), the fuse concatenation, two depth_to_space upsamplings and the tanh output; without
 * attention (growth 4, L1, Adam) and with a CBAM after each of two RDBs (growth 3, so concatenation pieces are
 * not multiples of 4; MSE, SGD with momentum). 20 steps each.
 */

const FILES = ['sinsr-none-l1-adam', 'sinsr-cbam-mse-sgd'];

const TINY: SINSRConfig = {
  inChannels: 1,
  outChannels: 1,
  firstFeat: 4,
  numFeat: 8,
  growth: 3,
  numLayers: 2,
  numRDBs: 2,
  numRRDBs: 2,
  attention: 'cbam',
  reduction: 2,
};

describe('SINSR training steps equal PyTorch 1.13', () => {
  for (const file of FILES) {
    it(
      file,
      async () => {
        const fx = await readTrainingFixture<SINSRConfig>(`test/fixtures/training/${file}`, true);
        await checkTrainingParity(await getTestContext(), new SINSR(fx.config), fx);
      },
      240_000,
    );
  }

  it('has no module without a backward, with and without CBAM', () => {
    expect(untrainableKinds(new SINSR(TINY))).toEqual([]);
    expect(untrainableKinds(new SINSR({ ...TINY, attention: 'none' }))).toEqual([]);
  });

  it('names the odd input size its average pools cannot halve', async () => {
    const model = new SINSR({ ...TINY, numRDBs: 1, numRRDBs: 1, attention: 'none' });
    for (const [, p] of namedParameters(model)) p.data = new Float64Array(p.shape.reduce((a, b) => a * b, 1));
    const create = Trainer.create(await getTestContext(), model, {
      batchShape: [1, 1, 6, 5],
      loss: { kind: 'l1' },
      optimizer: { kind: 'sgd', lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false },
    });
    await expect(create).rejects.toThrow(InvalidInputError);
    await expect(create).rejects.toThrow(/even height and width .*got 6×5/);
  });
});
