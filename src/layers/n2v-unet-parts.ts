import type { TensorValue } from '../gpu/graph';
import { RELU } from '../kernels/activation';
import { concat } from './autograd-ops';
import { BatchNorm2d, requireFolded } from './batchnorm';
import { Conv2d } from './conv2d';
import type { ForwardBuilder, ForwardOptions } from './forward-builder';
import { MaxBlurPool } from './max-blur-pool';
import { Module } from './module';
import { ModuleList } from './module-list';
import { MaxPool2d, Upsample } from './spatial';

/*
 * The parts of CAREamics' 2D U-Net (src/careamics/models/unet/unet.py and layers.py), with its attribute names so
 * the state_dict keys match: `encoder.encoder_blocks.<2n>` (ConvBlocks; the pools between them have no keys),
 * `decoder.bottleneck`, `decoder.decoder_blocks.<2n+1>` (ConvBlocks after the parameter-free upsamplings).
 * Channel groups (independent_channels with several input channels) are not reproduced: groups = 1.
 */

/**
 * A BatchNorm2d that CAREamics constructs but does not run (use_batch_norm=False): its tensors are in the
 * state_dict and load, and it is never folded into the convolution before it.
 */
class IdleBatchNorm2d extends BatchNorm2d {
  override foldInto(): boolean {
    return false;
  }
}

/**
 * CAREamics' Conv_Block: conv3×3 (bias, padding 1) → BatchNorm → ReLU → conv3×3 → BatchNorm → ReLU, the first
 * convolution `midMultiplier` times wider than the output (2 in the bottleneck and the inner decoder blocks).
 * Without BatchNorm it is conv → ReLU twice, and the BatchNorms' tensors are carried along unused.
 *
 * PyTorch registers conv1, conv2, batch_norm1, batch_norm2 in that order; `children()` lists each BatchNorm right
 * after its convolution instead, so that `foldBatchNorms` folds it there (the keys are the same, only their
 * order in a state_dict we write differs). Inference is then two dispatches with the ReLUs fused; training runs
 * BatchNorm in train mode as a step of its own.
 */
export class ConvBlock extends Module {
  override get supportsTraining(): boolean {
    return true;
  }

  readonly conv1: Conv2d;
  readonly conv2: Conv2d;
  readonly batch_norm1: BatchNorm2d;
  readonly batch_norm2: BatchNorm2d;

  constructor(
    inChannels: number,
    readonly outChannels: number,
    midMultiplier = 1,
    readonly useBatchNorm = true,
  ) {
    super();
    const mid = outChannels * midMultiplier;
    this.conv1 = new Conv2d(inChannels, mid, 3, { padding: 1, bias: true });
    this.conv2 = new Conv2d(mid, outChannels, 3, { padding: 1, bias: true });
    const Norm = useBatchNorm ? BatchNorm2d : IdleBatchNorm2d;
    this.batch_norm1 = new Norm(mid);
    this.batch_norm2 = new Norm(outChannels);
  }

  override children(): [string, Module][] {
    return [
      ['conv1', this.conv1],
      ['batch_norm1', this.batch_norm1],
      ['conv2', this.conv2],
      ['batch_norm2', this.batch_norm2],
    ];
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'conv_block';
    this.checkOptions(options, label);
    const relu = { epilogue: { activation: RELU } };
    if (b.training && this.useBatchNorm) {
      let h = this.conv1.forward(b, x, { label: `${label}.conv1` });
      h = this.batch_norm1.forward(b, h, { ...relu, label: `${label}.batch_norm1` });
      h = this.conv2.forward(b, h, { label: `${label}.conv2` });
      return this.batch_norm2.forward(b, h, { ...relu, label: `${label}.batch_norm2` });
    }
    if (!b.training && this.useBatchNorm) {
      requireFolded(this.batch_norm1, `${label}.batch_norm1`);
      requireFolded(this.batch_norm2, `${label}.batch_norm2`);
    }
    const h = this.conv1.forward(b, x, { ...relu, label: `${label}.conv1` });
    return this.conv2.forward(b, h, { ...relu, label: `${label}.conv2` });
  }
}

/** nn.ModuleList whose owner runs its items in a training graph too (a plain ModuleList never trains). */
class TrainedList<T extends Module<any, any>> extends ModuleList<T> {
  override get supportsTraining(): boolean {
    return true;
  }
}

