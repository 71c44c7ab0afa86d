export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.round((p / 100) * (s.length - 1))));
  return s[i];
}

/** Median and the 10th/90th percentiles (nearest rank) of a list of timings; min and max for good measure. */
export interface Summary {
  median: number;
  p10: number;
  p90: number;
  min: number;
  max: number;
  n: number;
}

export function summarize(xs: number[]): Summary {
  if (xs.length === 0) throw new Error('summarize: no samples');
  return {
    median: median(xs),
    p10: percentile(xs, 10),
    p90: percentile(xs, 90),
    min: Math.min(...xs),
    max: Math.max(...xs),
    n: xs.length,
  };
}
