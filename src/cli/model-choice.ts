/**
 * Which network `denoise` / `upscale` run: a built-in model (`--model`), a checkpoint file (`--weights`,
 * any format the reader knows, the network recognised from its keys), or the default. The checkpoint is
 * read and checked before a GPU device is requested, so a wrong file fails in milliseconds.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { BUILTIN_MODELS, type BuiltinModelName, DEFAULT_MODEL } from '../api';
import { CheckpointError, InvalidInputError } from '../errors';
import type { Network } from '../models/network';
import type { Architecture } from '../models/registry';
import { builtinWeightsPath } from '../node';
import { identifyNetwork, readCheckpointFile, readContents } from './checkpoint-file';
import { UsageError } from './errors';

export type Task = 'denoise' | 'upscale';

export interface ChosenNetwork {
  /** Model name for messages: the built-in name or the checkpoint's file name. */
  name: string;
  architecture: Architecture<unknown>;
  config: unknown;
  network: Network;
}

async function builtinBytes(name: BuiltinModelName): Promise<Uint8Array> {
  const url = builtinWeightsPath(name);
  try {
    return new Uint8Array(await readFile(url));
  } catch (cause) {
    throw new CheckpointError('CHECKPOINT_FORMAT', `built-in model '${name}': cannot read ${fileURLToPath(url)}`, { cause });
  }
}

export async function chooseNetwork(task: Task, options: { model?: string; weights?: string }): Promise<ChosenNetwork> {
  if (options.model !== undefined && options.weights !== undefined) {
    throw new UsageError('give either --model or --weights, not both', task);
  }
  let name: string;
  let bytes: Uint8Array;
  if (options.weights !== undefined) {
    const file = await readCheckpointFile(options.weights);
    name = file.name;
    bytes = file.bytes;
  } else {
    const builtin = options.model ?? (task === 'denoise' ? DEFAULT_MODEL : undefined);
    if (builtin === undefined) {
      throw new UsageError('upscale needs --weights <checkpoint>: no built-in super-resolution model ships with the package', task);
    }
    if (!(builtin in BUILTIN_MODELS)) {
      throw new UsageError(`unknown built-in model '${builtin}'; available: ${Object.keys(BUILTIN_MODELS).join(', ')}`, task);
    }
    name = builtin;
    bytes = await builtinBytes(builtin as BuiltinModelName);
  }
  const { architecture, config, network } = identifyNetwork(readContents({ path: name, name, bytes }).stateDict, name);
  checkTask(task, name, architecture.name, network);
  return { name, architecture, config, network };
}

/** `upscale` needs a network that enlarges, `denoise` one that keeps the size. */
function checkTask(task: Task, name: string, architecture: string, network: Network): void {
  if (task === 'upscale' && network.scale <= 1) {
    network.release();
    throw new InvalidInputError(
      `'${name}' is a ${architecture} model that keeps the image size (scale 1); upscale needs a super-resolution ` +
        `model (scale > 1). Use 'webgpu-restore denoise' with it`,
    );
  }
  if (task === 'denoise' && network.scale !== 1) {
    network.release();
    throw new InvalidInputError(
      `'${name}' is a ×${network.scale} super-resolution model (${architecture}); denoise needs a model that keeps ` +
        `the image size. Use 'webgpu-restore upscale' with it`,
    );
  }
}
