import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import { binary } from '../kernels/elementwise';
import { ReLU } from '../layers/activations';
import { BatchNorm2d } from '../layers/batchnorm';
import { Conv2d } from '../layers/conv2d';
import type { ForwardBuilder, ForwardOptions } from '../layers/forward-builder';
import { Module } from '../layers/module';
import { checkKeysMatch } from '../layers/module-tree';
import { Sequential } from '../layers/sequential';
import { requireIntegers, requireOneOf } from './config-checks';
import { expectAbsent, expectBatchNorm, expectShape, type KeyShapes, shapeOf } from './key-shapes';
import type { Network } from './network';

/**
 * The two DnCNN PyTorch layouts besides KAIR's (which is src/models/dncnn.ts):
 * - 'cszn': the authors' own PyTorch code (cszn/DnCNN, TrainingCodes/dncnn_pytorch): first conv with bias, body
 *   convs without, BatchNorm eps 1e-4; its forward returns the clean image y − dncnn(y).
 * - 'saoyan': SaoYan/DnCNN-PyTorch: no bias anywhere, BatchNorm eps 1e-5 (PyTorch's default); its forward
 *   returns the NOISE dncnn(y), and its test script computes clamp(y − net(y), 0, 1).
 * The layer layout and keys are otherwise the same, `dncnn.<i>.*` in one nn.Sequential (SaoYan's files carry
 * DataParallel's `module.` prefix, which the checkpoint reader strips):
 *   dncnn.0 conv, dncnn.1 ReLU, then for k = 0 … depth−3: conv 3k+2, BatchNorm 3k+3, ReLU 3k+4; last conv 3·depth−4
 *   (dncnn.47 for depth 17, dncnn.56 for depth 20).
 */
export type DnCNNLayout = 'cszn' | 'saoyan';

export interface DnCNNVariantConfig {
  layout: DnCNNLayout;
  /** Image channels, in and out (1 grayscale, 3 colour). */
  imageChannels: number;
  /** Hidden feature channels (64 in both codebases; SaoYan fixes it). */
  features: number;
  /** Number of convolutions (17; 20 for the blind models). */
  depth: number;
  /**
   * What our network returns. 'clean' (the default the recogniser picks): the denoised image x − dncnn(x), for
   * both layouts (for 'saoyan' that is what its test script computes, without its clamp; `RestorationModel.run`
   * clamps when it converts to integers). 'noise': dncnn(x), the noise estimate, i.e. what SaoYan's module returns.
   */
  output: 'clean' | 'noise';
}

/** BatchNorm eps of each codebase: the cszn code sets 1e-4, SaoYan keeps PyTorch's default 1e-5. */
export const DNCNN_VARIANT_BN_EPS: Readonly<Record<DnCNNLayout, number>> = { cszn: 1e-4, saoyan: 1e-5 };

const ARCHITECTURE: Readonly<Record<DnCNNLayout, string>> = { cszn: 'DnCNN-cszn', saoyan: 'DnCNN-SaoYan' };

export class DnCNNVariant extends Module implements Network {
  readonly architecture: string;
  readonly scale = 1;
  readonly dncnn: Sequential;

  constructor(readonly config: DnCNNVariantConfig) {
    super();
    const { layout, imageChannels, features, depth, output } = config;
    requireOneOf('DnCNN', 'layout', layout, ['cszn', 'saoyan']);
    requireOneOf('DnCNN', 'output', output, ['clean', 'noise']);
    requireIntegers('DnCNN', { imageChannels: [imageChannels, 1], features: [features, 1], depth: [depth, 2] });
    this.architecture = ARCHITECTURE[layout];
    const conv = (cin: number, cout: number, bias: boolean) => new Conv2d(cin, cout, 3, { padding: 1, bias });
    const layers: Module[] = [conv(imageChannels, features, layout === 'cszn'), new ReLU()];
    for (let k = 0; k < depth - 2; k++) {
      layers.push(conv(features, features, false), new BatchNorm2d(features, DNCNN_VARIANT_BN_EPS[layout]), new ReLU());
    }
    layers.push(conv(features, imageChannels, false));
    this.dncnn = new Sequential(...layers);
  }

  get inChannels(): number {
    return this.config.imageChannels;
  }

