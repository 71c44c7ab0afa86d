/**
 * Writing trained weights as safetensors from the same entries writePth takes (pth-write.ts checks them), so
 * a trainer has one description of its state_dict for both formats. The file itself comes from
 * safetensors.ts's writeSafetensors: 8-byte little-endian header length, JSON header of
 * {"dtype": "F32" | "I64", "shape", "data_offsets"} per tensor (and "__metadata__"), padded with spaces to
 * a multiple of 8 bytes, then the tensors' bytes tiling the buffer.
 */
import { InvalidInputError } from '../errors';
import { checkpointTensors, type CheckpointEntry } from './pth-write';
import { writeSafetensors } from './safetensors';

const WHERE = 'writeSafetensorsEntries';

/** The bytes of a safetensors file holding `entries`, with `metadata` as its `__metadata__` (strings only). */
export function writeSafetensorsEntries(entries: readonly CheckpointEntry[], metadata?: Readonly<Record<string, string>>): Uint8Array {
  const tensors = checkpointTensors(entries, WHERE);
  if (metadata !== undefined) {
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata) || metadata instanceof Map) {
      throw new InvalidInputError(`${WHERE}: metadata must be an object of string values`);
    }
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new InvalidInputError(`${WHERE}: metadata value of '${k}' must be a string, got ${typeof v}`);
    }
  }
  if (tensors.has('__metadata__')) throw new InvalidInputError(`${WHERE}: '__metadata__' cannot be a tensor name`);
  return writeSafetensors(tensors, { metadata });
}
