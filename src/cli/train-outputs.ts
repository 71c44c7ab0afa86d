/**
 * What `webgpu-restore train` writes, next to `-o OUT.pth`:
 *   OUT.pth                   the model's state_dict (PyTorch 1.13 loads it with weights_only=True), the last step
 *   OUT.best.pth              the state_dict of the best validation PSNR (when there is a validation split)
 *   OUT.pth.json              the sidecar: step, learning rate, schedule, num_batches_tracked, split, seed, versions
 *   OUT.pth.optimizer.safetensors  the optimizer's tensors (Adam's moments, SGD's momentum) for --resume
 * and the progress line it prints.
 */
import { InvalidInputError } from '../errors';
import { readSafetensors, writeSafetensors } from '../weights/safetensors';
import { trainedStateToPth } from '../training/checkpoint';
import type { PercentileRange } from '../io/normalize';
import type { FitProgress, ValidationScores } from '../training/fit';
import type { OptimizerState, TrainedTensor, Trainer } from '../training/trainer';
import { writeFileAtomic } from './files';

export interface TrainOutputs {
  last: string;
  best: string;
  sidecar: string;
  optimizer: string;
  all: string[];
}

export function trainOutputs(output: string): TrainOutputs {
  const best = output.replace(/(\.pth?)$/i, '.best$1');
  const sidecar = `${output}.json`;
  const optimizer = `${output}.optimizer.safetensors`;
  return { last: output, best, sidecar, optimizer, all: [output, best, sidecar, optimizer] };
}

interface Sidecar {
  format: 'webgpu-restore training state';
  version: 1;
  step: number;
  lr: number;
  schedule?: object;
  numBatchesTracked: Record<string, number>;
  architecture: string;
  seed: number;
  validation: string[];
  test: string[];
  /** How it learnt (train --method) and, for self-supervised runs, the settings. */
  method?: string;
  selfSupervised?: object;
  /** Percentile normalisation the inputs had: `denoise -w` applies it unless told otherwise. */
  normalize?: PercentileRange;
}

/** Writes the 'best' checkpoint, or the 'last' one with the sidecar and optimizer state. */
export async function writeCheckpoints(
  outputs: TrainOutputs,
  kind: 'best' | 'last',
  trainer: Trainer,
  state: Map<string, TrainedTensor>,
  meta: {
    architecture: string;
    seed: number;
    validation: string[];
    test: string[];
    schedule?: object;
    method?: string;
    selfSupervised?: object;
    normalize?: PercentileRange;
  },
): Promise<void> {
  if (kind === 'best') {
    await writeFileAtomic(outputs.best, trainedStateToPth(state));
    return;
  }
  await writeFileAtomic(outputs.last, trainedStateToPth(state));
  const optimizer = await trainer.optimizerState();
  const tensors = new Map([...optimizer.tensors].map(([k, data]) => [k, { dtype: 'float32' as const, shape: [data.length], data }]));
  await writeFileAtomic(outputs.optimizer, writeSafetensors(tensors));
  const numBatchesTracked: Record<string, number> = {};
  for (const [k, t] of state) if (t.dtype === 'int64') numBatchesTracked[k] = t.data[0];
  const sidecar: Sidecar = {
    format: 'webgpu-restore training state',
    version: 1,
    step: optimizer.step,
    lr: optimizer.lr,
    ...(meta.schedule ? { schedule: meta.schedule } : {}),
    numBatchesTracked,
    architecture: meta.architecture,
    seed: meta.seed,
    validation: meta.validation,
    test: meta.test,
    ...(meta.method ? { method: meta.method } : {}),
    ...(meta.selfSupervised ? { selfSupervised: meta.selfSupervised } : {}),
    ...(meta.normalize ? { normalize: meta.normalize } : {}),
  };
  await writeFileAtomic(outputs.sidecar, `${JSON.stringify(sidecar, null, 1)}\n`);
}

/** What --resume takes from the earlier run: the optimizer's state, and how that run learnt. */
export interface ResumeState {
  optimizer: OptimizerState;
  numBatchesTracked: Map<string, number>;
  schedule?: object;
  /** Absent in sidecars of runs before --method existed (supervised). */
  method?: string;
  selfSupervised?: object;
  normalize?: PercentileRange;
}

