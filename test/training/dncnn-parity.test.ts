import { describe, it } from 'vitest';
import { DnCNN } from '../../src/models/dncnn';
import { loadFeatureNetwork } from '../../src/models/vgg';
import type { LossTerm } from '../../src/training/loss-config';
import { readCheckpoint } from '../../src/weights/checkpoint';
import { readFixtureBytes } from '../helpers/fixture-loader';
import { getTestContext } from '../helpers/gpu';
import { checkTrainingParity, readTrainingFixture } from '../helpers/training-parity';

/*
 * Whole training steps of a reduced KAIR DnCNN (nc 8, nb 5, R and BR with BatchNorm momentum 0.9, eps 1e-4)
 * against PyTorch 1.13 (tools/torch/make_training_fixtures.py): the loss of every step, the output and every
 * gradient of the first step, and the state_dict (weights, running statistics, num_batches_tracked) after 1, 5
 * and 20 updates of SGD (momentum, Nesterov), Adam and AdamW, all on the same batch; losses MSE, L1, Charbonnier
 * and 1 − SSIM; two runs with torch.optim parameter groups, and a weighted sum of L1, Sobel, second-order, TV
 * and SSIM losses.
 */

interface DnCNNFixtureConfig {
  in_nc: number;
  out_nc: number;
  nc: number;
  nb: number;
  act_mode: 'R' | 'BR';
}

/** Listed, not read from the folder, so the browser runs this file too. */
const FILES = [
  ...['sgd', 'sgd-nesterov', 'adam', 'adamw'].flatMap((opt) => [`dncnn-r-mse-${opt}`, `dncnn-br-mse-${opt}`]),
  'dncnn-br-l1-adam',
  'dncnn-r-charbonnier-adam',
  'dncnn-r-ssim-adam',
  // Parameter groups: the head learns 10× slower without weight decay, BatchNorm γ/β without weight decay.
  'dncnn-br-mse-adamw-groups',
  'dncnn-r-mse-sgd-groups',
  // A weighted sum: L1 + 0.1·Sobel (L1) + 0.05·Laplacian (MSE) + 1e-4·TV + 0.5·(1 − SSIM).
  'dncnn-r-sum-adam',
];

describe('DnCNN training steps equal PyTorch 1.13', () => {
  for (const file of FILES) {
    it(
      file,
      async () => {
        const fx = await readTrainingFixture<DnCNNFixtureConfig>(`test/fixtures/training/${file}`);
        const { in_nc, out_nc, nc, nb, act_mode } = fx.config;
        const model = new DnCNN({ inChannels: in_nc, outChannels: out_nc, nc, nb, actMode: act_mode });
        // model.N.bias feeds the BatchNorm model.(N+1).
        const follower = (name: string) => /^model\.(\d+)\.bias$/.exec(name)?.[1];
        await checkTrainingParity(await getTestContext(), model, fx, (name) => {
          const i = follower(name);
          return i === undefined ? undefined : `model.${Number(i) + 1}.running_mean`;
        });
      },
      120_000,
    );
  }
});

describe('training with a perceptual loss term equals PyTorch 1.13', () => {
  it('dncnn-r-l1-perceptual-adam: L1 + 0.1·(VGG19 conv2_2 and conv3_4 features, L1)', async () => {
    const fx = await readTrainingFixture<DnCNNFixtureConfig>('test/fixtures/training/dncnn-r-l1-perceptual-adam', true);
    const vgg = loadFeatureNetwork(readCheckpoint(await readFixtureBytes('test/fixtures/perceptual/vgg19.pth'), { name: 'vgg19.pth' }));
    const terms = (fx.loss_config as { terms: readonly LossTerm[] }).terms.map((t) =>
      t.kind === 'perceptual' ? { ...t, network: vgg } : t,
    );
    fx.loss_config = { kind: 'sum', terms };
    const { in_nc, out_nc, nc, nb, act_mode } = fx.config;
    await checkTrainingParity(await getTestContext(), new DnCNN({ inChannels: in_nc, outChannels: out_nc, nc, nb, actMode: act_mode }), fx);
  }, 120_000);
});