export interface N2VUNetShape {
  inChannels: number;
  depth: number;
  numChannelsInit: number;
  useBatchNorm: boolean;
  n2v2: boolean;
}

/**
 * CAREamics' UnetEncoder: per level n a ConvBlock to C·2ⁿ channels, then the pool (MaxPool2d(2), or N2V2's
 * MaxBlurPool). Returns [the last pool's output, the ConvBlocks' outputs from the top level down].
 */
export class N2VEncoder extends Module<TensorValue, TensorValue[]> {
  override get supportsTraining(): boolean {
    return true;
  }

  readonly encoder_blocks: ModuleList<Module>;

  constructor(shape: N2VUNetShape) {
    super();
    const { inChannels, depth, numChannelsInit: c, useBatchNorm, n2v2 } = shape;
    const blocks: Module[] = [];
    for (let n = 0; n < depth; n++) {
      const width = c * 2 ** n;
      blocks.push(new ConvBlock(n === 0 ? inChannels : width / 2, width, 1, useBatchNorm));
      blocks.push(n2v2 ? new MaxBlurPool(width) : new MaxPool2d({ kernel: 2 }));
    }
    this.encoder_blocks = new TrainedList(blocks);
  }

  override children(): [string, Module<any, any>][] {
    return [['encoder_blocks', this.encoder_blocks]];
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue[] {
    const label = options.label ?? 'encoder';
    this.checkOptions(options, label);
    const skips: TensorValue[] = [];
    this.encoder_blocks.items.forEach((m, i) => {
      x = m.forward(b, x, { label: `${label}.encoder_blocks.${i}` });
      if (m instanceof ConvBlock) skips.push(x);
    });
    return [x, ...skips];
  }
}

/**
 * CAREamics' UnetDecoder: the bottleneck ConvBlock (C·2^(D−1) → 2× → C·2^(D−1)), then per level, from the bottom
 * up, bilinear ×2 upsampling (align_corners=False), cat([upsampled, skip]) on channels, and a ConvBlock that
 * halves the width (the last one keeps C and has no doubled middle). N2V2 drops the top level's skip, so the last
 * block reads C channels instead of 2C. Takes the encoder's [bottom, skip 0 (top) … skip D−1].
 */
export class N2VDecoder extends Module<readonly TensorValue[]> {
  override get supportsTraining(): boolean {
    return true;
  }

  readonly bottleneck: ConvBlock;
  readonly decoder_blocks: ModuleList<Module>;

  constructor(private readonly shape: N2VUNetShape) {
    super();
    const { depth, numChannelsInit: c0, useBatchNorm, n2v2 } = shape;
    const bottom = c0 * 2 ** (depth - 1);
    this.bottleneck = new ConvBlock(bottom, bottom, 2, useBatchNorm);
    const blocks: Module[] = [];
    for (let n = 0; n < depth; n++) {
      const last = n === depth - 1;
      const c = c0 * 2 ** (depth - n - 1);
      const skip = !(n2v2 && last);
      blocks.push(new Upsample({ mode: 'bilinear', scaleFactor: 2, alignCorners: false }));
      blocks.push(new ConvBlock(skip ? 2 * c : c, last ? c : c / 2, last ? 1 : 2, useBatchNorm));
    }
    this.decoder_blocks = new TrainedList(blocks);
  }

  override children(): [string, Module<any, any>][] {
    return [
      ['bottleneck', this.bottleneck],
      ['decoder_blocks', this.decoder_blocks],
    ];
  }

  forward(b: ForwardBuilder, [bottom, ...skips]: readonly TensorValue[], options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'decoder';
    this.checkOptions(options, label);
    const { depth, n2v2 } = this.shape;
    let x = this.bottleneck.forward(b, bottom, { label: `${label}.bottleneck` });
    for (let n = 0; n < depth; n++) {
      const at = `${label}.decoder_blocks`;
      x = this.decoder_blocks.items[2 * n].forward(b, x, { label: `${at}.${2 * n}` });
      if (!(n2v2 && n === depth - 1)) x = concat(b, x, skips[depth - 1 - n], {}, `${at}.${2 * n}.cat`);
      x = this.decoder_blocks.items[2 * n + 1].forward(b, x, { label: `${at}.${2 * n + 1}` });
    }
    return x;
  }
}
