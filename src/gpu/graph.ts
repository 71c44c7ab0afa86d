import { InvalidInputError } from '../errors';
import type { DispatchCost } from './cost';
import type { WorkgroupCount } from './dispatch';
import type { KernelSource } from './shader';
import { checkShape4, type Shape4, tensorBytes } from './tensor';

/** A symbolic activation tensor of a graph; it gets a real buffer only when the graph is compiled into a plan. */
export interface TensorValue {
  readonly id: number;
  readonly shape: Shape4;
  readonly label: string;
}

/**
 * A byte range of an activation: kernels that split their work into row bands (when a tensor is larger than one
 * storage binding may span) bind only the rows a band touches. `offset` must be a multiple of the device's
 * minStorageBufferOffsetAlignment.
 */
export interface TensorSlice {
  readonly tensor: TensorValue;
  readonly offset: number;
  readonly size: number;
}

/**
 * A byte range of a buffer that lives outside the plan: one parameter (or its gradient, or its optimizer state)
 * inside an arena that holds them all (parameter-arena.ts). `offset` must be a multiple of the
 * device's minStorageBufferOffsetAlignment.
 */
export interface BufferRange {
  readonly buffer: GPUBuffer;
  readonly offset: number;
  readonly size: number;
}

/**
 * What a dispatch binds by WGSL variable name: an activation (or a slice of one), a constant buffer (weights), or
 * a range of a buffer the plan does not own (trainable parameters, their gradients, optimizer state).
 */
export type Binding = TensorValue | TensorSlice | GPUBuffer | BufferRange;

/**
 * One compute dispatch: a shader variant, its uniforms (by member name), its bindings and how many workgroups it
 * needs: a linear count that the plan spreads over the device's grid, or an exact grid (dispatch.ts).
 */
export interface GraphNode {
  label: string;
  kernel: KernelSource;
  uniforms: Record<string, number>;
  bindings: Record<string, Binding>;
  workgroups: WorkgroupCount;
  /** Counted FLOPs and minimum bytes moved (cost.ts); every kernel in src/kernels sets it, for reports. */
  cost?: DispatchCost;
}

export function isTensorValue(b: Binding): b is TensorValue {
  return b !== undefined && typeof (b as TensorValue).id === 'number' && Array.isArray((b as TensorValue).shape);
}

export function isTensorSlice(b: Binding): b is TensorSlice {
  return typeof (b as TensorSlice).offset === 'number' && isTensorValue((b as TensorSlice).tensor);
}

export function isBufferRange(b: Binding): b is BufferRange {
  const r = b as BufferRange;
  return typeof r.offset === 'number' && typeof r.size === 'number' && r.buffer !== undefined && !isTensorSlice(b);
}

/** Bytes a binding spans: a whole tensor (padded channels included), or the size of a slice, range or buffer. */
export function bindingBytes(b: Binding): number {
  return isTensorValue(b) ? tensorBytes(b.shape) : b.size;
}

/** The activation a binding refers to, if any. */
export function boundTensor(b: Binding): TensorValue | undefined {
  return isTensorValue(b) ? b : isTensorSlice(b) ? b.tensor : undefined;
}

/**
 * A straight-line list of dispatches over symbolic tensors, built by layers and models for one input shape.
 * Order is execution order; a tensor must be written by an earlier node (or be a graph input) before it is read.
 */
export class Graph {
  readonly nodes: GraphNode[] = [];
  readonly inputs: TensorValue[] = [];
  readonly outputs: TensorValue[] = [];
  private nextId = 0;

  tensor(shape: Shape4, label: string): TensorValue {
    checkShape4(shape, label);
    return { id: this.nextId++, shape: [...shape] as unknown as Shape4, label };
  }

  input(shape: Shape4, label = 'input'): TensorValue {
    const t = this.tensor(shape, label);
    this.inputs.push(t);
    return t;
  }

  output(t: TensorValue): void {
    if (this.outputs.includes(t)) throw new InvalidInputError(`tensor '${t.label}' is already a graph output`);
    this.outputs.push(t);
  }

  add(node: GraphNode): void {
    this.nodes.push(node);
  }
}

export interface GraphCost extends DispatchCost {
  dispatches: number;
  /** Dispatches without a cost (nodes built outside src/kernels); their work is missing from the sums. */
  uncountedDispatches: number;
}

/** Sums the cost (gpu/cost.ts) of every node of `graph`. */
export function graphCost(graph: Graph): GraphCost {
  const sum: GraphCost = { flops: 0, bytes: 0, dispatches: graph.nodes.length, uncountedDispatches: 0 };
  for (const node of graph.nodes) {
    if (!node.cost) {
      sum.uncountedDispatches++;
      continue;
    }
    sum.flops += node.cost.flops;
    sum.bytes += node.cost.bytes;
  }
  return sum;
}
