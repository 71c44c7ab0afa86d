import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import { ReLU } from '../layers/activations';
import { subtract } from '../layers/autograd-ops';
import { BatchNorm2d } from '../layers/batchnorm';
import { Conv2d } from '../layers/conv2d';
import type { ForwardBuilder, ForwardOptions } from '../layers/forward-builder';
import { Module } from '../layers/module';
import { checkKeysMatch } from '../layers/module-tree';
import { Sequential } from '../layers/sequential';
import { requireIntegers, requireOneOf } from './config-checks';
import { type KeyShapes, shapeOf } from './key-shapes';
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

/** KAIR's BatchNorm eps and momentum (basicblock.py), not PyTorch's defaults 1e-5 and 0.1. */
const KAIR_BN_EPS = 1e-4;
const KAIR_BN_MOMENTUM = 0.9;

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
    requireIntegers('DnCNN', { inChannels: [inChannels, 1], outChannels: [outChannels, 1], nc: [nc, 1], nb: [nb, 3] });
    requireOneOf('DnCNN', 'actMode', actMode, ['R', 'BR']);
    if (inChannels !== outChannels) throw new InvalidInputError('DnCNN residual output needs in_nc == out_nc');
    const conv = (cin: number, cout: number) => new Conv2d(cin, cout, 3, { padding: 1, bias: true });
    const head = [conv(inChannels, nc), new ReLU()];
    const body: Module[] = [];
    for (let i = 0; i < nb - 2; i++) {
      body.push(conv(nc, nc));
      if (actMode === 'BR') body.push(new BatchNorm2d(nc, KAIR_BN_EPS, KAIR_BN_MOMENTUM));
      body.push(new ReLU());
    }
    const tail = conv(nc, outChannels);
    this.model = new Sequential(...head, ...body, tail);
  }

  override get supportsTraining(): boolean {
    return true;
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

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    this.checkOptions(options, options.label ?? this.architecture);
    if (x.shape[3] !== this.config.inChannels) {
      throw new InvalidInputError(`DnCNN expects ${this.config.inChannels} image channel(s), got ${x.shape[3]}`);
    }
    // Conv [→ BatchNorm, folded when the weights were loaded] → ReLU steps, one dispatch each.
    const noise = this.model.forward(b, x, { label: 'model' });
    return subtract(b, x, noise, 'x - model(x)');
  }
}

const NET = 'KAIR DnCNN';

/**
 * Recognises a DnCNN state_dict from its keys and shapes: `model.0.weight` [nc, in_nc, 3, 3], the last conv
 * gives out_nc, and BatchNorm keys (`running_mean`) mean act_mode 'BR'. Then every key and shape is checked
 * against the network that config builds (InvalidInputError naming what does not fit).
 */
export function inferDnCNNConfig(keys: KeyShapes): DnCNNConfig {
  const [nc, inChannels] = shapeOf(keys, 'model.0.weight', NET, 4);
  const convIndices = [...keys.keys()]
    .map((k) => /^model\.(\d+)\.weight$/.exec(k))
    .filter((m): m is RegExpExecArray => m !== null && keys.get(m[0])!.shape.length === 4)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  const hasBN = [...keys.keys()].some((k) => k.endsWith('.running_mean'));
  const last = keys.get(`model.${convIndices[convIndices.length - 1]}.weight`)!;
  const config: DnCNNConfig = {
    inChannels,
    outChannels: last.shape[0],
    nc,
    nb: convIndices.length,
    actMode: hasBN ? 'BR' : 'R',
  };
  checkKeysMatch(new DnCNN(config), keys, `${NET} (nb ${config.nb}, act_mode '${config.actMode}')`);
  return config;
}