/** The sidecar and optimizer state written by an earlier run, checked. */
export function readResumeState(outputs: TrainOutputs, readFile: (path: string) => Uint8Array): ResumeState {
  let sidecar: Sidecar;
  try {
    sidecar = JSON.parse(new TextDecoder().decode(readFile(outputs.sidecar))) as Sidecar;
  } catch (e) {
    throw new InvalidInputError(`--resume needs ${outputs.sidecar} from the earlier run (${(e as Error).message})`);
  }
  if (sidecar.format !== 'webgpu-restore training state' || sidecar.version !== 1) {
    throw new InvalidInputError(`${outputs.sidecar} is not a webgpu-restore training state`);
  }
  let bytes: Uint8Array;
  try {
    bytes = readFile(outputs.optimizer);
  } catch (e) {
    throw new InvalidInputError(`--resume needs ${outputs.optimizer} from the earlier run (${(e as Error).message})`);
  }
  const { tensors } = readSafetensors(bytes, { name: outputs.optimizer });
  const optimizerTensors = new Map<string, Float32Array>();
  for (const [k, t] of tensors) {
    if (!(t.data instanceof Float32Array)) throw new InvalidInputError(`${outputs.optimizer}: '${k}' is ${t.dtype}, expected float32`);
    optimizerTensors.set(k, t.data);
  }
  return {
    optimizer: { step: sidecar.step, lr: sidecar.lr, tensors: optimizerTensors },
    numBatchesTracked: new Map(Object.entries(sidecar.numBatchesTracked ?? {})),
    ...(sidecar.schedule ? { schedule: sidecar.schedule } : {}),
    ...(sidecar.method !== undefined ? { method: sidecar.method } : {}),
    ...(sidecar.selfSupervised !== undefined ? { selfSupervised: sidecar.selfSupervised } : {}),
    ...(sidecar.normalize !== undefined ? { normalize: sidecar.normalize } : {}),
  };
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  return s >= 3600
    ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
    : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/**
 * Validation scores as the progress line and the summary show them: `30.12 dB 0.8812 lpips 0.1234 loss 1.234e-3`
 * (lpips with --lpips, to 4 significant digits: small distances keep their precision; loss for self-supervised
 * runs, the method's loss on the held-out noisy images). `named` spells SSIM and LPIPS out (the summary).
 */
export function scoresText(v: ValidationScores, named: boolean): string {
  const parts: string[] = [];
  if (v.psnr !== undefined) parts.push(`${v.psnr.toFixed(2)} dB`);
  if (v.ssim !== undefined) parts.push(`${named ? 'SSIM ' : ''}${v.ssim.toFixed(4)}`);
  if (v.lpips !== undefined) parts.push(`${named ? 'LPIPS' : 'lpips'} ${v.lpips.toPrecision(4)}`);
  if (v.loss !== undefined) parts.push(`loss ${v.loss.toExponential(3)}`);
  return parts.join(named ? ' / ' : ' ');
}

/**
 * `step 120/1000 [=====>      ] 12% epoch 3 loss 1.234e-3 lr 1.0e-3 val 30.12 dB 0.8812 lpips 0.1234 eta 3m12s`;
 * a run bounded by time alone (`--minutes` without --steps or --epochs, `timeBudgetSeconds`) has no step total,
 * so its bar and percentage follow the clock: `step 120 [=====>      ] 25% epoch 3 loss … val loss … left 7m30s`.
 */
export function progressLine(p: FitProgress, timeBudgetSeconds?: number): string {
  const width = 20;
  const fraction = timeBudgetSeconds !== undefined ? Math.min(1, Math.max(0, 1 - p.etaSeconds / timeBudgetSeconds)) : p.step / p.totalSteps;
  const done = Math.round(fraction * width);
  const bar = '='.repeat(Math.max(0, done - 1)) + (done > 0 ? (done === width ? '=' : '>') : '') + ' '.repeat(width - done);
  const val = p.validation ? ` val ${scoresText(p.validation, false)}` : '';
  const pct = Math.floor(100 * fraction);
  const step = timeBudgetSeconds !== undefined ? `${p.step}` : `${p.step}/${p.totalSteps}`;
  const left = timeBudgetSeconds !== undefined ? 'left' : 'eta';
  return `step ${step} [${bar}] ${pct}% epoch ${p.epoch} loss ${p.loss.toExponential(3)} lr ${p.lr.toExponential(1)}${val} ${left} ${duration(p.etaSeconds)}`;
}
