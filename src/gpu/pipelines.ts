import { ShaderStage } from './flags';
import { RestoreError, ShaderCompilationError } from '../errors';
import { type KernelSource, materializeSource, type ReflectedShader, reflectShader, sourceCacheKey } from './shader';

/** A ready-to-dispatch pipeline with an explicit bind-group layout derived from reflection. */
export interface CompiledKernel {
  shader: ReflectedShader;
  pipeline: GPUComputePipeline;
  bindGroupLayout: GPUBindGroupLayout;
}

/**
 * What the cache needs of a device (GPUContext has it): the device, and its error scopes and loss race. A narrow
 * interface, so the cache does not import the context that owns it.
 */
export interface PipelineDevice {
  readonly device: GPUDevice;
  withErrorScopes<T>(operation: string, fn: () => T | Promise<T>): Promise<T>;
  raceLost<T>(p: Promise<T>): Promise<T>;
}

/**
 * Pipelines keyed by shader variant: a lazy source's key (its WGSL is generated only here, on a miss), or a
 * hand-written source's text. Creation is asynchronous (`createComputePipelineAsync`) so a model can compile
 * all of its pipelines in parallel, and concurrent requests for the same variant share one promise.
 */
export class PipelineCache {
  private readonly entries = new Map<string, { label: string; kernel: Promise<CompiledKernel> }>();
  constructor(private readonly ctx: PipelineDevice) {}

  get size(): number {
    return this.entries.size;
  }

  /** Labels of the variants compiled so far: a debug listing of what this device runs. */
  labels(): string[] {
    return [...this.entries.values()].map((e) => e.label);
  }

  get(source: KernelSource): Promise<CompiledKernel> {
    const key = sourceCacheKey(source);
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { label: source.label, kernel: this.compile(source) };
      this.entries.set(key, entry);
      // A failed compile must not poison the cache for a later retry on a new device.
      entry.kernel.catch(() => this.entries.delete(key));
    }
    return entry.kernel;
  }

  clear(): void {
    this.entries.clear();
  }

  private async compile(lazy: KernelSource): Promise<CompiledKernel> {
    const source = materializeSource(lazy);
    const device = this.ctx.device;
    const module = await this.ctx.withErrorScopes(`compiling shader '${source.label}'`, async () => {
      const m = device.createShaderModule({ label: source.label, code: source.code });
      const info = await m.getCompilationInfo();
      const errors = info.messages.filter((msg) => msg.type === 'error');
      if (errors.length > 0) {
        throw new ShaderCompilationError(
          source.label,
          errors.map((msg) => `${msg.lineNum}:${msg.linePos} ${msg.message}`),
        );
      }
      return m;
    });
    // Reflect only once Dawn/Tint accepted the code: its diagnostics (line:column) are the useful ones, while
    // wgsl_reflect's parser would throw a plain Error on a syntax error.
    let shader: ReflectedShader;
    try {
      shader = reflectShader(source);
    } catch (e) {
      if (e instanceof RestoreError) throw e;
      throw new ShaderCompilationError(source.label, [`reflection failed: ${(e as Error).message}`]);
    }
    const bindGroupLayout = device.createBindGroupLayout({
      label: source.label,
      entries: shader.bindings.map((b) => ({
        binding: b.binding,
        visibility: ShaderStage.COMPUTE,
        buffer: { type: b.kind },
      })),
    });
    const pipeline = await this.ctx.withErrorScopes(`creating pipeline '${source.label}'`, () =>
      this.ctx.raceLost(
        device.createComputePipelineAsync({
          label: source.label,
          layout: device.createPipelineLayout({ bindGroupLayouts: [bindGroupLayout] }),
          compute: { module, entryPoint: shader.entryPoint },
        }),
      ),
    );
    return { shader, pipeline, bindGroupLayout };
  }
}
