/**
 * onnxruntime-web's WebGPU execution provider inside this Node process, on the Dawn instance our own context uses
 * (so both run on the same adapter), loaded from node_modules: no network, no browser.
 *
 * What it takes to run a browser build in Node on dawn.node:
 * - `navigator.gpu` must be the Dawn GPU object (Node 20 has no `navigator`; later versions have one without `gpu`).
 * - The model is passed as bytes: ort-web fetch()es paths, and Node's fetch has no file: URLs.
 * - Its wasm build is multi-threaded, so its heap is a SharedArrayBuffer, and it uploads with
 *   `queue.writeBuffer(buffer, offset, HEAPU8, start, size)`. dawn.node rejects views on shared memory
 *   ("Invalid argument", ../shared/docs/platform.md pitfall 3), so while ort runs, writeBuffer copies such ranges
 *   into a plain ArrayBuffer first (a copy a browser makes internally anyway). Our own uploads never pass shared
 *   memory, and the patch is removed again when ort is done.
 */
import type * as OrtWebModule from 'onnxruntime-web';
import { adapterLabel, describeAdapter } from '../../src/gpu/adapter-info';

type OrtWeb = typeof OrtWebModule;
type WriteBuffer = (buffer: GPUBuffer, bufferOffset: number, data: BufferSource, dataOffset?: number, size?: number) => void;

let ort: OrtWeb | undefined;

function exposeNavigatorGpu(gpu: GPU): void {
  const g = globalThis as { navigator?: { gpu?: GPU } };
  if (g.navigator === undefined) {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  } else if (g.navigator.gpu !== gpu) {
    Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
  }
}

/**
 * Makes `GPUQueue.prototype.writeBuffer` copy ranges of SharedArrayBuffers into plain memory; returns the
 * function that restores the original. Dawn's classes are globals once our node entry has loaded it.
 */
export function copySharedMemoryWrites(): () => void {
  const queueClass = (globalThis as { GPUQueue?: { prototype: { writeBuffer: WriteBuffer } } }).GPUQueue;
  if (!queueClass) throw new Error('GPUQueue is not a global: load Dawn (nodeGPU) first');
  const proto = queueClass.prototype;
  const original = proto.writeBuffer;
  proto.writeBuffer = function (this: GPUQueue, buffer, bufferOffset, data, dataOffset, size) {
    const view = ArrayBuffer.isView(data) ? data : undefined;
    const backing = view ? view.buffer : data;
    if (typeof SharedArrayBuffer === 'undefined' || !(backing instanceof SharedArrayBuffer)) {
      return original.call(this, buffer, bufferOffset, data, dataOffset, size);
    }
    // dataOffset and size count elements of a typed array, bytes otherwise (WebGPU's writeBuffer rules).
    const element = view && 'BYTES_PER_ELEMENT' in view ? (view as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT : 1;
    const base = view ? view.byteOffset : 0;
    const total = view ? view.byteLength : (data as ArrayBuffer).byteLength;
    const start = (dataOffset ?? 0) * element;
    const bytes = size !== undefined ? size * element : total - start;
    const copy = new Uint8Array(bytes);
    copy.set(new Uint8Array(backing, base + start, bytes));
    return original.call(this, buffer, bufferOffset, copy);
  };
  return () => {
    proto.writeBuffer = original;
  };
}

/** The ort-web module, set up for WebGPU on `gpu` (loaded once per process; settings apply to the first session). */
export async function loadOrtWeb(gpu: GPU): Promise<OrtWeb> {
  if (ort) return ort;
  exposeNavigatorGpu(gpu);
  // A variable specifier: esbuild (tsup) must leave this dev-only dependency to Node's resolver, which picks
  // the package's ESM bundle and finds the .wasm next to it in node_modules.
  const name = 'onnxruntime-web/webgpu';
  const mod = (await import(/* @vite-ignore */ name)) as OrtWeb & { default?: OrtWeb };
  ort = mod.InferenceSession ? mod : mod.default!;
  // One wasm thread: the heavy work is on the GPU, and emscripten's worker threads are a liability in Node. The
  // same power preference as our own context, so both get the same adapter.
  ort.env.wasm.numThreads = 1;
  ort.env.webgpu.powerPreference = 'high-performance';
  ort.env.logLevel = 'error';
  return ort;
}

export interface OrtWebSession {
  run(input: Float32Array, dims: number[]): Promise<Float32Array>;
  /** The adapter ort's own device came from, as our context would name it. */
  adapterName: string;
  release(): Promise<void>;
}

export interface OrtWebOptions {
  /** WebGPU EP layout; undefined leaves ort's default. */
  preferredLayout?: 'NCHW' | 'NHWC';
}

export async function createOrtWebSession(ortWeb: OrtWeb, model: Uint8Array, options: OrtWebOptions = {}): Promise<OrtWebSession> {
  const ep: OrtWebModule.InferenceSession.WebGpuExecutionProviderOption = {
    name: 'webgpu',
    ...(options.preferredLayout ? { preferredLayout: options.preferredLayout } : {}),
  };
  const session = await ortWeb.InferenceSession.create(model, { executionProviders: [ep], graphOptimizationLevel: 'all' });
  const device = await ortWeb.env.webgpu.device;
  const [inputName] = session.inputNames;
  const [outputName] = session.outputNames;
  return {
    adapterName: adapterLabel(describeAdapter(undefined, device.adapterInfo)),
    async run(input, dims) {
      // Output on the CPU (ort's default location): ort waits for the GPU and reads back, as runFloat does.
      const result = await session.run({ [inputName]: new ortWeb.Tensor('float32', input, dims) });
      const out = result[outputName];
      const data = (await out.getData()) as Float32Array;
      out.dispose();
      return data;
    },
    release: () => session.release(),
  };
}
