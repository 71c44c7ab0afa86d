import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import { crop2dBackward } from '../kernels/layout-backward';
import { crop2d, pad2d, type PadMode } from '../kernels/pad';
import { Conv2d } from '../layers/conv2d';
import type { ForwardBuilder, ForwardOptions } from '../layers/forward-builder';
import { Module } from '../layers/module';
import { checkKeysMatch } from '../layers/module-tree';
import { N2VDecoder, N2VEncoder } from '../layers/n2v-unet-parts';
import { requireIntegers, requireOneOf } from './config-checks';
import { type KeyShapes, shapeOf } from './key-shapes';
import type { Network } from './network';

export interface N2VUNetConfig {
  /** CAREamics' in_channels. */
  inChannels: number;
  /** CAREamics' num_classes (output channels). */
  outChannels: number;
  /** Number of poolings (CAREamics' N2V default 2). */
  depth: number;
  /** Width of the top level, doubled per level (CAREamics' N2V default 32). */
  numChannelsInit: number;
  /** N2V2: MaxBlurPool instead of MaxPool2d, and no top-level skip connection. */
  n2v2: boolean;
  /**
   * CAREamics' use_batch_norm (default true). Not visible in a state_dict: CAREamics builds the BatchNorms either
   * way, so a checkpoint trained without them must say so here.
   */
  useBatchNorm: boolean;
  /** CAREamics' residual: the input is added to the output (in = out channels). Not visible in a state_dict. */
  residual: boolean;
  /**
   * Sizes that are not multiples of 2^depth (which CAREamics rejects, asking for tiling): 'pad' (default) pads
   * right and bottom to the next multiple, runs, and crops back; 'strict' rejects them.
   */
  sizePolicy: 'pad' | 'strict';
  /** How 'pad' fills (F.pad modes); default 'replicate'. */
  padMode: PadMode;
}

/** CAREamics' N2V / N2V2 U-Net defaults (config/architectures/unet_config.py, n2v_factory), for the given channels. */
export function n2vUNetConfig(inChannels: number, outChannels: number, overrides: Partial<N2VUNetConfig> = {}): N2VUNetConfig {
  return {
    inChannels,
    outChannels,
    depth: 2,
    numChannelsInit: 32,
    n2v2: false,
    useBatchNorm: true,
    residual: false,
    sizePolicy: 'pad',
    padMode: 'replicate',
    ...overrides,
  };
}

/**
 * Noise2Void's U-Net as CAREamics builds it (src/careamics/models/unet/unet.py, 2D, independent_channels off or
 * a single channel): `encoder` (ConvBlock + pool per level), `decoder` (bottleneck, then bilinear ×2 upsampling,
 * cat([upsampled, skip]) and a ConvBlock per level) and `final_conv` (1×1 with bias), with CAREamics' attribute
 * names so its state_dicts (the BioImage Model Zoo export's weights.pth) load key for key. `n2v2` swaps in
 * MaxBlurPool and drops the top skip (N2V2, Höck et al. 2022). PyTorch reference: tools/torch/n2v_unet.py.
 * Trains as PyTorch's `model.train()` does (BatchNorm with batch statistics).
 */
export class N2VUNet extends Module implements Network {
  override get supportsTraining(): boolean {
    return true;
  }

  readonly architecture = 'N2VUNet';
  readonly scale = 1;
  readonly encoder: N2VEncoder;
  readonly decoder: N2VDecoder;
  readonly final_conv: Conv2d;

  constructor(readonly config: N2VUNetConfig) {
    super();
    const { inChannels, outChannels, depth, numChannelsInit, useBatchNorm, n2v2, residual } = config;
    const net = 'N2V U-Net';
    requireIntegers(net, {
      inChannels: [inChannels, 1],
      outChannels: [outChannels, 1],
      depth: [depth, 1],
      numChannelsInit: [numChannelsInit, 1],
    });
    if (depth > 10) throw new InvalidInputError(`${net} depth must be at most 10 (CAREamics' limit), got ${depth}`);
    requireOneOf(net, 'sizePolicy', config.sizePolicy, ['pad', 'strict']);
    requireOneOf(net, 'padMode', config.padMode, ['replicate', 'zeros', 'reflect']);
    if (residual && inChannels !== outChannels) {
      throw new InvalidInputError(
        `${net}: a residual connection needs as many output channels as input channels (${outChannels} ≠ ${inChannels})`,
      );
    }
    const shape = { inChannels, depth, numChannelsInit, useBatchNorm: useBatchNorm !== false, n2v2: n2v2 === true };
    this.encoder = new N2VEncoder(shape);
    this.decoder = new N2VDecoder(shape);
    this.final_conv = new Conv2d(numChannelsInit, outChannels, 1, { bias: true });
  }

