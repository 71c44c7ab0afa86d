import { InvalidInputError, StateDictError } from '../errors';
import type { GPUContext } from '../gpu/context';
import type { TensorValue } from '../gpu/graph';
import { checkNoUnexpected, type StateDict, takeTensor } from '../weights/state-dict';
import { toFloat64 } from '../weights/tensor';
import type { Epilogue, ForwardBuilder, ForwardOptions } from './forward-builder';

/** A learnable tensor or buffer, named exactly as in PyTorch's state_dict, held on the CPU in float64. */
export interface Parameter {
  readonly shape: readonly number[];
  data: Float64Array | undefined;
}

export function parameter(shape: readonly number[]): Parameter {
  return { shape, data: undefined };
}

/** What a module keeps on one device: buffers it uploaded, and helper modules built from its weights. */
type DeviceResources = Record<string, GPUBuffer | Module | undefined>;

/**
 * PyTorch's nn.Module, for graph building: every module has
 *   - `parameters()` and `children()` by PyTorch name, so `namedParameters`, `loadStateDict` and training walk any
 *     tree generically and build the same dotted keys as `state_dict()`;
 *   - one `forward(builder, x, options?)` that adds its dispatches to the builder's graph (`In`/`Out` are
 *     TensorValue unless the PyTorch forward takes or returns several tensors, like a decoder block's
 *     `(x, skip)` or an encoder's feature list);
 *   - GPU resources made once per context through `onDevice`, and freed by the one `release()` below.
 *
 * Options a module cannot honour are refused, not ignored: `fusesEpilogue` / `writesChannelSlice` say which it
 * takes, and containers (Sequential) use them to decide what to fuse.
 */
export abstract class Module<In = TensorValue, Out = TensorValue> {
  /** Whether `forward` applies `options.epilogue` (activation, PReLU, scale, residual) in its last dispatch. */
  get fusesEpilogue(): boolean {
    return false;
  }

  /**
   * Whether `forward` builds a training graph (reads its parameters from the training arenas and records its
   * backward on the tape) when the builder has one. Modules that do not must never be trained: their forward
   * would add dispatches without gradients, so the trainer refuses any tree that holds one.
   */
  get supportsTraining(): boolean {
    return false;
  }

  /** Whether `forward` can write its result into `options.output`, a channel slice of a wider tensor. */
  get writesChannelSlice(): boolean {
    return false;
  }

  private device: { ctx: GPUContext; key: string; resources: DeviceResources } | undefined;

  abstract forward(builder: ForwardBuilder, x: In, options?: ForwardOptions): Out;

  /** Own parameters by PyTorch name (`weight`, `bias`, `running_mean`, …). */
  parameters(): Record<string, Parameter> {
    return {};
  }

  /** Child modules by attribute name or Sequential index. */
  children(): [string, Module<any, any>][] {
    return [];
  }

  /**
   * Modules this one runs that are not PyTorch children (no state_dict names): e.g. Linear's 1×1 convolution.
   * `release()` frees them with the rest.
   */
  protected internals(): Module<any, any>[] {
    return [];
  }

  /**
   * Names among `parameters()` that are buffers in PyTorch (BatchNorm's running statistics): saved in the
   * state_dict, never learnt.
   */
  bufferNames(): string[] {
    return [];
  }

  /**
   * Undoes `foldInto` / `absorbChannelAffine` on this module (not its children): training needs BatchNorm as its
   * own step again. `unfoldBatchNorms` calls it for the whole tree.
   */
  unfold(): void {}

  /** Keys PyTorch keeps in a state_dict that inference does not need (e.g. `num_batches_tracked`). */
  ignoredKeys(): string[] {
    return [];
  }

  /**
   * When this module can run as the epilogue of the module before it (a parameter-free activation), that
   * epilogue; otherwise undefined. Sequential fuses through this.
   */
  asEpilogue(): Epilogue | undefined {
    return undefined;
  }

  /** True when `forward` returns its input unchanged (a BatchNorm folded into the convolution before it). */
  get isIdentity(): boolean {
    return false;
  }

  /**
   * Takes y = x·scale + shift per output channel into this module's own weights, when it can (a convolution
   * absorbing the BatchNorm after it). Returns false if it cannot.
   */
  absorbChannelAffine(_scale: Float64Array, _shift: Float64Array): boolean {
    return false;
  }

  /**
   * Folds this module into `previous` when it is an eval-mode per-channel affine that `previous` can absorb
   * (BatchNorm after a convolution). Returns whether it did; `loadStateDict` calls it for every pair of siblings.
   */
  foldInto(_previous: Module<any, any>): boolean {
    return false;
  }

  /**
   * This module's resources on `ctx`, made by `make` on first use and again whenever the context or `key`
   * changes (the old ones are freed first). Every GPUBuffer and Module in the returned record is released by
   * `release()`.
   */
  protected onDevice<R extends DeviceResources>(ctx: GPUContext, make: () => R, key = ''): R {
    if (this.device?.ctx === ctx && this.device.key === key) return this.device.resources as R;
    this.releaseOwn();
    const resources = make();
    this.device = { ctx, key, resources };
    return resources;
  }

  /** Frees this module's own resources (not its children's): its weights changed and must be uploaded again. */
  protected releaseOwn(): void {
    const own = this.device;
    this.device = undefined;
    if (!own) return;
    for (const r of Object.values(own.resources)) {
      if (r instanceof Module) r.release();
      else r?.destroy();
    }
  }

