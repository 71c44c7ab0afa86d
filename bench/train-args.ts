/**
 * The training benchmark's settings (bench/train.ts) from its command line: the full run's batches, or `--quick`'s
 * smaller ones for a run of about a minute on a software adapter, with --runs / --warmup overriding either.
 * Plain code, no GPU, so the tests can check it.
 */

/** The options parseBenchArgs is given (node:util parseArgs config). */
export const TRAIN_BENCH_OPTIONS = {
  quick: { type: 'boolean', default: false },
  runs: { type: 'string' },
  warmup: { type: 'string' },
  json: { type: 'string' },
} as const;

export const TRAIN_BENCH_USAGE = `
  npm run bench:train -- [--quick] [--runs 5] [--warmup 1] [--json bench/results/train.local.json]
    (node dist/bench/train.js with the same options)
  --quick   smaller batches and fewer repetitions (about a minute on lavapipe)
  --runs    timed steps / kernel runs per case (median); default 5, --quick 2
  --warmup  untimed runs first (shader JIT, first-use allocations); default 1
  --json    also write the whole report as JSON to this file
`;

export interface TrainBenchSettings {
  quick: boolean;
  /** Timed repetitions per case (training steps, kernel runs and per-dispatch profiles). */
  runs: number;
  /** Untimed repetitions before them. */
  warmup: number;
  /** Square crop side of every batch (64, as in the issue). */
  size: number;
  /** DnCNN-17's batch (16 full, 2 quick). */
  dncnnBatch: number;
  /** The U-Nets' batch (4 full, 1 quick). */
  unetBatch: number;
  /** The batch of the single-convolution kernel cases (DnCNN's: 16 full, 2 quick). */
  kernelBatch: number;
  json?: string;
}

export interface TrainBenchValues {
  quick?: boolean;
  runs?: string;
  warmup?: string;
  json?: string;
}

function integerOption(name: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!(text.trim() !== '' && Number.isInteger(n) && n >= min)) throw new Error(`--${name} must be an integer ≥ ${min}, got '${text}'`);
  return n;
}

/** The settings these parsed values ask for; throws an Error naming the option when a value is not usable. */
export function trainBenchSettings(values: TrainBenchValues): TrainBenchSettings {
  const quick = values.quick ?? false;
  if (values.json !== undefined && values.json.trim() === '') throw new Error('--json needs a file name');
  return {
    quick,
    runs: integerOption('runs', values.runs, quick ? 2 : 5, 1),
    warmup: integerOption('warmup', values.warmup, 1, 0),
    size: 64,
    dncnnBatch: quick ? 2 : 16,
    unetBatch: quick ? 1 : 4,
    kernelBatch: quick ? 2 : 16,
    ...(values.json !== undefined ? { json: values.json } : {}),
  };
}
