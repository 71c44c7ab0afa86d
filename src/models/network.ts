import type { GPUContext } from '../gpu/context';
import type { Graph, TensorValue } from '../gpu/graph';
import type { Module } from '../layers/module';

/** What the runtime needs from a network: its channel counts, its scale, and how to add itself to a graph. */
export interface Network extends Module {
  readonly architecture: string;
  readonly inChannels: number;
  readonly outChannels: number;
  /** Output size / input size (1 for denoisers). */
  readonly scale: number;
  forward(ctx: GPUContext, graph: Graph, x: TensorValue): TensorValue;
  /** Frees GPU weight buffers. */
  release(): void;
}
