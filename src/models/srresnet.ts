import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import { add } from '../layers/autograd-ops';
import { BatchNorm2d, requireFolded } from '../layers/batchnorm';
import { clampWithBackward } from '../layers/clamp-training';
import { Conv2d } from '../layers/conv2d';
import type { ForwardBuilder, ForwardOptions } from '../layers/forward-builder';
import { Module } from '../layers/module';
import { checkKeysMatch } from '../layers/module-tree';
import { PReLU } from '../layers/prelu';
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

/**
 * `rcb` = Sequential(Conv3x3 no bias, BN, PReLU, Conv3x3 no bias, BN); forward x + rcb(x). For inference the
 * BatchNorms are folded into the convs when the weights load, the PReLU runs in the first conv's epilogue and the
 * skip in the second's: two dispatches. In training every layer is a step of its own (BatchNorm in train mode,
 * PReLU keeping its input) and the skip is an `add`.
 */
export class ResidualConvBlock extends Module {
  override get supportsTraining(): boolean {
    return true;
  }

  readonly rcb: Sequential;
  private readonly conv1: Conv2d;
  private readonly bn1: BatchNorm2d;
  private readonly prelu: PReLU;
  private readonly conv2: Conv2d;
  private readonly bn2: BatchNorm2d;

  constructor(
    readonly features: number,
    preluParameters: number,
  ) {
    super();
    this.conv1 = conv3x3(features, features, false);
    this.bn1 = new BatchNorm2d(features, BN_EPS);
    this.prelu = new PReLU(preluParameters);
    this.conv2 = conv3x3(features, features, false);
    this.bn2 = new BatchNorm2d(features, BN_EPS);
    this.rcb = new Sequential(this.conv1, this.bn1, this.prelu, this.conv2, this.bn2);
  }

  override children(): [string, Module][] {
    return [['rcb', this.rcb]];
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'block';
    this.checkOptions(options, label);
    if (b.training) return add(b, this.rcb.forward(b, x, { label: `${label}.rcb` }), x, `${label} + x`);
    requireFolded(this.bn1, `${label}.rcb.1`);
    requireFolded(this.bn2, `${label}.rcb.4`);
    const h = this.conv1.forward(b, x, { epilogue: this.prelu.epilogue(b, this.features), label: `${label}.rcb.0` });
    return this.conv2.forward(b, h, { epilogue: { residual: { tensor: x, mode: 'afterActivation' } }, label: `${label}.rcb.3` });
  }
}

/**
 * `upsample_block` = Sequential(Conv3x3 F → 4F with bias, PixelShuffle(2), PReLU). For inference the PReLU runs in
 * the conv's epilogue before the shuffle, each slope repeated for the 4 conv channels that land in its channel; in
 * training it runs after the shuffle, as PyTorch does, with the slopes as they are.
 */
export class UpsampleBlock extends Module {
  override get supportsTraining(): boolean {
    return true;
  }

  readonly upsample_block: Sequential;
  private readonly conv: Conv2d;
  private readonly shuffle = new PixelShuffle(2);
  private readonly prelu: PReLU;

  constructor(
    readonly features: number,
    preluParameters: number,
  ) {
    super();
    this.conv = conv3x3(features, 4 * features, true);
    this.prelu = new PReLU(preluParameters);
    this.upsample_block = new Sequential(this.conv, this.shuffle, this.prelu);
  }

  override children(): [string, Module][] {
    return [['upsample_block', this.upsample_block]];
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'upsample';
    this.checkOptions(options, label);
    if (b.training) return this.upsample_block.forward(b, x, { label: `${label}.upsample_block` });
    const y = this.conv.forward(b, x, { epilogue: this.prelu.epilogue(b, 4 * this.features, 4), label: `${label}.upsample_block.0` });
    return this.shuffle.forward(b, y, { label: `${label}.upsample_block.1` });
  }
}

/**
 * SRGAN's SRResNet generator (Ledig et al.), in the layout of Lornatang/SRGAN-PyTorch:
 *   out1 = PReLU(conv9x9(x))                          conv1 = Sequential(Conv9x9 with bias, PReLU)
 *   t    = trunk(out1)                                blocks × ResidualConvBlock
 *   out  = BN(conv3x3(t)) + out1                      conv2 = Sequential(Conv3x3 no bias, BN)
 *   out  = upsampling(out)                            log2(scale) × UpsampleBlock
 *   out  = clamp(conv3(out), 0, 1)                    conv3 = Conv9x9 with bias
 * For inference BatchNorms are folded into their convolutions (float64, when the weights load); PReLUs and skips
 * run in conv epilogues. Training (`trainingForward`) runs the layers as PyTorch does: BatchNorm in train mode,
 * standalone PReLUs, skips as adds and the clamp's backward (gradient where 0 ≤ x ≤ 1).
 */
