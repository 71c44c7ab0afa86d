import { InvalidInputError, StateDictError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import { RELU } from '../kernels/activation';
import { ReLU } from '../layers/activations';
import { relu } from '../layers/autograd-ops';
import { Conv2d } from '../layers/conv2d';
import type { ForwardBuilder, ForwardOptions } from '../layers/forward-builder';
import { loadStateDict, Module } from '../layers/module';
import { MaxPool2d } from '../layers/spatial';
import type { StateDict } from '../weights/state-dict';

/**
 * torchvision's `vgg16().features` / `vgg19().features` (and `alexnet().features`, LPIPS's other backbone) as a
 * module whose state_dict names are torchvision's (`features.0.weight`, …), run up to a chosen layer and returning
 * intermediate feature maps: what perceptual losses (BasicSR's VGGFeatureExtractor) and LPIPS read.
 *
 * A feature map may be taken before a ReLU (ESRGAN's `conv5_4`, index 34) or after it (`relu5_4`, 35). A ReLU
 * whose input nobody asked for runs fused into its convolution; one after a requested convolution runs on its own
 * (a clamp at 0), so both maps exist, as PyTorch's `x.clone()` of each requested output gives.
 */

export type VggDepth = 16 | 19;
export type FeatureBackbone = 'vgg16' | 'vgg19' | 'alexnet';

/** One layer of a features stack, as torchvision builds it. */
type LayerSpec =
  | { kind: 'conv'; in: number; out: number; kernel: number; stride: number; padding: number; name: string }
  | { kind: 'relu'; name: string }
  | { kind: 'pool'; kernel: number; stride: number; name: string };

/** Convolutions per block (torchvision's cfgs 'D' and 'E'). */
const VGG_BLOCKS: Record<VggDepth, readonly number[]> = { 16: [2, 2, 3, 3, 3], 19: [2, 2, 4, 4, 4] };
/** torchvision's widths per block; a reduced network (tests) divides them. */
export const VGG_WIDTHS = [64, 128, 256, 512, 512] as const;
export const ALEXNET_WIDTHS = [64, 192, 384, 256, 256] as const;

function vggSpecs(depth: VggDepth, widths: readonly number[], inChannels: number): LayerSpec[] {
  const specs: LayerSpec[] = [];
  let c = inChannels;
  VGG_BLOCKS[depth].forEach((convs, b) => {
    for (let j = 1; j <= convs; j++) {
      specs.push({ kind: 'conv', in: c, out: widths[b], kernel: 3, stride: 1, padding: 1, name: `conv${b + 1}_${j}` });
      specs.push({ kind: 'relu', name: `relu${b + 1}_${j}` });
      c = widths[b];
    }
    specs.push({ kind: 'pool', kernel: 2, stride: 2, name: `pool${b + 1}` });
  });
  return specs;
}

/** torchvision's AlexNet features: conv 11/4/2, pool 3/2, conv 5/1/2, pool, three conv 3/1/1, pool. */
function alexnetSpecs(widths: readonly number[], inChannels: number): LayerSpec[] {
  const [w1, w2, w3, w4, w5] = widths;
  const conv = (i: number, o: number, kernel: number, stride: number, padding: number, k: number): LayerSpec[] => [
    { kind: 'conv', in: i, out: o, kernel, stride, padding, name: `conv${k}` },
    { kind: 'relu', name: `relu${k}` },
  ];
  const pool = (k: number): LayerSpec => ({ kind: 'pool', kernel: 3, stride: 2, name: `pool${k}` });
  return [
    ...conv(inChannels, w1, 11, 4, 2, 1),
    pool(1),
    ...conv(w1, w2, 5, 1, 2, 2),
    pool(2),
    ...conv(w2, w3, 3, 1, 1, 3),
    ...conv(w3, w4, 3, 1, 1, 4),
    ...conv(w4, w5, 3, 1, 1, 5),
    pool(5),
  ];
}

/** `vgg.features` / `alexnet.features`: an nn.Sequential of Conv2d, ReLU and MaxPool2d, children by index. */
export class FeatureStack extends Module {
  readonly layers: Module[];
  /** Layer names by index (BasicSR's `conv5_4`, `relu5_4`, `pool5`, …). */
  readonly names: readonly string[];

  constructor(private readonly specs: readonly LayerSpec[]) {
    super();
    this.names = specs.map((s) => s.name);
    this.layers = specs.map((s) => {
      if (s.kind === 'conv') return new Conv2d(s.in, s.out, s.kernel, { stride: s.stride, padding: s.padding });
      if (s.kind === 'relu') return new ReLU();
      return new MaxPool2d({ kernel: s.kernel, stride: s.stride });
    });
  }

  override get supportsTraining(): boolean {
    return true;
  }

  override children(): [string, Module][] {
    return this.layers.map((m, i) => [String(i), m]);
  }

  /** The index of a layer given by name (`conv5_4`) or index; throws naming the known layers otherwise. */
  layerIndex(layer: string | number): number {
    const i = typeof layer === 'number' ? layer : this.names.indexOf(layer);
    if (!Number.isInteger(i) || i < 0 || i >= this.layers.length) {
      throw new InvalidInputError(`no layer ${JSON.stringify(layer)} in these features: they have ${this.names.join(', ')}`);
    }
    return i;
  }

  /** The convolutions among layers 0 … `last` (what must be on the GPU to reach `last`). */
  convsUpTo(last: number): Conv2d[] {
    return this.layers.slice(0, last + 1).filter((m): m is Conv2d => m instanceof Conv2d);
  }

  /** Channels of the feature map after layer `i`. */
  channelsAt(i: number): number {
    for (let k = i; k >= 0; k--) {
      const s = this.specs[k];
      if (s.kind === 'conv') return s.out;
    }
    const first = this.specs[0];
    return first.kind === 'conv' ? first.in : 0;
  }

  /** Output height or width of layers 0 … `last` for an input `size` (floor division, as PyTorch). */
  private sizeAfter(size: number, last: number): number {
    for (const s of this.specs.slice(0, last + 1)) {
      if (s.kind === 'conv') size = Math.floor((size + 2 * s.padding - s.kernel) / s.stride) + 1;
      else if (s.kind === 'pool') size = Math.floor((size - s.kernel) / s.stride) + 1;
    }
    return size;
  }

  /** Throws InvalidInputError unless an h×w input still has at least one pixel after layer `last`. */
  checkInputSize(h: number, w: number, last: number, what: string): void {
    for (let i = 0; i <= last; i++) {
      if (this.sizeAfter(h, i) < 1 || this.sizeAfter(w, i) < 1) {
        let min = 1;
        while (this.sizeAfter(min, last) < 1) min++;
        throw new InvalidInputError(
          `${what}: a ${h}×${w} image is too small for layer ${this.names[last]} (index ${last}): ` +
            `nothing is left after ${this.names[i]} (index ${i}); it needs at least ${min}×${min} pixels`,
        );
      }
    }
  }

  forward(): TensorValue {
    throw new InvalidInputError('FeatureStack: use extract(builder, x, layers), which returns the requested feature maps');
  }

  /**
   * Runs layers 0 … max(`layers`) on `x` (NHWC, 3 channels) and returns the output of each layer in `layers`, in
   * that order. In a training graph every step records its backward on the builder's tape (frozen weights: only
   * input gradients, and only when `x` is tracked).
   */
  extract(b: ForwardBuilder, x: TensorValue, layers: readonly number[], options: ForwardOptions = {}): TensorValue[] {
    const label = options.label ?? 'features';
    if (layers.length === 0) throw new InvalidInputError(`${label}: no layer to extract`);
    const wanted = new Set(layers.map((l) => this.layerIndex(l)));
    const last = Math.max(...wanted);
    const inChannels = this.channelsAt(-1);
    if (x.shape[3] !== inChannels) throw new InvalidInputError(`${label}: expects ${inChannels} channels, got ${x.shape[3]}`);
    this.checkInputSize(x.shape[1], x.shape[2], last, label);
    const out = new Map<number, TensorValue>();
    for (let i = 0; i <= last;) {
      const layer = this.layers[i];
      const name = `${label}.${i}`;
      if (layer instanceof Conv2d) {
        const fuse = i + 1 <= last && this.layers[i + 1] instanceof ReLU && !wanted.has(i);
        x = layer.forward(b, x, fuse ? { label: name, epilogue: { activation: RELU } } : { label: name });
        i += fuse ? 2 : 1;
      } else if (layer instanceof ReLU) {
        x = relu(b, x, name);
        i += 1;
      } else {
        x = layer.forward(b, x, { label: name });
        i += 1;
      }
      if (wanted.has(i - 1)) out.set(i - 1, x);
    }
    return layers.map((l) => out.get(this.layerIndex(l))!);
  }
}

export interface FeatureNetworkOptions {
  /** Per block (5 values): torchvision's by default; tests use reduced widths. */
  widths?: readonly number[];
}

/**
 * torchvision's `vgg16()` / `vgg19()` / `alexnet()` reduced to `features` (the classifier is not needed for feature
 * maps; `loadFeatureNetwork` ignores its keys). No batch-norm variants (vgg16_bn, vgg19_bn).
 */
export class FeatureNetwork extends Module {
  readonly features: FeatureStack;

  constructor(
    readonly backbone: FeatureBackbone,
    options: FeatureNetworkOptions = {},
  ) {
    super();
    const widths = options.widths ?? (backbone === 'alexnet' ? ALEXNET_WIDTHS : VGG_WIDTHS);
    if (widths.length !== 5 || widths.some((w) => !Number.isInteger(w) || w < 1)) {
      throw new InvalidInputError(`${backbone}: widths must be 5 positive integers, got ${JSON.stringify(widths)}`);
    }
    this.features = new FeatureStack(
      backbone === 'alexnet' ? alexnetSpecs(widths, 3) : vggSpecs(backbone === 'vgg16' ? 16 : 19, widths, 3),
    );
  }

  override get supportsTraining(): boolean {
    return true;
  }

  override children(): [string, Module][] {
    return [['features', this.features]];
  }

  forward(): TensorValue {
    throw new InvalidInputError(`${this.backbone}: use features.extract(builder, x, layers)`);
  }
}

/** torchvision's VGG16 / VGG19 features (BasicSR's `vgg_type` 'vgg16' / 'vgg19'). */
export function vgg(depth: VggDepth, options: FeatureNetworkOptions = {}): FeatureNetwork {
  if (depth !== 16 && depth !== 19) throw new InvalidInputError(`VGG depth must be 16 or 19, got ${String(depth)}`);
  return new FeatureNetwork(depth === 16 ? 'vgg16' : 'vgg19', options);
}

/** torchvision's AlexNet features (LPIPS's 'alex' backbone). */
export function alexnet(options: FeatureNetworkOptions = {}): FeatureNetwork {
  return new FeatureNetwork('alexnet', options);
}

/**
 * A frozen 1×1 convolution C → 3 that does the input's per-channel affine: `weight[o][c] = scale_o` when c is the
 * channel o reads (c = o for RGB; c = 0 for a gray image, which is repeated to 3 channels as VGG needs — BasicSR
 * itself would fail on one channel) and `bias_o = shift_o`. A convolution, so the frozen-weight input gradient of
 * conv2d-training.ts carries the gradient back through it (the sum over the 3 copies for gray).
 */
export function channelAffineConv(inChannels: number, scale: readonly number[], shift: readonly number[]): Conv2d {
  if (inChannels !== 1 && inChannels !== 3) {
    throw new InvalidInputError(`the image has ${inChannels} channels: VGG features need 3 (RGB) or 1 (gray, repeated to 3)`);
  }
  const conv = new Conv2d(inChannels, 3, 1);
  const w = new Float64Array(3 * inChannels);
  for (let o = 0; o < 3; o++) w[o * inChannels + (inChannels === 1 ? 0 : o)] = scale[o];
  conv.weight.data = w;
  conv.bias!.data = Float64Array.from(shift);
  return conv;
}

const FEATURE_KEY = /^features\.(\d+)\.(weight|bias)$/;

/** Convolution weights of a features state_dict by layer index, in index order. */
function convWeights(sd: StateDict): [number, number[]][] {
  const out: [number, number[]][] = [];
  for (const [k, t] of sd) {
    const m = FEATURE_KEY.exec(k);
    if (m && m[2] === 'weight' && t.shape.length === 4) out.push([Number(m[1]), t.shape]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/**
 * The backbone a torchvision state_dict holds, and its widths: VGG16 (13 convolutions), VGG19 (16) or AlexNet
 * (5, the first 11×11), from the `features.*` weights alone.
 */
export function recogniseFeatureNetwork(sd: StateDict, name = 'backbone'): { backbone: FeatureBackbone; widths: number[] } {
  if ([...sd.keys()].some((k) => k.startsWith('features.') && k.endsWith('.running_mean'))) {
    throw new InvalidInputError(`${name}: a batch-norm VGG (vgg16_bn / vgg19_bn) is not supported; use torchvision's vgg16 or vgg19`);
  }
  const convs = convWeights(sd);
  if (convs.length === 5 && convs[0][1][2] === 11) return { backbone: 'alexnet', widths: convs.map(([, s]) => s[0]) };
  const blocks = convs.length === 13 ? VGG_BLOCKS[16] : convs.length === 16 ? VGG_BLOCKS[19] : undefined;
  if (!blocks) {
    const some = [...sd.keys()].slice(0, 6).join(', ');
    throw new StateDictError(
      'MISSING_KEY',
      `${name}: expected torchvision vgg16, vgg19 or alexnet weights (features.0.weight, …); found ${convs.length} ` +
        `features.* convolution weights among keys such as ${some}`,
      ['features.0.weight'],
    );
  }
  let k = 0;
  const widths = blocks.map((n) => {
    const w = convs[k][1][0];
    k += n;
    return w;
  });
  return { backbone: convs.length === 13 ? 'vgg16' : 'vgg19', widths };
}

/**
 * Builds and loads a backbone from a torchvision state_dict (`torch.save(torchvision.models.vgg19(weights=…)
 * .state_dict())`): the `features.*` tensors are loaded strictly (every one present with torchvision's shape, no
 * unknown `features.*` key; StateDictError names the key), the `classifier.*` ones ignored. A state_dict of the
 * `features` module alone (`0.weight`, …) is accepted too. `expect` refuses a different backbone.
 */
export function loadFeatureNetwork(sd: StateDict, options: { expect?: FeatureBackbone; name?: string } = {}): FeatureNetwork {
  const name = options.name ?? 'backbone';
  const keys = [...sd.keys()];
  const featuresOnly = keys.length > 0 && keys.every((k) => /^\d+\.(weight|bias)$/.test(k));
  const features: StateDict = new Map();
  for (const [k, t] of sd) {
    if (featuresOnly) features.set(`features.${k}`, t);
    else if (k.startsWith('features.')) features.set(k, t);
  }
  const { backbone, widths } = recogniseFeatureNetwork(features, name);
  if (options.expect && options.expect !== backbone)
    throw new InvalidInputError(`${name}: holds ${backbone} weights, ${options.expect} expected`);
  const net = new FeatureNetwork(backbone, { widths });
  loadStateDict(net, features);
  return net;
}
