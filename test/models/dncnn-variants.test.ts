import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { BatchNorm2d } from '../../src/layers/batchnorm';
import { loadStateDict } from '../../src/layers/module';
import { DnCNNVariant, type DnCNNVariantConfig, recogniseDnCNNVariant } from '../../src/models/dncnn-variants';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { PyInstance } from '../../src/weights/py-instance';
import { readTorchObject } from '../../src/weights/pth';
import { readFixtureBytes } from '../helpers/fixture-loader';
import { getTestContext } from '../helpers/gpu';
import { loadNetworkFixture, runNetworkFixture, subtract } from '../helpers/network-fixtures';
import { relL2 } from '../helpers/random';

const FOLDER = 'dncnn-variants';
const FIXTURES = [
  'cszn_tiny_gray',
  'cszn_tiny_color',
  'saoyan_tiny_gray',
  'saoyan_tiny_gray_noise',
  'cszn_full_gray',
  'saoyan_full_gray',
  'saoyan_full20_color_noise',
  'cszn_tiny_gray_module', // a whole pickled module (torch.save(model)) in the legacy format, as cszn ships
];

// Full-size networks on a software adapter: first-time shader compilation plus the run can take minutes when
// the machine is busy.
const FIXTURE_TIMEOUT_MS = 600_000;

const load = (name: string) => loadNetworkFixture<DnCNNVariantConfig>(FOLDER, name);

/** A key → shape map from a fixture's state_dict, to be edited into inconsistent checkpoints. */
async function keyShapes(name: string): Promise<Map<string, { shape: number[] }>> {
  const f = await load(name);
  return new Map([...f.stateDict].map(([k, t]) => [k, { shape: [...t.shape] }]));
}

describe('DnCNN variants (cszn, SaoYan) against PyTorch', () => {
  for (const name of FIXTURES) {
    it(
      name,
      async () => {
        const ctx = await getTestContext();
        const f = await load(name);
        // The recogniser reads the config from the keys alone; it always picks the clean output.
        expect(recogniseDnCNNVariant(f.stateDict)).toEqual({ ...f.config, output: 'clean' });
        const network = new DnCNNVariant(f.config);
        expect(network.architecture).toBe(f.architecture);
        const y = await runNetworkFixture(ctx, network, f);
        expect(y.shape).toEqual(f.outputShape);
        expect(relL2(y.data, f.output)).toBeLessThanOrEqual(1e-4);
        if (f.config.output === 'clean') {
          // The clean output is mostly the input itself; compare the network's part (the noise) on its own too.
          expect(relL2(subtract(f.input, y.data), subtract(f.input, f.output))).toBeLessThanOrEqual(1e-4);
        }
      },
      FIXTURE_TIMEOUT_MS,
    );
  }
});

