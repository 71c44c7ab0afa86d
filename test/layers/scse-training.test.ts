import { describe, expect, it } from 'vitest';
import type { TensorValue } from '../../src/gpu/graph';
import { Conv2d } from '../../src/layers/conv2d';
import type { ForwardBuilder, ForwardOptions } from '../../src/layers/forward-builder';
import { Module, namedParameters } from '../../src/layers/module';
import { SCSEModule } from '../../src/layers/scse';
import type { Network } from '../../src/models/network';
import { Trainer } from '../../src/training/trainer';
import { getTestContext } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';

/*
 * smp's SCSEModule in a training graph: y = u·cSE(u) + u·sSE(u) after a 1×1 convolution u = conv(x), MSE loss,
 * one step. The output and every parameter's gradient (the convolution's carries dL/du, so the gradient reaching
 * the module's input through its three paths: the product, the average pool, the sSE convolution) against a
 * float64 reference written here, itself checked against central differences of the loss.
 */

class SCSENet extends Module implements Network {
  readonly architecture = 'SCSENet';
  readonly scale = 1;
  readonly conv: Conv2d;
  readonly scse: SCSEModule;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    reduction: number,
  ) {
    super();
    this.conv = new Conv2d(inChannels, outChannels, 1, { bias: true });
    this.scse = new SCSEModule(outChannels, reduction);
  }

  override get supportsTraining(): boolean {
    return true;
  }

  override children(): [string, Module][] {
    return [
      ['conv', this.conv],
      ['scse', this.scse],
    ];
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    return this.scse.forward(b, this.conv.forward(b, x, { label: 'conv' }), { label: options.label ?? 'scse' });
  }
}

type Params = Record<string, Float64Array>;
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** Loss, output and gradients in float64, NCHW; the parameter names are the state_dict's. */
function reference(p: Params, x: Float64Array, t: Float64Array, dims: { n: number; ci: number; c: number; hid: number; hw: number }) {
  const { n, ci, c, hid, hw } = dims;
  const W0 = p['conv.weight'];
  const b0 = p['conv.bias'];
  const W1 = p['scse.cSE.1.weight'];
  const b1 = p['scse.cSE.1.bias'];
  const W2 = p['scse.cSE.3.weight'];
  const b2 = p['scse.cSE.3.bias'];
  const ws = p['scse.sSE.0.weight'];
  const bs = p['scse.sSE.0.bias'];
  const u = new Float64Array(n * c * hw);
  for (let b = 0; b < n; b++)
    for (let o = 0; o < c; o++)
      for (let q = 0; q < hw; q++) {
        let v = b0[o];
        for (let k = 0; k < ci; k++) v += W0[o * ci + k] * x[(b * ci + k) * hw + q];
        u[(b * c + o) * hw + q] = v;
      }
  const pooled = new Float64Array(n * c);
  for (let i = 0; i < n * c; i++) for (let q = 0; q < hw; q++) pooled[i] += u[i * hw + q] / hw;
  const h = new Float64Array(n * hid);
  const a = new Float64Array(n * c);
  for (let b = 0; b < n; b++) {
    for (let j = 0; j < hid; j++) {
      let v = b1[j];
      for (let o = 0; o < c; o++) v += W1[j * c + o] * pooled[b * c + o];
      h[b * hid + j] = Math.max(v, 0);
    }
    for (let o = 0; o < c; o++) {
      let v = b2[o];
      for (let j = 0; j < hid; j++) v += W2[o * hid + j] * h[b * hid + j];
      a[b * c + o] = sigmoid(v);
    }
  }
  const s = new Float64Array(n * hw);
  for (let b = 0; b < n; b++)
    for (let q = 0; q < hw; q++) {
      let v = bs[0];
      for (let o = 0; o < c; o++) v += ws[o] * u[(b * c + o) * hw + q];
      s[b * hw + q] = sigmoid(v);
    }
  const y = new Float64Array(n * c * hw);
  let loss = 0;
  const gy = new Float64Array(y.length);
  for (let b = 0; b < n; b++)
    for (let o = 0; o < c; o++)
      for (let q = 0; q < hw; q++) {
        const i = (b * c + o) * hw + q;
        y[i] = u[i] * a[b * c + o] + u[i] * s[b * hw + q];
        loss += (y[i] - t[i]) ** 2 / y.length;
        gy[i] = (2 * (y[i] - t[i])) / y.length;
      }
  // Backward: the product, then each gate branch, all adding into du.
  const g: Params = Object.fromEntries(Object.entries(p).map(([k, v]) => [k, new Float64Array(v.length)]));
  const du = new Float64Array(u.length);
  const dza = new Float64Array(n * c);
  const dzs = new Float64Array(n * hw);
  for (let b = 0; b < n; b++)
    for (let o = 0; o < c; o++)
      for (let q = 0; q < hw; q++) {
        const i = (b * c + o) * hw + q;
        du[i] = gy[i] * (a[b * c + o] + s[b * hw + q]);
        dza[b * c + o] += gy[i] * u[i];
        dzs[b * hw + q] += gy[i] * u[i];
      }
  for (let i = 0; i < n * c; i++) dza[i] *= a[i] * (1 - a[i]);
  for (let i = 0; i < n * hw; i++) dzs[i] *= s[i] * (1 - s[i]);
  for (let b = 0; b < n; b++) {
    const dh = new Float64Array(hid);
    for (let o = 0; o < c; o++) {
      g['scse.cSE.3.bias'][o] += dza[b * c + o];
      for (let j = 0; j < hid; j++) {
        g['scse.cSE.3.weight'][o * hid + j] += dza[b * c + o] * h[b * hid + j];
        dh[j] += W2[o * hid + j] * dza[b * c + o];
      }
    }
    for (let j = 0; j < hid; j++) {
      const dz = h[b * hid + j] > 0 ? dh[j] : 0;
      g['scse.cSE.1.bias'][j] += dz;
      for (let o = 0; o < c; o++) {
        g['scse.cSE.1.weight'][j * c + o] += dz * pooled[b * c + o];
        for (let q = 0; q < hw; q++) du[(b * c + o) * hw + q] += (W1[j * c + o] * dz) / hw;
      }
    }
    for (let q = 0; q < hw; q++) {
      const dz = dzs[b * hw + q];
      g['scse.sSE.0.bias'][0] += dz;
      for (let o = 0; o < c; o++) {
        g['scse.sSE.0.weight'][o] += dz * u[(b * c + o) * hw + q];
        du[(b * c + o) * hw + q] += dz * ws[o];
      }
    }
  }
  for (let b = 0; b < n; b++)
    for (let o = 0; o < c; o++)
      for (let q = 0; q < hw; q++) {
        const d = du[(b * c + o) * hw + q];
        g['conv.bias'][o] += d;
        for (let k = 0; k < ci; k++) g['conv.weight'][o * ci + k] += d * x[(b * ci + k) * hw + q];
      }
  return { loss, y, grads: g };
}

