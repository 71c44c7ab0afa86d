import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import { LeakyReLU } from '../layers/activations';
import { BatchNorm2d } from '../layers/batchnorm';
import { Conv2d } from '../layers/conv2d';
import type { ForwardBuilder, ForwardOptions } from '../layers/forward-builder';
import { Module } from '../layers/module';
import { Sequential } from '../layers/sequential';
import { requireIntegers } from './config-checks';

/** pix2pix's NLayerDiscriminator arguments (input_nc, ndf, n_layers; norm_layer BatchNorm2d). */
export interface PatchGANConfig {
  /** Channels it judges: the image's, or input + output channels for pix2pix's conditional D (cat(A, B)). */
  inChannels: number;
  /** Features of the first layer (64). */
  ndf: number;
  /** Stride-2 layers after the first (3: the 70×70 PatchGAN). */
  nLayers: number;
}

export const PATCHGAN_70: Omit<PatchGANConfig, 'inChannels'> = { ndf: 64, nLayers: 3 };

const KERNEL = 4;
const PADDING = 1;
const SLOPE = 0.2;

/**
 * pix2pix's PatchGAN discriminator (junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py NLayerDiscriminator;
 * training.md §2.6), with its parameter names (`model.<i>`):
 *   conv4 s2 (ndf, bias) → LeakyReLU 0.2
 *   n_layers − 1 × [conv4 s2 (ndf·min(2^n, 8), no bias: BatchNorm follows) → BatchNorm → LeakyReLU 0.2]
 *   conv4 s1 (ndf·min(2^n_layers, 8), no bias) → BatchNorm → LeakyReLU 0.2
 *   conv4 s1 (1, bias)
 * every convolution 4×4 with padding 1. Its output is a map of logits, one per overlapping patch (30×30 for a
 * 256² image and n_layers 3); images must be large enough that the map is not empty.
 */
export class PatchGANDiscriminator extends Module {
  readonly architecture = 'PatchGAN';
  readonly model: Sequential;

  constructor(readonly config: PatchGANConfig) {
    super();
    const { inChannels, ndf, nLayers } = config;
    requireIntegers('PatchGAN', { inChannels: [inChannels, 1], ndf: [ndf, 1], nLayers: [nLayers, 1] });
    const conv = (cin: number, cout: number, stride: number, bias: boolean) =>
      new Conv2d(cin, cout, KERNEL, { stride, padding: PADDING, bias });
    const layers: Module[] = [conv(inChannels, ndf, 2, true), new LeakyReLU(SLOPE)];
    let width = ndf;
    for (let n = 1; n <= nLayers; n++) {
      const next = ndf * Math.min(2 ** n, 8);
      layers.push(conv(width, next, n < nLayers ? 2 : 1, false), new BatchNorm2d(next), new LeakyReLU(SLOPE));
      width = next;
    }
    layers.push(conv(width, 1, 1, true));
    this.model = new Sequential(...layers);
  }

  override get supportsTraining(): boolean {
    return true;
  }

  override children(): [string, Module][] {
    return [['model', this.model]];
  }

  /** The logits' height and width for an h×w input (each 4×4 conv with padding 1: ⌊(s + 2 − 4)/stride⌋ + 1). */
  outputSize(h: number, w: number): [number, number] {
    const shrink = (s: number) => {
      for (let n = 0; n < this.config.nLayers; n++) s = Math.floor((s + 2 * PADDING - KERNEL) / 2) + 1;
      for (let n = 0; n < 2; n++) s = s + 2 * PADDING - KERNEL + 1;
      return s;
    };
    return [shrink(h), shrink(w)];
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? this.architecture;
    this.checkOptions(options, label);
    if (x.shape[3] !== this.config.inChannels) {
      throw new InvalidInputError(`${label} judges ${this.config.inChannels} channel(s), got ${x.shape[3]}`);
    }
    const [h, w] = this.outputSize(x.shape[1], x.shape[2]);
    if (h < 1 || w < 1) {
      throw new InvalidInputError(`${label}: a ${x.shape[1]}×${x.shape[2]} image is too small for ${this.config.nLayers} stride-2 layers`);
    }
    return this.model.forward(b, x, { label: `${label}.model` });
  }
}
