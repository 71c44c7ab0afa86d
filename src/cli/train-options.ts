/**
 * The flags of `webgpu-restore train` turned into the library's configurations: loss, optimizer (PyTorch's
 * defaults where PyTorch has one), schedule, data and split. Every bad value is a UsageError naming the flag.
 */
import { InvalidInputError } from '../errors';
import { DnCNN } from '../models/dncnn';
import { MSRResNet } from '../models/msrresnet';
import { N2VUNet, n2vUNetConfig } from '../models/n2v-unet';
import type { Network } from '../models/network';
import type { FeatureNetwork } from '../models/vgg';
import { ResNet34UNet, resnet34UNetConfig } from '../models/resnet34-unet';
import { ESRGAN_X4, RRDBNet } from '../models/rrdbnet';
import { SCUNet, SCUNET_GRAY } from '../models/scunet';
import { SINSR, SINSR_ARCH7, SINSR_CBAM } from '../models/sinsr';
import { SRResNet } from '../models/srresnet';
import { UNet } from '../models/unet';
import type { NoiseModel } from '../training/data/noise-model';
import { parseNoiseModel } from '../training/data/noise-model';
import type { SplitFractions } from '../training/data/split';
import { initializeParameters } from '../training/init';
import { LOSS_KINDS, type LossConfig, type LossTerm } from '../training/loss-config';
import { OPTIMIZER_KINDS, type OptimizerConfig } from '../training/optimizer-config';
import { CosineAnnealingLR, type LrSchedule, MultiStepLR, ReduceLROnPlateau, StepLR } from '../training/schedules';
import { integerInRange, oneOf, positiveNumber } from './args';
import { UsageError } from './errors';

const C = 'train';