describe('SCSEModule training', () => {
  const dims = { n: 2, ci: 3, c: 6, hid: 3, hw: 5 * 7 };
  const [h, w] = [5, 7];
  const model = new SCSENet(dims.ci, dims.c, 2);
  namedParameters(model).forEach(([, p], k) => {
    p.data = randomArray(
      p.shape.reduce((x, y) => x * y, 1),
      100 + k,
      0.8,
    );
  });
  const params = (): Params => Object.fromEntries(namedParameters(model).map(([name, p]) => [name, Float64Array.from(p.data!)]));
  const x = randomArray(dims.n * dims.ci * dims.hw, 1);
  const t = randomArray(dims.n * dims.c * dims.hw, 2);

  it('has a float64 reference that matches central differences of its loss', () => {
    const p = params();
    const { grads } = reference(p, x, t, dims);
    for (const [name, v] of Object.entries(p)) {
      const numeric = Float64Array.from(v, (_, i) => {
        const keep = v[i];
        const step = 1e-6 * Math.max(1, Math.abs(keep));
        v[i] = keep + step;
        const up = reference(p, x, t, dims).loss;
        v[i] = keep - step;
        const down = reference(p, x, t, dims).loss;
        v[i] = keep;
        return (up - down) / (2 * step);
      });
      expect(relL2(grads[name], numeric), name).toBeLessThanOrEqual(1e-6);
    }
  });

  it('trains: one step gives the float64 output and gradients', async () => {
    const ref = reference(params(), x, t, dims);
    const trainer = await Trainer.create(await getTestContext(), model, {
      batchShape: [dims.n, dims.ci, h, w],
      loss: { kind: 'mse' },
      optimizer: { kind: 'sgd', lr: 0.01 },
      returnOutput: true,
    });
    try {
      const r = await trainer.step({ input: x, target: t });
      expect(Math.abs(r.loss - ref.loss) / ref.loss).toBeLessThanOrEqual(1e-5);
      expect(relL2(r.output!, ref.y)).toBeLessThanOrEqual(1e-5);
      const grads = await trainer.gradients();
      for (const [name, g] of Object.entries(ref.grads)) expect(relL2(grads.get(name)!, g), name).toBeLessThanOrEqual(1e-4);
    } finally {
      trainer.dispose();
    }
  });
});
