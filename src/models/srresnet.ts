import { InvalidInputError } from '../errors';
import type { GPUContext } from '../gpu/context';
import type { Graph, TensorValue } from '../gpu/graph';
import { clamp } from '../kernels/pointwise';
import { BatchNorm2d } from '../layers/batchnorm';
import { Conv2d } from '../layers/conv2d';
import { Module } from '../layers/module';
import { PReLU } from '../layers/prelu';
import { releaseDescendants } from '../layers/release';
import { Sequential } from '../layers/sequential';
import { PixelShuffle } from '../layers/spatial';
import { requireIntegers, requireOneOf } from './config-checks';
import { consecutiveIndices, expectBatchNorm, expectShape, type KeyShapes, shapeOf } from './key-shapes';
import type { Network } from './network';

export interface SRResNetConfig {
  inChannels: number;
  outChannels: number;
  /** Feature channels (64). */
  features: number;
  /** Residual blocks in the trunk (16). */
  blocks: number;
  /** 2, 4 or 8: one PixelShuffle(2) upsample block per factor 2. */
  scale: 2 | 4 | 8;
  /** 'shared': nn.PReLU(), one slope per layer (weight [1], upstream); 'channel': nn.PReLU(features), weight [features]. */
  prelu: 'shared' | 'channel';
  /** Clamp the output to [0, 1], as the reference forward does (torch.clamp_ at its end). */
  clampOutput: boolean;
}

/** PyTorch's default BatchNorm eps: the SRGAN code builds nn.BatchNorm2d(channels). */
const BN_EPS = 1e-5;

const conv3x3 = (cin: number, cout: number, bias: boolean) => new Conv2d(cin, cout, 3, { padding: 1, bias });

/** `rcb` = Sequential(Conv3x3 no bias, BN, PReLU, Conv3x3 no bias, BN); forward x + rcb(x). */
export class ResidualConvBlock extends Module {
  readonly rcb: Sequential;

  constructor(
    readonly features: number,
    preluParameters: number,
  ) {
    super();
    this.rcb = new Sequential(
      conv3x3(features, features, false),
      new BatchNorm2d(features, BN_EPS),
      new PReLU(preluParameters),
      conv3x3(features, features, false),
      new BatchNorm2d(features, BN_EPS),
    );
  }

  override children(): [string, Module][] {
    return [['rcb', this.rcb]];
  }

  forward(ctx: GPUContext, graph: Graph, x: TensorValue, label = 'block'): TensorValue {
    this.rcb.foldBatchNorms();
    const [conv1, , prelu, conv2] = this.rcb.layers as [Conv2d, BatchNorm2d, PReLU, Conv2d, BatchNorm2d];
    const h = conv1.forward(ctx, graph, x, { prelu: prelu.slopes(ctx, this.features) }, `${label}.rcb.0`);
    return conv2.forward(ctx, graph, h, { residual: { tensor: x, mode: 'afterActivation' } }, `${label}.rcb.3`);
  }
}

/**
 * `upsample_block` = Sequential(Conv3x3 F → 4F with bias, PixelShuffle(2), PReLU). The PReLU runs in the conv's
 * epilogue before the shuffle, each slope repeated for the 4 conv channels that land in its channel.
 */
export class UpsampleBlock extends Module {
  readonly upsample_block: Sequential;

  constructor(
    readonly features: number,
    preluParameters: number,
  ) {
    super();
    this.upsample_block = new Sequential(conv3x3(features, 4 * features, true), new PixelShuffle(2), new PReLU(preluParameters));
  }

  override children(): [string, Module][] {
    return [['upsample_block', this.upsample_block]];
  }

  forward(ctx: GPUContext, graph: Graph, x: TensorValue, label = 'upsample'): TensorValue {
    const [conv, shuffle, prelu] = this.upsample_block.layers as [Conv2d, PixelShuffle, PReLU];
    const y = conv.forward(ctx, graph, x, { prelu: prelu.slopes(ctx, 4 * this.features, 4) }, `${label}.upsample_block.0`);
    return shuffle.forward(ctx, graph, y, `${label}.upsample_block.1`);
  }
}