describe('DnCNN variants: layouts and checkpoints', () => {
  it("SaoYan's DataParallel 'module.' prefix is stripped, and its layout has no bias", async () => {
    const raw = readTorchObject(await readFixtureBytes(`test/fixtures/${FOLDER}/saoyan_tiny_gray.pth`)) as Map<string, unknown>;
    const tensorKeys = [...raw.keys()].filter((k) => k !== '_metadata'); // OrderedDict metadata, not a tensor
    expect(tensorKeys.length).toBeGreaterThan(0);
    expect(tensorKeys.filter((k) => !String(k).startsWith('module.dncnn.'))).toEqual([]);
    const f = await load('saoyan_tiny_gray');
    // Convolutions (4-D weights) have no bias; the only biases are BatchNorm's.
    const convs = [...f.stateDict].filter(([, t]) => t.shape.length === 4).map(([k]) => k.replace(/weight$/, 'bias'));
    expect(convs.length).toBe(5);
    expect(convs.filter((k) => f.stateDict.has(k))).toEqual([]);
    expect(recogniseDnCNNVariant(f.stateDict)?.layout).toBe('saoyan');
  });

  it("cszn's whole-module checkpoint (a pickled __main__.DnCNN, legacy format) reads as its state_dict", async () => {
    const raw = readTorchObject(await readFixtureBytes(`test/fixtures/${FOLDER}/cszn_tiny_gray_module.pth`));
    expect(raw).toBeInstanceOf(PyInstance);
    expect((raw as PyInstance).className).toBe('__main__.DnCNN');
    const f = await load('cszn_tiny_gray_module');
    expect([...f.stateDict.keys()].filter((k) => !k.endsWith('num_batches_tracked')).length).toBe(2 + 3 * (1 + 4) + 1); // head weight and bias, 3 × (conv + BatchNorm), tail
  });

  it('the fixtures are sensitive to the BatchNorm eps (1e-4 cszn vs 1e-5 SaoYan)', async () => {
    const ctx = await getTestContext();
    const f = await load('cszn_tiny_gray');
    const network = new DnCNNVariant(f.config);
    for (const m of network.dncnn.layers) if (m instanceof BatchNorm2d) (m as unknown as { eps: number }).eps = 1e-5;
    const y = await runNetworkFixture(ctx, network, f);
    expect(relL2(subtract(f.input, y.data), subtract(f.input, f.output))).toBeGreaterThan(1e-2);
  });

  it('a SaoYan checkpoint does not load into a cszn network (the first conv has no bias)', async () => {
    const f = await load('saoyan_tiny_gray');
    const cszn = new DnCNNVariant({ ...f.config, layout: 'cszn' });
    expect(() => loadStateDict(cszn, f.stateDict)).toThrow(/dncnn\.0\.bias/);
  });

  it('other networks are not recognised', async () => {
    expect(recogniseDnCNNVariant(new Map([['model.0.weight', { shape: [64, 1, 3, 3] }]]))).toBeNull();
    expect(recogniseDnCNNVariant(new Map([['conv_first.weight', { shape: [64, 3, 3, 3] }]]))).toBeNull();
  });
});

describe('DnCNN variants: wrong channel counts and inconsistent checkpoints', () => {
  it('rejects a colour image for a grayscale model', async () => {
    const ctx = await getTestContext();
    const f = await load('cszn_tiny_gray');
    const network = new DnCNNVariant(f.config);
    loadStateDict(network, f.stateDict);
    const model = new RestorationModel(ctx, network, 'cszn tiny');
    const rgb = { width: 4, height: 3, channels: 3, data: new Float32Array(36) };
    await expect(model.runFloat(rgb)).rejects.toBeInstanceOf(InvalidInputError);
    model.dispose();
  });

  const cases: [string, string, (k: Map<string, { shape: number[] }>) => void, RegExp][] = [
    [
      'last conv with other output channels',
      'cszn_tiny_gray',
      (k) => k.set('dncnn.11.weight', { shape: [3, 8, 3, 3] }),
      /outputs 3 channels but the input has 1/,
    ],
    [
      'hidden conv of the wrong width',
      'saoyan_tiny_gray',
      (k) => k.set('dncnn.5.weight', { shape: [8, 16, 3, 3] }),
      /dncnn\.5\.weight.*\[8, 16, 3, 3\]/,
    ],
    ['missing BatchNorm', 'cszn_tiny_gray', (k) => k.delete('dncnn.6.running_var'), /dncnn\.6\.running_var/],
    ['bias on a body conv', 'cszn_tiny_gray', (k) => k.set('dncnn.2.bias', { shape: [8] }), /dncnn\.2\.bias/],
    ['a missing layer', 'cszn_tiny_gray', (k) => k.delete('dncnn.5.weight'), /expected dncnn\.5/],
    ['a 1-D first weight', 'cszn_tiny_gray', (k) => k.set('dncnn.0.weight', { shape: [8] }), /dncnn\.0\.weight/],
  ];
  for (const [what, name, edit, message] of cases) {
    it(`recogniser: ${what}`, async () => {
      const keys = await keyShapes(name);
      edit(keys);
      expect(() => recogniseDnCNNVariant(keys)).toThrow(InvalidInputError);
      expect(() => recogniseDnCNNVariant(keys)).toThrow(message);
    });
  }

  it('the constructor rejects impossible configs', () => {
    const ok: DnCNNVariantConfig = { layout: 'cszn', imageChannels: 1, features: 8, depth: 5, output: 'clean' };
    expect(() => new DnCNNVariant({ ...ok, depth: 1 })).toThrow(InvalidInputError);
    expect(() => new DnCNNVariant({ ...ok, imageChannels: 0 })).toThrow(InvalidInputError);
    expect(() => new DnCNNVariant({ ...ok, layout: 'kair' as never })).toThrow(InvalidInputError);
  });
});
