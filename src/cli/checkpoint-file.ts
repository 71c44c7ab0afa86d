/**
 * Reading a checkpoint file from disk and finding out which network it holds — shared by `inspect`,
 * `convert`, `denoise` and `upscale`. The file is read once; recognition looks only at keys and shapes, and
 * building the network (CPU only: nothing is uploaded until a run) is the strict check that every tensor
 * fits, so a file that passes here loads in the library too.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { CheckpointError } from '../errors';
import { networkFromStateDict } from '../models/load';
import type { Network } from '../models/network';
import { type Architecture, type Recognised, recogniseStateDict } from '../models/registry';
import { type CheckpointContents, type CheckpointFormat, readCheckpointContents } from '../weights/checkpoint';
import type { StateDict } from '../weights/state-dict';

export interface CheckpointFile {
  path: string;
  /** The file name, used as the model name and in messages. */
  name: string;
  bytes: Uint8Array;
}

/** Reads a whole file; a missing or unreadable one is a CheckpointError naming the path. */
export async function readCheckpointFile(path: string): Promise<CheckpointFile> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (cause) {
    throw new CheckpointError('CHECKPOINT_FORMAT', `cannot read ${path}: ${(cause as Error).message}`, { cause });
  }
  return { path, name: basename(path), bytes };
}

/** Format and state dict of a checkpoint file (Git LFS pointers, HTML pages etc. get the reader's messages). */
export function readContents(file: CheckpointFile): CheckpointContents {
  return readCheckpointContents(file.bytes, { name: file.name });
}

/** A recognised checkpoint with the network built from it. */
export interface IdentifiedNetwork extends Recognised {
  network: Network;
}

/**
 * Builds the recognised network (strict: every key present with its shape, nothing left over, all values
 * finite). Only CPU work: weights are uploaded to a device on the first run.
 */
export function buildNetwork(stateDict: StateDict, recognised: Recognised, name: string): Network {
  const { architecture, config } = recognised;
  // Built from a copy of the map: layouts that rename keys must not change the state dict we may write out.
  return networkFromStateDict(new Map(stateDict), { architecture: architecture.name, config }, name);
}

/**
 * Recognises the network of a state dict and builds it. Throws the registry's error (listing what the file
 * holds) when nothing fits, and the loader's (missing / unexpected key, shape) when it does not load.
 */
export function identifyNetwork(stateDict: StateDict, name: string): IdentifiedNetwork {
  const recognised = recogniseStateDict(stateDict, name);
  return { ...recognised, network: buildNetwork(stateDict, recognised, name) };
}

/** The value range of a network's images as an interval. */
export function valueInterval(architecture: Architecture<unknown>): [number, number] {
  return architecture.valueRange === 'symmetric' ? [-1, 1] : [0, 1];
}

/**
 * Whether a format lets the reader notice corrupted bytes: zip entries carry a CRC-32 (verified when read;
 * torch writes 0, meaning "not recorded", only when CRC computation was switched off), the legacy format and
 * safetensors carry none, which is why the legacy reader refuses values no trained network holds.
 */
export const CHECKSUMS: Record<CheckpointFormat, { kind: 'crc32-per-entry' | 'none'; text: string }> = {
  'torch-zip': { kind: 'crc32-per-entry', text: 'CRC-32 per zip entry (verified on reading)' },
  'torch-legacy': {
    kind: 'none',
    text: 'none in the legacy format (values no trained network holds - NaN, ±Infinity, |w| ≥ 1e31 - are refused)',
  },
  safetensors: { kind: 'none', text: 'none in safetensors' },
};

/** What each checkpoint format is, for people. */
export const FORMAT_LABELS: Record<CheckpointFormat, string> = {
  'torch-zip': 'PyTorch zip (torch.save, torch ≥ 1.6)',
  'torch-legacy': 'PyTorch legacy (torch.save before 1.6, or _use_new_zipfile_serialization=False)',
  safetensors: 'safetensors',
};
