import { InvalidInputError } from '../errors';
import type { GPUContext } from '../gpu/context';
import type { Graph, TensorValue } from '../gpu/graph';
import { RELU } from '../kernels/activation';
import { foldBatchNorm } from '../weights/fold-batchnorm';
import { ReLU } from './activations';
import { BatchNorm2d } from './batchnorm';
import { Conv2d } from './conv2d';
import { Module } from './module';

/** nn.Sequential: children named by their index, which is what the state_dict keys carry (`model.3.weight`). */
export class Sequential extends Module {
  readonly layers: Module[];
  private bnFolded = false;

  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
  }

  override children(): [string, Module][] {
    return this.layers.map((m, i) => [String(i), m]);
  }

  /** Folds every Conv2d → BatchNorm2d pair (call once, after loading weights). */
  foldBatchNorms(): void {
    if (this.bnFolded) return;
    this.layers.forEach((m, i) => {
      if (!(m instanceof BatchNorm2d)) return;
      const conv = this.layers[i - 1];
      if (!(conv instanceof Conv2d)) throw new InvalidInputError(`BatchNorm2d at index ${i} does not follow a Conv2d`);
      foldBatchNorm(conv, m);
    });
    this.bnFolded = true;
  }

  /**
   * Adds the layers to the graph, fusing Conv2d [→ BatchNorm2d (folded)] [→ ReLU] into one dispatch each.
   */
  forward(ctx: GPUContext, graph: Graph, x: TensorValue, label = 'seq'): TensorValue {
    this.foldBatchNorms();
    let i = 0;
    while (i < this.layers.length) {
      const m = this.layers[i];
      if (!(m instanceof Conv2d)) {
        throw new InvalidInputError(`${label}.${i}: ${m.constructor.name} cannot start a fused step here`);
      }
      let next = i + 1;
      if (this.layers[next] instanceof BatchNorm2d) next++;
      const relu = this.layers[next] instanceof ReLU;
      if (relu) next++;
      x = m.forward(ctx, graph, x, relu ? { activation: RELU } : {}, `${label}.${i}`);
      i = next;
    }
    return x;
  }
}
