import { ShaderStage } from './flags';
import { RestoreError, ShaderCompilationError } from '../errors';
import type { GPUContext } from './context';
import { type ReflectedShader, reflectShader, type ShaderSource } from './shader';

/** A ready-to-dispatch pipeline with an explicit bind-group layout derived from reflection. */
export interface CompiledKernel {
  shader: ReflectedShader;
  pipeline: GPUComputePipeline;
  bindGroupLayout: GPUBindGroupLayout;
}

/**
 * Pipelines keyed by shader variant (label + code). Creation is asynchronous
 * (`createComputePipelineAsync`) so a model can compile all of its pipelines in parallel, and concurrent
 * requests for the same variant share one promise.
 */
export class PipelineCache {
  private readonly entries = new Map<string, Promise<CompiledKernel>>();
  constructor(private readonly ctx: GPUContext) {}

  get size(): number {
    return this.entries.size;
  }

  /** Labels of the variants compiled so far: a debug listing of what this device runs. */
  labels(): string[] {
    return [...this.entries.keys()].map((k) => k.slice(0, k.indexOf('\u0000')));
  }

  get(source: ShaderSource): Promise<CompiledKernel> {
    const key = `${source.label}\u0000${source.entryPoint ?? ''}\u0000${source.code}`;
    let entry = this.entries.get(key);
    if (!entry) {
      entry = this.compile(source);
      this.entries.set(key, entry);
      // A failed compile must not poison the cache for a later retry on a new device.
      entry.catch(() => this.entries.delete(key));
    }
    return entry;
  }

  clear(): void {
    this.entries.clear();
  }

  private async compile(source: ShaderSource): Promise<CompiledKernel> {
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
