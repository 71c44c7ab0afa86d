import { describe, expect, it } from 'vitest';
import { InvalidInputError, StateDictError } from '../../src/errors';
import { loadStateDict } from '../../src/layers/module';
import { DnCNN } from '../../src/models/dncnn';
import { networkFromCheckpoint } from '../../src/models/load';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { readPth } from '../../src/weights/pth';
import { getTestContext } from '../helpers/gpu';
import { DNCNN_FIXTURES, loadDnCNNFixture } from '../helpers/fixtures';
import { relL2 } from '../helpers/random';

describe('DnCNN against PyTorch', () => {
  for (const name of DNCNN_FIXTURES) {
    it(name, async () => {
      const ctx = await getTestContext();
      const f = loadDnCNNFixture(name);
      const network = networkFromCheckpoint(f.weights, { name });
      expect(network).toBeInstanceOf(DnCNN);
      expect((network as DnCNN).config).toEqual(f.config); // inferred from the keys alone
      const model = new RestorationModel(ctx, network, name);
      const [, c, h, w] = f.inputShape;
      const { image } = await model.runFloat({ width: w, height: h, channels: c, data: f.input });
      model.dispose();
      expect([image.channels, image.height, image.width]).toEqual([c, h, w]);
      expect(relL2(image.data, f.output)).toBeLessThanOrEqual(1e-4);
    });
  }
});

describe('DnCNN input and weight errors', () => {
  it('rejects a colour image for a grayscale model, naming both channel counts', async () => {
    const ctx = await getTestContext();
    const f = loadDnCNNFixture('tiny_r_gray');
    const model = new RestorationModel(ctx, networkFromCheckpoint(f.weights), 'tiny');
    const rgb = { width: 4, height: 3, channels: 3, data: new Float32Array(36) };
    await expect(model.runFloat(rgb)).rejects.toThrow(/grayscale.*1 channel.*RGB \(3 channels\)/);
    await expect(model.runFloat(rgb)).rejects.toBeInstanceOf(InvalidInputError);
    model.dispose();
  });

  it('rejects NaN input with its position', async () => {
    const ctx = await getTestContext();
    const f = loadDnCNNFixture('tiny_r_gray');
    const model = new RestorationModel(ctx, networkFromCheckpoint(f.weights), 'tiny');
    const data = new Float32Array(20);
    data[7] = Number.NaN;
    await expect(model.runFloat({ width: 5, height: 4, channels: 1, data })).rejects.toThrow(/non-finite.*row 1, column 2/);
    model.dispose();
  });

  it('rejects a data length that does not match the size', async () => {
    const ctx = await getTestContext();
    const f = loadDnCNNFixture('tiny_r_gray');
    const model = new RestorationModel(ctx, networkFromCheckpoint(f.weights), 'tiny');
    await expect(model.runFloat({ width: 5, height: 4, channels: 1, data: new Float32Array(19) })).rejects.toBeInstanceOf(
      InvalidInputError,
    );
    model.dispose();
  });

  it('names a missing weight key', () => {
    const f = loadDnCNNFixture('tiny_r_gray');
    const network = new DnCNN(f.config);
    const sd = readPth(f.weights);
    sd.delete('model.4.bias');
    expect(() => loadStateDict(network, sd)).toThrow(/missing model\.4\.bias/);
  });

  it('names a weight with the wrong shape', async () => {
    const f = loadDnCNNFixture('tiny_r_gray');
    const sd = readPth(f.weights);
    // The same file loaded into a wider network: every hidden conv has the wrong shape.
    const wider = new DnCNN({ ...f.config, nc: 16 });
    let error: unknown;
    try {
      loadStateDict(wider, sd);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StateDictError);
    expect((error as StateDictError).code).toBe('SHAPE_MISMATCH');
    expect(String(error)).toMatch(/model\.0\.weight.*\[8, 1, 3, 3\].*\[16, 1, 3, 3\] is expected/);
  });

  it('reports unexpected keys', async () => {
    const f = loadDnCNNFixture('tiny_r_gray');
    const sd = readPth(f.weights);
    const shorter = new DnCNN({ ...f.config, nb: 4 });
    expect(() => loadStateDict(shorter, sd)).toThrow(StateDictError);
  });
});
