import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import type { ForwardBuilder, ForwardOptions } from '../layers/forward-builder';
import { Module } from '../layers/module';
import { checkKeysMatch } from '../layers/module-tree';
import { DoubleConv, Down, OutConv, Up } from '../layers/unet-parts';
import { requireIntegers } from './config-checks';
import type { KeyShapes } from './key-shapes';
import type { Network } from './network';

export interface UNetConfig {
  /** milesial's n_channels. */
  inChannels: number;
  /** milesial's n_classes. */
  outChannels: number;
  /** Bilinear upsampling (align_corners=True) instead of ConvTranspose2d; the deepest level is then halved. */
  bilinear: boolean;
  /** Width of the first level; milesial hard-codes 64 (smaller widths make tiny test networks). */
  baseChannels: number;
  /** Apply a sigmoid to the logits (fused into the last convolution). Not visible in a state_dict. */
  sigmoid: boolean;
}

/** Four 2× max pools: each level needs at least one pixel, so the input must be at least 2^4 on each side. */
export const UNET_MIN_SIZE = 16;

/**
 * milesial's U-Net (Pytorch-UNet, unet/unet_model.py): inc → down1..4 → up1..4 (each taking the matching encoder
 * map as its skip) → outc. Attribute names are milesial's, so its checkpoints load key for key; the checkpoint's
 * extra `mask_values` entry (a Python list, which the .pth reader drops with every other non-tensor) is also
 * tolerated as a tensor. Any size ≥ 16×16 and any parity: odd sizes are handled by the zero-pad alignment in Up.
 */
export class UNet extends Module implements Network {
  override get supportsTraining(): boolean {
    return true;
  }

  readonly architecture = 'UNet';
  readonly scale = 1;
  readonly inc: DoubleConv;
  readonly down1: Down;
  readonly down2: Down;
  readonly down3: Down;
  readonly down4: Down;
  readonly up1: Up;
  readonly up2: Up;
  readonly up3: Up;
  readonly up4: Up;
  readonly outc: OutConv;

  constructor(readonly config: UNetConfig) {
    super();
    const { inChannels, outChannels, bilinear, baseChannels: b } = config;
    requireIntegers('U-Net', { inChannels: [inChannels, 1], outChannels: [outChannels, 1], baseChannels: [b, 1] });
    const f = bilinear ? 2 : 1;
    this.inc = new DoubleConv(inChannels, b);
    this.down1 = new Down(b, 2 * b);
    this.down2 = new Down(2 * b, 4 * b);
    this.down3 = new Down(4 * b, 8 * b);
    this.down4 = new Down(8 * b, Math.floor((16 * b) / f));
    this.up1 = new Up(16 * b, Math.floor((8 * b) / f), bilinear);
    this.up2 = new Up(8 * b, Math.floor((4 * b) / f), bilinear);
    this.up3 = new Up(4 * b, Math.floor((2 * b) / f), bilinear);
    this.up4 = new Up(2 * b, b, bilinear);
    this.outc = new OutConv(b, outChannels);
  }

  get inChannels(): number {
    return this.config.inChannels;
  }

  get outChannels(): number {
    return this.config.outChannels;
  }

  override children(): [string, Module<any, any>][] {
    return (['inc', 'down1', 'down2', 'down3', 'down4', 'up1', 'up2', 'up3', 'up4', 'outc'] as const).map((k) => [k, this[k]]);
  }

  /** milesial's train.py stores the mask values next to the weights; predict.py pops them. */
  override ignoredKeys(): string[] {
    return ['mask_values'];
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    this.checkOptions(options, options.label ?? this.architecture);
    const [, h, w, c] = x.shape;
    if (c !== this.config.inChannels) {
      throw new InvalidInputError(`U-Net expects ${this.config.inChannels} image channel(s), got ${c}`);
    }
    if (h < UNET_MIN_SIZE || w < UNET_MIN_SIZE) {
      throw new InvalidInputError(`U-Net needs an image of at least ${UNET_MIN_SIZE}×${UNET_MIN_SIZE} (four 2× poolings), got ${w}×${h}`);
    }
    const x1 = this.inc.forward(b, x, { label: 'inc' });
    const x2 = this.down1.forward(b, x1, { label: 'down1' });
    const x3 = this.down2.forward(b, x2, { label: 'down2' });
    const x4 = this.down3.forward(b, x3, { label: 'down3' });
    const x5 = this.down4.forward(b, x4, { label: 'down4' });
    let y = this.up1.forward(b, [x5, x4], { label: 'up1' });
    y = this.up2.forward(b, [y, x3], { label: 'up2' });
    y = this.up3.forward(b, [y, x2], { label: 'up3' });
    y = this.up4.forward(b, [y, x1], { label: 'up4' });
    return this.outc.forward(b, y, { label: 'outc', epilogue: this.config.sigmoid ? { activation: { kind: 'sigmoid' } } : undefined });
  }
}

/**
 * Recognises milesial's U-Net from state_dict keys and shapes: `inc.double_conv.0.weight` [base, n_channels, 3, 3],
 * `outc.conv.weight` [n_classes, base, 1, 1], and bilinear when there is no `up1.up.weight` (ConvTranspose2d).
 * Returns null when the keys are not this network's; throws InvalidInputError when they look like it but do not
 * fit (a key missing, an unexpected key, a shape that disagrees with the inferred configuration). `sigmoid` is
 * always false: an output activation leaves no trace in the weights.
 */
export function recogniseUNet(keys: KeyShapes): UNetConfig | null {
  const head = keys.get('inc.double_conv.0.weight');
  const tail = keys.get('outc.conv.weight');
  const marker = keys.has('up1.conv.double_conv.0.weight') || keys.has('down1.maxpool_conv.1.double_conv.0.weight');
  if (!head && !tail && !marker) return null;
  if (!head || head.shape.length !== 4 || !tail || tail.shape.length !== 4) {
    throw new InvalidInputError("the weights look like milesial's U-Net but lack a 4-D 'inc.double_conv.0.weight' or 'outc.conv.weight'");
  }
  const config: UNetConfig = {
    inChannels: head.shape[1],
    outChannels: tail.shape[0],
    bilinear: !keys.has('up1.up.weight'),
    baseChannels: head.shape[0],
    sigmoid: false,
  };
  checkKeysMatch(
    new UNet(config),
    keys,
    `milesial U-Net (${config.bilinear ? 'bilinear' : 'transposed-conv'}, base ${config.baseChannels})`,
  );
  return config;
}
