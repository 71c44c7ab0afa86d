import { InvalidInputError } from '../errors';
import type { GPUContext } from '../gpu/context';
import type { Graph, TensorValue } from '../gpu/graph';
import { binary } from '../kernels/elementwise';
import { ReLU } from '../layers/activations';
import { BatchNorm2d } from '../layers/batchnorm';
import { Conv2d } from '../layers/conv2d';
import { Module } from '../layers/module';
import { Sequential } from '../layers/sequential';
import type { Network } from './network';

export interface DnCNNConfig {
  /** Image channels in (1 grayscale, 3 colour). */
  inChannels: number;
  outChannels: number;
  /** Feature channels of the hidden layers (64). */
  nc: number;
  /** Number of convolutions (17 for dncnn_15/25/50, 20 for the blind models). */
  nb: number;
  /** 'R': BatchNorm already merged (KAIR's released files). 'BR': conv → BatchNorm(eps 1e-4) → ReLU. */
  actMode: 'R' | 'BR';
}

export const DNCNN_25: DnCNNConfig = { inChannels: 1, outChannels: 1, nc: 64, nb: 17, actMode: 'R' };

/** KAIR's BatchNorm eps (basicblock.py), not PyTorch's default 1e-5. */
const KAIR_BN_EPS = 1e-4;

/**
 * KAIR's DnCNN (models/network_dncnn.py): a flat `model` Sequential of 3×3 convolutions with bias,
 *   head: Conv(in_nc→nc) + ReLU
 *   body: (nb−2) × [Conv(nc→nc) (+ BatchNorm) + ReLU]
 *   tail: Conv(nc→out_nc)
 * and the residual output `x − model(x)`.
 */
export class DnCNN extends Module implements Network {
  readonly architecture = 'DnCNN';
  readonly scale = 1;
  readonly model: Sequential;

  constructor(readonly config: DnCNNConfig) {
    super();
    const { inChannels, outChannels, nc, nb, actMode } = config;
    if (nb < 3) throw new InvalidInputError(`DnCNN needs nb >= 3 layers, got ${nb}`);
    if (inChannels !== outChannels) throw new InvalidInputError('DnCNN residual output needs in_nc == out_nc');
    const conv = (cin: number, cout: number) => new Conv2d(cin, cout, 3, { padding: 1, bias: true });
    const head = [conv(inChannels, nc), new ReLU()];
    const body: Module[] = [];
    for (let i = 0; i < nb - 2; i++) {
      body.push(conv(nc, nc));
      if (actMode === 'BR') body.push(new BatchNorm2d(nc, KAIR_BN_EPS));
      body.push(new ReLU());
    }
    const tail = conv(nc, outChannels);
    this.model = new Sequential(...head, ...body, tail);
  }

  get inChannels(): number {
    return this.config.inChannels;
  }

  get outChannels(): number {
    return this.config.outChannels;
  }

  override children(): [string, Module][] {
    return [['model', this.model]];
  }

  release(): void {
    for (const m of this.model.layers) if (m instanceof Conv2d) m.release();
  }

  forward(ctx: GPUContext, graph: Graph, x: TensorValue): TensorValue {
    if (x.shape[3] !== this.config.inChannels) {
      throw new InvalidInputError(`DnCNN expects ${this.config.inChannels} image channel(s), got ${x.shape[3]}`);
    }
    const noise = this.model.forward(ctx, graph, x, 'model');
    return binary(graph, 'sub', x, noise, 'x - model(x)', ctx.limits.maxComputeWorkgroupsPerDimension);
  }
}

/**
 * Recognises a DnCNN state_dict from its keys and shapes: `model.0.weight` [nc, in_nc, 3, 3], the last conv
 * gives out_nc, and BatchNorm keys (`running_mean`) mean act_mode 'BR'.
 */
export function inferDnCNNConfig(keys: Map<string, { shape: number[] }>): DnCNNConfig {
  const head = keys.get('model.0.weight');
  if (!head || head.shape.length !== 4) {
    throw new InvalidInputError("not a KAIR DnCNN checkpoint: no 4-D 'model.0.weight'");
  }
  const convIndices = [...keys.keys()]
    .map((k) => /^model\.(\d+)\.weight$/.exec(k))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .filter((i) => keys.get(`model.${i}.weight`)!.shape.length === 4)
    .sort((a, b) => a - b);
  const hasBN = [...keys.keys()].some((k) => k.endsWith('.running_mean'));
  const last = keys.get(`model.${convIndices[convIndices.length - 1]}.weight`)!;
  return {
    inChannels: head.shape[1],
    outChannels: last.shape[0],
    nc: head.shape[0],
    nb: convIndices.length,
    actMode: hasBN ? 'BR' : 'R',
  };
}
