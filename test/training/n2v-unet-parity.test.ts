import { describe, expect, it } from 'vitest';
import { namedParameters } from '../../src/layers/module';
import { N2VUNet, n2vUNetConfig } from '../../src/models/n2v-unet';
import { Trainer } from '../../src/training/trainer';
import { getTestContext } from '../helpers/gpu';
import { checkTrainingParity, readTrainingFixture } from '../helpers/training-parity';

/*
 * Whole training steps of CAREamics' N2V and N2V2 U-Nets (depth 2, BatchNorm in train mode) against PyTorch 1.13
 * (tools/torch/make_n2v_unet_fixtures.py): max pool or MaxBlurPool (max pool at stride 1, depthwise Pascal blur at
 * stride 2), bilinear upsampling (align_corners=False), [upsampled, skip] concatenation (none at the top for
 * N2V2), 5 Adam steps. The N2V2 case has widths 6/12/24 (not multiples of 4) and a 22×18 batch that the network
 * replicate-pads to 24×20 and crops back.
 */

interface N2VFixtureConfig {
  in_channels: number;
  num_classes: number;
  depth: number;
  num_channels_init: number;
  use_batch_norm: boolean;
  n2v2: boolean;
  residual: boolean;
  size_policy: 'pad' | 'strict';
}

const FILES = ['n2v-unet-c4-mse-adam', 'n2v2-unet-c6-pad-mse-adam'];

/** Every convolution but final_conv feeds a train-mode BatchNorm, which cancels its bias (see checkTrainingParity). */
function followingBatchNorm(name: string): string | undefined {
  const m = /^(.*)\.conv([12])\.bias$/.exec(name);
  return m ? `${m[1]}.batch_norm${m[2]}.running_mean` : undefined;
}

describe('N2V U-Net training steps equal PyTorch 1.13', () => {
  for (const file of FILES) {
    it(
      file,
      async () => {
        const fx = await readTrainingFixture<N2VFixtureConfig>(`test/fixtures/training/${file}`, true);
        const c = fx.config;
        const model = new N2VUNet(
          n2vUNetConfig(c.in_channels, c.num_classes, {
            depth: c.depth,
            numChannelsInit: c.num_channels_init,
            useBatchNorm: c.use_batch_norm,
            n2v2: c.n2v2,
            residual: c.residual,
            sizePolicy: c.size_policy,
          }),
        );
        await checkTrainingParity(await getTestContext(), model, fx, followingBatchNorm);
      },
      300_000,
    );
  }

  it('without BatchNorm, the BatchNorm tensors CAREamics still builds get no gradient and stay as they are', async () => {
    const fx = await readTrainingFixture<N2VFixtureConfig>('test/fixtures/training/n2v-unet-c4-mse-adam', true);
    const model = new N2VUNet(n2vUNetConfig(1, 1, { numChannelsInit: 4, useBatchNorm: false }));
    for (const [name, p] of namedParameters(model)) p.data = Float64Array.from(fx.initial[name].data);
    const [n, c, h, w] = fx.input.shape;
    const trainer = await Trainer.create(await getTestContext(), model, {
      batchShape: [n, c, h, w],
      loss: { kind: 'mse' },
      optimizer: { kind: 'adam', lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 },
    });
    try {
      const r = await trainer.step({ input: fx.input.data, target: fx.target.data });
      expect(Number.isFinite(r.loss)).toBe(true);
      const grads = await trainer.gradients();
      const state = await trainer.stateDict();
      const idle = [...state.keys()].filter((k) => k.includes('.batch_norm'));
      expect(idle).toHaveLength(5 * 2 * 5);
      for (const k of idle) {
        expect(grads.has(k), k).toBe(false);
        expect(Array.from(state.get(k)!.data), k).toEqual(Array.from(fx.initial[k].data));
      }
      expect(grads.has('encoder.encoder_blocks.0.conv1.bias')).toBe(true);
    } finally {
      trainer.dispose();
    }
  });
});
