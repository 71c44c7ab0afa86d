import { InvalidInputError } from '../errors';
import { BufferUsage } from '../gpu/flags';
import type { TensorValue } from '../gpu/graph';
import { packGateWeights, scse, type TorchTensorLike } from '../kernels/gates';
import { ReLU, Sigmoid } from './activations';
import { Conv2d } from './conv2d';
import type { ForwardBuilder, ForwardOptions } from './forward-builder';
import { Module, type Parameter, requireData } from './module';
import { scseTrainingForward } from './scse-training';
import { Sequential } from './sequential';
import { AdaptiveAvgPool2d } from './spatial';

/** smp's SCSE reduction (base/modules.py: SCSEModule(in_channels, reduction=16)). */
export const SCSE_REDUCTION = 16;

/**
 * segmentation_models_pytorch's SCSEModule, with its parameter names:
 *   cSE = Sequential(AdaptiveAvgPool2d(1), Conv1×1(C → C/16), ReLU, Conv1×1(C/16 → C), Sigmoid)   keys cSE.1, cSE.3
 *   sSE = Sequential(Conv1×1(C → 1), Sigmoid)                                                      key  sSE.0
 *   out = x·cSE(x) + x·sSE(x)
 * In inference the 1×1 convolutions only hold weights: two gate kernels (src/kernels/gates.ts) run the whole
 * module. In training the two branches run as the Sequentials they are, and a broadcast product joins them
 * (scse-training.ts).
 */
export class SCSEModule extends Module {
  override get supportsTraining(): boolean {
    return true;
  }

  readonly cSE: Sequential;
  readonly sSE: Sequential;
  readonly hidden: number;
  private readonly squeeze: Conv2d;
  private readonly excite: Conv2d;
  private readonly spatial: Conv2d;

  constructor(
    readonly channels: number,
    reduction = SCSE_REDUCTION,
  ) {
    super();
    this.hidden = Math.floor(channels / reduction);
    if (this.hidden < 1) {
      throw new InvalidInputError(`SCSE on ${channels} channels with reduction ${reduction} has no hidden channels`);
    }
    this.squeeze = new Conv2d(channels, this.hidden, 1, { bias: true });
    this.excite = new Conv2d(this.hidden, channels, 1, { bias: true });
    this.spatial = new Conv2d(channels, 1, 1, { bias: true });
    this.cSE = new Sequential(new AdaptiveAvgPool2d(), this.squeeze, new ReLU(), this.excite, new Sigmoid());
    this.sSE = new Sequential(this.spatial, new Sigmoid());
  }

  override children(): [string, Module][] {
    return [
      ['cSE', this.cSE],
      ['sSE', this.sSE],
    ];
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'scse';
    this.checkOptions(options, label);
    if (x.shape[3] !== this.channels) {
      throw new InvalidInputError(`${label} expects ${this.channels} channels, got ${x.shape[3]}`);
    }
    if (b.training) return scseTrainingForward(b, this, x, label);
    const { channelGate, spatialGate } = this.onDevice(b.ctx, () => {
      const t = (p: Parameter | undefined, what: string): TorchTensorLike => ({ data: requireData(p!, what), shape: p!.shape });
      const packed = packGateWeights({
        cse1Weight: t(this.squeeze.weight, 'cSE.1.weight'),
        cse1Bias: t(this.squeeze.bias, 'cSE.1.bias'),
        cse2Weight: t(this.excite.weight, 'cSE.3.weight'),
        cse2Bias: t(this.excite.bias, 'cSE.3.bias'),
        sseWeight: t(this.spatial.weight, 'sSE.0.weight'),
        sseBias: t(this.spatial.bias, 'sSE.0.bias'),
      });
      const gpuLabel = `scse ${this.channels}`;
      return {
        channelGate: b.ctx.createBufferWithData(packed.channelGate, BufferUsage.STORAGE, `${gpuLabel} channel gate`),
        spatialGate: b.ctx.createBufferWithData(packed.spatialGate!, BufferUsage.STORAGE, `${gpuLabel} spatial gate`),
      };
    });
    return scse(b.graph, x, { channelGate, spatialGate, hidden: this.hidden, label });
  }
}

export type AttentionType = 'scse' | 'none';

/**
 * smp's `Attention(name, in_channels)` wrapper: `attention` is an SCSEModule (keys `attention.cSE.1.weight`, …)
 * or nn.Identity (no keys, and the input passes through).
 */
export class Attention extends Module {
  override get supportsTraining(): boolean {
    return true;
  }

  readonly attention: SCSEModule | undefined;

  constructor(type: AttentionType, channels: number, reduction = SCSE_REDUCTION) {
    super();
    if (type !== 'scse' && type !== 'none')
      throw new InvalidInputError(`unknown decoder attention '${String(type)}' (expected 'scse' or 'none')`);
    this.attention = type === 'scse' ? new SCSEModule(channels, reduction) : undefined;
  }

  override children(): [string, Module][] {
    return this.attention ? [['attention', this.attention]] : [];
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    return this.attention ? this.attention.forward(b, x, options) : x;
  }
}