  /** Frees the GPU memory held by this module and everything below it. Safe to call at any time, and again. */
  release(): void {
    this.releaseOwn();
    for (const m of this.internals()) m.release();
    for (const [, child] of this.children()) child.release();
  }

  /**
   * Throws unless `options` asks only for what this module can do: an epilogue only if it fuses one (and, when
   * `parts` is given, only those parts of it), an output slice only if it writes one. Returns the epilogue.
   */
  protected checkOptions<K extends keyof Epilogue = keyof Epilogue>(
    options: ForwardOptions | undefined,
    label: string,
    parts?: readonly K[],
  ): Pick<Epilogue, K> {
    const epilogue = options?.epilogue ?? {};
    const asked = (Object.keys(epilogue) as (keyof Epilogue)[]).filter((k) => epilogue[k] !== undefined);
    if (options?.epilogue && !this.fusesEpilogue) {
      throw new InvalidInputError(`${label}: ${this.constructor.name} cannot fuse an epilogue`);
    }
    const refused = parts ? asked.filter((k) => !(parts as readonly string[]).includes(k)) : [];
    if (refused.length > 0) {
      throw new InvalidInputError(`${label}: ${this.constructor.name} fuses only ${parts!.join(', ')} (not ${refused.join(', ')})`);
    }
    if (options?.output && !this.writesChannelSlice) {
      throw new InvalidInputError(`${label}: ${this.constructor.name} cannot write into a channel slice`);
    }
    return epilogue;
  }
}

export function namedParameters(module: Module<any, any>, prefix = ''): [string, Parameter][] {
  const out: [string, Parameter][] = Object.entries(module.parameters()).map(([k, p]) => [prefix + k, p]);
  for (const [name, child] of module.children()) out.push(...namedParameters(child, `${prefix}${name}.`));
  return out;
}

/** Every module of the tree with its dotted PyTorch name ('' for the root), parents before children. */
export function namedModules(module: Module<any, any>, prefix = ''): [string, Module<any, any>][] {
  const out: [string, Module<any, any>][] = [[prefix.replace(/\.$/, ''), module]];
  for (const [name, child] of module.children()) out.push(...namedModules(child, `${prefix}${name}.`));
  return out;
}

/** The tree's buffers (BatchNorm running statistics): state_dict entries that are never learnt. */
export function bufferParameters(module: Module<any, any>): Set<Parameter> {
  const out = new Set<Parameter>();
  const own = module.parameters();
  for (const name of module.bufferNames()) out.add(own[name]);
  for (const [, child] of module.children()) for (const p of bufferParameters(child)) out.add(p);
  return out;
}

/** Every key the tree may see in a state_dict without using it (`num_batches_tracked`, `mask_values`, …). */
export function ignoredKeysOf(module: Module<any, any>, prefix = ''): string[] {
  const out = module.ignoredKeys().map((k) => prefix + k);
  for (const [name, child] of module.children()) out.push(...ignoredKeysOf(child, `${prefix}${name}.`));
  return out;
}

/**
 * Folds every eval-mode BatchNorm into the convolution just before it among its siblings (Sequential order, or
 * attribute order: torchvision's conv1, bn1, conv2, bn2). A BatchNorm with nothing to fold into stays and runs
 * its own kernel. Returns how many were folded.
 */
export function foldBatchNorms(module: Module<any, any>): number {
  let folded = 0;
  const children = module.children().map(([, m]) => m);
  children.forEach((m, i) => {
    if (i > 0 && m.foldInto(children[i - 1])) folded++;
    folded += foldBatchNorms(m);
  });
  return folded;
}

/** The kinds (class names) of the tree's modules that cannot build a training graph, root first. */
export function untrainableKinds(module: Module<any, any>): string[] {
  return [
    ...new Set(
      namedModules(module)
        .filter(([, m]) => !m.supportsTraining)
        .map(([, m]) => m.constructor.name),
    ),
  ];
}

/** Undoes `foldBatchNorms` everywhere in the tree (training runs BatchNorm as a step of its own). */
export function unfoldBatchNorms(module: Module<any, any>): void {
  module.unfold();
  for (const [, child] of module.children()) unfoldBatchNorms(child);
}

/**
 * Like PyTorch's `load_state_dict(strict=True)`: every parameter must be present with its exact shape, and
 * the file must have no keys the module does not know. Errors list the offending keys. The module is then ready
 * for inference: what it had on the GPU is released (the weights changed), and BatchNorms are folded into the
 * convolutions before them (`foldBatchNorms`), as in eval mode.
 */
export function loadStateDict(module: Module<any, any>, sd: StateDict): void {
  const params = namedParameters(module);
  const missing = params.filter(([k]) => !sd.has(k)).map(([k]) => k);
  if (missing.length > 0) {
    const shown = missing.slice(0, 8).join(', ') + (missing.length > 8 ? `, … (${missing.length} in all)` : '');
    const available = [...sd.keys()].slice(0, 6).join(', ');
    throw new StateDictError('MISSING_KEY', `state_dict is missing ${shown}; it has e.g. ${available}`, missing);
  }
  for (const [key, p] of params) p.data = toFloat64(takeTensor(sd, key, p.shape));
  checkNoUnexpected(sd, [...params.map(([k]) => k), ...ignoredKeysOf(module)]);
  module.release();
  foldBatchNorms(module);
}

export function requireData(p: Parameter, what: string): Float64Array {
  if (!p.data) throw new StateDictError('MISSING_KEY', `${what} has no weights loaded`, [what]);
  return p.data;
}
