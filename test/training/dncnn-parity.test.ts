import { describe, expect, it } from 'vitest';
import { namedParameters } from '../../src/layers/module';
import { DnCNN } from '../../src/models/dncnn';
import { Trainer } from '../../src/training/trainer';
import type { OptimizerConfig } from '../../src/training/optimizer-config';
import { readFixtureJson } from '../helpers/fixture-loader';
import { getTestContext } from '../helpers/gpu';
import { relL2 } from '../helpers/random';

/*
 * Whole training steps of a reduced KAIR DnCNN (nc 8, nb 5, R and BR with BatchNorm momentum 0.9, eps 1e-4)
 * against PyTorch 1.13 (tools/torch/make_training_fixtures.py): the loss of every step, the output and every
 * gradient of the first step, and the state_dict (weights, running statistics, num_batches_tracked) after 1, 5
 * and 20 updates of SGD (momentum, Nesterov), Adam and AdamW, all on the same batch; losses MSE, L1, Charbonnier
 * and 1 − SSIM.
 */

interface TensorJson {
  shape: number[];
  data: number[];
}

interface TrainingFixture {
  torch: string;
  config: { in_nc: number; out_nc: number; nc: number; nb: number; act_mode: 'R' | 'BR' };
  loss: 'mse' | 'l1' | 'charbonnier' | 'ssim';
  optimizer: {
    kind: 'sgd' | 'adam' | 'adamw';
    lr: number;
    betas?: [number, number];
    eps?: number;
    weight_decay?: number;
    momentum?: number;
    nesterov?: boolean;
    dampening?: number;
  };
  input: TensorJson;
  target: TensorJson;
  initial: Record<string, TensorJson>;
  losses: number[];
  grads_step1: Record<string, TensorJson>;
  output_step1: TensorJson;
  after: Record<string, Record<string, TensorJson>>;
}

const DIR = 'test/fixtures/training';
/** Written by tools/torch/make_training_fixtures.py (listed, not read from the folder, so the browser runs it too). */
const FILES = [
  ...['sgd', 'sgd-nesterov', 'adam', 'adamw'].flatMap((opt) => [`dncnn-r-mse-${opt}.json`, `dncnn-br-mse-${opt}.json`]),
  'dncnn-br-l1-adam.json',
  'dncnn-r-charbonnier-adam.json',
  'dncnn-r-ssim-adam.json',
];

function optimizerOf(o: TrainingFixture['optimizer']): OptimizerConfig {
  if (o.kind === 'sgd') {
    return {
      kind: 'sgd',
      lr: o.lr,
      momentum: o.momentum ?? 0,
      dampening: o.dampening ?? 0,
      weightDecay: o.weight_decay ?? 0,
      nesterov: o.nesterov ?? false,
    };
  }
  return {
    kind: o.kind,
    lr: o.lr,
    betas: o.betas ?? [0.9, 0.999],
    eps: o.eps ?? 1e-8,
    weightDecay: o.weight_decay ?? (o.kind === 'adamw' ? 1e-2 : 0),
  };
}

describe('DnCNN training steps equal PyTorch 1.13', () => {
  for (const file of FILES) {
    it(
      file,
      async () => {
        const fx = await readFixtureJson<TrainingFixture>(`${DIR}/${file}`);
        const ctx = await getTestContext();
        const model = new DnCNN({
          inChannels: fx.config.in_nc,
          outChannels: fx.config.out_nc,
          nc: fx.config.nc,
          nb: fx.config.nb,
          actMode: fx.config.act_mode,
        });
        for (const [name, p] of namedParameters(model)) p.data = Float64Array.from(fx.initial[name].data);
        const [n, c, h, w] = fx.input.shape;
        const trainer = await Trainer.create(ctx, model, {
          batchShape: [n, c, h, w],
          loss: { kind: fx.loss },
          optimizer: optimizerOf(fx.optimizer),
          returnOutput: true,
        });
        try {
          const batch = { input: fx.input.data, target: fx.target.data };
          // A convolution's bias just before a train-mode BatchNorm has a zero gradient in exact arithmetic (BN
          // subtracts the batch mean): both sides hold f32 rounding noise there, so those are compared absolutely,
          // and under Adam (whose step is ≈ lr·sign(g) whatever |g|) only within lr per step.
          const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((t, v) => t + v * v, 0));
          const largest = Math.max(...Object.values(fx.grads_step1).map((g) => norm(g.data)));
          const inert = new Set(Object.keys(fx.grads_step1).filter((k) => norm(fx.grads_step1[k].data) < 1e-5 * largest));
          for (const k of [...inert]) inert.add(k.replace(/^model\.(\d+)\.bias$/, (_, i: string) => `model.${Number(i) + 1}.running_mean`));
          const adam = fx.optimizer.kind !== 'sgd';
          const checkState = async (after: string) => {
            const state = await trainer.stateDict();
            const expected = fx.after[after];
            expect([...state.keys()].sort()).toEqual(Object.keys(expected).sort());
            for (const [name, t] of state) {
              const ref = expected[name];
              expect(t.shape, name).toEqual(ref.shape);
              if (t.dtype === 'int64') expect([...t.data], `${name} after ${after}`).toEqual(ref.data);
              else if (inert.has(name) && adam) {
                const drift = Math.max(...Array.from(t.data, (v, i) => Math.abs(v - ref.data[i])));
                expect(drift, `${name} after ${after} step(s)`).toBeLessThanOrEqual(2 * fx.optimizer.lr * Number(after));
              } else expect(relL2(t.data, ref.data), `${name} after ${after} step(s)`).toBeLessThanOrEqual(1e-4);
            }
          };
          for (let s = 1; s <= 20; s++) {
            const r = await trainer.step(batch);
            expect(Math.abs(r.loss - fx.losses[s - 1]) / Math.abs(fx.losses[s - 1]), `loss of step ${s}`).toBeLessThanOrEqual(
              s === 1 ? 1e-5 : 1e-4,
            );
            if (s === 1) {
              expect(relL2(r.output!, fx.output_step1.data), 'output of step 1').toBeLessThanOrEqual(1e-5);
              const grads = await trainer.gradients();
              for (const [name, ref] of Object.entries(fx.grads_step1)) {
                const g = grads.get(name)!;
                if (inert.has(name)) expect(norm(g), `gradient of ${name} (zero in exact arithmetic)`).toBeLessThanOrEqual(1e-5 * largest);
                else expect(relL2(g, ref.data), `gradient of ${name}`).toBeLessThanOrEqual(1e-4);
              }
            }
            if (String(s) in fx.after) await checkState(String(s));
          }
        } finally {
          trainer.dispose();
        }
      },
      120_000,
    );
  }
});
