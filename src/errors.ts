/**
 * Every failure the library reports is a `RestoreError` with a stable `code`, so callers can branch on the
 * kind of problem without parsing messages. Messages name the offending thing (file, key, shape, limit).
 */
export type RestoreErrorCode =
  | 'GPU_UNAVAILABLE'
  | 'DEVICE_LOST'
  | 'GPU_VALIDATION'
  | 'GPU_OUT_OF_MEMORY'
  | 'GPU_INTERNAL'
  | 'SHADER_COMPILATION'
  | 'LIMIT_EXCEEDED'
  | 'INVALID_INPUT'
  | 'IMAGE_FORMAT'
  | 'CHECKPOINT_FORMAT'
  | 'CHECKPOINT_TRUNCATED'
  | 'CHECKPOINT_UNSAFE'
  | 'MISSING_KEY'
  | 'UNEXPECTED_KEY'
  | 'SHAPE_MISMATCH'
  | 'DISPOSED'
  | 'ABORTED'
  | 'TRAINING_DIVERGED';

export class RestoreError extends Error {
  readonly code: RestoreErrorCode;
  constructor(code: RestoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** No WebGPU implementation, no adapter, or the device request was refused. */
export class GPUUnavailableError extends RestoreError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('GPU_UNAVAILABLE', message, options);
  }
}

/** The GPUDevice was lost (driver reset, destroy(), out of memory). Create a new context to continue. */
export class DeviceLostError extends RestoreError {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super('DEVICE_LOST', `GPU device lost (${reason}): ${message}`);
    this.reason = reason;
  }
}

/** A WebGPU validation, out-of-memory or internal error caught by an error scope or `uncapturederror`. */
export class GPUOperationError extends RestoreError {
  readonly operation: string;
  constructor(code: 'GPU_VALIDATION' | 'GPU_OUT_OF_MEMORY' | 'GPU_INTERNAL', operation: string, message: string) {
    super(code, `${operation}: ${message}`);
    this.operation = operation;
  }
}

/** WGSL that Dawn/Tint (or the browser) refused to compile; `messages` carries line:column diagnostics. */
export class ShaderCompilationError extends RestoreError {
  readonly label: string;
  readonly messages: string[];
  constructor(label: string, messages: string[]) {
    super('SHADER_COMPILATION', `shader '${label}' failed to compile:\n${messages.join('\n')}`);
    this.label = label;
    this.messages = messages;
  }
}

/** A request that would exceed a device limit (buffer size, binding size, workgroup count). */
export class LimitExceededError extends RestoreError {
  readonly limit: string;
  readonly requested: number;
  readonly allowed: number;
  constructor(limit: string, requested: number, allowed: number, what: string) {
    super('LIMIT_EXCEEDED', `${what} needs ${limit} = ${requested}, but the device allows at most ${allowed}`);
    this.limit = limit;
    this.requested = requested;
    this.allowed = allowed;
  }
}

/** Bad arguments from the caller: wrong shape, channel count, NaN values, bad options. */
export class InvalidInputError extends RestoreError {
  constructor(message: string) {
    super('INVALID_INPUT', message);
  }
}

/** Bytes that are not a readable image of a supported kind. */
export class ImageFormatError extends RestoreError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('IMAGE_FORMAT', message, options);
  }
}

/** Problems reading a checkpoint file: unknown format, truncation, forbidden pickle content. */
export class CheckpointError extends RestoreError {
  constructor(code: 'CHECKPOINT_FORMAT' | 'CHECKPOINT_TRUNCATED' | 'CHECKPOINT_UNSAFE', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A state_dict that does not fit the model: missing or unexpected keys, or wrong tensor shapes. */
export class StateDictError extends RestoreError {
  readonly keys: string[];
  constructor(code: 'MISSING_KEY' | 'UNEXPECTED_KEY' | 'SHAPE_MISMATCH', message: string, keys: string[]) {
    super(code, message);
    this.keys = keys;
  }
}

/** Use of a model or context after `dispose()`. */
export class DisposedError extends RestoreError {
  constructor(what: string) {
    super('DISPOSED', `${what} has been disposed`);
  }
}

/** Work stopped because the caller's AbortSignal fired; GPU buffers of the run have been released. */
export class AbortedError extends RestoreError {
  constructor(what: string, options?: { cause?: unknown }) {
    super('ABORTED', `${what} was aborted`, options);
  }
}

/** A training step whose loss came out NaN or infinite: the weights after it are not to be trusted. */
export class TrainingDivergedError extends RestoreError {
  readonly step: number;
  readonly loss: number;
  constructor(step: number, loss: number) {
    super('TRAINING_DIVERGED', `training diverged at step ${step}: the loss is ${loss} (lower the learning rate, or clip gradients)`);
    this.step = step;
    this.loss = loss;
  }
}
