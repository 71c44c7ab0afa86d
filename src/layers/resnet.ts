import type { TensorValue } from '../gpu/graph';
import { RELU } from '../kernels/activation';
import { BatchNorm2d, requireFolded } from './batchnorm';
import { Conv2d } from './conv2d';
import type { ForwardBuilder, ForwardOptions } from './forward-builder';
import { Module } from './module';
import { basicBlockTrainingForward, resNetEncoderTrainingForward } from './resnet-training';
import { Sequential } from './sequential';
import { MaxPool2d } from './spatial';

/**
 * torchvision's ResNet BasicBlock, with its attribute names (conv1, bn1, conv2, bn2, downsample.0/1):
 *   out = ReLU(BN2(conv3×3(ReLU(BN1(conv3×3 stride s (x))))) + identity),
 *   identity = x, or BN(conv1×1 stride s (x)) when the block changes resolution or width.
 * Every conv is bias-free; the BatchNorms fold into them when the weights load, and the second conv fuses the
 * residual add and the ReLU into its epilogue: three dispatches at most per block. Training keeps the steps apart
 * (resnet-training.ts).
 */
export class BasicBlock extends Module {
  override get supportsTraining(): boolean {
    return true;
  }

  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: Sequential | undefined;
  constructor(inChannels: number, outChannels: number, stride = 1) {
    super();
    this.conv1 = new Conv2d(inChannels, outChannels, 3, { stride, padding: 1, bias: false });
    this.bn1 = new BatchNorm2d(outChannels);
    this.conv2 = new Conv2d(outChannels, outChannels, 3, { padding: 1, bias: false });
    this.bn2 = new BatchNorm2d(outChannels);
    if (stride !== 1 || inChannels !== outChannels) {
      this.downsample = new Sequential(new Conv2d(inChannels, outChannels, 1, { stride, bias: false }), new BatchNorm2d(outChannels));
    }
  }

  override children(): [string, Module][] {
    const c: [string, Module][] = [
      ['conv1', this.conv1],
      ['bn1', this.bn1],
      ['conv2', this.conv2],
      ['bn2', this.bn2],
    ];
    if (this.downsample) c.push(['downsample', this.downsample]);
    return c;
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'block';
    this.checkOptions(options, label);
    if (b.training) return basicBlockTrainingForward(b, this, x, label);
    requireFolded(this.bn1, `${label}.bn1`);
    requireFolded(this.bn2, `${label}.bn2`);
    const identity = this.downsample ? this.downsample.forward(b, x, { label: `${label}.downsample` }) : x;
    const h = this.conv1.forward(b, x, { epilogue: { activation: RELU }, label: `${label}.conv1` });
    return this.conv2.forward(b, h, {
      epilogue: { activation: RELU, residual: { tensor: identity, mode: 'beforeActivation' } },
      label: `${label}.conv2`,
    });
  }
}

/** ResNet-34's blocks per stage. */
export const RESNET34_LAYERS = [3, 4, 6, 3] as const;
/** ResNet-34's stem width and stage widths. */
export const RESNET34_STEM_WIDTH = 64;
export const RESNET34_WIDTHS = [64, 128, 256, 512] as const;

/**
 * smp's ResNetEncoder for resnet34: torchvision's ResNet without avgpool and fc. Returns the five feature maps the
 * U-Net decoder uses, f1 (stem, ½) … f5 (layer4, 1/32); the sixth, the input itself, is never used.
 *   f1 = ReLU(BN(conv7×7 s2 p3 (x)));  f2 = layer1(MaxPool3×3 s2 p1 (f1));  f3..f5 = layer2..4
 * Other widths and depths (reduced test networks) keep torchvision's structure: stage i > 0 starts with a stride-2
 * block, and a block gets a downsample where its stride or width changes.
 */
export class ResNetEncoder extends Module<TensorValue, TensorValue[]> {
  override get supportsTraining(): boolean {
    return true;
  }

  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly maxpool = new MaxPool2d({ kernel: 3, stride: 2, padding: 1 });
  /** layer1..layer4: Sequentials of BasicBlocks. */
  readonly layers: Sequential[];

  constructor(
    inChannels: number,
    blocksPerLayer: readonly number[] = RESNET34_LAYERS,
    readonly stemWidth: number = RESNET34_STEM_WIDTH,
    readonly layerWidths: readonly number[] = RESNET34_WIDTHS,
  ) {
    super();
    this.conv1 = new Conv2d(inChannels, stemWidth, 7, { stride: 2, padding: 3, bias: false });
    this.bn1 = new BatchNorm2d(stemWidth);
    let cin = stemWidth;
    this.layers = blocksPerLayer.map((n, i) => {
      const width = layerWidths[i];
      const blocks = [new BasicBlock(cin, width, i === 0 ? 1 : 2)];
      for (let b = 1; b < n; b++) blocks.push(new BasicBlock(width, width));
      cin = width;
      return new Sequential(...blocks);
    });
  }

  /** Channels of f1..f5. */
  get outChannels(): number[] {
    return [this.stemWidth, ...this.layerWidths.slice(0, this.layers.length)];
  }

  override children(): [string, Module][] {
    return [['conv1', this.conv1], ['bn1', this.bn1], ...this.layers.map((l, i): [string, Module] => [`layer${i + 1}`, l])];
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue[] {
    const label = options.label ?? 'encoder';
    this.checkOptions(options, label);
    if (b.training) return resNetEncoderTrainingForward(b, this, x, label);
    requireFolded(this.bn1, `${label}.bn1`);
    const f1 = this.conv1.forward(b, x, { epilogue: { activation: RELU }, label: `${label}.conv1` });
    const features = [f1];
    let t = this.maxpool.forward(b, f1, { label: `${label}.maxpool` });
    this.layers.forEach((layer, i) => {
      t = layer.forward(b, t, { label: `${label}.layer${i + 1}` });
      features.push(t);
    });
    return features;
  }
}