/**
 * SRGAN's SRResNet generator (Ledig et al.), in the layout of Lornatang/SRGAN-PyTorch:
 *   out1 = PReLU(conv9x9(x))                          conv1 = Sequential(Conv9x9 with bias, PReLU)
 *   t    = trunk(out1)                                blocks × ResidualConvBlock
 *   out  = BN(conv3x3(t)) + out1                      conv2 = Sequential(Conv3x3 no bias, BN)
 *   out  = upsampling(out)                            log2(scale) × UpsampleBlock
 *   out  = clamp(conv3(out), 0, 1)                    conv3 = Conv9x9 with bias
 * BatchNorms are folded into their convolutions (float64, at first use); PReLUs and skips run in conv epilogues.
 */
export class SRResNet extends Module implements Network {
  readonly architecture = 'SRResNet';
  readonly conv1: Sequential;
  readonly trunk: Sequential;
  readonly conv2: Sequential;
  readonly upsampling: Sequential;
  readonly conv3: Conv2d;

  constructor(readonly config: SRResNetConfig) {
    super();
    const { inChannels, outChannels, features, blocks, scale, prelu } = config;
    requireIntegers('SRResNet', {
      inChannels: [inChannels, 1],
      outChannels: [outChannels, 1],
      features: [features, 1],
      blocks: [blocks, 0],
    });
    // Upstream's upsample blocks are PixelShuffle(2) whatever the factor, so ×3 does not exist.
    requireOneOf('SRResNet', 'scale', scale, [2, 4, 8]);
    requireOneOf('SRResNet', 'prelu', prelu, ['shared', 'channel']);
    const slopes = prelu === 'shared' ? 1 : features;
    this.conv1 = new Sequential(new Conv2d(inChannels, features, 9, { padding: 4, bias: true }), new PReLU(slopes));
    this.trunk = new Sequential(...Array.from({ length: blocks }, () => new ResidualConvBlock(features, slopes)));
    this.conv2 = new Sequential(conv3x3(features, features, false), new BatchNorm2d(features, BN_EPS));
    this.upsampling = new Sequential(...Array.from({ length: Math.log2(scale) }, () => new UpsampleBlock(features, slopes)));
    this.conv3 = new Conv2d(features, outChannels, 9, { padding: 4, bias: true });
  }

  get inChannels(): number {
    return this.config.inChannels;
  }

  get outChannels(): number {
    return this.config.outChannels;
  }

  get scale(): number {
    return this.config.scale;
  }

  override children(): [string, Module][] {
    return [
      ['conv1', this.conv1],
      ['trunk', this.trunk],
      ['conv2', this.conv2],
      ['upsampling', this.upsampling],
      ['conv3', this.conv3],
    ];
  }

  release(): void {
    releaseDescendants(this);
  }

  forward(ctx: GPUContext, graph: Graph, x: TensorValue): TensorValue {
    if (x.shape[3] !== this.inChannels) {
      throw new InvalidInputError(`SRResNet expects ${this.inChannels} image channel(s), got ${x.shape[3]}`);
    }
    const { features } = this.config;
    const [headConv, headPrelu] = this.conv1.layers as [Conv2d, PReLU];
    const out1 = headConv.forward(ctx, graph, x, { prelu: headPrelu.slopes(ctx, features) }, 'conv1');
    let t = out1;
    this.trunk.layers.forEach((block, i) => {
      t = (block as ResidualConvBlock).forward(ctx, graph, t, `trunk.${i}`);
    });
    this.conv2.foldBatchNorms();
    const long = { residual: { tensor: out1, mode: 'afterActivation' } } as const;
    let out = (this.conv2.layers[0] as Conv2d).forward(ctx, graph, t, long, 'conv2 + conv1');
    this.upsampling.layers.forEach((block, i) => {
      out = (block as UpsampleBlock).forward(ctx, graph, out, `upsampling.${i}`);
    });
    out = this.conv3.forward(ctx, graph, out, {}, 'conv3');
    if (!this.config.clampOutput) return out;
    return clamp(graph, out, 0, 1, 'clamp [0, 1]', ctx.limits.maxComputeWorkgroupsPerDimension);
  }
}

