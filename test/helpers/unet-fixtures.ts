import type { StateDict } from '../../src/weights/state-dict';
import { readPth } from '../../src/weights/pth';
import { readFixtureBytes, readFixtureF32, readFixtureJson } from './fixture-loader';
import { type ManifestEntry, seededStateDict } from './seeded-weights';

/**
 * The fixtures of tools/torch/make_unet_fixtures.py (test/fixtures/unet/), browser-safe: tiny networks come with a
 * real .pth in milesial's wrapper, full-size ones with a manifest and seed from which the identical weights are
 * regenerated (test/helpers/seeded-weights.ts).
 */
export interface UNetFixture<Config> {
  name: string;
  architecture: 'UNet' | 'ResNet34UNet';
  config: Config;
  kwargs: Record<string, unknown>;
  seed: number;
  checkpoint?: string;
  inputShape: [number, number, number, number];
  outputShape: [number, number, number, number];
  /** ‖f(x') − f(x)‖ / ‖f(x)‖ for an unrelated input x', measured in PyTorch. */
  sensitivity: number;
  weights: StateDict;
  input: Float32Array;
  output: Float32Array;
}

const DIR = 'test/fixtures/unet/';

export async function loadUNetFixture<Config>(name: string): Promise<UNetFixture<Config>> {
  const meta = await readFixtureJson<Omit<UNetFixture<Config>, 'weights' | 'input' | 'output'> & { manifest?: ManifestEntry[] }>(
    `${DIR}${name}.json`,
  );
  const weights = meta.checkpoint
    ? readPth(await readFixtureBytes(`${DIR}${meta.checkpoint}`), { name: meta.checkpoint })
    : seededStateDict(meta.seed, meta.manifest!);
  const { manifest: _, ...rest } = meta;
  return {
    ...rest,
    name,
    weights,
    input: await readFixtureF32(`${DIR}${name}.input.f32`),
    output: await readFixtureF32(`${DIR}${name}.output.f32`),
  };
}

export const UNET_FIXTURES = [
  'unet_tiny_transposed_rgb_35x49',
  'unet_tiny_transposed_rgb_16x16',
  'unet_tiny_bilinear_gray_23x37',
  'unet_tiny_bilinear_gray_64x80_sigmoid',
  'unet_full_transposed_gray_35x49',
  'unet_full_bilinear_rgb_64x80',
];

export const RESNET34_UNET_FIXTURES = ['r34_scse_rgb_96x128', 'r34_scse_gray_sigmoid_70x90', 'r34_plain_rgb_40x52_zeros'];
