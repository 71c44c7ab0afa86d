import type { GPUContext } from '../gpu/context';
import { BufferUsage } from '../gpu/flags';
import type { TensorValue } from '../gpu/graph';
import { applyCbam, cbamChannelGate, globalAvgMaxPool, packCbamMlp } from '../kernels/cbam';
import { channelMeanMax } from '../kernels/channel-mean-max';
import { InvalidInputError } from '../errors';
import { ReLU } from './activations';
import { cbamTrainingForward } from './cbam-training';
import { Conv2d } from './conv2d';
import { Linear } from './linear';
import type { ForwardBuilder, ForwardOptions } from './forward-builder';
import { Module, requireData } from './module';
import { Sequential } from './sequential';

/**
 * Convolutional block attention (channel gate, then spatial gate), with PyTorch parameter names:
 *   channel_mlp.0 = Linear(C, C/r), channel_mlp.1 = ReLU, channel_mlp.2 = Linear(C/r, C)   (shared by avg and max)
 *   spatial_conv  = Conv2d(2, 1, 7, padding 3, bias=False) over cat(mean_c, max_c)
 * forward(x) = (x·g_c)·g_s, see src/kernels/cbam.ts. Five dispatches: avg/max pool, MLP, channel mean/max, the
 * 7×7 conv with a fused sigmoid, and the gating (which can also add a residual and write into a channel slice).
 */
export class CBAM extends Module {
  readonly channelMlp: Sequential;
  readonly spatialConv: Conv2d;
  readonly hidden: number;

  constructor(
    readonly channels: number,
    readonly reduction: number,
  ) {
    super();
    this.hidden = Math.floor(channels / reduction);
    if (this.hidden < 1) throw new InvalidInputError(`CBAM on ${channels} channels with reduction ${reduction} leaves no hidden units`);
    this.channelMlp = new Sequential(new Linear(channels, this.hidden), new ReLU(), new Linear(this.hidden, channels));
    this.spatialConv = new Conv2d(2, 1, 7, { padding: 3, bias: false });
  }

  override children(): [string, Module][] {
    return [
      ['channel_mlp', this.channelMlp],
      ['spatial_conv', this.spatialConv],
    ];
  }

  override get fusesEpilogue(): boolean {
    return true;
  }

  override get writesChannelSlice(): boolean {
    return true;
  }

  /** Trains through one recorded step per op (cbam-training.ts). */
  override get supportsTraining(): boolean {
    return true;
  }

  /** The channel MLP packed for the gate kernel, uploaded once per context. */
  private mlpBuffer(ctx: GPUContext): GPUBuffer {
    return this.onDevice(ctx, () => {
      const [l1, , l2] = this.channelMlp.layers as [Linear, ReLU, Linear];
      const packed = packCbamMlp(
        {
          w1: requireData(l1.weight, 'CBAM channel_mlp.0.weight'),
          b1: requireData(l1.bias!, 'CBAM channel_mlp.0.bias'),
          w2: requireData(l2.weight, 'CBAM channel_mlp.2.weight'),
          b2: requireData(l2.bias!, 'CBAM channel_mlp.2.bias'),
        },
        this.channels,
        this.hidden,
      );
      return { mlp: ctx.createBufferWithData(packed, BufferUsage.STORAGE, `cbam ${this.channels} mlp`) };
    }).mlp;
  }

  /**
   * (x·g_c)·g_s, to a new tensor or into `options.output`; the only epilogue it fuses is a residual added after
   * the gating.
   */
  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'cbam';
    const { residual } = this.checkOptions(options, label, ['residual']);
    if (residual && residual.mode !== 'afterActivation') {
      throw new InvalidInputError(`${label}: CBAM adds a residual only after the gating`);
    }
    if (x.shape[3] !== this.channels) throw new InvalidInputError(`${label} expects ${this.channels} channels, got ${x.shape[3]}`);
    if (b.training) {
      const [l1, , l2] = this.channelMlp.layers as [Linear, ReLU, Linear];
      const mlp = { w1: l1.weight, b1: l1.bias!, w2: l2.weight, b2: l2.bias! };
      return cbamTrainingForward(
        b,
        { channels: this.channels, hidden: this.hidden, mlp, spatialConv: this.spatialConv },
        x,
        options,
        label,
      );
    }
    const mlp = this.mlpBuffer(b.ctx);
    const graph = b.graph;
    const pooled = globalAvgMaxPool(graph, x, `${label}.pool`);
    const cg = cbamChannelGate(graph, pooled, { weights: mlp, hidden: this.hidden, label });
    const meanMax = channelMeanMax(graph, x, `${label}.mean_max`, cg);
    const sg = this.spatialConv.forward(b, meanMax, { epilogue: { activation: { kind: 'sigmoid' } }, label: `${label}.spatial_conv` });
    const out = options.output && { tensor: options.output.tensor, offset: options.output.channelOffset };
    return applyCbam(graph, x, cg, sg, label, { residual: residual?.tensor, out });
  }
}
