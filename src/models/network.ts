import type { TensorValue } from '../gpu/graph';
import type { ForwardBuilder, ForwardOptions } from '../layers/forward-builder';
import type { Module } from '../layers/module';

/** What the runtime needs from a network: its channel counts, its scale, and how to add itself to a graph. */
export interface Network extends Module {
  readonly architecture: string;
  readonly inChannels: number;
  readonly outChannels: number;
  /** Output size / input size (1 for denoisers). */
  readonly scale: number;
  /**
   * What image values mean to the network: 'unit' (default) [0, 1]; 'symmetric' [-1, 1] (tanh generators such as
   * SINSR). `RestorationModel.run` maps integer images accordingly; `runFloat` passes values through.
   */
  readonly valueRange?: 'unit' | 'symmetric';
  /** The image [1, h, w, inChannels] → the restored image [1, h·scale, w·scale, outChannels]. */
  forward(builder: ForwardBuilder, x: TensorValue, options?: ForwardOptions): TensorValue;
}
