import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { Graph } from '../../src/gpu/graph';
import { ForwardBuilder } from '../../src/layers/forward-builder';
import { ConvTransBlock } from '../../src/layers/conv-trans-block';
import { loadStateDict } from '../../src/layers/module';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { recogniseSCUNet, SCUNet, SCUNET_GRAY, type SCUNetConfig } from '../../src/models/scunet';
import { readPth } from '../../src/weights/pth';
import type { StateDict } from '../../src/weights/state-dict';
import { readFixtureBytes, readFixtureF32, readFixtureJson } from '../helpers/fixture-loader';
import { getTestContext } from '../helpers/gpu';
import { relL2 } from '../helpers/random';
import { type ManifestEntry, seededStateDict } from '../helpers/seeded-weights';

/** Written by tools/torch/make_scunet_fixtures.py. */
interface SCUNetFixture {
  architecture: 'SCUNet';
  config: SCUNetConfig;
  kwargs: { in_nc: number; config: number[]; dim: number };
  /** A real torch.save'd state_dict next to the JSON, or a seed and manifest for tools/torch/seeded_weights.py. */
  checkpoint?: string;
  seed?: number;
  manifest?: ManifestEntry[];
  inputShape: [number, number, number, number];
  outputShape: [number, number, number, number];
  float32VsFloat64RelL2: number;
}

const DIR = 'test/fixtures/scunet';
const FIXTURES = ['tiny_gray_single_window', 'tiny_gray', 'full_color_40x56', 'full_gray_72x100'];
/**
 * lavapipe (2 cores): with Mesa's shader cache warm the four cases take ~10 s, ~10 s, ~20 s and ~50 s; a cold
 * cache adds minutes of LLVM compilation (~21 distinct pipelines, the px32 3×3 convolutions of the 128-wide
 * gray case the slowest), most of it in the first case.
 */
const SLOW = 900_000;

async function loadFixture(name: string): Promise<{ meta: SCUNetFixture; sd: StateDict; input: Float32Array; output: Float32Array }> {
  const meta = await readFixtureJson<SCUNetFixture>(`${DIR}/${name}.json`);
  const sd: StateDict = meta.checkpoint
    ? readPth(await readFixtureBytes(`${DIR}/${meta.checkpoint}`), { name: meta.checkpoint })
    : seededStateDict(meta.seed!, meta.manifest!);
  return { meta, sd, input: await readFixtureF32(`${DIR}/${name}.input.f32`), output: await readFixtureF32(`${DIR}/${name}.output.f32`) };
}

describe('SCUNet against PyTorch', () => {
  for (const name of FIXTURES) {
    it(
      name,
      async () => {
        const ctx = await getTestContext();
        const { meta, sd, input, output } = await loadFixture(name);
        const config = recogniseSCUNet(sd); // from the keys and shapes alone
        expect(config).toEqual(meta.config);
        const network = new SCUNet(config!);
        loadStateDict(network, sd);
        const model = new RestorationModel(ctx, network, name);
        const [, c, h, w] = meta.inputShape;
        const { image } = await model.runFloat({ width: w, height: h, channels: c, data: input });
        model.dispose();
        expect([1, image.channels, image.height, image.width]).toEqual(meta.outputShape);
        const err = relL2(image.data, output);
        console.log(
          `SCUNet ${name}: relL2 vs PyTorch ${err.toExponential(2)} (PyTorch f32 vs f64: ${meta.float32VsFloat64RelL2.toExponential(2)})`,
        );
        expect(err).toBeLessThanOrEqual(1e-4);
      },
      SLOW,
    );
  }
});

describe('SCUNet structure', () => {
  it('alternates W and SW inside every stage; SW stays SW at the default input_resolution', () => {
    const net = new SCUNet(SCUNET_GRAY);
    for (const stage of Object.values(net.stages)) {
      const blocks = stage.layers.filter((m): m is ConvTransBlock => m instanceof ConvTransBlock);
      expect(blocks.map((b) => b.shifted)).toEqual([false, true, false, true]);
    }
    // The reference's constructor-time rule: a stage at resolution <= 8 has only W blocks (body = 64/8).
    const small = new SCUNet({ ...SCUNET_GRAY, inputResolution: 64 });
    expect(small.stages.m_body.layers.map((b) => (b as ConvTransBlock).shifted)).toEqual([false, false, false, false]);
    expect(small.stages.m_down3.layers.filter((m) => m instanceof ConvTransBlock).map((b) => b.shifted)).toEqual([
      false,
      true,
      false,
      true,
    ]);
  });

  it('rejects a dim whose level-1 Swin half is not whole 32-wide heads', () => {
    expect(() => new SCUNet({ inChannels: 1, dim: 32, blocks: [1, 1, 1, 1, 1, 1, 1] })).toThrow(InvalidInputError);
    expect(() => new SCUNet({ inChannels: 1, dim: 96, blocks: [1, 1, 1, 1, 1, 1, 1] })).toThrow(/multiple of 64/);
    expect(() => new SCUNet({ inChannels: 1, dim: 64, blocks: [1, 1, 1] })).toThrow(/7 non-negative block counts/);
  });
});

