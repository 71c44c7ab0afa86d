import { BOOLEAN, checkOptionFields, oneOf, rule } from '../check-args';
import { BufferUsage } from './flags';
import { DeviceLostError, DisposedError, GPUOperationError, GPUUnavailableError, LimitExceededError } from '../errors';
import { type AdapterDescription, adapterLabel, describeAdapter } from './adapter-info';
import { describeLimits, requiredLimitsFor } from './limits';
import { BufferPool } from './buffer-pool';
import { PipelineCache } from './pipelines';

export interface ContextOptions {
  /** Wrap every submission in error scopes and wait for them: slower, but errors point at the dispatch. */
  debug?: boolean;
  /**
   * Anything that must stay alive as long as the device: dawn.node's instance object. If V8 collects it while
   * GPU work is in flight the process segfaults (platform.md pitfall 1), so the context holds it.
   */
  keepAlive?: unknown;
  /** The adapter the device came from, when known; used for the adapter description and kernel selection. */
  adapter?: GPUAdapter;
}

export interface RequestContextOptions extends Omit<ContextOptions, 'adapter'> {
  powerPreference?: GPUPowerPreference;
  /** Request `timestamp-query` when the adapter has it (benchmarks). Default true. */
  timestamps?: boolean;
}

/**
 * Kernel variants forced per kernel family, for benchmarks and experiments: a selector returns its family's
 * override instead of its table's pick. The kernels own their variant types and add their family to this
 * interface (`declare module '../gpu/context'` in src/kernels/*-variants.ts), so src/gpu imports nothing from
 * src/kernels and `ctx.variantOverrides.conv2d` is still typed.
 */
export interface VariantOverrides {
  [family: string]: unknown;
}

/** What a kernel's variant selector reads: the adapter (software or not) and any forced variants. */
export interface VariantSource {
  readonly adapter: AdapterDescription;
  readonly variantOverrides?: VariantOverrides;
}

/**
 * Everything that belongs to one GPUDevice: the device itself, what we learnt about its adapter, its pipeline
 * cache, and the error state. Errors never pass silently: `uncapturederror` and `device.lost` are recorded and
 * turned into typed exceptions by `throwIfFailed()`, which every public operation calls.
 */
export class GPUContext implements VariantSource {
  readonly device: GPUDevice;
  readonly adapter: AdapterDescription;
  readonly debug: boolean;
  readonly pipelines: PipelineCache;
  /** Activation buffers shared by every plan on this device. */
  readonly buffers: BufferPool;
  readonly hasTimestamps: boolean;
  private readonly keepAlive: unknown;
  private lostError: DeviceLostError | undefined;
  private uncaptured: GPUOperationError | undefined;
  private disposed = false;
  /** Resolves (never rejects) when the device is lost, so awaits on GPU work can race against it. */
  readonly lost: Promise<DeviceLostError>;

  constructor(device: GPUDevice, options: ContextOptions = {}) {
    GPU_DEVICE.check(device, 'GPUContext', 'device');
    checkOptionFields('GPUContext', options, { debug: BOOLEAN, adapter: ADAPTER });
    this.device = device;
    this.keepAlive = options.keepAlive;
    this.debug = options.debug ?? false;
    this.adapter = describeAdapter(options.adapter, options.adapter?.info ?? device.adapterInfo);
    this.hasTimestamps = device.features.has('timestamp-query');
    this.pipelines = new PipelineCache(this);
    this.buffers = new BufferPool(this);
    this.lost = device.lost.then((info) => {
      this.lostError = new DeviceLostError(info.reason ?? 'unknown', info.message || 'no message from the driver');
      return this.lostError;
    });
    device.addEventListener('uncapturederror', (event) => {
      const error = event.error;
      // Keep the first one: later errors are usually consequences of it.
      this.uncaptured ??= toOperationError('uncaptured WebGPU error', error);
    });
  }

