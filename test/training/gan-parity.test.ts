import { describe, expect, it } from 'vitest';
import { namedParameters } from '../../src/layers/module';
import { DnCNN } from '../../src/models/dncnn';
import { MSRResNet } from '../../src/models/msrresnet';
import type { Network } from '../../src/models/network';
import { PatchGANDiscriminator } from '../../src/models/patchgan';
import { GanTrainer, type GanTrainerOptions } from '../../src/training/gan-trainer';
import { initializeParameters } from '../../src/training/init';
import type { OptimizerConfig } from '../../src/training/optimizer-config';
import { getTestContext } from '../helpers/gpu';
import { relL2 } from '../helpers/random';
import { readTrainingFixture, type TensorData } from '../helpers/training-parity';

/*
 * GAN steps against PyTorch 1.13 (tools/torch/make_gan_training_fixtures.py). pix2pix's optimize_parameters:
 * a reduced DnCNN generator against a PatchGAN (n_layers 2, BatchNorm) that judges cat(input, image): the
 * discriminator's step on D(G(x).detach()) and D(y), then the generator's through the updated, frozen D with
 * 100·L1; both with Adam (0.5, 0.999). Losses of 5 steps, both networks' gradients of step 1, and both
 * state_dicts after 1 and 5 steps (D's running statistics move with its three forwards a step). And BasicSR's
 * ESRGAN step: G first with the relativistic average loss through D as it was, then D with its three forwards.
 */

type Nets<T> = { generator: T; discriminator: T };

interface GanFixture {
  generator: Record<string, number | string>;
  discriminator: { in_channels: number; ndf: number; n_layers: number };
  optimizer: { lr: number; betas: [number, number]; eps: number };
  lambda_l1?: number;
  pixel_weight?: number;
  gan_weight?: number;
  input: TensorData;
  target: TensorData;
  initial: Nets<Record<string, TensorData>>;
  losses: { discriminator: number[]; adversarial: number[]; content: number[] };
  grads_step1: Nets<Record<string, TensorData>>;
  output_step1: TensorData;
  after: Record<string, Nets<Record<string, TensorData>>>;
}

interface Case {
  file: string;
  generator: (fx: GanFixture) => Network;
  options: (fx: GanFixture) => Pick<GanTrainerOptions, 'content' | 'conditional' | 'ganLoss' | 'adversarialWeight'>;
  /** Biases before a train-mode BatchNorm (zero gradients in exact arithmetic) and the running means they feed. */
  inert: RegExp;
}

const CASES: Case[] = [
  {
    // pix2pix: a reduced DnCNN against a conditional PatchGAN, 100·L1, D first.
    file: 'gan-pix2pix',
    generator: (fx) => {
      const { in_nc, out_nc, nc, nb } = fx.generator as Record<string, number>;
      return new DnCNN({ inChannels: in_nc, outChannels: out_nc, nc, nb, actMode: 'BR' });
    },
    options: (fx) => ({ content: { kind: 'l1', weight: fx.lambda_l1! }, conditional: true }),
    inert: /^model\.(2|5)\.bias$|^model\.(3|6)\.running_mean$/,
  },
  {
    // BasicSR's ESRGAN step: MSRResNet ×2 against a PatchGAN with the relativistic average loss, G first.
    file: 'gan-esrgan',
    generator: (fx) => {
      const { in: inChannels, out: outChannels, features, blocks, scale } = fx.generator as Record<string, number>;
      return new MSRResNet({ inChannels, outChannels, features, blocks, scale: scale as 2 });
    },
    options: (fx) => ({
      content: { kind: 'l1', weight: fx.pixel_weight! },
      adversarialWeight: fx.gan_weight!,
      ganLoss: 'relativistic',
    }),
    inert: /^$/,
  },
];

describe('a GAN step equals PyTorch 1.13', () => {
  for (const c of CASES) {
    it(
      c.file,
      async () => {
        const fx = (await readTrainingFixture(`test/fixtures/training/${c.file}`, true)) as unknown as GanFixture;
        const generator = c.generator(fx);
        const { in_channels, ndf, n_layers } = fx.discriminator;
        const discriminator = new PatchGANDiscriminator({ inChannels: in_channels, ndf, nLayers: n_layers });
        for (const [net, which] of [
          [generator, 'generator'],
          [discriminator, 'discriminator'],
        ] as const) {
          for (const [name, p] of namedParameters(net)) p.data = Float64Array.from(fx.initial[which][name].data);
        }
        const optimizer: OptimizerConfig = { kind: 'adam', lr: fx.optimizer.lr, betas: fx.optimizer.betas, eps: fx.optimizer.eps };
        const [n, ch, h, w] = fx.input.shape;
        const trainer = await GanTrainer.create(await getTestContext(), generator, discriminator, {
          batchShape: [n, ch, h, w],
          generator: { optimizer },
          discriminator: { optimizer },
          returnOutput: true,
          ...c.options(fx),
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
                  if (which === 'generator' && c.inert.test(name)) continue;
                  expect(relL2(grads.get(name)!, ref.data), `${which} gradient of ${name}`).toBeLessThanOrEqual(1e-4);
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
                else if (!(which === 'generator' && c.inert.test(name))) {
                  expect(relL2(t.data, ref.data), `${which} ${name} after ${s} step(s)`).toBeLessThanOrEqual(1e-4);
                }
              }
            }
          }
        } finally {
          trainer.dispose();
        }
      },
      180_000,
    );
  }

  it('names what it cannot train: a discriminator of the wrong width, a masked content loss, an untrained network', async () => {
    const ctx = await getTestContext();
    const generator = new DnCNN({ inChannels: 1, outChannels: 1, nc: 4, nb: 3, actMode: 'R' });
    initializeParameters(generator, 1);
    const judge = new PatchGANDiscriminator({ inChannels: 2, ndf: 4, nLayers: 1 });
    initializeParameters(judge, 2);
    const optimizer: OptimizerConfig = { kind: 'adam' };
    const options = { batchShape: [1, 1, 16, 16] as const, generator: { optimizer }, discriminator: { optimizer } };
    await expect(GanTrainer.create(ctx, generator, judge, options)).rejects.toThrow(/D\(G\(x\)\) judges 2 channel\(s\), got 1/);
    await expect(
      GanTrainer.create(ctx, generator, judge, { ...options, conditional: true, content: { kind: 'masked-mse', lambda: 2 } }),
    ).rejects.toThrow(/content loss with masks/);
    const side = 1 << 15;
    await expect(
      GanTrainer.create(ctx, generator, judge, { ...options, batchShape: [4, 1, side, side], conditional: true }),
    ).rejects.toThrow(/too large for this device: use a smaller batch or patch/);
    const fresh = new PatchGANDiscriminator({ inChannels: 2, ndf: 4, nLayers: 1 });
    await expect(GanTrainer.create(ctx, generator, fresh, { ...options, conditional: true })).rejects.toThrow(/has no values/);
  });
});
