import { describe, expect, it } from 'vitest';
import { trainBenchSettings } from '../../bench/train-args';

/** The training benchmark's command line (bench/train.ts): the batches, --quick, and refused values. */
describe('trainBenchSettings', () => {
  it('runs the issue’s batches by default: DnCNN 16 × 64², the U-Nets 4 × 64², five timed runs after one warm-up', () => {
    expect(trainBenchSettings({})).toEqual({ quick: false, runs: 5, warmup: 1, size: 64, dncnnBatch: 16, unetBatch: 4, kernelBatch: 16 });
  });

  it('makes --quick smaller and shorter', () => {
    const quick = trainBenchSettings({ quick: true });
    const full = trainBenchSettings({ quick: false });
    expect(quick.quick).toBe(true);
    expect(quick.runs).toBeLessThan(full.runs);
    expect(quick.dncnnBatch).toBeLessThan(full.dncnnBatch);
    expect(quick.unetBatch).toBeLessThan(full.unetBatch);
    expect(quick.kernelBatch).toBeLessThan(full.kernelBatch);
    expect(quick.size).toBe(64);
  });

  it('lets --runs and --warmup override either mode, and keeps --json', () => {
    expect(trainBenchSettings({ quick: true, runs: '7', warmup: '0', json: 'out.json' })).toMatchObject({
      quick: true,
      runs: 7,
      warmup: 0,
      json: 'out.json',
    });
    expect(trainBenchSettings({ runs: '1' }).runs).toBe(1);
  });

  it.each([
    [{ runs: '0' }, /--runs must be an integer ≥ 1, got '0'/],
    [{ runs: '2.5' }, /--runs/],
    [{ runs: 'five' }, /--runs/],
    [{ runs: ' ' }, /--runs/],
    [{ warmup: '-1' }, /--warmup must be an integer ≥ 0, got '-1'/],
    [{ json: '' }, /--json needs a file name/],
  ])('refuses %o, naming the option', (values, message) => {
    expect(() => trainBenchSettings(values)).toThrow(message);
  });
});
