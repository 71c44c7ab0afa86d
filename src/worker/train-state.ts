/**
 * The weights a network holds on the CPU, read through the public module tree (`parameters()`, `children()`,
 * named as in PyTorch's state_dict). fineTune leaves the trained values there after every validation and when
 * it stops; these copies let the worker preview them on a network of its own (the trained one is re-synced and
 * released under it by the next validation) and write them when a run is cancelled.
 */
import { ARCHITECTURES, type CpuTensor, type Network, networkFromStateDict, type StateDict, type TrainedTensor } from '../index';

interface ModuleTree {
  parameters(): Record<string, { readonly shape: readonly number[]; data?: Float64Array }>;
  children(): [string, ModuleTree][];
}

function namedValues(module: ModuleTree, prefix = ''): [string, readonly number[], Float64Array | undefined][] {
  return [
    ...Object.entries(module.parameters()).map(
      ([k, p]) => [prefix + k, p.shape, p.data] as [string, readonly number[], Float64Array | undefined],
    ),
    ...module.children().flatMap(([k, child]) => namedValues(child, `${prefix}${k}.`)),
  ];
}

/** Learnable values and buffers (BatchNorm statistics) of the network. */
export function parameterCount(network: Network): number {
  return namedValues(network).reduce((n, [, shape]) => n + shape.reduce((a, b) => a * b, 1), 0);
}

/** A copy of the network's values (float64, as held), as a state_dict the loaders take. */
export function stateOf(network: Network): StateDict {
  const sd: StateDict = new Map();
  for (const [name, shape, data] of namedValues(network)) {
    if (data) sd.set(name, { dtype: 'float64', shape: [...shape], data: Float64Array.from(data) } satisfies CpuTensor);
  }
  return sd;
}

/** The same values in float32, as fineTune's state_dicts are, for trainedStateToPth. */
export function trainedStateOf(network: Network): Map<string, TrainedTensor> {
  const out = new Map<string, TrainedTensor>();
  for (const [name, shape, data] of namedValues(network)) {
    if (data) out.set(name, { dtype: 'float32', shape: [...shape], data: Float32Array.from(data) });
  }
  return out;
}

/**
 * A new network of the same architecture and configuration holding `state`: the configuration is taken from
 * the trained network where the registry knows its architecture (what the keys cannot tell, such as a U-Net's
 * BatchNorm or residual, stays as trained), otherwise recognised from the keys as a loaded .pth would be.
 */
export function networkWithState(like: Network, state: StateDict): Network {
  const config = (like as { config?: unknown }).config;
  const known = ARCHITECTURES.some((a) => a.name === like.architecture);
  return known && config !== undefined
    ? networkFromStateDict(state, { architecture: like.architecture, config }, 'preview')
    : networkFromStateDict(state, undefined, 'preview');
}