  get adapterName(): string {
    return adapterLabel(this.adapter);
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  /**
   * Largest byte range one storage binding may span. Plans split bigger tensors across several bindings
   * (chunked-bindings.ts). Tests lower it (`bindingLimitOverride`) to run every kernel in its chunked form at
   * small sizes.
   */
  get storageBindingLimit(): number {
    const device = this.device.limits.maxStorageBufferBindingSize;
    return this.bindingLimitOverride !== undefined ? Math.min(device, this.bindingLimitOverride) : device;
  }

  bindingLimitOverride: number | undefined;

  /** Forced kernel variants by family (benchmarks, experiments); empty means every selector uses its table. */
  readonly variantOverrides: VariantOverrides = {};

  /**
   * Most workgroups per grid dimension: plans spread a kernel's linear workgroup count over x and y within it
   * (dispatch.ts). Tests lower it (`workgroupLimitOverride`) to exercise the spread at small sizes.
   */
  get workgroupsPerDimensionLimit(): number {
    const device = this.device.limits.maxComputeWorkgroupsPerDimension;
    return this.workgroupLimitOverride !== undefined ? Math.min(device, this.workgroupLimitOverride) : device;
  }

  workgroupLimitOverride: number | undefined;

  /**
   * Test knob: split every tensor binding into this many windows (where the offset alignment allows), whatever
   * its size, so the chunked form of every kernel can be checked against references at small sizes.
   */
  forceBindingChunks: number | undefined;

  get isLost(): boolean {
    return this.lostError !== undefined;
  }

  /** Throws the typed error for a lost device, a recorded uncaptured error, or use after dispose. */
  throwIfFailed(): void {
    if (this.disposed) throw new DisposedError('GPUContext');
    if (this.lostError) throw this.lostError;
    const e = this.uncaptured;
    if (e) {
      this.uncaptured = undefined;
      throw e;
    }
  }

  /**
   * Runs `fn` inside validation / out-of-memory / internal error scopes and throws the first error as a typed
   * exception naming `operation`.
   */
  async withErrorScopes<T>(operation: string, fn: () => T | Promise<T>): Promise<T> {
    this.throwIfFailed();
    const d = this.device;
    d.pushErrorScope('internal');
    d.pushErrorScope('out-of-memory');
    d.pushErrorScope('validation');
    let result: T;
    let thrown: unknown;
    try {
      result = await fn();
    } catch (e) {
      thrown = e;
    }
    const scopes = await this.raceLost(Promise.all([d.popErrorScope(), d.popErrorScope(), d.popErrorScope()]));
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- rethrows what the operation threw, unchanged
    if (thrown !== undefined) throw thrown;
    const first = scopes.find((e) => e !== null);
    if (first) throw toOperationError(operation, first);
    return result!;
  }

  /** Awaits `p`, but fails with DeviceLostError instead of hanging if the device is lost meanwhile. */
  async raceLost<T>(p: Promise<T>): Promise<T> {
    if (this.lostError) throw this.lostError;
    const lost = this.lost.then((e) => {
      throw e;
    });
    lost.catch(() => undefined); // the losing side of the race must not become an unhandled rejection
    return Promise.race([p, lost]);
  }

  /** Creates a buffer after checking the device's size limit, so an oversized request fails with a clear error. */
  createBuffer(descriptor: GPUBufferDescriptor, what: string): GPUBuffer {
    this.throwIfFailed();
    const max = this.device.limits.maxBufferSize;
    if (descriptor.size > max) throw new LimitExceededError('maxBufferSize', descriptor.size, max, what);
    // No check against maxStorageBufferBindingSize here: a plan binds a large activation buffer in windows.
    return this.device.createBuffer({ label: what, ...descriptor });
  }

  /** Uploads `data` to a new buffer. Copies through a plain ArrayBuffer: Dawn rejects SharedArrayBuffer views. */
  createBufferWithData(data: ArrayBufferView, usage: GPUBufferUsageFlags, what: string): GPUBuffer {
    const size = Math.max(16, align(data.byteLength, 16));
    const buffer = this.createBuffer({ size, usage: usage | BufferUsage.COPY_DST }, what);
    writeBuffer(this.device, buffer, 0, data);
    return buffer;
  }

  describe(): { adapter: AdapterDescription; limits: Record<string, number>; features: string[] } {
    return {
      adapter: this.adapter,
      limits: describeLimits(this.device.limits),
      features: [...this.device.features].sort(),
    };
  }

  dispose(): void {
    if (this.disposed) return;
    this.pipelines.clear();
    this.buffers.trim();
    this.disposed = true;
    this.device.destroy();
    void this.keepAlive; // held until here on purpose (see ContextOptions.keepAlive)
  }
}

/** Enough of a GPUDevice for the constructor's first steps (Node has no WebGPU classes to test against). */
export const GPU_DEVICE = rule('a GPUDevice', (v) => hasMethods(v, 'createBuffer', 'addEventListener'));
const ADAPTER = rule('a GPUAdapter', (v) => hasMethods(v, 'requestDevice'));
/** navigator.gpu, or dawn.node's `create()` result. */
const GPU_OBJECT = rule("a GPU object (navigator.gpu, or the webgpu package's create())", (v) => hasMethods(v, 'requestAdapter'));
/** RequestContextOptions, field by field (keepAlive is anything). */
export const REQUEST_CONTEXT_FIELDS = {
  debug: BOOLEAN,
  timestamps: BOOLEAN,
  powerPreference: oneOf(['high-performance', 'low-power']),
};

function hasMethods(value: unknown, ...names: string[]): boolean {
  return typeof value === 'object' && value !== null && names.every((n) => typeof (value as Record<string, unknown>)[n] === 'function');
}

export function align(n: number, multiple: number): number {
  return Math.ceil(n / multiple) * multiple;
}

/** queue.writeBuffer from any view, copying out of SharedArrayBuffers first (dawn.node pitfall 3). */
export function writeBuffer(device: GPUDevice, buffer: GPUBuffer, offset: number, data: ArrayBufferView): void {
  let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (!(data.buffer instanceof ArrayBuffer)) bytes = new Uint8Array(bytes);
  // writeBuffer needs a size that is a multiple of 4.
  if (bytes.byteLength % 4 !== 0) {
    const padded = new Uint8Array(align(bytes.byteLength, 4));
    padded.set(bytes);
    bytes = padded;
  }
  device.queue.writeBuffer(buffer, offset, bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function toOperationError(operation: string, error: GPUError): GPUOperationError {
  const kind = error.constructor?.name ?? '';
  const code = /OutOfMemory/.test(kind) ? 'GPU_OUT_OF_MEMORY' : /Internal/.test(kind) ? 'GPU_INTERNAL' : 'GPU_VALIDATION';
  return new GPUOperationError(code, operation, error.message);
}

/**
 * Requests an adapter and a device from a `GPU` object (navigator.gpu, or dawn.node's `create()` result), with
 * the limits the networks need raised to the adapter's maximum.
 */
export async function requestContext(gpu: GPU | undefined, options: RequestContextOptions = {}): Promise<GPUContext> {
  // Left out (undefined or null) means "no WebGPU here", as navigator.gpu is where there is none.
  if (gpu === undefined || gpu === null) {
    throw new GPUUnavailableError('WebGPU is not available here (no navigator.gpu); pass a GPUDevice instead');
  }
  GPU_OBJECT.check(gpu, 'requestContext', 'gpu');
  checkOptionFields('requestContext', options, REQUEST_CONTEXT_FIELDS);
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  } catch (cause) {
    throw new GPUUnavailableError(`requestAdapter() failed: ${String(cause)}`, { cause });
  }
  if (!adapter) {
    throw new GPUUnavailableError(
      'no WebGPU adapter found (in Node on Linux: install Mesa lavapipe >= 23 or a GPU Vulkan driver; see README)',
    );
  }
  const features: GPUFeatureName[] = [];
  if ((options.timestamps ?? true) && adapter.features.has('timestamp-query')) features.push('timestamp-query');
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      label: 'webgpu-restore',
      requiredFeatures: features,
      requiredLimits: requiredLimitsFor(adapter),
    });
  } catch (cause) {
    throw new GPUUnavailableError(`requestDevice() failed: ${String(cause)}`, { cause });
  }
  return new GPUContext(device, { ...options, adapter, keepAlive: options.keepAlive ?? gpu });
}
