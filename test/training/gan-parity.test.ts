import { describe, expect, it } from 'vitest';
import { namedParameters } from '../../src/layers/module';
import { DnCNN } from '../../src/models/dncnn';
import { PatchGANDiscriminator } from '../../src/models/patchgan';
import { GanTrainer } from '../../src/training/gan-trainer';
import { initializeParameters } from '../../src/training/init';
import type { OptimizerConfig } from '../../src/training/optimizer-config';
import { getTestContext } from '../helpers/gpu';
import { relL2 } from '../helpers/random';
import { readTrainingFixture, type TensorData } from '../helpers/training-parity';

/*
 * One GAN step as pix2pix's optimize_parameters against PyTorch 1.13 (tools/torch/make_gan_training_fixtures.py):
 * a reduced DnCNN generator against a PatchGAN (n_layers 2, BatchNorm) that judges cat(input, image): the
 * discriminator's step on D(G(x).detach()) and D(y), then the generator's through the updated, frozen D with
 * 100·L1; both with Adam (0.5, 0.999). Losses of 5 steps, both networks' gradients of step 1, and both
 * state_dicts after 1 and 5 steps (D's running statistics move with its three forwards a step).
 */

type Nets<T> = { generator: T; discriminator: T };

interface GanFixture {
  generator: { in_nc: number; out_nc: number; nc: number; nb: number; act_mode: 'BR' };
  discriminator: { in_channels: number; ndf: number; n_layers: number };
  lambda_l1: number;
  optimizer: { lr: number; betas: [number, number]; eps: number };
  input: TensorData;
  target: TensorData;
  initial: Nets<Record<string, TensorData>>;
  losses: { discriminator: number[]; adversarial: number[]; content: number[] };
  grads_step1: Nets<Record<string, TensorData>>;
  output_step1: TensorData;
  after: Record<string, Nets<Record<string, TensorData>>>;
}

describe('a GAN step equals PyTorch 1.13 (pix2pix: D first, then G through the frozen, updated D)', () => {
  it('gan-pix2pix', async () => {
    const fx = (await readTrainingFixture('test/fixtures/training/gan-pix2pix', true)) as unknown as GanFixture;
    const { in_nc, out_nc, nc, nb, act_mode } = fx.generator;
    const generator = new DnCNN({ inChannels: in_nc, outChannels: out_nc, nc, nb, actMode: act_mode });
    const { in_channels, ndf, n_layers } = fx.discriminator;
    const discriminator = new PatchGANDiscriminator({ inChannels: in_channels, ndf, nLayers: n_layers });
    for (const [net, which] of [
      [generator, 'generator'],
      [discriminator, 'discriminator'],
    ] as const) {
      for (const [name, p] of namedParameters(net)) p.data = Float64Array.from(fx.initial[which][name].data);
    }
    const optimizer: OptimizerConfig = { kind: 'adam', lr: fx.optimizer.lr, betas: fx.optimizer.betas, eps: fx.optimizer.eps };
    const [n, c, h, w] = fx.input.shape;
    const trainer = await GanTrainer.create(await getTestContext(), generator, discriminator, {
      batchShape: [n, c, h, w],
      generator: { optimizer },
      discriminator: { optimizer },
      content: { kind: 'l1', weight: fx.lambda_l1 },
      conditional: true,
      returnOutput: true,
    });
    try {
      const batch = { input: fx.input.data, target: fx.target.data };
      for (let s = 1; s <= fx.losses.discriminator.length; s++) {
        const r = await trainer.step(batch);
        const tolerance = s === 1 ? 1e-5 : 1e-4;
        for (const [what, value] of [
          ['discriminator', r.discriminatorLoss],
          ['adversarial', r.adversarialLoss],
          ['content', r.contentLoss],
        ] as const) {
          const ref = fx.losses[what][s - 1];
          expect(Math.abs(value - ref) / Math.abs(ref), `${what} loss of step ${s}`).toBeLessThanOrEqual(tolerance);
        }
        if (s === 1) {
          expect(relL2(r.output!, fx.output_step1.data), 'G(x) of step 1').toBeLessThanOrEqual(1e-5);
          for (const which of ['generator', 'discriminator'] as const) {
            const grads = await trainer.gradients(which);
            for (const [name, ref] of Object.entries(fx.grads_step1[which])) {
              // A convolution bias before a train-mode BatchNorm has a zero gradient in exact arithmetic.
              const inert = which === 'generator' && /^model\.(2|5)\.bias$/.test(name);
              if (!inert) expect(relL2(grads.get(name)!, ref.data), `${which} gradient of ${name}`).toBeLessThanOrEqual(1e-4);
            }
          }
        }
        const after = fx.after[String(s)];
        if (!after) continue;
        for (const which of ['generator', 'discriminator'] as const) {
          const state = await trainer.stateDict(which);
          expect([...state.keys()].sort(), which).toEqual(Object.keys(after[which]).sort());
          for (const [name, t] of state) {
            const ref = after[which][name];
            if (t.dtype === 'int64') expect([...t.data], `${which} ${name} after ${s}`).toEqual(Array.from(ref.data));
            else if (!(which === 'generator' && /^model\.(2|5)\.bias$|^model\.(3|6)\.running_mean$/.test(name))) {
              expect(relL2(t.data, ref.data), `${which} ${name} after ${s} step(s)`).toBeLessThanOrEqual(1e-4);
            }
          }
        }
      }
    } finally {
      trainer.dispose();
    }
  }, 180_000);

  it('names what it cannot train: a discriminator of the wrong width, a masked content loss, an untrained network', async () => {
    const ctx = await getTestContext();
    const generator = new DnCNN({ inChannels: 1, outChannels: 1, nc: 4, nb: 3, actMode: 'R' });
    initializeParameters(generator, 1);
    const judge = new PatchGANDiscriminator({ inChannels: 2, ndf: 4, nLayers: 1 });
    initializeParameters(judge, 2);
    const optimizer: OptimizerConfig = { kind: 'adam' };
    const options = { batchShape: [1, 1, 16, 16] as const, generator: { optimizer }, discriminator: { optimizer } };
    await expect(GanTrainer.create(ctx, generator, judge, options)).rejects.toThrow(/D\(fake\).* judges 2 channel\(s\), got 1/);
    await expect(
      GanTrainer.create(ctx, generator, judge, { ...options, conditional: true, content: { kind: 'masked-mse', lambda: 2 } }),
    ).rejects.toThrow(/content loss with masks/);
    const fresh = new PatchGANDiscriminator({ inChannels: 2, ndf: 4, nLayers: 1 });
    await expect(GanTrainer.create(ctx, generator, fresh, { ...options, conditional: true })).rejects.toThrow(/has no values/);
  });
});
