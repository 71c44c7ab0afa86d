/**
 * The ONNX exports written by tools/torch/export_onnx.py into bench/.onnx/ (gitignored): per network a JSON with
 * the seed, the key/shape manifest and our TypeScript config, the .onnx file(s), and PyTorch's output for the
 * bench input at each exported size. This module only finds and reads them; nothing here touches a GPU.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ManifestEntry } from '../../test/helpers/seeded-weights';

export const DEFAULT_ONNX_DIR = 'bench/.onnx';

/** One PyTorch reference run (export_onnx.py), at one W×H size. */
export interface PyTorchReference {
  /** 'WxH' */
  size: string;
  inputShape: number[];
  outputShape: number[];
  /** File name (in the export folder) of the float32 NCHW output. */
  output: string;
  /** ||f(x') - f(x)|| / ||f(x)|| for an unrelated input: how much the output depends on the input at all. */
  sensitivity: number;
  /** DnCNN: ||network part|| / ||output||; MSRResNet: ||output - bilinear base|| / ||output||. */
  residualRelNorm?: number;
  float32VsFloat64RelL2?: number;
}

/** `<network>.json`, as export_onnx.py writes it. */
export interface ExportMeta {
  network: string;
  description: string;
  /** Registry name (src/models/registry.ts). */
  architecture: string;
  /** Our TypeScript config for that architecture. */
  config: unknown;
  kwargs: Record<string, unknown>;
  seed: number;
  opset: number;
  dynamicAxes: boolean;
  /** '*' → one model for every size (dynamic H/W); otherwise 'WxH' → a model traced at that size. */
  files: Record<string, string>;
  references: PyTorchReference[];
  torch: string;
  manifest: ManifestEntry[];
}

export type ExportLookup =
  { ok: true; meta: ExportMeta; modelPath: string; reference?: PyTorchReference; referencePath?: string } | { ok: false; reason: string };

/** The command that writes what is missing for `network` at `size` (W×H). */
export function exportCommand(network: string, size: string): string {
  return `/usr/bin/python3 tools/torch/export_onnx.py --networks ${network} --sizes ${size}`;
}

/** The export of `network` usable at `size` ('WxH'), or why there is none (with the command that makes it). */
export function findExport(dir: string, network: string, size: string): ExportLookup {
  const metaPath = join(dir, `${network}.json`);
  if (!existsSync(metaPath)) return { ok: false, reason: `no ONNX export in ${dir}; run: ${exportCommand(network, size)}` };
  const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as ExportMeta;
  const file = meta.files['*'] ?? meta.files[size];
  const modelPath = file === undefined ? undefined : join(dir, file);
  if (!modelPath || !existsSync(modelPath)) {
    const what = meta.dynamicAxes ? 'no ONNX file' : `no ONNX file for ${size} (this export is per size)`;
    return { ok: false, reason: `${what} in ${dir}; run: ${exportCommand(network, size)}` };
  }
  const reference = meta.references.find((r) => r.size === size);
  const referencePath = reference ? join(dir, reference.output) : undefined;
  if (reference && referencePath && existsSync(referencePath)) return { ok: true, meta, modelPath, reference, referencePath };
  return { ok: true, meta, modelPath };
}

/** A little-endian float32 file (the PyTorch output). */
export function readF32(path: string): Float32Array {
  const bytes = readFileSync(path);
  const out = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}