export class SRResNet extends Module implements Network {
  override get supportsTraining(): boolean {
    return true;
  }

  readonly architecture = 'SRResNet';
  readonly conv1: Sequential;
  readonly trunk: Sequential;
  readonly conv2: Sequential;
  readonly upsampling: Sequential;
  readonly conv3: Conv2d;
  /** conv1's and conv2's layers, which `forward` runs itself to fuse the PReLU and the long skip. */
  private readonly head: { conv: Conv2d; prelu: PReLU };
  private readonly tail: { conv: Conv2d; bn: BatchNorm2d };

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
    this.head = { conv: new Conv2d(inChannels, features, 9, { padding: 4, bias: true }), prelu: new PReLU(slopes) };
    this.conv1 = new Sequential(this.head.conv, this.head.prelu);
    this.trunk = new Sequential(...Array.from({ length: blocks }, () => new ResidualConvBlock(features, slopes)));
    this.tail = { conv: conv3x3(features, features, false), bn: new BatchNorm2d(features, BN_EPS) };
    this.conv2 = new Sequential(this.tail.conv, this.tail.bn);
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

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    this.checkOptions(options, options.label ?? this.architecture);
    if (x.shape[3] !== this.inChannels) {
      throw new InvalidInputError(`SRResNet expects ${this.inChannels} image channel(s), got ${x.shape[3]}`);
    }
    if (b.training) return this.trainingForward(b, x);
    const { features } = this.config;
    const out1 = this.head.conv.forward(b, x, { epilogue: this.head.prelu.epilogue(b, features), label: 'conv1' });
    const t = this.trunk.forward(b, out1, { label: 'trunk' });
    requireFolded(this.tail.bn, 'conv2.1');
    const long = { residual: { tensor: out1, mode: 'afterActivation' } } as const;
    let out = this.tail.conv.forward(b, t, { epilogue: long, label: 'conv2 + conv1' });
    out = this.upsampling.forward(b, out, { label: 'upsampling' });
    out = this.conv3.forward(b, out, { label: 'conv3' });
    if (!this.config.clampOutput) return out;
    return clampWithBackward(b, out, 0, 1, 'clamp [0, 1]');
  }

  /** The training graph: every layer a step of its own, in PyTorch's order, each recording its backward. */
  private trainingForward(b: ForwardBuilder, x: TensorValue): TensorValue {
    const out1 = this.conv1.forward(b, x, { label: 'conv1' });
    const t = this.trunk.forward(b, out1, { label: 'trunk' });
    let out = add(b, this.conv2.forward(b, t, { label: 'conv2' }), out1, 'conv2 + conv1');
    out = this.upsampling.forward(b, out, { label: 'upsampling' });
    out = this.conv3.forward(b, out, { label: 'conv3' });
    return this.config.clampOutput ? clampWithBackward(b, out, 0, 1, 'clamp [0, 1]') : out;
  }
}

const NET = 'SRResNet';

/**
 * Recognises an SRGAN SRResNet state_dict in the Lornatang layout: null unless it has `conv1.0.weight`,
 * `conv2.0.weight` and `conv3.weight`; otherwise the config from the shapes (9×9 head and tail, blocks from
 * `trunk.<i>`, scale 2^(number of `upsampling.<k>` blocks), PReLU slopes [1] → 'shared', [features] → 'channel'),
 * with `clampOutput: true` as the reference forward. Throws InvalidInputError on inconsistent shapes, missing
 * blocks or BatchNorms, PReLUs that mix shared and per-channel slopes, or unexpected keys.
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
    throw new InvalidInputError(
      `${NET} checkpoint: PReLU slopes must all be [1] (shared) or all [${features}] (per channel), found ${found}`,
    );
  }
  const scale = (2 ** ups) as 2 | 4 | 8;
  const config: SRResNetConfig = {
    inChannels,
    outChannels,
    features,
    blocks,
    scale,
    prelu: count === 1 ? 'shared' : 'channel',
    clampOutput: true,
  };
  // Every parameter's shape is checked above, with messages that say why; this also refuses unexpected keys.
  checkKeysMatch(new SRResNet(config), keys, `${NET} (×${scale}, ${blocks} blocks, ${config.prelu} PReLU)`);
  return config;
}
