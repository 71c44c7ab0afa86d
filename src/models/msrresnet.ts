import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import type { Activation } from '../kernels/activation';
import { RELU } from '../kernels/activation';
import { Conv2d } from '../layers/conv2d';
import type { ForwardBuilder, ForwardOptions } from '../layers/forward-builder';
import { Module } from '../layers/module';
import { checkKeysMatch } from '../layers/module-tree';
import { Sequential } from '../layers/sequential';
import { PixelShuffle, Upsample } from '../layers/spatial';
import { requireIntegers, requireOneOf } from './config-checks';
import { consecutiveIndices, expectShape, type KeyShapes, shapeOf } from './key-shapes';
import type { Network } from './network';

export interface MSRResNetConfig {
  /** Image channels in and out; they must be equal, since the upsampled input is added to the output. */
  inChannels: number;
  outChannels: number;
  /** num_feat (64). */
  features: number;
  /** num_block: residual blocks in the body (16). */
  blocks: number;
  /** upscale: 2, 3 or 4. */
  scale: 2 | 3 | 4;
}

/** MSRResNet's LeakyReLU slope (0.1, not ESRGAN's 0.2). */
const LRELU: Activation = { kind: 'leakyRelu', alpha: 0.1 };

const conv3x3 = (cin: number, cout: number) => new Conv2d(cin, cout, 3, { padding: 1, bias: true });

/** BasicSR's ResidualBlockNoBN with res_scale 1: x + conv2(ReLU(conv1(x))), both convs 3×3 with bias. */
export class ResidualBlockNoBN extends Module {
  override get supportsTraining(): boolean {
    return true;
  }

  readonly conv1: Conv2d;
  readonly conv2: Conv2d;

  constructor(readonly features: number) {
    super();
    this.conv1 = conv3x3(features, features);
    this.conv2 = conv3x3(features, features);
  }

  override children(): [string, Module][] {
    return [
      ['conv1', this.conv1],
      ['conv2', this.conv2],
    ];
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'block';
    this.checkOptions(options, label);
    const h = this.conv1.forward(b, x, { epilogue: { activation: RELU }, label: `${label}.conv1` });
    return this.conv2.forward(b, h, { epilogue: { residual: { tensor: x, mode: 'afterActivation' } }, label: `${label}.conv2` });
  }
}

/**
 * BasicSR's MSRResNet (basicsr/archs/srresnet_arch.py), "modified SRResNet": no BatchNorm, LeakyReLU 0.1,
 *   feat = lrelu(conv_first(x)); out = body(feat)                        (blocks × ResidualBlockNoBN)
 *   ×4:    out = lrelu(shuffle2(upconv1(out))); out = lrelu(shuffle2(upconv2(out)))   (upconv: F → 4F)
 *   ×2/×3: out = lrelu(shuffle_s(upconv1(out)))                                        (upconv1: F → s²F)
 *   out = conv_last(lrelu(conv_hr(out))) + interpolate(x, ×s, bilinear, align_corners=False)
 * The LeakyReLUs after PixelShuffle run in the upconv's epilogue (a pointwise op commutes with moving values),
 * and the bilinear base is added in conv_last's epilogue.
 */
export class MSRResNet extends Module implements Network {
  override get supportsTraining(): boolean {
    return true;
  }

  readonly architecture = 'MSRResNet';
  readonly conv_first: Conv2d;
  readonly body: Sequential;
  readonly upconv1: Conv2d;
  readonly upconv2: Conv2d | undefined;
  readonly pixel_shuffle: PixelShuffle;
  readonly conv_hr: Conv2d;
  readonly conv_last: Conv2d;
  private readonly base: Upsample;

