import { describe, expect, it } from 'vitest';
import { InvalidInputError, StateDictError } from '../../src/errors';
import { Graph } from '../../src/gpu/graph';
import { type FeatureNetwork, loadFeatureNetwork } from '../../src/models/vgg';
import { addPerceptualLoss, type PerceptualLossOptions } from '../../src/training/perceptual-loss';
import { readCheckpoint } from '../../src/weights/checkpoint';
import type { StateDict } from '../../src/weights/state-dict';
import { readFixtureBytes, readFixtureF32, readFixtureJson } from '../helpers/fixture-loader';
import { getTestContext } from '../helpers/gpu';
import { relL2 } from '../helpers/random';
import type { NCHW } from '../helpers/reference-spatial';
import { runGraph } from '../helpers/run-graph';

/*
 * BasicSR's PerceptualLoss on a reduced VGG19 (torchvision's layer indices, widths [4, 8, 8, 12, 12], random seeded
 * weights read from a torch.save .pth) against PyTorch 1.13 in float64 (tools/torch/perceptual_fixtures.py): the
 * loss and its gradient with respect to the prediction, for ESRGAN's conv5_4 L1, several layers before and after
 * their ReLU with MSE on a gray image, and the Frobenius criterion with range_norm.
 */

const DIR = 'test/fixtures/perceptual';

interface Stored {
  shape: number[];
  offset: number;
}

interface PerceptualCase {
  layerWeights: Record<string, number>;
  criterion: 'l1' | 'l2' | 'fro';
  useInputNorm: boolean;
  rangeNorm: boolean;
  perceptualWeight: number;
  pred: Stored;
  target: Stored;
  loss: number;
  grad: Stored;
}

async function fixtures() {
  const json = await readFixtureJson<{ perceptual: Record<string, PerceptualCase> }>(`${DIR}/fixtures.json`);
  const bin = await readFixtureF32(`${DIR}/fixtures.bin`);
  const tensor = (s: Stored) => ({
    shape: s.shape as unknown as NCHW,
    data: bin.subarray(s.offset / 4, s.offset / 4 + s.shape.reduce((a, b) => a * b, 1)),
  });
  return { cases: json.perceptual, tensor };
}

async function vgg19StateDict(): Promise<StateDict> {
  return readCheckpoint(await readFixtureBytes(`${DIR}/vgg19.pth`), { name: 'vgg19.pth' });
}

async function lossAndGrad(
  vgg: FeatureNetwork,
  pred: { shape: NCHW; data: ArrayLike<number> },
  target: typeof pred,
  options: PerceptualLossOptions,
) {
  const ctx = await getTestContext();
  let dispose = () => {};
  try {
    const [run] = await runGraph([pred, target], (g, [p, t]) => {
      const r = addPerceptualLoss(ctx, g, vgg, p, t, options);
      dispose = r.dispose;
      return [r.loss, r.grad];
    });
    return { loss: run.outputs[0][0], grad: run.outputs[1] };
  } finally {
    dispose();
  }
}

describe('perceptual loss (BasicSR PerceptualLoss) equals PyTorch 1.13', () => {
  for (const name of ['esrgan', 'gray-multi-mse', 'fro-range-norm']) {
    it(
      name,
      async () => {
        const { cases, tensor } = await fixtures();
        const c = cases[name];
        const vgg = loadFeatureNetwork(await vgg19StateDict(), { expect: 'vgg19' });
        const { loss, grad } = await lossAndGrad(vgg, tensor(c.pred), tensor(c.target), {
          layerWeights: c.layerWeights,
          criterion: c.criterion,
          useInputNorm: c.useInputNorm,
          rangeNorm: c.rangeNorm,
          perceptualWeight: c.perceptualWeight,
        });
        expect(Math.abs(loss - c.loss) / Math.abs(c.loss)).toBeLessThan(1e-4);
        expect(relL2(grad, tensor(c.grad).data)).toBeLessThan(1e-4);
      },
      60_000,
    );
  }
});

describe('perceptual loss refuses bad input with a typed error', () => {
  it('a wrong key or shape in the .pth names the key', async () => {
    const sd = await vgg19StateDict();
    const missing = new Map(sd);
    missing.delete('features.16.bias');
    expect(() => loadFeatureNetwork(missing)).toThrow(StateDictError);
    expect(() => loadFeatureNetwork(missing)).toThrow(/features\.16\.bias/);
    const reshaped = new Map(sd);
    const w = sd.get('features.2.weight')!;
    reshaped.set('features.2.weight', { ...w, shape: [w.shape[0], w.shape[1], 1, 9] });
    expect(() => loadFeatureNetwork(reshaped)).toThrow(/features\.2\.weight/);
    const extra = new Map(sd);
    extra.set('features.99.weight', w);
    expect(() => loadFeatureNetwork(extra)).toThrow(StateDictError);
    expect(() => loadFeatureNetwork(sd, { expect: 'vgg16' })).toThrow(InvalidInputError);
    // The classifier is ignored; a state_dict of `features` alone loads too.
    const featuresOnly: StateDict = new Map([...sd].filter(([k]) => k.startsWith('features.')).map(([k, t]) => [k.slice(9), t]));
    expect(loadFeatureNetwork(featuresOnly).backbone).toBe('vgg19');
  });

  it('images too small for the layer, unknown layers, mismatched shapes, bad channel counts', async () => {
    const ctx = await getTestContext();
    const vgg = loadFeatureNetwork(await vgg19StateDict());
    const build = (predShape: [number, number, number, number], targetShape: typeof predShape, options: PerceptualLossOptions) => {
      const g = new Graph();
      return () => addPerceptualLoss(ctx, g, vgg, g.input(predShape), g.input(targetShape), options);
    };
    expect(build([1, 15, 40, 3], [1, 15, 40, 3], { layerWeights: { conv5_4: 1 } })).toThrow(/too small for layer conv5_4.*16×16/);
    expect(build([1, 15, 40, 3], [1, 15, 40, 3], { layerWeights: { conv5_4: 1 } })).toThrow(InvalidInputError);
    // conv3_4 comes before the third pool: 4 px suffice.
    const small = build([1, 4, 4, 3], [1, 4, 4, 3], { layerWeights: { conv3_4: 1 } })();
    small.dispose();
    expect(build([1, 16, 16, 3], [1, 16, 16, 3], { layerWeights: { conv6_1: 1 } })).toThrow(/conv6_1/);
    expect(build([1, 16, 16, 3], [1, 16, 18, 3], { layerWeights: { conv1_2: 1 } })).toThrow(/does not match/);
    expect(build([1, 16, 16, 2], [1, 16, 16, 2], { layerWeights: { conv1_2: 1 } })).toThrow(/2 channels/);
    expect(build([1, 16, 16, 3], [1, 16, 16, 3], { layerWeights: { conv1_2: 1 }, criterion: 'l3' as 'l1' })).toThrow(/criterion/);
  });
});
