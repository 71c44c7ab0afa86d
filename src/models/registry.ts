/**
 * Every network we can build, and how to recognise its checkpoint from key names and shapes alone.
 *
 * Order matters where layouts overlap: ESRGAN's 2018 layout also has `model.0.weight` like KAIR's DnCNN, so the
 * more specific recognisers run first. A recogniser returns null for "not mine" and throws InvalidInputError for
 * "mine, but inconsistent" (which stops the search: the message names the problem better than "unknown").
 */
import { InvalidInputError } from '../errors';
import { loadStateDict } from '../layers/module';
import { formatShape } from '../weights/tensor';
import type { StateDict } from '../weights/state-dict';
import { DnCNN, type DnCNNConfig, inferDnCNNConfig } from './dncnn';
import { DnCNNVariant, type DnCNNVariantConfig, recogniseDnCNNVariant } from './dncnn-variants';
import type { KeyShapes } from './key-shapes';
import { MSRResNet, type MSRResNetConfig, recogniseMSRResNet } from './msrresnet';
import { N2VUNet, type N2VUNetConfig, recogniseN2VUNet } from './n2v-unet';
import type { Network } from './network';
import { ResNet34UNet, type ResNet34UNetConfig, recogniseResNet34UNet } from './resnet34-unet';
import { type RRDBNetConfig, recogniseRRDBNet, rrdbNetFromStateDict } from './rrdbnet';
import { recogniseSCUNet, SCUNet, type SCUNetConfig } from './scunet';
import { recogniseSINSR, type SINSRConfig, sinsrFromStateDict } from './sinsr';
import { recogniseSRResNet, SRResNet, type SRResNetConfig } from './srresnet';
import { recogniseUNet, UNet, type UNetConfig } from './unet';

/** What a network's input and output values mean: images in [0, 1], or in [-1, 1] (tanh generators). */
export type ValueRange = 'unit' | 'symmetric';

export type Task = 'denoise' | 'upscale';

export interface Architecture<C = unknown> {
  readonly name: string;
  readonly task: Task;
  readonly valueRange: ValueRange;
  recognise(keys: KeyShapes): C | null;
  /** Builds the network and loads `sd` into it (renaming keys where a layout needs it). */
  build(config: C, sd: StateDict): Network;
}

function plain<C>(name: string, task: Task, recognise: (k: KeyShapes) => C | null, make: (c: C) => Network): Architecture<C> {
  return {
    name,
    task,
    valueRange: 'unit',
    recognise,
    build(config, sd) {
      const network = make(config);
      loadStateDict(network, sd);
      return network;
    },
  };
}

const KAIR_DNCNN = plain<DnCNNConfig>(
  'DnCNN',
  'denoise',
  (keys) => (keys.has('model.0.weight') ? inferDnCNNConfig(keys) : null),
  (c) => new DnCNN(c),
);

export const ARCHITECTURES: readonly Architecture<any>[] = [
  {
    name: 'RRDBNet',
    task: 'upscale',
    valueRange: 'unit',
    recognise: (keys) => recogniseRRDBNet(keys)?.config ?? null,
    build: (config: RRDBNetConfig, sd) => rrdbNetFromStateDict(sd, config),
  } satisfies Architecture<RRDBNetConfig>,
  {
    name: 'SINSR',
    task: 'upscale',
    valueRange: 'symmetric',
    recognise: (keys) => recogniseSINSR(keys),
    build: (config: SINSRConfig, sd) => sinsrFromStateDict(sd, config),
  } satisfies Architecture<SINSRConfig>,
  plain<SCUNetConfig>(
    'SCUNet',
    'denoise',
    (k) => recogniseSCUNet(k),
    (c) => new SCUNet(c),
  ),
  plain<UNetConfig>('UNet', 'denoise', recogniseUNet, (c) => new UNet(c)),
  plain<ResNet34UNetConfig>('ResNet34UNet', 'denoise', recogniseResNet34UNet, (c) => new ResNet34UNet(c)),
  // CAREamics' N2V and N2V2 U-Nets (the last decoder block's width tells them apart).
  plain<N2VUNetConfig>('N2VUNet', 'denoise', recogniseN2VUNet, (c) => new N2VUNet(c)),
  plain<MSRResNetConfig>('MSRResNet', 'upscale', recogniseMSRResNet, (c) => new MSRResNet(c)),
  plain<SRResNetConfig>('SRResNet', 'upscale', recogniseSRResNet, (c) => new SRResNet(c)),
  plain<DnCNNVariantConfig>('DnCNNVariant', 'denoise', recogniseDnCNNVariant, (c) => new DnCNNVariant(c)),
  KAIR_DNCNN,
];

export interface Recognised {
  architecture: Architecture<any>;
  config: unknown;
}

/** The architecture and hyper-parameters a state_dict belongs to, or an error listing what the file holds. */
export function recogniseStateDict(keys: KeyShapes, name = 'checkpoint'): Recognised {
  for (const architecture of ARCHITECTURES) {
    const config: unknown = architecture.recognise(keys);
    if (config !== null) return { architecture, config };
  }
  throw new InvalidInputError(
    `${name}: not a network we know (${ARCHITECTURES.map((a) => a.name).join(', ')}); it holds ${describeKeys(keys)}`,
  );
}

export function architectureByName(name: string): Architecture<any> {
  const a = ARCHITECTURES.find((x) => x.name.toLowerCase() === name.toLowerCase());
  if (!a) throw new InvalidInputError(`unknown architecture '${name}' (known: ${ARCHITECTURES.map((x) => x.name).join(', ')})`);
  return a;
}

/** A short summary of a state_dict: its top-level modules with key counts, and the first keys with shapes. */
export function describeKeys(keys: KeyShapes, examples = 6): string {
  const groups = new Map<string, number>();
  for (const k of keys.keys()) {
    const top = k.split('.')[0];
    groups.set(top, (groups.get(top) ?? 0) + 1);
  }
  const tops = [...groups.entries()].map(([k, n]) => `${k} (${n})`).join(', ');
  const first = [...keys.entries()]
    .slice(0, examples)
    .map(([k, t]) => `${k} ${formatShape(t.shape)}`)
    .join(', ');
  return `${keys.size} tensors in ${tops}; e.g. ${first}`;
}
