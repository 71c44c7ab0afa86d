/**
 * Twin of tools/torch/seeded_weights.py: regenerates, bit for bit, the seeded weights the PyTorch fixture
 * scripts put into full-size networks, so fixtures only need the key/shape manifest, the seed and the
 * input/output (the weights of a full SCUNet would be 72 MB). The value rules are documented in the Python file.
 */
import type { CpuTensor } from '../../src/weights/tensor';

export interface ManifestEntry {
  key: string;
  shape: number[];
  dtype: string;
}

function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function lowbias32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

function valueRange(key: string, shape: number[]): [number, number] | null {
  const name = key.slice(key.lastIndexOf('.') + 1);
  if (name === 'num_batches_tracked') return null;
  if (name === 'running_var') return [0.5, 1.5];
  if (name === 'running_mean') return [-0.2, 0.2];
  if (shape.length <= 1) return name === 'weight' ? [0.8, 1.2] : [-0.1, 0.1];
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  const b = Math.sqrt(3 / fanIn);
  return [-b, b];
}

export function seededTensor(seed: number, key: string, shape: number[]): CpuTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const range = valueRange(key, shape);
  if (range === null) return { dtype: 'int64', shape: [...shape], data: new BigInt64Array(n) };
  const [lo, hi] = range;
  const keySeed = fnv1a32(`${seed}:${key}`);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const h = lowbias32((Math.imul(i, 0x9e3779b9) + keySeed) >>> 0);
    data[i] = lo + (hi - lo) * (h / 4294967296);
  }
  return { dtype: 'float32', shape: [...shape], data };
}

/** The whole state_dict described by a fixture manifest, in manifest (PyTorch state_dict) order. */
export function seededStateDict(seed: number, manifest: ManifestEntry[]): Map<string, CpuTensor> {
  const sd = new Map<string, CpuTensor>();
  for (const { key, shape } of manifest) sd.set(key, seededTensor(seed, key, shape));
  return sd;
}
