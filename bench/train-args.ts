/**
 * The training benchmark's settings (bench/train.ts) from its command line: the full run's batches, or `--quick`'s
 * smaller ones for a run of a few minutes on a software adapter, with --runs / --warmup overriding either, and
 * `--only` to run some parts alone. Plain code, no GPU, so the tests can check it. Each network's own batch and
 * patch, quick and full, are in train-steps.ts (STEP_CASES); the kernel shapes in train-kernels.ts.
 */

/** The options parseBenchArgs is given (node:util parseArgs config). */
export const TRAIN_BENCH_OPTIONS = {
  quick: { type: 'boolean', default: false },
  runs: { type: 'string' },
  warmup: { type: 'string' },
  json: { type: 'string' },
  only: { type: 'string' },
} as const;

/** What `--only` can name besides a network's key (STEP_CASES): the kernel table, and the step table as a whole. */
export const TRAIN_BENCH_PARTS = ['steps', 'kernels'] as const;

export const TRAIN_BENCH_USAGE = `
  npm run bench:train -- [--quick] [--runs 5] [--warmup 1] [--only dncnn,kernels] [--json bench/results/train.local.json]
    (node dist/bench/train.js with the same options)
  --quick   smaller batches and patches, fewer repetitions, the heavy networks (RRDBNet, SCUNet, SINSR at
            full width) left out: a few minutes on lavapipe. Without it, the issue's sizes (for a real GPU)
  --runs    timed steps / kernel runs per case (median); default 5, --quick 2
  --warmup  untimed runs first (shader JIT, first-use allocations); default 1
  --only    comma-separated: network keys (dncnn, unet, resnet34-unet, msrresnet, srresnet, rrdbnet, scunet,
            sinsr, …), 'steps' (every network) and/or 'kernels' (the kernel table); default everything
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
  /** Only these parts (network keys, 'steps', 'kernels'); absent: everything. */
  only?: string[];
  json?: string;
}

export interface TrainBenchValues {
  quick?: boolean;
  runs?: string;
  warmup?: string;
  json?: string;
  only?: string;
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
  const only = values.only?.split(',').map((part) => part.trim());
  if (only !== undefined && (only.length === 0 || only.some((part) => part === ''))) {
    throw new Error(`--only needs comma-separated names, got '${values.only}'`);
  }
  return {
    quick,
    runs: integerOption('runs', values.runs, quick ? 2 : 5, 1),
    warmup: integerOption('warmup', values.warmup, 1, 0),
    size: 64,
    dncnnBatch: quick ? 2 : 16,
    unetBatch: quick ? 1 : 4,
    kernelBatch: quick ? 2 : 16,
    ...(only !== undefined ? { only } : {}),
    ...(values.json !== undefined ? { json: values.json } : {}),
  };
}