  constructor(readonly config: MSRResNetConfig) {
    super();
    const { inChannels, outChannels, features, blocks, scale } = config;
    requireIntegers('MSRResNet', {
      inChannels: [inChannels, 1],
      outChannels: [outChannels, 1],
      features: [features, 1],
      blocks: [blocks, 0],
    });
    requireOneOf('MSRResNet', 'scale', scale, [2, 3, 4]);
    if (inChannels !== outChannels) {
      throw new InvalidInputError(
        `MSRResNet adds the upsampled input to its output, so it needs inChannels == outChannels (got ${inChannels} and ${outChannels})`,
      );
    }
    this.conv_first = conv3x3(inChannels, features);
    this.body = new Sequential(...Array.from({ length: blocks }, () => new ResidualBlockNoBN(features)));
    if (scale === 4) {
      this.upconv1 = conv3x3(features, features * 4);
      this.upconv2 = conv3x3(features, features * 4);
      this.pixel_shuffle = new PixelShuffle(2);
    } else {
      this.upconv1 = conv3x3(features, features * scale * scale);
      this.pixel_shuffle = new PixelShuffle(scale);
    }
    this.conv_hr = conv3x3(features, features);
    this.conv_last = conv3x3(features, outChannels);
    this.base = new Upsample({ mode: 'bilinear', scaleFactor: scale, alignCorners: false });
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
    const up: [string, Module][] = [['upconv1', this.upconv1]];
    if (this.upconv2) up.push(['upconv2', this.upconv2]);
    return [['conv_first', this.conv_first], ['body', this.body], ...up, ['conv_hr', this.conv_hr], ['conv_last', this.conv_last]];
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    this.checkOptions(options, options.label ?? this.architecture);
    if (x.shape[3] !== this.inChannels) {
      throw new InvalidInputError(`MSRResNet expects ${this.inChannels} image channel(s), got ${x.shape[3]}`);
    }
    const lrelu = { activation: LRELU };
    let out = this.conv_first.forward(b, x, { epilogue: lrelu, label: 'conv_first' });
    out = this.body.forward(b, out, { label: 'body' });
    out = this.pixel_shuffle.forward(b, this.upconv1.forward(b, out, { epilogue: lrelu, label: 'upconv1' }), { label: 'pixel_shuffle1' });
    if (this.upconv2) {
      out = this.pixel_shuffle.forward(b, this.upconv2.forward(b, out, { epilogue: lrelu, label: 'upconv2' }), { label: 'pixel_shuffle2' });
    }
    out = this.conv_hr.forward(b, out, { epilogue: lrelu, label: 'conv_hr' });
    const base = this.base.forward(b, x, { label: 'base (bilinear)' });
    return this.conv_last.forward(b, out, { epilogue: { residual: { tensor: base, mode: 'afterActivation' } }, label: 'conv_last + base' });
  }
}

const NET = 'MSRResNet';

/**
 * Recognises a BasicSR MSRResNet state_dict (after the reader unwrapped `params` / `params_ema`): null unless it
 * has `conv_first`, `upconv1` and `conv_hr` weights (EDSR and the RRDBNets lack one of them); otherwise the config
 * from the shapes: features and input channels from conv_first, blocks from `body.<i>`, the scale from the
 * upsampling convs (upconv2 present: ×4; else upconv1's s²·F outputs). Throws InvalidInputError on
 * inconsistent shapes, missing blocks, output channels that differ from the input's, or unexpected keys.
 */
export function recogniseMSRResNet(keys: KeyShapes): MSRResNetConfig | null {
  if (!keys.has('conv_first.weight') || !keys.has('upconv1.weight') || !keys.has('conv_hr.weight')) return null;
  const [features, inChannels] = shapeOf(keys, 'conv_first.weight', NET, 4);
  const conv = (key: string, cout: number, cin: number, why: string) => {
    expectShape(keys, `${key}.weight`, [cout, cin, 3, 3], NET, why);
    expectShape(keys, `${key}.bias`, [cout], NET, why);
  };
  conv('conv_first', features, inChannels, '3×3 convolution');
  const blocks = consecutiveIndices(keys, /^body\.(\d+)\.conv[12]\.weight$/, NET, 'residual block');
  for (let i = 0; i < blocks; i++) {
    conv(`body.${i}.conv1`, features, features, `residual block of ${features} features`);
    conv(`body.${i}.conv2`, features, features, `residual block of ${features} features`);
  }
  const up1 = shapeOf(keys, 'upconv1.weight', NET, 4)[0];
  let scale: 2 | 3 | 4;
  if (keys.has('upconv2.weight')) {
    scale = 4;
    conv('upconv1', 4 * features, features, '×4: two PixelShuffle(2) steps of 4·features');
    conv('upconv2', 4 * features, features, '×4: two PixelShuffle(2) steps of 4·features');
  } else if (up1 === 4 * features || up1 === 9 * features) {
    scale = up1 === 4 * features ? 2 : 3;
    conv('upconv1', up1, features, `×${scale}: one PixelShuffle(${scale})`);
  } else {
    throw new InvalidInputError(
      `${NET} checkpoint: upconv1 has ${up1} outputs for ${features} features; ×2 needs ${4 * features}, ×3 ${9 * features} ` +
        '(and ×4 an upconv2)',
    );
  }
  conv('conv_hr', features, features, '3×3 convolution');
  const outChannels = shapeOf(keys, 'conv_last.weight', NET, 4)[0];
  if (outChannels !== inChannels) {
    throw new InvalidInputError(
      `${NET} checkpoint: conv_last outputs ${outChannels} channels but conv_first takes ${inChannels}; the bilinear base ` +
        'added to the output needs them equal',
    );
  }
  conv('conv_last', outChannels, features, '3×3 convolution');
  const config: MSRResNetConfig = { inChannels, outChannels, features, blocks, scale };
  // Every parameter's shape is checked above, with messages that say why; this also refuses unexpected keys.
  checkKeysMatch(new MSRResNet(config), keys, `${NET} (×${scale}, ${blocks} blocks)`);
  return config;
}
