import type { GPUContext } from '../gpu/context';
import type { Graph, TensorValue } from '../gpu/graph';
import type { Shape4 } from '../gpu/tensor';
import type { Conv2dEpilogue } from '../kernels/conv2d';
import type { TrainingGraph } from './training-graph';

/**
 * What a module's last dispatch may do to its result before storing it (activation or PReLU, scale, residual
 * add): the convolution kernels' epilogue, without the output placement, which `ChannelSlice` says.
 */
export type Epilogue = Omit<Conv2dEpilogue, 'outChannelOffset'>;

/** Channels [channelOffset, channelOffset + C) of a wider tensor: concatenation without a copy. */
export interface ChannelSlice {
  readonly tensor: TensorValue;
  /** A multiple of 4 (slices start on whole vec4s of the NHWC layout). */
  readonly channelOffset: number;
}

export interface ForwardOptions {
  /** Names the module's dispatches and tensors (`body.3.conv1`); each module has a default. */
  label?: string;
  /** Fused into the module's last dispatch (modules with `fusesEpilogue`). */
  epilogue?: Epilogue;
  /** Write the result into this slice instead of a new tensor (modules with `writesChannelSlice`). */
  output?: ChannelSlice;
}

/**
 * What a module's `forward` builds with: the context its weights live on (and whose adapter picks kernel
 * variants) and the graph the dispatches go into. One builder per graph; the runtime makes it. With `training`,
 * the graph is a training step's: modules read their parameters from the training arenas, keep what their
 * backward needs, and record that backward on the tape.
 */
export class ForwardBuilder {
  constructor(
    readonly ctx: GPUContext,
    readonly graph: Graph,
    readonly training?: TrainingGraph,
  ) {}

  /** A new activation tensor [n, h, w, c] in the graph. */
  tensor(shape: Shape4, label: string): TensorValue {
    return this.graph.tensor(shape, label);
  }
}