const NET = 'SRResNet';

/**
 * Recognises an SRGAN SRResNet state_dict in the Lornatang layout: null unless it has `conv1.0.weight`,
 * `conv2.0.weight` and `conv3.weight`; otherwise the config from the shapes (9×9 head and tail, blocks from
 * `trunk.<i>`, scale 2^(number of `upsampling.<k>` blocks), PReLU slopes [1] → 'shared', [features] → 'channel'),
 * with `clampOutput: true` as the reference forward. Throws InvalidInputError on inconsistent shapes, missing
 * blocks or BatchNorms, or PReLUs that mix shared and per-channel slopes.
 */
export function recogniseSRResNet(keys: KeyShapes): SRResNetConfig | null {
  if (!keys.has('conv1.0.weight') || !keys.has('conv2.0.weight') || !keys.has('conv3.weight')) return null;
  const [features, inChannels] = shapeOf(keys, 'conv1.0.weight', NET, 4);
  expectShape(keys, 'conv1.0.weight', [features, inChannels, 9, 9], NET, '9×9 head convolution');
  expectShape(keys, 'conv1.0.bias', [features], NET);
  const preluKeys = ['conv1.1.weight'];
  const blocks = consecutiveIndices(keys, /^trunk\.(\d+)\.rcb\./, NET, 'residual block');
  for (let i = 0; i < blocks; i++) {
    const p = `trunk.${i}.rcb`;
    expectShape(keys, `${p}.0.weight`, [features, features, 3, 3], NET, `residual block of ${features} features`);
    expectBatchNorm(keys, `${p}.1`, features, NET);
    expectShape(keys, `${p}.3.weight`, [features, features, 3, 3], NET, `residual block of ${features} features`);
    expectBatchNorm(keys, `${p}.4`, features, NET);
    preluKeys.push(`${p}.2.weight`);
  }
  expectShape(keys, 'conv2.0.weight', [features, features, 3, 3], NET);
  expectBatchNorm(keys, 'conv2.1', features, NET);
  const ups = consecutiveIndices(keys, /^upsampling\.(\d+)\.upsample_block\./, NET, 'upsample block');
  if (ups < 1 || ups > 3) throw new InvalidInputError(`${NET} checkpoint: ${ups} upsample blocks; ×2, ×4 and ×8 have 1, 2 or 3`);
  for (let k = 0; k < ups; k++) {
    const p = `upsampling.${k}.upsample_block`;
    expectShape(keys, `${p}.0.weight`, [4 * features, features, 3, 3], NET, 'PixelShuffle(2) needs 4·features outputs');
    expectShape(keys, `${p}.0.bias`, [4 * features], NET);
    preluKeys.push(`${p}.2.weight`);
  }
  const outChannels = shapeOf(keys, 'conv3.weight', NET, 4)[0];
  expectShape(keys, 'conv3.weight', [outChannels, features, 9, 9], NET, '9×9 tail convolution');
  expectShape(keys, 'conv3.bias', [outChannels], NET);
  const slopeCounts = new Set(preluKeys.map((k) => shapeOf(keys, k, NET, 1)[0]));
  const [count] = slopeCounts;
  if (slopeCounts.size !== 1 || (count !== 1 && count !== features)) {
    const found = [...slopeCounts].map((c) => `[${c}]`).join(', ');
    throw new InvalidInputError(`${NET} checkpoint: PReLU slopes must all be [1] (shared) or all [${features}] (per channel), found ${found}`);
  }
  const scale = (2 ** ups) as 2 | 4 | 8;
  return { inChannels, outChannels, features, blocks, scale, prelu: count === 1 ? 'shared' : 'channel', clampOutput: true };
}
