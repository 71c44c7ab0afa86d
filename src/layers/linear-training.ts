import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import { applyActivation, NO_ACTIVATION } from '../kernels/activation';
import { activationBackward, activationSaves } from '../kernels/activation-backward';
import { conv2d } from '../kernels/conv2d';
import type { Conv2dGeometry } from '../kernels/conv2d-geometry';
import { selectConv2dVariant } from '../kernels/conv2d-variants';
import { binary } from '../kernels/elementwise';
import { linearInputGrad, linearWeightGrad } from '../kernels/matmul-backward';
import { packConv2dWeightOnGpu } from '../kernels/weight-pack-gpu';
import type { ForwardBuilder, ForwardOptions } from './forward-builder';
import type { Linear } from './linear';

/**
 * nn.Linear over the channels of a channels-last map, in a training graph: the weight [out, in] from the training
 * arena is a 1×1 convolution weight, packed for the forward kernel each step; the backward is
 * kernels/matmul-backward.ts. Epilogues: an activation (one whose backward needs its input, GELU, runs as a
 * dispatch of its own after the Linear so that the pre-activation is kept), then a residual added after it.
 */
export function linearTrainingForward(
  b: ForwardBuilder,
  linear: Linear,
  x: TensorValue,
  options: ForwardOptions,
  label: string,
): TensorValue {
  const training = b.training!;
  const epilogue = options.epilogue ?? {};
  if (epilogue.prelu || (epilogue.scale !== undefined && epilogue.scale !== 1) || options.output) {
    const what = epilogue.prelu ? 'a fused PReLU' : options.output ? 'a channel-slice output' : 'a scaled output';
    throw new InvalidInputError(`${label}: training a Linear with ${what} is not supported yet`);
  }
  const residual = epilogue.residual;
  if (residual && residual.mode !== 'afterActivation') {
    throw new InvalidInputError(`${label}: training a Linear with a residual added before its activation is not supported yet`);
  }
  if (x.shape[3] !== linear.inFeatures) throw new InvalidInputError(`${label} expects ${linear.inFeatures} channels, got ${x.shape[3]}`);
  const activation = epilogue.activation ?? NO_ACTIVATION;
  const separate = activationSaves(activation) === 'input';
  if (residual && activationSaves(activation) === 'output') {
    // The fused output would hold the residual too, and the activation's gradient comes from that output.
    throw new InvalidInputError(`${label}: training a Linear with both a ${activation.kind} and a residual is not supported yet`);
  }
  const geometry: Conv2dGeometry = {
    inChannels: linear.inFeatures,
    outChannels: linear.outFeatures,
    kernelSize: [1, 1],
    stride: 1,
    padding: [0, 0],
    dilation: 1,
    groups: 1,
  };
  const weight = training.value(linear.weight, `${label}.weight`);
  const bias = linear.bias ? training.value(linear.bias, `${label}.bias`) : undefined;
  const fused = separate ? {} : { activation, ...(residual ? { residual } : {}) };
  const z = conv2d(
    b.graph,
    x,
    {
      weight: packConv2dWeightOnGpu(b.graph, weight, geometry, `${label} pack`),
      ...(bias ? { bias } : {}),
      geometry,
      variant: selectConv2dVariant(b.ctx, geometry, x.shape[2]),
      label,
      bindingLimits: { maxBytes: b.ctx.storageBindingLimit, align: b.ctx.limits.minStorageBufferOffsetAlignment },
    },
    fused,
  );
  let y = z;
  if (separate) {
    y = applyActivation(b.graph, activation, z, `${label} ${activation.kind}`);
    if (residual) y = binary(b.graph, 'add', y, residual.tensor, `${label} + residual`);
  }
  const learnsWeight = training.learns(linear.weight);
  const learnsBias = linear.bias !== undefined && training.learns(linear.bias);
  if (learnsBias && !learnsWeight) throw new InvalidInputError(`${label}: a frozen weight with a learning bias is not supported yet`);
  const inputs = residual ? [x, residual.tensor] : [x];
  training.tape.record(label, inputs, [y], learnsWeight, (t) => {
    const gy = t.gradOf(y)!;
    if (residual) t.addGrad(residual.tensor, gy);
    // From the kept pre-activation z (GELU) or the output y (ReLU and the like, whose gradient y determines).
    const gz = activationBackward(b.graph, activation, gy, separate ? z : y, `${label} ${activation.kind} backward`);
    if (learnsWeight) {
      linearWeightGrad(b.graph, x, gz, training.grad(linear.weight, `${label}.weight`), `${label} dW`, {
        ...(learnsBias ? { dBias: training.grad(linear.bias, `${label}.bias`) } : {}),
      });
    }
    if (t.needsGrad(x)) t.addGrad(x, linearInputGrad(b.graph, b.ctx, gz, weight, linear.inFeatures, `${label} dx`));
  });
  return y;
}
