/**
 * Network fixtures written by the tools/torch/make_*_fixtures.py scripts: `<name>.json` (architecture, our config,
 * PyTorch kwargs, shapes, and either a `checkpoint` file next to it or a `seed` + key/shape `manifest`),
 * `<name>.input.f32` and `<name>.output.f32` (little-endian float32, NCHW). Browser-safe: files come through
 * fixture-loader, checkpoints through readPth, seeded weights through seeded-weights.
 */
import type { GPUContext } from '../../src/gpu/context';
import { loadStateDict } from '../../src/layers/module';
import type { Network } from '../../src/models/network';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { readPth } from '../../src/weights/pth';
import type { StateDict } from '../../src/weights/state-dict';
import { readFixtureBytes, readFixtureF32, readFixtureJson } from './fixture-loader';
import { type ManifestEntry, seededStateDict } from './seeded-weights';

export interface NetworkFixture<Config> {
  name: string;
  architecture: string;
  config: Config;
  kwargs: Record<string, unknown>;
  inputShape: [number, number, number, number];
  outputShape: [number, number, number, number];
  checkpoint?: string;
  seed?: number;
  manifest?: ManifestEntry[];
  float32VsFloat64RelL2: number;
  input: Float32Array;
  output: Float32Array;
  /** The state_dict, read from the checkpoint (wrappers and prefixes removed) or regenerated from the seed. */
  stateDict: StateDict;
}

export async function loadNetworkFixture<Config>(folder: string, name: string): Promise<NetworkFixture<Config>> {
  const dir = `test/fixtures/${folder}`;
  const meta = await readFixtureJson(`${dir}/${name}.json`);
  let stateDict: StateDict;
  if (meta.checkpoint) stateDict = readPth(await readFixtureBytes(`${dir}/${meta.checkpoint}`), { name: meta.checkpoint });
  else if (meta.seed !== undefined && meta.manifest) stateDict = seededStateDict(meta.seed, meta.manifest);
  else throw new Error(`${dir}/${name}.json has neither a checkpoint nor a seed and manifest`);
  const [input, output] = await Promise.all([readFixtureF32(`${dir}/${name}.input.f32`), readFixtureF32(`${dir}/${name}.output.f32`)]);
  return { ...meta, name, input, output, stateDict };
}

/** Loads the fixture's weights into `network` (strict) and runs it on the fixture's input; returns NCHW data. */
export async function runNetworkFixture(
  ctx: GPUContext,
  network: Network,
  f: NetworkFixture<unknown>,
): Promise<{ data: Float32Array; shape: number[] }> {
  loadStateDict(network, f.stateDict);
  const model = new RestorationModel(ctx, network, f.name);
  try {
    const [, c, h, w] = f.inputShape;
    const { image } = await model.runFloat({ width: w, height: h, channels: c, data: f.input });
    return { data: image.data, shape: [1, image.channels, image.height, image.width] };
  } finally {
    model.dispose();
  }
}

/** a − b elementwise (e.g. the network's part of an output that adds its input). */
export function subtract(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: a.length }, (_, i) => a[i] - b[i]);
}