  get outChannels(): number {
    return this.config.imageChannels;
  }

  override children(): [string, Module][] {
    return [['dncnn', this.dncnn]];
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    this.checkOptions(options, options.label ?? this.architecture);
    if (x.shape[3] !== this.inChannels) {
      throw new InvalidInputError(`${this.architecture} expects ${this.inChannels} image channel(s), got ${x.shape[3]}`);
    }
    // Conv [→ BatchNorm, folded when the weights were loaded] → ReLU steps, one dispatch each.
    const noise = this.dncnn.forward(b, x, { label: 'dncnn' });
    if (this.config.output === 'noise') return noise;
    return binary(b.graph, 'sub', x, noise, 'x - dncnn(x)');
  }
}

const NET = 'DnCNN (cszn/SaoYan layout)';

/**
 * Recognises a cszn or SaoYan DnCNN state_dict (keys `dncnn.<i>.*`, after the reader stripped `module.`):
 * null when it has no `dncnn.` keys; the config otherwise, with `output: 'clean'`. The layout follows from the
 * first conv's bias (cszn has one, SaoYan none), which also fixes the BatchNorm eps. Throws InvalidInputError
 * when the keys look like this network but do not fit together (conv indices, channel counts, missing BatchNorm,
 * keys the network does not have).
 */
export function recogniseDnCNNVariant(keys: KeyShapes): DnCNNVariantConfig | null {
  if (![...keys.keys()].some((k) => k.startsWith('dncnn.'))) return null;
  const head = shapeOf(keys, 'dncnn.0.weight', NET, 4);
  const [features, imageChannels] = head;
  expectShape(keys, 'dncnn.0.weight', [features, imageChannels, 3, 3], NET, 'a 3×3 convolution');
  const layout: DnCNNLayout = keys.has('dncnn.0.bias') ? 'cszn' : 'saoyan';
  if (layout === 'cszn') expectShape(keys, 'dncnn.0.bias', [features], NET);
  // Convolutions are the 4-D weights: index 0, then 2, 5, 8, … (3k + 2); BatchNorm weights are 1-D.
  const convIndices = [...keys.keys()]
    .map((k) => /^dncnn\.(\d+)\.weight$/.exec(k))
    .filter((m): m is RegExpExecArray => m !== null && keys.get(m[0])!.shape.length === 4)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  const depth = convIndices.length;
  if (depth < 2) throw new InvalidInputError(`${NET} checkpoint: only ${depth} convolution found, need at least 2`);
  convIndices.forEach((idx, i) => {
    const want = i === 0 ? 0 : 3 * i - 1;
    if (idx !== want) {
      throw new InvalidInputError(
        `${NET} checkpoint: convolution ${i} is dncnn.${idx}, expected dncnn.${want} (conv, BatchNorm, ReLU repeat every 3 indices)`,
      );
    }
  });
  for (let k = 0; k < depth - 2; k++) {
    const c = 3 * k + 2;
    expectShape(keys, `dncnn.${c}.weight`, [features, features, 3, 3], NET, `hidden convolution of ${features} features`);
    expectAbsent(keys, `dncnn.${c}.bias`, NET, 'the body convolutions of this layout have no bias');
    expectBatchNorm(keys, `dncnn.${c + 1}`, features, NET);
  }
  const last = 3 * depth - 4;
  const tail = shapeOf(keys, `dncnn.${last}.weight`, NET, 4);
  if (tail[0] !== imageChannels) {
    throw new InvalidInputError(
      `${NET} checkpoint: the last convolution dncnn.${last} outputs ${tail[0]} channels but the input has ${imageChannels}; ` +
        'the residual x − dncnn(x) needs them equal',
    );
  }
  expectShape(keys, `dncnn.${last}.weight`, [imageChannels, features, 3, 3], NET);
  expectAbsent(keys, `dncnn.${last}.bias`, NET, 'the last convolution of this layout has no bias');
  const config: DnCNNVariantConfig = { layout, imageChannels, features, depth, output: 'clean' };
  // What the checks above do not cover: keys the network does not have.
  checkKeysMatch(new DnCNNVariant(config), keys, `${NET}, ${layout}`);
  return config;
}
