import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import { crop2dBackward } from '../kernels/layout-backward';
import { crop2d, pad2d, type PadMode } from '../kernels/pad';
import { Conv2d } from '../layers/conv2d';
import type { ForwardBuilder, ForwardOptions } from '../layers/forward-builder';
import { Module } from '../layers/module';
import { checkKeysMatch } from '../layers/module-tree';
import { RESNET34_LAYERS, RESNET34_STEM_WIDTH, RESNET34_WIDTHS, ResNetEncoder } from '../layers/resnet';
import { type AttentionType, SCSE_REDUCTION } from '../layers/scse';
import { Sequential } from '../layers/sequential';
import { UnetDecoder } from '../layers/smp-unet-decoder';
import { requireIntegers } from './config-checks';
import type { KeyShapes } from './key-shapes';
import type { Network } from './network';

export interface ResNet34UNetConfig {
  /** smp's in_channels. */
  inChannels: number;
  /** smp's classes. */
  outChannels: number;
  /** smp's decoder_channels, one per decoder block (default (256, 128, 64, 32, 16)). */
  decoderChannels: number[];
  /** smp's decoder_attention_type: 'scse' or None ('none'). */
  attention: AttentionType;
  /** smp's activation='sigmoid' (fused into the head convolution). Not visible in a state_dict. */
  sigmoid: boolean;
  /**
   * Sizes that are not multiples of 32: 'pad' (default) pads right and bottom to the next multiple of 32, runs,
   * and crops back; 'strict' rejects them, as smp 0.3's check_input_shape does.
   */
  sizePolicy: 'pad' | 'strict';
  /**
   * How 'pad' fills (F.pad modes). Default 'replicate': edge pixels continue the image, where zeros would add a
   * black border and an artificial edge that the encoder's large receptive field carries into the visible
   * output. Choose what the network was trained with if it was trained on padded images.
   */
  padMode: PadMode;
  /**
   * Reduced networks of the same structure (tests, small models): the stem width then one width per encoder
   * stage (default ResNet34's [64, 64, 128, 256, 512]), blocks per stage (default [3, 4, 6, 3]) and the SCSE
   * reduction (default smp's 16). smp's resnet34 checkpoints always have the defaults.
   */
  encoderWidths?: number[];
  encoderDepths?: number[];
  attentionReduction?: number;
}

/** The encoder halves the resolution five times. */
export const RESNET34_UNET_MULTIPLE = 32;

export const SMP_DECODER_CHANNELS = [256, 128, 64, 32, 16];

/** smp.Unet('resnet34', decoder_attention_type='scse') defaults, for the given channels. */
export function resnet34UNetConfig(
  inChannels: number,
  outChannels: number,
  overrides: Partial<ResNet34UNetConfig> = {},
): ResNet34UNetConfig {
  return {
    inChannels,
    outChannels,
    decoderChannels: [...SMP_DECODER_CHANNELS],
    attention: 'scse',
    sigmoid: false,
    sizePolicy: 'pad',
    padMode: 'replicate',
    ...overrides,
  };
}

/**
 * segmentation_models_pytorch's `Unet(encoder_name='resnet34', decoder_attention_type='scse' | None)`: ResNet34
 * encoder, U-Net decoder with nearest ×2 upsampling and [upsampled, skip] concatenation, optional SCSE attention
 * after each concatenation and each block, and `segmentation_head.0` (conv3×3 with bias). Attribute names are
 * smp's, so its state_dicts load key for key (the last block's unused `attention1` included). It trains as
 * PyTorch's `model.train()` does (BatchNorm with batch statistics; the layers' *-training.ts files).
 */
export class ResNet34UNet extends Module implements Network {
  override get supportsTraining(): boolean {
    return true;
  }

  readonly architecture = 'ResNet34UNet';
  readonly scale = 1;
  readonly encoder: ResNetEncoder;
  readonly decoder: UnetDecoder;
  readonly segmentation_head: Sequential;

