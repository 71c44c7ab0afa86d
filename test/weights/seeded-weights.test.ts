import { describe, expect, it } from 'vitest';
import { seededTensor } from '../helpers/seeded-weights';

// Expected values printed by tools/torch/seeded_weights.py (numpy), the generator the PyTorch fixture scripts
// use; the TypeScript twin must reproduce them exactly or every full-size network fixture would be wrong.
describe('seeded weights agree with the Python generator', () => {
  it('conv weight, bias and running_var match bit for bit', () => {
    const t = seededTensor(7, 'm_head.0.weight', [64, 1, 3, 3]).data as Float32Array;
    expect(Array.from(t.slice(0, 5))).toEqual([
      -0.35285821557044983, -0.20732295513153076, -0.5313646197319031, -0.5557937026023865, 0.46960777044296265,
    ]);
    expect(Array.from(t.slice(-3))).toEqual([-0.233448326587677, 0.23577101528644562, 0.08959180861711502]);
    expect(Array.from(seededTensor(7, 'a.bias', [5]).data as Float32Array)).toEqual([
      -0.05700439214706421, -0.02853337861597538, -0.005488704424351454, 0.07610315829515457, 0.0895281732082367,
    ]);
    expect(Array.from(seededTensor(3, 'bn.running_var', [4]).data as Float32Array)).toEqual([
      0.5151001811027527, 1.29002845287323, 0.5400439500808716, 0.8159446120262146,
    ]);
  });
  it('counters are int64 zeros', () => {
    const t = seededTensor(1, 'bn.num_batches_tracked', []);
    expect(t.dtype).toBe('int64');
    expect(t.data.length).toBe(1);
  });
});
