/**
 * Our side of the peer comparison: the network of an ONNX export, built from the same seeded weights
 * (regenerated bit for bit from the export's seed and manifest), run through RestorationModel as bench/models.ts
 * does: plan compiled first, whole image (no tiles), GPU time from timestamp queries where the device has them.
 */
import type { GPUContext } from '../../src/gpu/context';
import type { FloatImage } from '../../src/io/image';
import { architectureByName } from '../../src/models/registry';
import { RestorationModel } from '../../src/runtime/restoration-model';
import { seededStateDict } from '../../test/helpers/seeded-weights';
import type { ExportMeta } from './exports';
import { type Timed, timeRuns } from './timing';

export interface OursResult extends Timed {
  /** model.warmup: plan compilation (pipelines, buffers, bind groups) and the weight upload. */
  compileMs: number;
  dispatches: number;
}

export function buildModel(ctx: GPUContext, meta: ExportMeta): RestorationModel {
  const sd = seededStateDict(meta.seed, meta.manifest);
  const network = architectureByName(meta.architecture).build(meta.config, sd);
  return new RestorationModel(ctx, network, meta.network);
}

export async function runOurs(ctx: GPUContext, meta: ExportMeta, image: FloatImage, warmup: number, runs: number): Promise<OursResult> {
  const model = buildModel(ctx, meta);
  try {
    const t0 = performance.now();
    await model.warmup(image.height, image.width);
    const compileMs = performance.now() - t0;
    let dispatches = 0;
    const timed = await timeRuns(warmup, runs, async () => {
      const { image: out, stats } = await model.runFloat(image, { tileSize: 0 });
      dispatches = stats.dispatches;
      return { output: out.data, gpuMs: stats.gpuMs };
    });
    return { ...timed, compileMs, dispatches };
  } finally {
    model.dispose();
  }
}
