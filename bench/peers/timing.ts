/**
 * The measurement loop every runtime of the peer comparison shares, so that all of them are timed the same way:
 * `warmup` untimed runs, then `runs` timed ones; the output of the last run is kept for the agreement check.
 */
import { type Summary, summarize } from '../stats';

export interface Timed {
  /** Wall time of the first run (the first warm-up run if there is one): lazy pipeline creation and the like. */
  firstRunMs: number;
  /** Wall time of each timed run. */
  wallMs: Summary;
  /** The runtime's own GPU time where it reports one (ours: timestamp queries), one value per timed run. */
  gpuMs?: Summary;
  output: Float32Array;
}

export interface RunResult {
  output: Float32Array;
  gpuMs?: number;
}

export async function timeRuns(warmup: number, runs: number, run: () => Promise<RunResult>): Promise<Timed> {
  let firstRunMs: number | undefined;
  const once = async () => {
    const t0 = performance.now();
    const r = await run();
    const ms = performance.now() - t0;
    firstRunMs ??= ms;
    return { ...r, ms };
  };
  for (let i = 0; i < warmup; i++) await once();
  const wall: number[] = [];
  const gpu: number[] = [];
  let output: Float32Array | undefined;
  for (let i = 0; i < runs; i++) {
    const r = await once();
    wall.push(r.ms);
    if (r.gpuMs !== undefined) gpu.push(r.gpuMs);
    output = r.output;
  }
  return {
    firstRunMs: firstRunMs!,
    wallMs: summarize(wall),
    gpuMs: gpu.length === runs ? summarize(gpu) : undefined,
    output: output!,
  };
}

/** Relative L2 distance ||a - b|| / ||b||, accumulated in float64. NaN when the lengths differ. */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Number.NaN;
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
  }
  return Math.sqrt(num / (den || 1));
}