  constructor(readonly config: ResNet34UNetConfig) {
    super();
    const { inChannels, outChannels, decoderChannels, sizePolicy, padMode } = config;
    requireIntegers('ResNet34 U-Net', { inChannels: [inChannels, 1], outChannels: [outChannels, 1] });
    decoderChannels.forEach((c, i) => requireIntegers('ResNet34 U-Net', { [`decoderChannels[${i}]`]: [c, 1] }));
    if (sizePolicy !== 'pad' && sizePolicy !== 'strict')
      throw new InvalidInputError(`unknown sizePolicy '${String(sizePolicy)}' (expected 'pad' or 'strict')`);
    if (!['replicate', 'zeros', 'reflect'].includes(padMode)) throw new InvalidInputError(`unknown padMode '${String(padMode)}'`);
    const widths = config.encoderWidths ?? [RESNET34_STEM_WIDTH, ...RESNET34_WIDTHS];
    const depths = config.encoderDepths ?? [...RESNET34_LAYERS];
    const reduction = config.attentionReduction ?? SCSE_REDUCTION;
    if (widths.length !== 5 || depths.length !== 4) {
      throw new InvalidInputError(
        `ResNet34 U-Net: encoderWidths needs 5 values (stem and 4 stages) and encoderDepths 4, got ${widths.length} and ${depths.length}`,
      );
    }
    widths.forEach((c, i) => requireIntegers('ResNet34 U-Net', { [`encoderWidths[${i}]`]: [c, 1] }));
    depths.forEach((c, i) => requireIntegers('ResNet34 U-Net', { [`encoderDepths[${i}]`]: [c, 1] }));
    requireIntegers('ResNet34 U-Net', { attentionReduction: [reduction, 1] });
    this.encoder = new ResNetEncoder(inChannels, depths, widths[0], widths.slice(1));
    this.decoder = new UnetDecoder(this.encoder.outChannels, decoderChannels, config.attention, reduction);
    this.segmentation_head = new Sequential(
      new Conv2d(decoderChannels[decoderChannels.length - 1], outChannels, 3, { padding: 1, bias: true }),
    );
  }

  get inChannels(): number {
    return this.config.inChannels;
  }

  get outChannels(): number {
    return this.config.outChannels;
  }

  override children(): [string, Module<any, any>][] {
    return [
      ['encoder', this.encoder],
      ['decoder', this.decoder],
      ['segmentation_head', this.segmentation_head],
    ];
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    this.checkOptions(options, options.label ?? this.architecture);
    const [, h, w, c] = x.shape;
    if (c !== this.config.inChannels) {
      throw new InvalidInputError(`ResNet34 U-Net expects ${this.config.inChannels} image channel(s), got ${c}`);
    }
    const m = RESNET34_UNET_MULTIPLE;
    const hp = Math.ceil(h / m) * m;
    const wp = Math.ceil(w / m) * m;
    const padded = hp !== h || wp !== w;
    if (padded && this.config.sizePolicy === 'strict') {
      throw new InvalidInputError(
        `ResNet34 U-Net (strict sizes, as smp 0.3): width and height must be multiples of ${m}, got ${w}×${h}; ` +
          `pad the image to ${wp}×${hp} or use sizePolicy 'pad'`,
      );
    }
    const pads = { top: 0, left: 0, bottom: hp - h, right: wp - w };
    const input = padded ? pad2d(b.graph, x, pads, this.config.padMode, 'pad') : x;
    const features = this.encoder.forward(b, input, { label: 'encoder' });
    const y = this.decoder.forward(b, features, { label: 'decoder' });
    const activation = this.config.sigmoid ? { activation: { kind: 'sigmoid' as const } } : undefined;
    const out = this.segmentation_head.forward(b, y, { label: 'segmentation_head', epilogue: activation });
    if (!padded) return out;
    // The input needs no gradient, so its padding records nothing; the crop sends the gradient back in place.
    const win = { y0: 0, x0: 0, h, w };
    const cropped = crop2d(b.graph, out, win, 'crop');
    b.training?.tape.record('crop', [out], [cropped], false, (t) => {
      t.addGrad(out, crop2dBackward(b.graph, t.gradOf(cropped)!, out.shape, win, 'crop backward'));
    });
    return cropped;
  }
}

