/**
 * The .pth a trainer writes, for every network that trains, at the reduced configuration of its parity fixture:
 * Trainer.create (no step, so the values are the fixture's initial state, f32 for f32, on any adapter), then
 * trainedStateToPth(await trainer.stateDict()). CI has no Python, so here the committed file under
 * test/fixtures/training/written/ is read back with our own reader (the exact keys of PyTorch's state_dict() in
 * its order, shapes, float32 values bit for bit, int64 0-d num_batches_tracked, BatchNorms version 2 in
 * _metadata) and the bytes written now must equal it. tools/torch/check_written_checkpoints.py loads each
 * committed file in PyTorch 1.13 (torch.load(weights_only=True), load_state_dict(strict=True), an eval forward).
 * Regenerate them after an intended change with
 *   WEBGPU_RESTORE_WRITE_FIXTURES=1 npx vitest run --project node test/training/written-checkpoints.test.ts
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { namedParameters } from '../../src/layers/module';
import { DnCNN } from '../../src/models/dncnn';
import { MSRResNet } from '../../src/models/msrresnet';
import type { Network } from '../../src/models/network';
import { PatchGANDiscriminator } from '../../src/models/patchgan';
import { ResNet34UNet, resnet34UNetConfig } from '../../src/models/resnet34-unet';
import { RRDBNet } from '../../src/models/rrdbnet';
import { SINSR, type SINSRConfig } from '../../src/models/sinsr';
import { SRResNet, type SRResNetConfig } from '../../src/models/srresnet';
import { UNet } from '../../src/models/unet';
import { trainedStateToPth } from '../../src/training/checkpoint';
import { GanTrainer } from '../../src/training/gan-trainer';
import type { OptimizerConfig } from '../../src/training/optimizer-config';
import { Trainer, type TrainedTensor } from '../../src/training/trainer';
import { readTorchObject, type CpuTensor } from '../../src/weights';
import { ConvTransBlockPair, type PairConfig } from '../helpers/conv-trans-block-pair';
import { getTestContext } from '../helpers/gpu';
import { readTrainingFixture, type TensorData } from '../helpers/training-parity';

const WRITE_FIXTURES = process.env.WEBGPU_RESTORE_WRITE_FIXTURES === '1';
const WRITTEN = new URL('../fixtures/training/written/', import.meta.url);
const SGD: OptimizerConfig = { kind: 'sgd', lr: 0.01, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false };

/** What a case gives: the trained state_dict, and PyTorch's state_dict() of the same module (keys in order). */
interface Written {
  state: Map<string, TrainedTensor>;
  /** From the fixture generator's state_dict(); for SCUNet (no stored whole network) our own parameter order. */
  expected: Record<string, TensorData>;
}

async function trained(model: Network, initial: Record<string, TensorData>, batchShape: readonly number[]): Promise<Written> {
  for (const [name, p] of namedParameters(model)) p.data = Float64Array.from(initial[name].data);
  const [n, c, h, w] = batchShape;
  const trainer = await Trainer.create(await getTestContext(), model, { batchShape: [n, c, h, w], loss: { kind: 'mse' }, optimizer: SGD });
  try {
    return { state: await trainer.stateDict(), expected: initial };
  } finally {
    trainer.dispose();
  }
}

/** A fixture's configuration, initial state_dict and batch shape. */
async function fixture<Config>(file: string) {
  const fx = await readTrainingFixture<Config>(`test/fixtures/training/${file}`, true);
  return { config: fx.config, initial: fx.initial, batch: fx.input.shape };
}

