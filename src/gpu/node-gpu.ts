import { checkOptionFields, STRING_ARRAY } from '../check-args';
import { GPUUnavailableError } from '../errors';
import { type GPUContext, REQUEST_CONTEXT_FIELDS, requestContext, type RequestContextOptions } from './context';

/**
 * The dawn.node instance. Module scope keeps a strong reference for the life of the process: if V8 collected
 * it while GPU work was in flight the process would segfault (platform.md pitfall 1). `releaseNodeGPU()` drops
 * it so that the process can exit (dawn.node keeps the event loop alive while the instance lives).
 */
let dawnInstance: GPU | undefined;

interface DawnModule {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

export async function nodeGPU(flags: string[] = []): Promise<GPU> {
  STRING_ARRAY.check(flags, 'nodeGPU', 'flags');
  if (dawnInstance) return dawnInstance;
  let mod: DawnModule;
  try {
    // A variable specifier keeps bundlers from trying to resolve the optional peer dependency.
    const name = 'webgpu';
    mod = (await import(/* @vite-ignore */ name)) as DawnModule;
  } catch (cause) {
    throw new GPUUnavailableError(
      "WebGPU for Node needs the optional peer dependency 'webgpu' (npm i webgpu), or pass a GPUDevice via { device }",
      { cause },
    );
  }
  // Dawn's classes (GPUBufferUsage, GPUMapMode, ...) must be globals, as in a browser.
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp'; // silences Vulkan loader warnings
  dawnInstance = mod.create(flags);
  return dawnInstance;
}

export async function createNodeContext(options: RequestContextOptions & { dawnFlags?: string[] } = {}): Promise<GPUContext> {
  // Checked here, not only by requestContext: a bad option must fail before Dawn is loaded and an adapter found.
  checkOptionFields('createNodeContext', options, { ...REQUEST_CONTEXT_FIELDS, dawnFlags: STRING_ARRAY });
  const gpu = await nodeGPU(options.dawnFlags);
  return requestContext(gpu, { ...options, keepAlive: gpu });
}

export function releaseNodeGPU(): void {
  dawnInstance = undefined;
}