/**
 * Recognises smp's Unet with a ResNet34 encoder from state_dict keys and shapes: in_channels from
 * `encoder.conv1.weight`, decoder widths from `decoder.blocks.N.conv1.0.weight`, SCSE when
 * `decoder.blocks.0.attention1.attention.cSE.1.weight` exists, classes from `segmentation_head.0.weight`.
 * Returns null when the keys are not an smp U-Net's (no `decoder.blocks.0.conv1.0.weight`); throws
 * InvalidInputError when they are but do not fit (another encoder, no decoder BatchNorm, missing/unexpected
 * keys, inconsistent shapes). The result has the
 * defaults for what weights cannot tell: no sigmoid, sizes padded with replicate.
 */
export function recogniseResNet34UNet(keys: KeyShapes): ResNet34UNetConfig | null {
  // smp's other decoders (FPN, Linknet, Unet++, …) share `segmentation_head` but not this block layout.
  if (!keys.has('decoder.blocks.0.conv1.0.weight')) return null;
  const what = 'segmentation_models_pytorch Unet';
  const stem = keys.get('encoder.conv1.weight');
  const head = keys.get('segmentation_head.0.weight');
  if (!stem || stem.shape.length !== 4) {
    throw new InvalidInputError(
      `the weights are a ${what} whose encoder is not a ResNet (no 4-D 'encoder.conv1.weight'); only resnet34 is supported`,
    );
  }
  if (!head || head.shape.length !== 4) {
    throw new InvalidInputError(`the weights look like a ${what} but lack a 4-D 'segmentation_head.0.weight'`);
  }
  if (keys.has('encoder.layer1.0.conv3.weight')) {
    throw new InvalidInputError(
      `the weights are a ${what} with a Bottleneck ResNet encoder (resnet50 or deeper); only resnet34 is supported`,
    );
  }
  const blocks = [1, 2, 3, 4].map((l) => {
    let n = 0;
    while (keys.has(`encoder.layer${l}.${n}.conv1.weight`)) n++;
    return n;
  });
  if (blocks.some((n, i) => n !== RESNET34_LAYERS[i])) {
    throw new InvalidInputError(
      `the weights are a ${what} whose encoder has [${blocks.join(', ')}] blocks per stage; only resnet34 ([${RESNET34_LAYERS.join(', ')}]) is supported`,
    );
  }
  const decoderChannels: number[] = [];
  while (keys.has(`decoder.blocks.${decoderChannels.length}.conv1.0.weight`)) {
    decoderChannels.push(keys.get(`decoder.blocks.${decoderChannels.length}.conv1.0.weight`)!.shape[0]);
  }
  if (decoderChannels.length !== 5) {
    throw new InvalidInputError(
      `the weights are a ${what} with ${decoderChannels.length} decoder blocks; a resnet34 encoder needs 5 (encoder_depth=5)`,
    );
  }
  if (!keys.has('decoder.blocks.0.conv1.1.running_var')) {
    throw new InvalidInputError(
      `the weights are a ${what} without decoder BatchNorm (decoder_use_batchnorm=False), which is not supported`,
    );
  }
  const config = resnet34UNetConfig(stem.shape[1], head.shape[0], {
    decoderChannels,
    attention: keys.has('decoder.blocks.0.attention1.attention.cSE.1.weight') ? 'scse' : 'none',
  });
  checkKeysMatch(new ResNet34UNet(config), keys, `${what} (resnet34, ${config.attention === 'scse' ? 'SCSE' : 'no attention'})`);
  return config;
}
