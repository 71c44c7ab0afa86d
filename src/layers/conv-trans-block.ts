import { InvalidInputError } from '../errors';
import type { GPUContext } from '../gpu/context';
import type { TensorValue } from '../gpu/graph';
import { formatShape } from '../gpu/tensor';
import { ReLU } from './activations';
import { Conv2d } from './conv2d';
import { convTransBlockTrainingForward } from './conv-trans-block-training';
import type { ForwardBuilder, ForwardOptions } from './forward-builder';
import { Module, requireData } from './module';
import { Sequential } from './sequential';
import { SwinBlock } from './swin';

/**
 * SCUNet's ConvTransBlock for C = conv_dim + trans_dim channels (SCUNet always splits C in halves):
 *   c, t = split(conv1_1(x), (conv_dim, trans_dim))          conv branch FIRST
 *   c    = c + conv_block(c)                                  3×3 (no bias) → ReLU → 3×3 (no bias), zero pad 1
 *   t    = SwinBlock(t)                                       channels-last, which our NHWC tensors already are
 *   out  = x + conv1_2(cat(c, t))
 * Children `trans_block`, `conv1_1`, `conv1_2`, `conv_block` (0, 1, 2) as in PyTorch.
 *
 * No split or concatenation copies: conv1_1 runs as two 1×1 convolutions over its output rows [0, conv_dim) and
 * [conv_dim, C), and both branches write their results (with their residuals fused) straight into the two
 * channel slices of one buffer that conv1_2 reads.
 */
export class ConvTransBlock extends Module {
  readonly transBlock: SwinBlock;
  readonly conv1_1: Conv2d;
  readonly conv1_2: Conv2d;
  readonly convBlock: Sequential;

  constructor(
    readonly convDim: number,
    readonly transDim: number,
    readonly shifted: boolean,
  ) {
    super();
    if (convDim % 4 !== 0) {
      // The conv branch writes channel offset 0, the Swin branch offset convDim: slices start on whole vec4s.
      throw new InvalidInputError(`ConvTransBlock: conv_dim ${convDim} must be a multiple of 4`);
    }
    const c = convDim + transDim;
    this.transBlock = new SwinBlock(transDim, shifted);
    this.conv1_1 = new Conv2d(c, c, 1, { bias: true });
    this.conv1_2 = new Conv2d(c, c, 1, { bias: true });
    const conv3x3 = () => new Conv2d(convDim, convDim, 3, { padding: 1, bias: false });
    this.convBlock = new Sequential(conv3x3(), new ReLU(), conv3x3());
  }

  override get supportsTraining(): boolean {
    return true;
  }

  get channels(): number {
    return this.convDim + this.transDim;
  }

  override children(): [string, Module][] {
    return [
      ['trans_block', this.transBlock],
      ['conv1_1', this.conv1_1],
      ['conv1_2', this.conv1_2],
      ['conv_block', this.convBlock],
    ];
  }

  /** conv1_1 cut by output rows into the conv-branch and Swin-branch halves, built from its loaded weights. */
  private splitConv1x1(ctx: GPUContext): { conv: Conv2d; trans: Conv2d } {
    return this.onDevice(ctx, () => {
      const c = this.channels;
      const weight = requireData(this.conv1_1.weight, 'conv1_1 weight'); // [C, C, 1, 1]: row o is C values
      const bias = requireData(this.conv1_1.bias!, 'conv1_1 bias');
      const rows = (from: number, count: number): Conv2d => {
        const conv = new Conv2d(c, count, 1, { bias: true });
        conv.weight.data = weight.slice(from * c, (from + count) * c);
        conv.bias!.data = bias.slice(from, from + count);
        return conv;
      };
      return { conv: rows(0, this.convDim), trans: rows(this.convDim, this.transDim) };
    });
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'block';
    this.checkOptions(options, label);
    if (x.shape[3] !== this.channels) {
      throw new InvalidInputError(`${label}: ConvTransBlock of ${this.channels} channels got ${formatShape(x.shape)}`);
    }
    if (b.training) return convTransBlockTrainingForward(b, this, x, label);
    const { conv, trans } = this.splitConv1x1(b.ctx);
    const c = conv.forward(b, x, { label: `${label}.conv1_1[conv]` });
    const t = trans.forward(b, x, { label: `${label}.conv1_1[trans]` });
    const [n, h, w] = x.shape;
    const cat = b.tensor([n, h, w, this.channels], `${label}.cat`);
    const residual = (tensor: TensorValue) => ({ residual: { tensor, mode: 'afterActivation' as const } });
    this.convBlock.forward(b, c, { epilogue: residual(c), output: { tensor: cat, channelOffset: 0 }, label: `${label}.conv_block` });
    this.transBlock.forward(b, t, { output: { tensor: cat, channelOffset: this.convDim }, label: `${label}.trans_block` });
    return this.conv1_2.forward(b, cat, { epilogue: residual(x), label: `${label}.conv1_2` });
  }
}