  get inChannels(): number {
    return this.config.inChannels;
  }

  get outChannels(): number {
    return this.config.outChannels;
  }

  /** Height and width must be multiples of this: every level halves them and the skips must line up. */
  get sizeMultiple(): number {
    return 2 ** this.config.depth;
  }

  override children(): [string, Module<any, any>][] {
    return [
      ['encoder', this.encoder],
      ['decoder', this.decoder],
      ['final_conv', this.final_conv],
    ];
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    this.checkOptions(options, options.label ?? this.architecture);
    const [, h, w, c] = x.shape;
    if (c !== this.config.inChannels) {
      throw new InvalidInputError(`N2V U-Net expects ${this.config.inChannels} image channel(s), got ${c}`);
    }
    const m = this.sizeMultiple;
    const hp = Math.ceil(h / m) * m;
    const wp = Math.ceil(w / m) * m;
    const padded = hp !== h || wp !== w;
    if (padded && this.config.sizePolicy === 'strict') {
      throw new InvalidInputError(
        `N2V U-Net (depth ${this.config.depth}, strict sizes as CAREamics): width and height must be multiples of ${m}, ` +
          `got ${w}×${h}; pad the image to ${wp}×${hp}, tile it, or use sizePolicy 'pad'`,
      );
    }
    const input = padded ? pad2d(b.graph, x, { top: 0, left: 0, bottom: hp - h, right: wp - w }, this.config.padMode, 'pad') : x;
    const features = this.encoder.forward(b, input, { label: 'encoder' });
    const y = this.decoder.forward(b, features, { label: 'decoder' });
    const residual = this.config.residual ? { residual: { tensor: input, mode: 'afterActivation' as const } } : undefined;
    const out = this.final_conv.forward(b, y, { label: 'final_conv', ...(residual ? { epilogue: residual } : {}) });
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

const NET = 'CAREamics N2V U-Net';

/**
 * Recognises CAREamics' UNet from state_dict keys and shapes: depth from the encoder ConvBlocks
 * (`encoder.encoder_blocks.<2n>.conv1.weight`), in_channels and num_channels_init from the first of them,
 * num_classes from `final_conv.weight`, and N2V2 from the last decoder block's input width (C without the top
 * skip, 2C with it). What weights cannot tell gets CAREamics' defaults: BatchNorm on (its tensors exist either
 * way), no residual; sizes padded. Returns null when the keys are not this network's; throws InvalidInputError
 * when they are but do not fit, or use channel groups (independent_channels with several channels).
 */
export function recogniseN2VUNet(keys: KeyShapes): N2VUNetConfig | null {
  const looksLikeIt = keys.has('encoder.encoder_blocks.0.conv1.weight') || keys.has('decoder.bottleneck.conv1.weight');
  if (!looksLikeIt) return null;
  const [width, inPerGroup] = shapeOf(keys, 'encoder.encoder_blocks.0.conv1.weight', NET, 4);
  const tail = shapeOf(keys, 'final_conv.weight', NET, 4);
  let depth = 0;
  while (keys.has(`encoder.encoder_blocks.${2 * depth}.conv1.weight`)) depth++;
  const groups = width / tail[1];
  if (Number.isInteger(groups) && groups > 1) {
    throw new InvalidInputError(
      `${NET} checkpoint: the convolutions are grouped (first level ${width} channels, final_conv reads ${tail[1]} per group): ` +
        `independent_channels with several channels is not supported; train with independent_channels=False`,
    );
  }
  const lastBlockIn = shapeOf(keys, `decoder.decoder_blocks.${2 * depth - 1}.conv1.weight`, NET, 4)[1];
  const config = n2vUNetConfig(inPerGroup, tail[0], { depth, numChannelsInit: width, n2v2: lastBlockIn === width });
  checkKeysMatch(new N2VUNet(config), keys, `${NET} (${config.n2v2 ? 'N2V2' : 'N2V'}, depth ${depth}, ${width} channels)`);
  return config;
}
