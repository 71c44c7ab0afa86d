import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import { type Activation, NO_ACTIVATION } from '../kernels/activation';
import { convTranspose2d } from '../kernels/conv-transpose2d';
import { convTranspose2dInputGrad, convTranspose2dWeightGrad } from '../kernels/conv-transpose2d-backward';
import { selectConvTranspose2dVariant } from '../kernels/conv-transpose2d-variants';
import { packConvTranspose2dWeightOnGpu } from '../kernels/weight-pack-gpu';
import type { ConvTranspose2d } from './conv-transpose2d';
import { trainConvolution } from './convolution-training';
import type { ForwardBuilder, ForwardOptions } from './forward-builder';

/** ConvTranspose2d in a training graph (U-Net's and SCUNet's upsampling): dx is a conv2d of gy with the same weights. */
export function convTranspose2dTrainingForward(
  b: ForwardBuilder,
  conv: ConvTranspose2d,
  x: TensorValue,
  activation: Activation | undefined,
  options: ForwardOptions,
  label: string,
): TensorValue {
  if (options.output) throw new InvalidInputError(`${label}: training a ConvTranspose2d with a channel-slice output is not supported yet`);
  const g = conv.geometry;
  return trainConvolution(b, {
    label,
    x,
    weight: conv.weight,
    bias: conv.bias,
    activation: activation ?? NO_ACTIVATION,
    forward: (weight, bias) =>
      convTranspose2d(
        b.graph,
        x,
        {
          weight: packConvTranspose2dWeightOnGpu(b.graph, weight, g, `${label} pack`),
          ...(bias ? { bias } : {}),
          geometry: g,
          variant: selectConvTranspose2dVariant(b.ctx, g, x.shape[2]),
          label,
        },
        { activation: activation ?? NO_ACTIVATION },
      ),
    inputGrad: (gz, weight) => convTranspose2dInputGrad(b.graph, b.ctx, gz, weight, g, x.shape, `${label} dx`),
    weightGrad: (gz, dWeight, dBias) => convTranspose2dWeightGrad(b.graph, x, gz, g, dWeight, `${label} dW`, dBias ? { dBias } : {}),
  });
}
