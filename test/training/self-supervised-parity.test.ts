import { describe, it } from 'vitest';
import { DnCNN } from '../../src/models/dncnn';
import { getTestContext } from '../helpers/gpu';
import { checkTrainingParity, readTrainingFixture } from '../helpers/training-parity';

/*
 * Self-supervised training steps of a reduced KAIR DnCNN (nc 8, nb 5, BatchNorm) against PyTorch 1.13
 * (tools/torch/make_self_supervised_training_fixtures.py), Adam, 20 steps: Noise2Void's blind-spot loss on an
 * exported blind-spot batch, and Neighbor2Neighbor's whole step with the pair choices and γ of every step
 * exported — the no_grad forward of the full image first (it moves BatchNorm's statistics and counts in
 * num_batches_tracked), then f(g1 y) and the regularised loss.
 */

interface Config {
  in_nc: number;
  out_nc: number;
  nc: number;
  nb: number;
  act_mode: 'R' | 'BR';
}

const follower = (name: string) => {
  const i = /^model\.(\d+)\.bias$/.exec(name)?.[1];
  return i === undefined ? undefined : `model.${Number(i) + 1}.running_mean`;
};

function dncnn(config: Config): DnCNN {
  const { in_nc, out_nc, nc, nb, act_mode } = config;
  return new DnCNN({ inChannels: in_nc, outChannels: out_nc, nc, nb, actMode: act_mode });
}

describe('self-supervised training steps equal PyTorch 1.13', () => {
  it('Noise2Void: the blind-spot MSE on a masked batch', async () => {
    const fx = await readTrainingFixture<Config>('test/fixtures/training/dncnn-br-n2v-adam', true);
    await checkTrainingParity(await getTestContext(), dncnn(fx.config), fx, follower, { options: { selfSupervised: { method: 'n2v' } } });
  }, 120_000);

  it('Neighbor2Neighbor: no_grad f(y), then f(g1 y) and the regularised loss', async () => {
    const fx = await readTrainingFixture<Config>('test/fixtures/training/dncnn-br-nb2nb-adam', true);
    const { choices, gammas } = fx as unknown as { choices: number[][]; gammas: number[] };
    await checkTrainingParity(await getTestContext(), dncnn(fx.config), fx, follower, {
      options: { selfSupervised: { method: 'neighbor2neighbor' } },
      batch: (s) => ({ input: fx.input.data, choices: choices[s - 1], gamma: gammas[s - 1] }),
    });
  }, 120_000);
});
