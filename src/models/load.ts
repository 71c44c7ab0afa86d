import { InvalidInputError } from '../errors';
import { loadStateDict } from '../layers/module';
import { readPth } from '../weights/pth';
import { checkFinite, type StateDict } from '../weights/state-dict';
import { DnCNN, type DnCNNConfig, inferDnCNNConfig } from './dncnn';
import type { Network } from './network';

export type ArchitectureConfig = { architecture: 'DnCNN'; config: DnCNNConfig };

/**
 * Builds the network a state_dict describes. With no explicit architecture the keys decide (only DnCNN is
 * recognised so far; the other networks join with their issues).
 */
export function networkFromStateDict(sd: StateDict, arch?: ArchitectureConfig, name = 'checkpoint'): Network {
  checkFinite(sd);
  let network: Network;
  if (arch?.architecture === 'DnCNN' || (!arch && sd.has('model.0.weight'))) {
    const config = arch?.config ?? inferDnCNNConfig(sd);
    network = new DnCNN(config);
  } else {
    const keys = [...sd.keys()].slice(0, 5).join(', ');
    throw new InvalidInputError(`${name}: cannot tell which network these weights belong to (keys: ${keys}, …)`);
  }
  loadStateDict(network, sd);
  return network;
}

/** Reads a .pth checkpoint and builds its network. */
export function networkFromCheckpoint(bytes: Uint8Array | ArrayBuffer, options: { name?: string; architecture?: ArchitectureConfig } = {}): Network {
  const sd = readPth(bytes, { name: options.name });
  return networkFromStateDict(sd, options.architecture, options.name);
}
