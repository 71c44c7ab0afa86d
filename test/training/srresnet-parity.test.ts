import { describe, expect, it } from 'vitest';
import { namedModules, namedParameters, untrainableKinds } from '../../src/layers/module';
import { PReLU } from '../../src/layers/prelu';
import { SRResNet, type SRResNetConfig } from '../../src/models/srresnet';
import { Trainer } from '../../src/training/trainer';
import { getTestContext } from '../helpers/gpu';
import { relL2 } from '../helpers/random';
import { checkTrainingParity, optimizerOf, readTrainingFixture } from '../helpers/training-parity';

/*
 * Whole training steps of SRGAN's SRResNet (Lornatang layout; 8 features, 2 blocks) against PyTorch 1.13
 * (tools/torch/make_srresnet_training_fixtures.py): BatchNorm in train mode (running statistics and
 * num_batches_tracked), standalone PReLUs with shared and per-channel slopes (their gradients included), the
 * PReLU after the PixelShuffle, residual and long skips, and the output clamp, whose gradient is 0 on the
 * 12–20 % of the output it cuts. 20 steps of Adam and SGD with momentum; state after 1, 5 and 20 steps.
 */

const FILES = ['srresnet-x2-shared-mse-adam', 'srresnet-x4-channel-mse-adam', 'srresnet-x4-shared-mse-sgd'];

describe('SRResNet training steps equal PyTorch 1.13', () => {
  it('every module of the network can train', () => {
    const net = new SRResNet({ inChannels: 3, outChannels: 3, features: 8, blocks: 1, scale: 4, prelu: 'channel', clampOutput: true });
    expect(untrainableKinds(net)).toEqual([]);
  });

  for (const file of FILES) {
    it(
      file,
      async () => {
        const fx = await readTrainingFixture<SRResNetConfig>(`test/fixtures/training/${file}`, true);
        await checkTrainingParity(await getTestContext(), new SRResNet(fx.config), fx);
      },
      180_000,
    );
  }

  it("with frozen PReLU slopes, the other gradients of step 1 are PyTorch's and the slopes stay", async () => {
    const fx = await readTrainingFixture<SRResNetConfig>('test/fixtures/training/srresnet-x4-channel-mse-adam', true);
    const model = new SRResNet(fx.config);
    for (const [name, p] of namedParameters(model)) p.data = Float64Array.from(fx.initial[name].data);
    const slopes = new Set(namedModules(model).flatMap(([name, m]) => (m instanceof PReLU ? [`${name}.weight`] : [])));
    expect(slopes.size).toBe(5); // conv1.1, trunk.{0,1}.rcb.2, upsampling.{0,1}.upsample_block.2
    const [n, c, h, w] = fx.input.shape;
    const trainer = await Trainer.create(await getTestContext(), model, {
      batchShape: [n, c, h, w],
      loss: { kind: 'mse' },
      optimizer: optimizerOf(fx.optimizer),
      frozen: (name) => slopes.has(name),
    });
    try {
      const r = await trainer.step({ input: fx.input.data, target: fx.target.data });
      expect(Math.abs(r.loss - fx.losses[0]) / fx.losses[0]).toBeLessThanOrEqual(1e-5);
      const grads = await trainer.gradients();
      for (const [name, ref] of Object.entries(fx.grads_step1)) {
        if (slopes.has(name)) expect(grads.has(name), name).toBe(false);
        else expect(relL2(grads.get(name)!, ref.data), `gradient of ${name}`).toBeLessThanOrEqual(1e-4);
      }
      const state = await trainer.stateDict();
      for (const name of slopes) expect(Array.from(state.get(name)!.data), name).toEqual(Array.from(fx.initial[name].data));
    } finally {
      trainer.dispose();
    }
  });
});
