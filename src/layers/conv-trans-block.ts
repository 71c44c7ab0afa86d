import { InvalidInputError } from '../errors';
import type { GPUContext } from '../gpu/context';
import type { Graph, TensorValue } from '../gpu/graph';
import { formatShape } from '../gpu/tensor';
import { RELU } from '../kernels/activation';
import { ReLU } from './activations';
import { Conv2d } from './conv2d';
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
  private readonly conv3x3a: Conv2d;
  private readonly conv3x3b: Conv2d;
  /** conv1_1 cut by output channels, built from its loaded weights on upload. */
  private halves: { ctx: GPUContext; conv: Conv2d; trans: Conv2d } | undefined;

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
    this.conv3x3a = new Conv2d(convDim, convDim, 3, { padding: 1, bias: false });
    this.conv3x3b = new Conv2d(convDim, convDim, 3, { padding: 1, bias: false });
    this.convBlock = new Sequential(this.conv3x3a, new ReLU(), this.conv3x3b);
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

  private splitConv1x1(ctx: GPUContext): { conv: Conv2d; trans: Conv2d } {
    if (this.halves?.ctx === ctx) return this.halves;
    this.releaseHalves();
    const c = this.channels;
    const weight = requireData(this.conv1_1.weight, 'conv1_1 weight'); // [C, C, 1, 1]: row o is C values
    const bias = requireData(this.conv1_1.bias!, 'conv1_1 bias');
    const rows = (from: number, count: number): Conv2d => {
      const conv = new Conv2d(c, count, 1, { bias: true });
      conv.weight.data = weight.slice(from * c, (from + count) * c);
      conv.bias!.data = bias.slice(from, from + count);
      conv.upload(ctx);
      return conv;
    };
    this.halves = { ctx, conv: rows(0, this.convDim), trans: rows(this.convDim, this.transDim) };
    return this.halves;
  }

  forward(ctx: GPUContext, graph: Graph, x: TensorValue, label = 'block'): TensorValue {
    if (x.shape[3] !== this.channels) {
      throw new InvalidInputError(`${label}: ConvTransBlock of ${this.channels} channels got ${formatShape(x.shape)}`);
    }
    const { conv, trans } = this.splitConv1x1(ctx);
    const c = conv.forward(ctx, graph, x, {}, `${label}.conv1_1[conv]`);
    const t = trans.forward(ctx, graph, x, {}, `${label}.conv1_1[trans]`);
    const [n, h, w] = x.shape;
    const cat = graph.tensor([n, h, w, this.channels], `${label}.cat`);
    const hidden = this.conv3x3a.forward(ctx, graph, c, { activation: RELU }, `${label}.conv_block.0`);
    this.conv3x3b.forward(
      ctx,
      graph,
      hidden,
      { residual: { tensor: c, mode: 'afterActivation' }, outChannelOffset: 0 },
      `${label}.conv_block.2`,
      cat,
    );
    this.transBlock.forward(ctx, graph, t, `${label}.trans_block`, { tensor: cat, channelOffset: this.convDim });
    return this.conv1_2.forward(ctx, graph, cat, { residual: { tensor: x, mode: 'afterActivation' } }, `${label}.conv1_2`);
  }

  private releaseHalves(): void {
    this.halves?.conv.release();
    this.halves?.trans.release();
    this.halves = undefined;
  }

  release(): void {
    this.releaseHalves();
    this.transBlock.release();
    this.conv1_1.release();
    this.conv1_2.release();
    this.conv3x3a.release();
    this.conv3x3b.release();
  }
}
