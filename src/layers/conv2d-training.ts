import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import { NO_ACTIVATION } from '../kernels/activation';
import { conv2d } from '../kernels/conv2d';
import { conv2dInputGrad, conv2dWeightGrad } from '../kernels/conv2d-backward';
import { type Conv2dGeometry, conv2dOutputShape } from '../kernels/conv2d-geometry';
import { selectConv2dVariant } from '../kernels/conv2d-variants';
import { packConv2dWeightOnGpu } from '../kernels/weight-pack-gpu';
import { trainConvolution } from './convolution-training';
import type { ForwardBuilder, ForwardOptions } from './forward-builder';
import type { Parameter } from './module';

/**
 * What a training graph needs of a convolution: Conv2d itself, or ConcatConv2d, which trains as a plain
 * convolution over an explicit concatenation with its PyTorch weight as it is (concat-conv2d.ts says why).
 */
export interface TrainableConv2d {
  readonly geometry: Conv2dGeometry;
  readonly weight: Parameter;
  readonly bias: Parameter | undefined;
  readonly inChannels: number;
  /** Reads only a prefix of a wider input (refused here: the gradient of a prefix read is never written). */
  readonly readsPrefix: boolean;
}

/**
 * Conv2d in a training graph: its weights come from the training arena in PyTorch's layout and are packed for
 * the forward kernel by a dispatch of their own each step (they change every step); dx runs on the forward
 * kernels with flipped weights (kernels/conv2d-backward.ts).
 */
export function conv2dTrainingForward(
  b: ForwardBuilder,
  conv: TrainableConv2d,
  x: TensorValue,
  options: ForwardOptions,
  label: string,
): TensorValue {
  const g = conv.geometry;
  const epilogue = options.epilogue ?? {};
  if (epilogue.prelu || (epilogue.scale !== undefined && epilogue.scale !== 1) || options.output || conv.readsPrefix) {
    const what = epilogue.prelu
      ? 'a fused PReLU'
      : options.output
        ? 'a channel-slice output'
        : conv.readsPrefix
          ? 'an input prefix'
          : 'a scaled output';
    throw new InvalidInputError(`${label}: training a Conv2d with ${what} is not supported yet`);
  }
  if (epilogue.residual && epilogue.residual.mode !== 'afterActivation') {
    throw new InvalidInputError(`${label}: training a Conv2d with a residual added before its activation is not supported yet`);
  }
  if (x.shape[3] !== conv.inChannels) throw new InvalidInputError(`${label} expects ${conv.inChannels} channels, got ${x.shape[3]}`);
  const [n, h, w] = x.shape;
  const [, , wo] = conv2dOutputShape([n, h, w, conv.inChannels], g);
  const activation = epilogue.activation ?? NO_ACTIVATION;
  const residual = epilogue.residual;
  return trainConvolution(b, {
    label,
    x,
    weight: conv.weight,
    bias: conv.bias,
    activation,
    ...(residual ? { residual: residual.tensor } : {}),
    forward: (weight, bias) =>
      conv2d(
        b.graph,
        x,
        {
          weight: packConv2dWeightOnGpu(b.graph, weight, g, `${label} pack`),
          ...(bias ? { bias } : {}),
          geometry: g,
          variant: selectConv2dVariant(b.ctx, g, wo),
          label,
          bindingLimits: { maxBytes: b.ctx.storageBindingLimit, align: b.ctx.limits.minStorageBufferOffsetAlignment },
        },
        { activation, ...(residual ? { residual } : {}) },
      ),
    inputGrad: (gz, weight) => conv2dInputGrad(b.graph, b.ctx, gz, weight, g, x.shape, `${label} dx`),
    weightGrad: (gz, dWeight, dBias) => conv2dWeightGrad(b.graph, x, gz, g, dWeight, `${label} dW`, dBias ? { dBias } : {}),
  });
}
