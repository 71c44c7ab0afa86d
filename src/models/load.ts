import { InvalidInputError } from '../errors';
import { readCheckpoint } from '../weights/checkpoint';
import { checkFinite, type StateDict } from '../weights/state-dict';
import type { Network } from './network';
import { architectureByName, describeKeys, recogniseStateDict } from './registry';

/**
 * An explicit architecture, when the keys alone should not decide: its registry name (`'DnCNN'`, `'SCUNet'`,
 * `'RRDBNet'`, …) and, optionally, its config (otherwise inferred from the keys).
 */
export interface ArchitectureConfig {
  architecture: string;
  config?: unknown;
}

/** Builds the network a state_dict describes (recognised from its keys and shapes unless `arch` says). */
export function networkFromStateDict(sd: StateDict, arch?: ArchitectureConfig, name = 'checkpoint'): Network {
  checkFinite(sd);
  if (arch) {
    const architecture = architectureByName(arch.architecture);
    const config: unknown = arch.config ?? architecture.recognise(sd);
    if (config === null || config === undefined) {
      throw new InvalidInputError(`${name}: the keys do not look like ${architecture.name}; it holds ${describeKeys(sd)}`);
    }
    return architecture.build(config, sd);
  }
  const { architecture, config } = recogniseStateDict(sd, name);
  return architecture.build(config, sd);
}

/** Reads a checkpoint (.pth zip or legacy, or safetensors) and builds its network. */
export function networkFromCheckpoint(
  bytes: Uint8Array | ArrayBuffer,
  options: { name?: string; architecture?: ArchitectureConfig } = {},
): Network {
  const sd = readCheckpoint(bytes, { name: options.name });
  return networkFromStateDict(sd, options.architecture, options.name);
}
