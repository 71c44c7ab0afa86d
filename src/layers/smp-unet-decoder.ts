import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import { ReLU } from './activations';
import { concat } from './autograd-ops';
import { BatchNorm2d } from './batchnorm';
import { Conv2d } from './conv2d';
import type { ForwardBuilder, ForwardOptions } from './forward-builder';
import { Module } from './module';
import { ModuleList } from './module-list';
import { Attention, type AttentionType, SCSE_REDUCTION } from './scse';
import { Sequential } from './sequential';
import { Upsample } from './spatial';

/** smp's Conv2dReLU: Sequential(conv3×3 (no bias), BatchNorm, ReLU), keys `.0` and `.1`; one fused dispatch. */
function conv2dReLU(inChannels: number, outChannels: number): Sequential {
  return new Sequential(new Conv2d(inChannels, outChannels, 3, { padding: 1, bias: false }), new BatchNorm2d(outChannels), new ReLU());
}

/**
 * smp's Unet DecoderBlock (decoders/unet/decoder.py):
 *   x = interpolate(x, scale_factor=2, mode='nearest')
 *   if skip: x = attention1(cat([x, skip]))          ← upsampled first; one fused dispatch (concatChannels)
 *   x = attention2(conv2(conv1(x)))
 * A block without a skip (the last one) still owns `attention1`'s weights, which are loaded and never used.
 * Training runs the same steps: the concatenation, attention, upsampling and Sequentials record their backward.
 */
/** A decoder block's input: the deeper map, and the encoder's skip features (none for the last block). */
export type DecoderInput = readonly [x: TensorValue, skip: TensorValue | undefined];

export class DecoderBlock extends Module<DecoderInput> {
  override get supportsTraining(): boolean {
    return true;
  }

  readonly conv1: Sequential;
  readonly attention1: Attention;
  readonly conv2: Sequential;
  readonly attention2: Attention;
  private readonly upsample = new Upsample({ mode: 'nearest', scaleFactor: 2 });

  /** `reduction`: SCSE's (smp: 16; reduced test networks use less). */
  constructor(inChannels: number, skipChannels: number, outChannels: number, attention: AttentionType, reduction = SCSE_REDUCTION) {
    super();
    this.conv1 = conv2dReLU(inChannels + skipChannels, outChannels);
    this.attention1 = new Attention(attention, inChannels + skipChannels, reduction);
    this.conv2 = conv2dReLU(outChannels, outChannels);
    this.attention2 = new Attention(attention, outChannels, reduction);
  }

  override children(): [string, Module][] {
    return [
      ['conv1', this.conv1],
      ['attention1', this.attention1],
      ['conv2', this.conv2],
      ['attention2', this.attention2],
    ];
  }

  forward(b: ForwardBuilder, [x, skip]: DecoderInput, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'block';
    this.checkOptions(options, label);
    if (skip) {
      const [, h, w] = skip.shape;
      if (h !== 2 * x.shape[1] || w !== 2 * x.shape[2]) {
        // Cannot happen for sizes that are multiples of 32, which the model guarantees.
        throw new InvalidInputError(`${label}: a ${x.shape[1]}x${x.shape[2]} map upsampled ×2 does not match its ${h}x${w} skip`);
      }
      x = concat(b, x, skip, { first: { scale: 2 } }, `${label}.cat`);
      x = this.attention1.forward(b, x, { label: `${label}.attention1` });
    } else {
      x = this.upsample.forward(b, x, { label: `${label}.upsample` });
    }
    x = this.conv1.forward(b, x, { label: `${label}.conv1` });
    x = this.conv2.forward(b, x, { label: `${label}.conv2` });
    return this.attention2.forward(b, x, { label: `${label}.attention2` });
  }
}

/** nn.ModuleList of decoder blocks; UnetDecoder runs them itself, in training as in inference. */
class DecoderBlockList extends ModuleList<DecoderBlock> {
  override get supportsTraining(): boolean {
    return true;
  }
}

/**
 * smp's UnetDecoder for a 5-stage encoder: `center` is Identity (no keys) for ResNets, and block i takes the
 * encoder features from deep to shallow: (f5, skip f4), (·, f3), (·, f2), (·, f1), (·, no skip).
 */
export class UnetDecoder extends Module<readonly TensorValue[]> {
  override get supportsTraining(): boolean {
    return true;
  }

  readonly blocks: ModuleList<DecoderBlock>;

  /** `encoderChannels`: channels of f1..f5; `decoderChannels`: one output width per block; `reduction`: SCSE's. */
  constructor(
    encoderChannels: readonly number[],
    decoderChannels: readonly number[],
    attention: AttentionType,
    reduction = SCSE_REDUCTION,
  ) {
    super();
    if (decoderChannels.length !== encoderChannels.length) {
      throw new InvalidInputError(
        `the U-Net decoder needs ${encoderChannels.length} decoder channel counts, got ${decoderChannels.length}`,
      );
    }
    const deepFirst = [...encoderChannels].reverse();
    const ins = [deepFirst[0], ...decoderChannels.slice(0, -1)];
    const skips = [...deepFirst.slice(1), 0];
    this.blocks = new DecoderBlockList(decoderChannels.map((out, i) => new DecoderBlock(ins[i], skips[i], out, attention, reduction)));
  }

  override children(): [string, Module][] {
    return [['blocks', this.blocks]];
  }

  /** `features`: f1..f5 as the encoder returns them. */
  forward(b: ForwardBuilder, features: readonly TensorValue[], options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'decoder';
    this.checkOptions(options, label);
    const deepFirst = [...features].reverse();
    let x = deepFirst[0];
    this.blocks.items.forEach((block, i) => {
      x = block.forward(b, [x, deepFirst[i + 1]], { label: `${label}.blocks.${i}` });
    });
    return x;
  }
}