const CASES: Record<string, () => Promise<Written>> = {
  'unet-transposed': async () => {
    const fx = await fixture<{ n_channels: number; n_classes: number; bilinear: boolean; base: number; sigmoid: boolean }>(
      'unet-transposed-mse-adam',
    );
    const { n_channels, n_classes, bilinear, base, sigmoid } = fx.config;
    return trained(
      new UNet({ inChannels: n_channels, outChannels: n_classes, bilinear, baseChannels: base, sigmoid }),
      fx.initial,
      fx.batch,
    );
  },
  'unet-bilinear': async () => {
    const fx = await fixture<{ n_channels: number; n_classes: number; bilinear: boolean; base: number; sigmoid: boolean }>(
      'unet-bilinear-l1-sgd',
    );
    const { n_channels, n_classes, bilinear, base, sigmoid } = fx.config;
    return trained(
      new UNet({ inChannels: n_channels, outChannels: n_classes, bilinear, baseChannels: base, sigmoid }),
      fx.initial,
      fx.batch,
    );
  },
  resunet: async () => {
    const fx = await fixture<{
      in_channels: number;
      classes: number;
      encoder_widths: number[];
      encoder_depths: number[];
      decoder_channels: number[];
      reduction: number;
    }>('resunet-mse-adamw');
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
    return trained(model, fx.initial, fx.batch);
  },
  'scunet-pair': async () => {
    // SCUNet's ConvTransBlock pair (W then SW) of scunet-ctb-pair-mse-adam: its keys, LayerNorms, Linears and
    // relative-position tables; a whole SCUNet (dim ≥ 64) would be a 6 MB fixture.
    const fx = await fixture<PairConfig>('scunet-ctb-pair-mse-adam');
    return trained(new ConvTransBlockPair(fx.config), fx.initial, fx.batch);
  },
  'msrresnet-x2': async () => {
    const fx = await fixture<{ in: number; out: number; features: number; blocks: number; scale: 2 | 4 }>('msrresnet-x2-l1-adam');
    const { in: inChannels, out: outChannels, features, blocks, scale } = fx.config;
    return trained(new MSRResNet({ inChannels, outChannels, features, blocks, scale }), fx.initial, fx.batch);
  },
  'srresnet-x2-shared': async () => {
    const fx = await fixture<SRResNetConfig>('srresnet-x2-shared-mse-adam');
    return trained(new SRResNet(fx.config), fx.initial, fx.batch);
  },
  'rrdbnet-x4': async () => {
    const fx = await fixture<{ in: number; out: number; numFeat: number; numGrowCh: number; numBlock: number; scale: 2 | 4 }>(
      'rrdbnet-x4-l1-adam',
    );
    const { in: inChannels, out: outChannels, numFeat, numGrowCh, numBlock, scale } = fx.config;
    return trained(new RRDBNet({ inChannels, outChannels, numFeat, numGrowCh, numBlock, scale }), fx.initial, fx.batch);
  },
  'sinsr-cbam': async () => {
    const fx = await fixture<SINSRConfig>('sinsr-cbam-mse-sgd');
    return trained(new SINSR(fx.config), fx.initial, fx.batch);
  },
  'patchgan-n2': async () => {
    // pix2pix's discriminator (BatchNorm, n_layers 2) trains beside its generator: the GAN trainer's state of D.
    const fx = (await readTrainingFixture('test/fixtures/training/gan-pix2pix', true)) as unknown as {
      generator: { in_nc: number; out_nc: number; nc: number; nb: number };
      discriminator: { in_channels: number; ndf: number; n_layers: number };
      input: TensorData;
      initial: { generator: Record<string, TensorData>; discriminator: Record<string, TensorData> };
    };
    const { in_nc, out_nc, nc, nb } = fx.generator;
    const generator = new DnCNN({ inChannels: in_nc, outChannels: out_nc, nc, nb, actMode: 'BR' });
    const { in_channels, ndf, n_layers } = fx.discriminator;
    const discriminator = new PatchGANDiscriminator({ inChannels: in_channels, ndf, nLayers: n_layers });
    for (const [name, p] of namedParameters(generator)) p.data = Float64Array.from(fx.initial.generator[name].data);
    for (const [name, p] of namedParameters(discriminator)) p.data = Float64Array.from(fx.initial.discriminator[name].data);
    const [n, c, h, w] = fx.input.shape;
    const trainer = await GanTrainer.create(await getTestContext(), generator, discriminator, {
      batchShape: [n, c, h, w],
      generator: { optimizer: SGD },
      discriminator: { optimizer: SGD },
      conditional: true,
    });
    try {
      return { state: await trainer.stateDict('discriminator'), expected: fx.initial.discriminator };
    } finally {
      trainer.dispose();
    }
  },
};

const NBT = '.num_batches_tracked';
const bytesOf = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** The committed file holds PyTorch's state_dict() keys in order, its shapes, and the initial values bit for bit. */
function expectState(read: Map<string, CpuTensor>, written: Written): void {
  const names = Object.keys(written.expected);
  expect([...written.state.keys()], "the trainer's state_dict").toEqual(names);
  expect([...read.keys()], 'the keys read back').toEqual(names);
  for (const name of names) {
    const t = read.get(name)!;
    const ref = written.expected[name];
    expect(t.shape, name).toEqual(ref.shape);
    if (name.endsWith(NBT)) {
      expect(t.dtype, name).toBe('int64');
      expect(t.shape, name).toEqual([]);
      expect(t.data, name).toEqual(BigInt64Array.from(Array.from(ref.data, (v) => BigInt(v))));
      expect(written.state.get(name)!.data, name).toEqual(Array.from(ref.data));
    } else {
      expect(t.dtype, name).toBe('float32');
      expect(bytesOf(t.data).equals(bytesOf(Float32Array.from(ref.data))), `values of ${name}`).toBe(true);
      expect(bytesOf(t.data).equals(bytesOf(written.state.get(name)!.data as Float32Array)), `trained values of ${name}`).toBe(true);
    }
  }
}

describe('the .pth a trainer writes holds the state_dict PyTorch loads (committed files checked in PyTorch 1.13)', () => {
  for (const [net, make] of Object.entries(CASES)) {
    it(
      net,
      async () => {
        const written = await make();
        const bytes = trainedStateToPth(written.state);
        const file = new URL(`${net}.pth`, WRITTEN);
        if (WRITE_FIXTURES) {
          mkdirSync(WRITTEN, { recursive: true });
          writeFileSync(file, bytes);
        }
        const committed = new Uint8Array(readFileSync(file));
        const raw = readTorchObject(committed, { name: `${net}.pth` }) as Map<string, unknown>;
        const tensors = new Map([...raw].filter(([k]) => k !== '_metadata')) as Map<string, CpuTensor>;
        expectState(tensors, written);
        // BatchNorm2d's _version 2 for each BatchNorm, as load_state_dict expects of a current module.
        const metadata = raw.get('_metadata') as Map<string, Map<string, number>>;
        const batchNorms = Object.keys(written.expected)
          .filter((k) => k.endsWith(NBT))
          .map((k) => k.slice(0, -NBT.length));
        expect([...metadata.keys()], '_metadata').toEqual(['', ...batchNorms]);
        expect(
          batchNorms.map((m) => metadata.get(m)!.get('version')),
          'BatchNorm versions',
        ).toEqual(batchNorms.map(() => 2));
        // Values come straight from the fixture, so the file is the same on every adapter.
        expect(Buffer.from(bytes).equals(Buffer.from(committed)), 'bytes written now equal the committed file').toBe(true);
      },
      240_000,
    );
  }
});
