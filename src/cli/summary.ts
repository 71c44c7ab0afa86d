/** Counting what a state dict holds, and formatting numbers and shapes for the terminal. */
import { isFloatDType, numel } from '../weights/tensor';
import type { StateDict } from '../weights/state-dict';

export interface StateDictSummary {
  tensors: number;
  /** Elements of the floating-point tensors (weights, biases, BatchNorm statistics). */
  parameters: number;
  /** Tensors per stored dtype, in first-seen order. */
  dtypes: Record<string, number>;
  /** Top-level modules (first key component) with their tensor counts, in first-seen order. */
  modules: Record<string, number>;
}

export function summarise(sd: StateDict): StateDictSummary {
  let parameters = 0;
  const dtypes: Record<string, number> = {};
  const modules: Record<string, number> = {};
  for (const [key, t] of sd) {
    if (isFloatDType(t.dtype)) parameters += numel(t.shape);
    dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1;
    const top = key.split('.')[0];
    modules[top] = (modules[top] ?? 0) + 1;
  }
  return { tensors: sd.size, parameters, dtypes, modules };
}

/** 558336 → "558,336". */
export function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** 2250000 → "2.1 MiB". */
export function bytesText(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** "float32 (34)" or "float32 (32), int64 (2)". */
export function dtypesText(dtypes: Record<string, number>): string {
  return Object.entries(dtypes)
    .map(([d, n]) => `${d} (${n})`)
    .join(', ');
}

/** A configuration object on one line: `inChannels=1 nc=64 nb=17 actMode='R'`. */
export function configText(config: unknown): string {
  if (config === null || typeof config !== 'object') return JSON.stringify(config);
  return Object.entries(config as Record<string, unknown>)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? `'${v}'` : JSON.stringify(v)}`)
    .join(' ');
}
