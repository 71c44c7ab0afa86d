import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/errors';
import { lossFrom } from '../../src/cli/train-options';

describe('train --loss', () => {
  it('reads one loss, with mse the default and masked-mse the default with --masks', () => {
    expect(lossFrom({})).toEqual({ kind: 'mse' });
    expect(lossFrom({ loss: 'l1' })).toEqual({ kind: 'l1' });
    expect(lossFrom({ masks: 'm', lambda: '2' })).toEqual({ kind: 'masked-mse', lambda: 2 });
  });

  it('reads a weighted sum with criteria and variants', () => {
    expect(lossFrom({ loss: 'l1+0.1*sobel+0.05*laplacian:mse+1e-4*tv:squared+0.5*ssim' })).toEqual({
      kind: 'sum',
      terms: [
        { kind: 'l1' },
        { kind: 'sobel', weight: 0.1 },
        { kind: 'laplacian', criterion: 'mse', weight: 0.05 },
        { kind: 'tv', variant: 'squared', weight: 1e-4 },
        { kind: 'ssim', weight: 0.5 },
      ],
    });
    expect(lossFrom({ loss: 'masked-mse + 0.2*sobel', masks: 'm', lambda: '3' })).toEqual({
      kind: 'sum',
      terms: [
        { kind: 'masked-mse', lambda: 3 },
        { kind: 'sobel', weight: 0.2 },
      ],
    });
  });

  it('names what it cannot read', () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ loss: 'l2' }, /--loss/],
      [{ loss: 'l1+x*sobel' }, /--loss weight needs a number/],
      [{ loss: 'l1:mse' }, /l1 takes no ':mse'/],
      [{ loss: 'sobel:huber' }, /--loss sobel:/],
      [{ loss: 'tv' }, /regulariser/],
      [{ loss: 'l1+' }, /cannot read ''/],
      [{ loss: 'l1', lambda: '2' }, /--lambda weighs the defects/],
      [{ loss: 'l1', masks: 'm', lambda: '2' }, /--loss masked-mse and --masks DIR go together/],
    ];
    for (const [values, message] of bad) {
      expect(() => lossFrom(values), JSON.stringify(values)).toThrow(UsageError);
      expect(() => lossFrom(values), JSON.stringify(values)).toThrow(message);
    }
  });
});
