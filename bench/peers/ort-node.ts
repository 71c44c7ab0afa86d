/**
 * onnxruntime-node's CPU execution provider (native, all cores): the reference point for "what a CPU does" on
 * the same machine, with the same ONNX file and input.
 */
import { cpus } from 'node:os';
import type * as OrtNodeModule from 'onnxruntime-node';

type OrtNode = typeof OrtNodeModule;

let ort: OrtNode | undefined;

export async function loadOrtNode(): Promise<OrtNode> {
  if (ort) return ort;
  // A variable specifier keeps tsup from bundling this dev-only dependency (it loads a native addon).
  const name = 'onnxruntime-node';
  const mod = (await import(/* @vite-ignore */ name)) as OrtNode & { default?: OrtNode };
  ort = mod.InferenceSession ? mod : mod.default!;
  return ort;
}

export interface OrtNodeSession {
  run(input: Float32Array, dims: number[]): Promise<Float32Array>;
  threads: number;
  release(): Promise<void>;
}

export async function createOrtNodeSession(ortNode: OrtNode, model: Uint8Array): Promise<OrtNodeSession> {
  const threads = cpus().length;
  const session = await ortNode.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
  });
  const [inputName] = session.inputNames;
  const [outputName] = session.outputNames;
  return {
    threads,
    async run(input, dims) {
      const result = await session.run({ [inputName]: new ortNode.Tensor('float32', input, dims) });
      return result[outputName].data as Float32Array;
    },
    release: () => session.release(),
  };
}
