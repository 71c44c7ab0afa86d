import type { TensorValue } from '../gpu/graph';
import { ReLU } from './activations';
import { concat } from './autograd-ops';
import { BatchNorm2d } from './batchnorm';
import { Conv2d } from './conv2d';
import { ConvTranspose2d } from './conv-transpose2d';
import type { ForwardBuilder, ForwardOptions } from './forward-builder';
import { Module } from './module';
import { Sequential } from './sequential';
import { MaxPool2d, Upsample } from './spatial';

/**
 * The building blocks of milesial's U-Net (Pytorch-UNet, unet/unet_parts.py), with its attribute names so the
 * state_dict keys match: `double_conv.{0,1,3,4}`, `maxpool_conv.1.double_conv.*`, `up`, `conv`.
 */

/** [conv3×3 (no bias) → BatchNorm (eps 1e-5) → ReLU] × 2; BatchNorms fold into the convs, ReLUs into their epilogues. */
export class DoubleConv extends Module {
  override get supportsTraining(): boolean {
    return true;
  }

  readonly double_conv: Sequential;

  constructor(inChannels: number, outChannels: number, midChannels = outChannels) {
    super();
    const conv = (cin: number, cout: number) => new Conv2d(cin, cout, 3, { padding: 1, bias: false });
    this.double_conv = new Sequential(
      conv(inChannels, midChannels),
      new BatchNorm2d(midChannels),
      new ReLU(),
      conv(midChannels, outChannels),
      new BatchNorm2d(outChannels),
      new ReLU(),
    );
  }

  override children(): [string, Module][] {
    return [['double_conv', this.double_conv]];
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    return this.double_conv.forward(b, x, { ...options, label: `${options.label ?? 'conv'}.double_conv` });
  }
}

/** MaxPool2d(2) (floor: an odd last row/column is dropped) → DoubleConv. */
export class Down extends Module {
  override get supportsTraining(): boolean {
    return true;
  }

  readonly maxpool_conv: Sequential;

  constructor(inChannels: number, outChannels: number) {
    super();
    this.maxpool_conv = new Sequential(new MaxPool2d({ kernel: 2 }), new DoubleConv(inChannels, outChannels));
  }

  override children(): [string, Module][] {
    return [['maxpool_conv', this.maxpool_conv]];
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    return this.maxpool_conv.forward(b, x, { ...options, label: `${options.label ?? 'down'}.maxpool_conv` });
  }
}

/**
 * Upsample ×2 (ConvTranspose2d k2 s2 with bias, or bilinear align_corners=True), zero-pad to the skip's size with
 * the floor/ceil split (left = ⌊dX/2⌋, top = ⌊dY/2⌋), cat([skip, upsampled]) — skip first — then DoubleConv.
 * The padding and the concatenation are one dispatch (`concatChannels`).
 */
export class Up extends Module<readonly [low: TensorValue, skip: TensorValue]> {
  override get supportsTraining(): boolean {
    return true;
  }

  readonly up: ConvTranspose2d | Upsample;
  readonly conv: DoubleConv;

  constructor(
    inChannels: number,
    outChannels: number,
    readonly bilinear: boolean,
  ) {
    super();
    if (bilinear) {
      this.up = new Upsample({ mode: 'bilinear', scaleFactor: 2, alignCorners: true });
      this.conv = new DoubleConv(inChannels, outChannels, Math.floor(inChannels / 2));
    } else {
      this.up = new ConvTranspose2d(inChannels, Math.floor(inChannels / 2), 2, { stride: 2, bias: true });
      this.conv = new DoubleConv(inChannels, outChannels);
    }
  }

  override children(): [string, Module][] {
    return [
      ['up', this.up],
      ['conv', this.conv],
    ];
  }

  forward(b: ForwardBuilder, [low, skip]: readonly [low: TensorValue, skip: TensorValue], options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'up';
    const up = this.up.forward(b, low, { label: `${label}.up` });
    const [, h, w] = skip.shape;
    const dy = h - up.shape[1];
    const dx = w - up.shape[2];
    const cat = concat(b, skip, up, { size: [h, w], second: { top: Math.floor(dy / 2), left: Math.floor(dx / 2) } }, `${label}.cat`);
    return this.conv.forward(b, cat, { ...options, label: `${label}.conv` });
  }
}

/** Conv1×1 with bias (the logits); an optional fused activation (sigmoid) for models that want probabilities. */
export class OutConv extends Module {
  override get supportsTraining(): boolean {
    return true;
  }

  readonly conv: Conv2d;

  constructor(inChannels: number, outChannels: number) {
    super();
    this.conv = new Conv2d(inChannels, outChannels, 1, { bias: true });
  }

  override children(): [string, Module][] {
    return [['conv', this.conv]];
  }

  override get fusesEpilogue(): boolean {
    return true;
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    return this.conv.forward(b, x, { ...options, label: `${options.label ?? 'outc'}.conv` });
  }
}
