/**
 * `--lpips BACKBONE.pth,HEADS.pth`, shared by `compare` (the distance of two images) and `train` (the validation
 * images' mean distance): the two files, read before any GPU work so a wrong path fails at once, and the LPIPS
 * model built from them on a context.
 */
import type { GPUContext } from '../gpu/context';
import { Lpips } from '../runtime/lpips';
import { type CheckpointFile, readCheckpointFile } from './checkpoint-file';
import { UsageError } from './errors';

/** The two paths of `--lpips BACKBONE.pth,HEADS.pth`; anything else is a UsageError naming the flag. */
export function lpipsPaths(value: string, command: string): [backbone: string, heads: string] {
  const parts = value.split(',');
  if (parts.length !== 2 || parts.some((p) => p.trim() === '')) {
    throw new UsageError(`--lpips takes two files separated by a comma (BACKBONE.pth,HEADS.pth), got '${value}'`, command);
  }
  return [parts[0].trim(), parts[1].trim()];
}

/** The torchvision backbone's and the LPIPS heads' files, read (a missing one is a CheckpointError naming it). */
export async function readLpipsFiles([backbone, heads]: readonly [string, string]): Promise<[CheckpointFile, CheckpointFile]> {
  return [await readCheckpointFile(backbone), await readCheckpointFile(heads)];
}

/** The LPIPS model of the files, on `ctx` (messages name the files); the caller disposes it. */
export function lpipsFromFiles(ctx: GPUContext, [backbone, heads]: readonly [CheckpointFile, CheckpointFile]): Lpips {
  return Lpips.fromCheckpoints(ctx, backbone.bytes, heads.bytes, { backbone: backbone.name, heads: heads.name });
}