describe('recogniseSCUNet', () => {
  it('reads the released configuration from a full key manifest', async () => {
    const meta = await readFixtureJson<SCUNetFixture>(`${DIR}/full_gray_72x100.json`);
    const keys = new Map(meta.manifest!.map((e) => [e.key, { shape: e.shape }]));
    expect(keys.size).toBe(540);
    expect(recogniseSCUNet(keys)).toEqual({ inChannels: 1, dim: 64, blocks: [4, 4, 4, 4, 4, 4, 4] });
    const color = await readFixtureJson<SCUNetFixture>(`${DIR}/full_color_40x56.json`);
    expect(recogniseSCUNet(new Map(color.manifest!.map((e) => [e.key, { shape: e.shape }])))).toEqual(color.config);
  });

  it('returns null for keys of another network', async () => {
    expect(recogniseSCUNet(new Map([['model.0.weight', { shape: [64, 1, 3, 3] }]]))).toBeNull();
    // KAIR's DRUNet/UNetRes: m_head and m_tail are single convs, not Sequentials.
    const drunet = new Map([
      ['m_head.weight', { shape: [64, 2, 3, 3] }],
      ['m_down1.0.res.0.weight', { shape: [64, 64, 3, 3] }],
      ['m_tail.weight', { shape: [1, 64, 3, 3] }],
    ]);
    expect(recogniseSCUNet(drunet)).toBeNull();
  });

  it('names what is inconsistent', async () => {
    const meta = await readFixtureJson<SCUNetFixture>(`${DIR}/full_gray_72x100.json`);
    const base = () => new Map(meta.manifest!.map((e) => [e.key, { shape: [...e.shape] }]));

    const missing = base();
    missing.delete('m_up2.3.trans_block.msa.linear.bias');
    expect(() => recogniseSCUNet(missing)).toThrow(InvalidInputError);
    expect(() => recogniseSCUNet(missing)).toThrow(/'m_up2\.3\.trans_block\.msa\.linear\.bias' is missing/);

    const shape = base();
    shape.get('m_body.1.trans_block.msa.relative_position_params')!.shape = [4, 15, 15];
    expect(() => recogniseSCUNet(shape)).toThrow(
      /'m_body\.1\.trans_block\.msa\.relative_position_params' has shape \[4, 15, 15\], expected \[8, 15, 15\]/,
    );

    const extra = base();
    extra.set('m_down1.4.bias', { shape: [128] });
    expect(() => recogniseSCUNet(extra)).toThrow(/'m_down1\.4\.bias' is unexpected/);

    const noHead = base();
    noHead.delete('m_head.0.weight');
    expect(() => recogniseSCUNet(noHead)).toThrow(/m_head\.0\.weight/);

    const narrow = base();
    narrow.set('m_head.0.weight', { shape: [32, 1, 3, 3] });
    expect(() => recogniseSCUNet(narrow)).toThrow(/multiple of 64/);
  });

  it('reads empty stages from a real checkpoint', async () => {
    const meta = await readFixtureJson<SCUNetFixture>(`${DIR}/tiny_gray.json`);
    const sd = readPth(await readFixtureBytes(`${DIR}/${meta.checkpoint!}`));
    expect(recogniseSCUNet(sd)).toEqual({ inChannels: 1, dim: 64, blocks: meta.kwargs.config });
    expect(sd.has('m_down3.0.weight')).toBe(true); // the strided conv right after zero blocks
  });
});

describe('SCUNet input errors', () => {
  it('rejects a colour image for a grayscale model with an InvalidInputError', async () => {
    const ctx = await getTestContext();
    const { meta, sd } = await loadFixture('tiny_gray_single_window');
    const network = new SCUNet(meta.config);
    loadStateDict(network, sd);
    const model = new RestorationModel(ctx, network, 'tiny');
    const rgb = { width: 5, height: 4, channels: 3, data: new Float32Array(60) };
    await expect(model.runFloat(rgb)).rejects.toBeInstanceOf(InvalidInputError);
    await expect(model.runFloat(rgb)).rejects.toThrow(/grayscale.*1 channel.*RGB \(3 channels\)/);
    model.dispose();
    // The network itself refuses too, before any GPU work.
    const graph = new Graph();
    expect(() => network.forward(new ForwardBuilder(ctx, graph), graph.input([1, 4, 5, 3]))).toThrow(InvalidInputError);
  });
});
