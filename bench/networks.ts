/**
 * The networks the benchmarks run (bench/models.ts, bench/profile.ts, the browser suite), each at its full-size
 * configuration: DnCNN-17 with the built-in σ=25 weights, the others with deterministic random weights
 * (random-weights.ts), which time the same as trained ones. No Node modules: the browser suite bundles this.
 */
import type { GPUContext } from '../src/gpu/context';
import type { FloatImage } from '../src/io/image';
import type { Network } from '../src/models/network';
import { architectureByName } from '../src/models/registry';
import { RestorationModel } from '../src/runtime/restoration-model';
import { MSRResNet } from '../src/models/msrresnet';
import { ResNet34UNet, resnet34UNetConfig } from '../src/models/resnet34-unet';
import { ESRGAN_X4, RRDBNet } from '../src/models/rrdbnet';
import { SCUNET_GRAY, SCUNet } from '../src/models/scunet';
import { SINSR, SINSR_ARCH7 } from '../src/models/sinsr';
import { SRResNet } from '../src/models/srresnet';
import { UNet } from '../src/models/unet';
import { fillRandomWeights } from './random-weights';

export interface NetworkSpec {
  /** Name on the command line. */
  key: string;
  /** Registry name (src/models/registry.ts): gives the task and the input value range. */
  architecture: string;
  description: string;
  load(ctx: GPUContext, env: BenchEnvironment): Promise<RestorationModel>;
}

/** What differs between Node and the browser: how the built-in weights are read. */
export interface BenchEnvironment {
  loadBuiltin(name: 'dncnn_25', ctx: GPUContext): Promise<RestorationModel>;
}

/** Seed of the random weights. */
export const SEED = 1;

function randomWeights(key: string, architecture: string, description: string, make: () => Network): NetworkSpec {
  return { key, architecture, description, load: async (ctx) => new RestorationModel(ctx, fillRandomWeights(make(), SEED), key) };
}

// Upscalers are RGB as released (SINSR's default config is RGB too); the denoisers are the gray releases.
export const NETWORKS: NetworkSpec[] = [
  {
    key: 'dncnn',
    architecture: 'DnCNN',
    description: 'DnCNN-17 gray (built-in σ=25 weights)',
    load: (ctx, env) => env.loadBuiltin('dncnn_25', ctx),
  },
  randomWeights('scunet', 'SCUNet', 'SCUNet gray, config [4]×7, dim 64', () => new SCUNet(SCUNET_GRAY)),
  randomWeights(
    'unet',
    'UNet',
    'U-Net (milesial) gray, 64 base, transposed conv',
    () => new UNet({ inChannels: 1, outChannels: 1, bilinear: false, baseChannels: 64, sigmoid: false }),
  ),
  randomWeights('resnet34-unet', 'ResNet34UNet', 'ResNet34-SCSE U-Net (smp) gray', () => new ResNet34UNet(resnet34UNetConfig(1, 1))),
  randomWeights(
    'msrresnet',
    'MSRResNet',
    'MSRResNet ×4 RGB, 64 feat, 16 blocks',
    () => new MSRResNet({ inChannels: 3, outChannels: 3, features: 64, blocks: 16, scale: 4 }),
  ),
  randomWeights('rrdbnet', 'RRDBNet', 'ESRGAN RRDBNet ×4 RGB, 64/32/23', () => new RRDBNet(ESRGAN_X4)),
  randomWeights(
    'srresnet',
    'SRResNet',
    'SRResNet ×4 RGB, 64 feat, 16 blocks',
    () => new SRResNet({ inChannels: 3, outChannels: 3, features: 64, blocks: 16, scale: 4, prelu: 'shared', clampOutput: true }),
  ),
  randomWeights('sinsr', 'SINSR', 'SINSR generator (architecture 7) RGB ×4', () => new SINSR(SINSR_ARCH7)),
];

/** The spec named `key`, or undefined. */
export function networkByKey(key: string): NetworkSpec | undefined {
  return NETWORKS.find((n) => n.key === key.trim());
}

/** The input size benchmarks use when none is given: 256×256 for denoisers, 64×64 for ×4 upscalers. */
export function defaultInputSize(spec: NetworkSpec): { width: number; height: number } {
  return architectureByName(spec.architecture).task === 'upscale' ? { width: 64, height: 64 } : { width: 256, height: 256 };
}

/** A deterministic test pattern in the network's value range. */
export function pattern(width: number, height: number, channels: number, symmetric: boolean): FloatImage {
  const data = new Float32Array(width * height * channels);
  for (let i = 0; i < data.length; i++) {
    const v = ((i * 7919) % 256) / 255;
    data[i] = symmetric ? 2 * v - 1 : v;
  }
  return { width, height, channels, data };
}