export const TRAIN_OPTIONS = {
  arch: { type: 'string' },
  weights: { type: 'string', short: 'w' },
  channels: { type: 'string' },
  scale: { type: 'string' },
  clean: { type: 'string' },
  pairs: { type: 'string' },
  noise: { type: 'string' },
  degrade: { type: 'string' },
  masks: { type: 'string' },
  lambda: { type: 'string' },
  loss: { type: 'string' },
  vgg: { type: 'string' },
  lpips: { type: 'string' },
  optimizer: { type: 'string' },
  lr: { type: 'string' },
  'weight-decay': { type: 'string' },
  momentum: { type: 'string' },
  nesterov: { type: 'boolean' },
  'clip-grad-norm': { type: 'string' },
  schedule: { type: 'string' },
  batch: { type: 'string' },
  patch: { type: 'string' },
  augment: { type: 'string' },
  epochs: { type: 'string' },
  steps: { type: 'string' },
  split: { type: 'string' },
  'early-stop': { type: 'string' },
  seed: { type: 'string' },
  'info-bar': { type: 'string' },
  gray: { type: 'boolean' },
  method: { type: 'string' },
  images: { type: 'string' },
  minutes: { type: 'string' },
  val: { type: 'string' },
  normalize: { type: 'string' },
  struct: { type: 'string' },
  output: { type: 'string', short: 'o' },
  resume: { type: 'boolean' },
  force: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = { [K in keyof typeof TRAIN_OPTIONS]?: (typeof TRAIN_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

/** The networks `--arch` builds, denoisers first. */
export const TRAINABLE_ARCHS = [
  'dncnn',
  'unet',
  'resunet-scse',
  'scunet',
  'n2v-unet',
  'n2v2-unet',
  'msrresnet',
  'srresnet',
  'rrdbnet',
  'sinsr',
  'sinsr-cbam',
] as const;
export type TrainableArch = (typeof TRAINABLE_ARCHS)[number];

/** The scales (`--scale`) each super-resolution network is built for, its upstream default first. */
export const ARCH_SCALES: Partial<Record<TrainableArch, readonly number[]>> = {
  msrresnet: [4, 2, 3],
  srresnet: [4, 2, 8],
  // BasicSR's RRDBNet ×1 and ×2 pixel-unshuffle the input in front of the same ×4 body.
  rrdbnet: [4, 1, 2],
  sinsr: [4],
  'sinsr-cbam': [4],
};

/** `--scale`: only for super-resolution networks, one of the scales the architecture is built for. */
export function archScale(arch: TrainableArch, text: string | undefined): number {
  const scales = ARCH_SCALES[arch];
  if (!scales) {
    if (text === undefined) return 1;
    const sr = Object.keys(ARCH_SCALES).join(', ');
    throw new UsageError(`--scale is for the super-resolution networks (${sr}); ${arch} is a denoiser`, C);
  }
  if (text === undefined) return scales[0];
  const scale = integerInRange(C, '--scale', text, 1, 16);
  if (!scales.includes(scale)) {
    throw new UsageError(
      `--arch ${arch} is built for ${[...scales]
        .sort()
        .map((v) => `×${v}`)
        .join(', ')}, not ×${scale}`,
      C,
    );
  }
  return scale;
}

/**
 * A new network for `--arch`, with the widths and depths its paper or upstream training recipe uses, the given
 * image channels in and out, and PyTorch's constructor initialisation (initializeParameters, seeded). Upstream
 * recipes that re-initialise after construction (BasicSR's default_init_weights ×0.1 for MSRResNet and RRDBNet,
 * smp's initialize_decoder/initialize_head and its ImageNet encoder) are not reproduced: start from -w INIT.pth
 * for those.
 */
export function networkFromArch(name: string, channels: number, scaleText: string | undefined, seed: number): Network {
  const arch = oneOf(C, '--arch', name, [...TRAINABLE_ARCHS]);
  const scale = archScale(arch, scaleText);
  const io = { inChannels: channels, outChannels: channels };
  let model: Network;
  switch (arch) {
    case 'dncnn':
      // KAIR's train_dncnn.json: 17 layers of 64 features, conv → BatchNorm → ReLU in the body.
      model = new DnCNN({ ...io, nc: 64, nb: 17, actMode: 'BR' });
      break;
    case 'unet':
      // milesial's U-Net as published: 64 features at the first level, transposed-convolution upsampling.
      model = new UNet({ ...io, bilinear: false, baseChannels: 64, sigmoid: false });
      break;
    case 'resunet-scse':
      // smp.Unet('resnet34', decoder_attention_type='scse'): decoder (256, 128, 64, 32, 16), no activation.
      model = new ResNet34UNet(resnet34UNetConfig(channels, channels));
      break;
    case 'scunet':
      // KAIR's SCUNet as released (scunet_gray/color_*.pth): dim 64, config [4, 4, 4, 4, 4, 4, 4].
      model = new SCUNet({ ...SCUNET_GRAY, inChannels: channels });
      break;
    case 'n2v-unet':
    case 'n2v2-unet':
      // CAREamics' N2V / N2V2 U-Net defaults: depth 2, 32 channels at the first level, BatchNorm, no residual.
      model = new N2VUNet(n2vUNetConfig(channels, channels, { n2v2: arch === 'n2v2-unet' }));
      break;
    case 'msrresnet':
      // BasicSR's train_MSRResNet_x4.yml: num_feat 64, num_block 16.
      model = new MSRResNet({ ...io, features: 64, blocks: 16, scale: scale as 2 | 3 | 4 });
      break;
    case 'srresnet':
      // SRGAN's SRResNet: 64 features, 16 residual blocks, one shared PReLU slope per layer, output clamped to [0, 1].
      model = new SRResNet({ ...io, features: 64, blocks: 16, scale: scale as 2 | 4 | 8, prelu: 'shared', clampOutput: true });
      break;
    case 'rrdbnet':
      // ESRGAN (BasicSR's RRDBNet_x4): num_feat 64, num_grow_ch 32, num_block 23.
      model = new RRDBNet({ ...ESRGAN_X4, ...io, scale: scale as 1 | 2 | 4 });
      break;
    case 'sinsr':
    case 'sinsr-cbam':
      // The SINSR generator as its document trains it (ARCH7: conv_first 128, RRDBs of 64, growth 4), ×4.
      model = new SINSR({ ...(arch === 'sinsr' ? SINSR_ARCH7 : SINSR_CBAM), ...io });
      break;
  }
  initializeParameters(model, seed);
  return model;
}

/** A number ≥ 0 (`--weight-decay 0`). */
function nonNegative(option: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`${option} needs a number ≥ 0, got '${value}'`, C);
  return n;
}

/** A perceptual term as --loss writes it: its network comes from --vgg. */
type PerceptualTerm = Extract<LossTerm, { kind: 'perceptual' }>;
type ParsedTerm = Exclude<LossTerm, PerceptualTerm> | Omit<PerceptualTerm, 'network' | 'layerWeights'>;

/** `--vgg VGG.pth[:LAYER=W,…]`: the torchvision VGG file and BasicSR's layer_weights (default: the loss's own). */
export interface VggOption {
  path: string;
  layerWeights?: Record<string, number>;
}

/** The names `--loss` takes: the library's LOSS_KINDS and 'perceptual', which also needs --vgg. */
export const CLI_LOSS_NAMES = [...LOSS_KINDS, 'perceptual'] as const;

/**
 * `--loss` (default mse; masked-mse, the default with --masks, weighs defect regions by --lambda): one loss, or a
 * weighted sum written `l1+0.1*sobel+0.05*laplacian:mse+1e-4*tv+0.5*ssim+0.01*perceptual` (weight, `*`, name, `:`
 * criterion or variant where the loss has one). A perceptual term runs through `vgg`, the network of --vgg (read
 * by the caller once vggFrom has checked the flags), at the layers --vgg names.
 */
export function lossFrom(values: Values, vgg?: FeatureNetwork): LossConfig {
  const layerWeights = vggFrom(values)?.layerWeights;
  const terms = parsedTerms(values).map((t): LossTerm => {
    if (t.kind !== 'perceptual') return t;
    if (!vgg) throw new UsageError('--loss perceptual: the network of --vgg was not read', C);
    if (vgg.backbone === 'alexnet')
      throw new UsageError(`--vgg holds alexnet weights; the perceptual loss needs torchvision's vgg19 or vgg16`, C);
    for (const layer of Object.keys(layerWeights ?? {})) {
      if (!vgg.features.names.includes(layer)) {
        const convs = vgg.features.names.filter((n) => n.startsWith('conv')).join(', ');
        throw new UsageError(`--vgg: ${vgg.backbone} has no layer '${layer}' (its convolutions: ${convs}; relu… after each)`, C);
      }
    }
    return { ...t, network: vgg, ...(layerWeights ? { layerWeights } : {}) };
  });
  return terms.length === 1 ? terms[0] : { kind: 'sum', terms };
}

/**
 * `--vgg VGG.pth[:conv5_4=1,relu4_4=0.5]` (undefined without the flag): the file, and the layers with their
 * weights after the last ':' (a bare layer weighs 1). Also checks --loss, so every flag error comes before any
 * file is read: --vgg and a perceptual term go together.
 */
export function vggFrom(values: Values): VggOption | undefined {
  const perceptual = parsedTerms(values).some((t) => t.kind === 'perceptual');
  if (perceptual && values.vgg === undefined) {
    throw new UsageError("--loss perceptual needs --vgg VGG19.pth, torchvision's vgg19 (or vgg16) weights", C);
  }
  if (values.vgg === undefined) return undefined;
  if (!perceptual) throw new UsageError('--vgg is the network of the perceptual loss: add a term such as +0.01*perceptual to --loss', C);
  const text = values.vgg;
  const colon = text.lastIndexOf(':');
  const list = colon >= 0 ? text.slice(colon + 1) : '';
  // A path may hold ':' itself (C:\…): only a suffix that reads as a layer list is taken as one.
  if (colon < 0 || !LAYER_LIST.test(list)) {
    if (text.trim() === '') throw new UsageError('--vgg needs a file, VGG19.pth[:LAYER=WEIGHT,…]', C);
    return { path: text };
  }
  const path = text.slice(0, colon);
  if (path.trim() === '') throw new UsageError(`--vgg needs a file before ':${list}'`, C);
  const layerWeights: Record<string, number> = {};
  for (const item of list.split(',')) {
    const m = /^\s*([a-z]+\d+(?:_\d+)?)\s*(?:=(.*))?$/.exec(item);
    if (!m) throw new UsageError(`--vgg: cannot read the layer '${item}' (expected e.g. conv5_4=1,relu4_4=0.5)`, C);
    const [, layer, weight] = m;
    if (layer in layerWeights) throw new UsageError(`--vgg names ${layer} twice`, C);
    layerWeights[layer] = weight === undefined ? 1 : nonNegative(`--vgg ${layer}`, weight);
  }
  return { path, layerWeights };
}

/** `conv5_4=1,relu4_4=0.5` (or bare names): what may follow the last ':' of --vgg. */
const LAYER_LIST = /^\s*[a-z]+\d+(?:_\d+)?\s*(?:=[^,]*)?(?:,\s*[a-z]+\d+(?:_\d+)?\s*(?:=[^,]*)?)*$/;

/** The terms of --loss with every flag check that needs no file: names, weights, criteria, --masks/--lambda. */
function parsedTerms(values: Values): ParsedTerm[] {
  const masks = values.masks !== undefined;
  const text = values.loss ?? (masks ? 'masked-mse' : 'mse');
  const terms = text.split('+').map((part) => lossTermFrom(part.trim(), values));
  if (terms.some((t) => t.kind === 'masked-mse') !== masks) throw new UsageError('--loss masked-mse and --masks DIR go together', C);
  if (!masks && values.lambda !== undefined) throw new UsageError('--lambda weighs the defects of --masks; give --masks DIR too', C);
  if (terms.every((t) => t.kind === 'tv')) throw new UsageError('--loss tv is a regulariser: add it to a data term, e.g. l1+1e-4*tv', C);
  return terms;
}

/** The options after ':' (BasicSR's perceptual criteria: l1, l2 = mse, fro). */
const CRITERIA = {
  sobel: ['l1', 'mse'],
  laplacian: ['l1', 'mse'],
  tv: ['anisotropic-l1', 'squared'],
  perceptual: ['l1', 'l2', 'fro'],
} as const;

function lossTermFrom(part: string, values: Values): ParsedTerm {
  const m = /^(?:([^*]+)\*)?([a-z0-9-]+)(?::([a-z0-9-]+))?$/.exec(part);
  if (!m) throw new UsageError(`--loss: cannot read '${part}' (expected NAME, WEIGHT*NAME or WEIGHT*NAME:CRITERION)`, C);
  const [, weightText, name, option] = m;
  const kind = oneOf(C, '--loss', name, [...CLI_LOSS_NAMES]);
  const weight = weightText !== undefined ? { weight: nonNegative('--loss weight', weightText) } : {};
  if (option !== undefined) {
    if (!(kind in CRITERIA)) throw new UsageError(`--loss: ${kind} takes no ':${option}'`, C);
    const choice = oneOf(C, `--loss ${kind}:`, option, [...CRITERIA[kind as keyof typeof CRITERIA]]);
    if (kind === 'tv') return { kind, variant: choice as 'anisotropic-l1' | 'squared', ...weight };
    if (kind === 'perceptual') return { kind, criterion: choice as 'l1' | 'l2' | 'fro', ...weight };
    return { kind: kind as 'sobel' | 'laplacian', criterion: choice as 'l1' | 'mse', ...weight };
  }
  if (kind !== 'masked-mse') return { kind, ...weight };
  if (values.lambda === undefined) throw new UsageError('--masks needs --lambda L, the weight of the defect regions', C);
  return { kind, lambda: nonNegative('--lambda', values.lambda), ...weight };
}

/** torch.optim defaults: Adam/AdamW lr 1e-3, AdamW weight decay 1e-2; SGD has no default lr, so it needs --lr. */
export function optimizerFrom(values: Values): OptimizerConfig {
  const kind = oneOf(C, '--optimizer', values.optimizer ?? 'adam', [...OPTIMIZER_KINDS]);
  const lr = values.lr !== undefined ? positiveNumber(C, '--lr', values.lr) : undefined;
  const weightDecay = values['weight-decay'] !== undefined ? nonNegative('--weight-decay', values['weight-decay']) : undefined;
  if (kind === 'sgd') {
    if (lr === undefined) throw new UsageError('--optimizer sgd needs --lr (PyTorch has no default learning rate for SGD)', C);
    const momentum = values.momentum !== undefined ? nonNegative('--momentum', values.momentum) : 0;
    return { kind, lr, momentum, weightDecay: weightDecay ?? 0, nesterov: values.nesterov ?? false };
  }
  if (values.momentum !== undefined || values.nesterov) throw new UsageError(`--momentum and --nesterov are SGD's; ${kind} takes betas`, C);
  return { kind, lr: lr ?? 1e-3, weightDecay: weightDecay ?? (kind === 'adamw' ? 1e-2 : 0) };
}

/**
 * `--schedule step:STEP_SIZE[,GAMMA] | multistep:M1,M2,…[/GAMMA] | cosine:T_MAX[,ETA_MIN] | plateau[:PATIENCE[,FACTOR]]`,
 * stepped once per epoch (plateau on the validation PSNR).
 */
export function scheduleFrom(text: string | undefined, lr: number): LrSchedule | undefined {
  if (text === undefined) return undefined;
  const [kind, args = ''] = text.split(':', 2);
  const nums = (s: string) => (s === '' ? [] : s.split(',').map((v) => (v.trim() === '' ? Number.NaN : Number(v))));
  try {
    switch (kind) {
      case 'step': {
        const [stepSize, gamma] = nums(args);
        return new StepLR([lr], { stepSize, ...(gamma !== undefined ? { gamma } : {}) });
      }
      case 'multistep': {
        const [list, gamma] = args.split('/');
        return new MultiStepLR([lr], { milestones: nums(list), ...(gamma !== undefined ? { gamma: Number(gamma) } : {}) });
      }
      case 'cosine': {
        const [tMax, etaMin] = nums(args);
        return new CosineAnnealingLR([lr], { tMax, ...(etaMin !== undefined ? { etaMin } : {}) });
      }
      case 'plateau': {
        const [patience, factor] = nums(args);
        return new ReduceLROnPlateau([lr], {
          ...(patience !== undefined ? { patience } : {}),
          ...(factor !== undefined ? { factor } : {}),
        });
      }
    }
  } catch (e) {
    if (e instanceof InvalidInputError) throw new UsageError(`--schedule ${text}: ${e.message}`, C);
    throw e;
  }
  throw new UsageError(
    `--schedule '${text}': expected step:N[,GAMMA], multistep:M1,M2[/GAMMA], cosine:T[,ETA_MIN] or plateau[:PATIENCE[,FACTOR]]`,
    C,
  );
}

/** `--split 70,20,10` (percent of the images for training, validation and test; default 70/20/10). */
export function splitFrom(text: string | undefined): SplitFractions | undefined {
  if (text === undefined) return undefined;
  const parts = text.split(',').map((v) => (v.trim() === '' ? Number.NaN : Number(v)));
  if (
    parts.length !== 3 ||
    parts.some((p) => !Number.isFinite(p) || p < 0) ||
    Math.abs(parts[0] + parts[1] + parts[2] - 100) > 1e-9 ||
    parts[0] <= 0
  ) {
    throw new UsageError(`--split needs three percentages TRAIN,VALIDATION,TEST summing to 100 with TRAIN > 0, got '${text}'`, C);
  }
  return { train: parts[0] / 100, validation: parts[1] / 100, test: parts[2] / 100 };
}

export function noiseFrom(text: string | undefined): NoiseModel | undefined {
  if (text === undefined) return undefined;
  try {
    return parseNoiseModel(text);
  } catch (e) {
    if (e instanceof InvalidInputError) throw new UsageError(e.message, C);
    throw e;
  }
}

export function integerOption(option: string, value: string | undefined, fallback: number, max = 1 << 30): number {
  return value === undefined ? fallback : integerInRange(C, option, value, 1, max);
}
