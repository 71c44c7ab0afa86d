import { writePth } from '../weights/pth-write';
import { writeSafetensorsEntries } from '../weights/safetensors-write';
import type { TrainedTensor } from './trainer';

const NBT = '.num_batches_tracked';

/**
 * A trained state_dict as the bytes of a .pth that PyTorch 1.13 loads with `torch.load(weights_only=True)` and
 * `load_state_dict(strict=True)` into the original module: weights only (the safe loader refuses Python floats,
 * so optimizer state goes elsewhere), BatchNorms marked version 2 with their int64 num_batches_tracked.
 */
export function trainedStateToPth(state: ReadonlyMap<string, TrainedTensor>, archiveName?: string): Uint8Array {
  const batchNorms = [...state.keys()].filter((k) => k.endsWith(NBT)).map((k) => k.slice(0, -NBT.length));
  return writePth(entries(state), { batchNormVersions: batchNorms, ...(archiveName ? { archiveName } : {}) });
}

/** The same state_dict as safetensors, with string metadata (architecture, configuration, …). */
export function trainedStateToSafetensors(state: ReadonlyMap<string, TrainedTensor>, metadata?: Record<string, string>): Uint8Array {
  return writeSafetensorsEntries(entries(state), metadata);
}

function entries(state: ReadonlyMap<string, TrainedTensor>) {
  return [...state].map(([name, t]) => ({ name, shape: t.shape, dtype: t.dtype, data: t.data }));
}
