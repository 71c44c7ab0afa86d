import { describe, expect, it } from 'vitest';
import { namedParameters } from '../../src/layers/module';
import { SCUNet, type SCUNetConfig } from '../../src/models/scunet';
import { Trainer } from '../../src/training/trainer';
import { readFixtureJson } from '../helpers/fixture-loader';
import { getTestContext } from '../helpers/gpu';
import { relL2 } from '../helpers/random';
import { checkTrainingParity, readTrainingFixture } from '../helpers/training-parity';
import { ConvTransBlockPair, type PairConfig } from '../helpers/conv-trans-block-pair';

/*
 * Whole training steps of SCUNet's building block against PyTorch 1.13 (tools/torch/make_scunet_training_fixtures.py):
 * two ConvTransBlocks, W then SW, conv_dim 8 and trans_dim 32 (one 32-wide head), on a 16×16 map: 1×1 convs,
 * channel split, residual 3×3-ReLU-3×3 branch, LayerNorms, qkv and output Linears, window attention with the
 * relative position bias (and the shifted-window roll and mask), exact-GELU MLP, concat and residuals, through 5
 * steps of Adam.
 */

describe('SCUNet training steps equal PyTorch 1.13', () => {
  it('scunet-ctb-pair-mse-adam', async () => {
    const fx = await readTrainingFixture<PairConfig>('test/fixtures/training/scunet-ctb-pair-mse-adam', true);
    await checkTrainingParity(await getTestContext(), new ConvTransBlockPair(fx.config), fx);
  }, 300_000);
});

/*
 * The whole SCUNet (gray, dim 64, one ConvTransBlock in m_down1 and m_up1, the strided convs and transposed convs,
 * the additive skips, replicate padding of a 56×60 image to 64×64 and the crop back), 3 steps of SGD with momentum.
 * Its 1.35 M weights are not stored: every random value comes from hashUniform, restated from the generator, and the
 * fixture keeps per parameter 8 fixed random projections ("sketches") of its step-1 gradient and of its change over
 * the 3 steps; their relative L2 error tracks the full tensors' (random projections preserve norms).
 */

interface SCUNetFixture {
  torch: string;
  config: SCUNetConfig;
  shape: [number, number, number, number];
  lr: number;
  momentum: number;
  losses: number[];
  output_step1: number[];
  grad_sketches: Record<string, number[]>;
  change_sketches: Record<string, number[]>;
}

/** frac(sin((i + 1)·12.9898 + (k + 1)·78.233)·43758.5453) for i < count, in float64 (the generator's hash_uniform). */
function hashUniform(k: number, count: number): Float64Array {
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const v = Math.sin((i + 1) * 12.9898 + (k + 1) * 78.233) * 43758.5453;
    out[i] = v - Math.floor(v);
  }
  return out;
}

function nameKey(name: string): number {
  let k = 0;
  for (let j = 0; j < name.length; j++) k += (j + 1) * name.charCodeAt(j);
  return k % 9973;
}

/** offset + scale·(2u − 1), rounded to f32 as torch's `.float()`. */
function hashed(k: number, count: number, scale: number, offset = 0): Float64Array {
  return hashUniform(k, count).map((u) => Math.fround(offset + scale * (u * 2 - 1)));
}

const SKETCHES = 8;
const projections = new Map<number, Float64Array[]>();

function sketch(v: ArrayLike<number>): number[] {
  const n = v.length;
  if (!projections.has(n))
    projections.set(
      n,
      Array.from({ length: SKETCHES }, (_, j) => hashUniform(10000 + j, n).map((u) => u * 2 - 1)),
    );
  return projections.get(n)!.map((r) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += v[i] * r[i];
    return s / Math.sqrt(n);
  });
}

describe('SCUNet (whole network) training steps equal PyTorch 1.13', () => {
  it('scunet-gray-d64-sgd', async () => {
    const fx = await readFixtureJson<SCUNetFixture>('test/fixtures/training/scunet-gray-d64-sgd.json');
    const model = new SCUNet(fx.config);
    const initial = new Map<string, Float64Array>();
    for (const [name, p] of namedParameters(model)) {
      const count = p.shape.reduce((a, b) => a * b, 1);
      const k = nameKey(name);
      if (name.endsWith('relative_position_params')) p.data = hashed(k, count, 0.5);
      else if (name.includes('.ln') && name.endsWith('weight')) p.data = hashed(k, count, 0.2, 1);
      else if (p.shape.length > 1) p.data = hashed(k, count, 1 / Math.sqrt(count / p.shape[0]));
      else p.data = hashed(k, count, 0.1);
      initial.set(name, p.data);
    }
    const [n, c, h, w] = fx.shape;
    const count = n * c * h * w;
    const input = Float32Array.from(hashed(20000, count, 0.5, 0.5));
    const noise = hashed(20001, count, 1);
    const target = input.map((v, i) => v + 0.1 * noise[i]);
    const ctx = await getTestContext();
    const trainer = await Trainer.create(ctx, model, {
      batchShape: fx.shape,
      loss: { kind: 'mse' },
      optimizer: { kind: 'sgd', lr: fx.lr, momentum: fx.momentum, dampening: 0, weightDecay: 0, nesterov: false },
      returnOutput: true,
    });
    try {
      for (let s = 1; s <= fx.losses.length; s++) {
        const r = await trainer.step({ input, target });
        expect(Math.abs(r.loss - fx.losses[s - 1]) / fx.losses[s - 1], `loss of step ${s}`).toBeLessThanOrEqual(s === 1 ? 1e-5 : 1e-4);
        if (s > 1) continue;
        expect(relL2(r.output!, fx.output_step1), 'output of step 1').toBeLessThanOrEqual(1e-5);
        const grads = await trainer.gradients();
        expect([...grads.keys()].sort()).toEqual(Object.keys(fx.grad_sketches).sort());
        for (const [name, g] of grads) expect(relL2(sketch(g), fx.grad_sketches[name]), `gradient of ${name}`).toBeLessThanOrEqual(1e-4);
      }
      const state = await trainer.stateDict();
      for (const [name, ref] of Object.entries(fx.change_sketches)) {
        const before = initial.get(name)!;
        const change = Float64Array.from(state.get(name)!.data, (v, i) => v - before[i]);
        expect(relL2(sketch(change), ref), `change of ${name} over ${fx.losses.length} steps`).toBeLessThanOrEqual(1e-4);
      }
    } finally {
      trainer.dispose();
    }
  }, 600_000);
});
