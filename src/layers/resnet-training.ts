import type { TensorValue } from '../gpu/graph';
import { RELU } from '../kernels/activation';
import { add, relu } from './autograd-ops';
import type { ForwardBuilder } from './forward-builder';
import type { BasicBlock, ResNetEncoder } from './resnet';

/*
 * torchvision's ResNet in a training graph. Inference folds every BatchNorm into its convolution and fuses the
 * residual add and the final ReLU into the second convolution; training keeps PyTorch's steps apart (conv, then
 * BatchNorm in train mode with batch statistics, the add, the ReLU) so each records its own backward.
 */

/** BasicBlock: out = ReLU(BN2(conv2(ReLU(BN1(conv1(x))))) + identity), identity = x or BN(conv1×1 stride s (x)). */
export function basicBlockTrainingForward(b: ForwardBuilder, block: BasicBlock, x: TensorValue, label: string): TensorValue {
  const identity = block.downsample ? block.downsample.forward(b, x, { label: `${label}.downsample` }) : x;
  let h = block.conv1.forward(b, x, { label: `${label}.conv1` });
  h = block.bn1.forward(b, h, { epilogue: { activation: RELU }, label: `${label}.bn1` });
  h = block.conv2.forward(b, h, { label: `${label}.conv2` });
  h = block.bn2.forward(b, h, { label: `${label}.bn2` });
  return relu(b, add(b, h, identity, `${label}.add`), `${label}.relu`);
}

/** The encoder's stem (conv7×7 s2, BN, ReLU), max pool 3×3 s2 p1 and stages; returns f1..f5. */
export function resNetEncoderTrainingForward(b: ForwardBuilder, encoder: ResNetEncoder, x: TensorValue, label: string): TensorValue[] {
  let f1 = encoder.conv1.forward(b, x, { label: `${label}.conv1` });
  f1 = encoder.bn1.forward(b, f1, { epilogue: { activation: RELU }, label: `${label}.bn1` });
  const features = [f1];
  let t = encoder.maxpool.forward(b, f1, { label: `${label}.maxpool` });
  encoder.layers.forEach((layer, i) => {
    t = layer.forward(b, t, { label: `${label}.layer${i + 1}` });
    features.push(t);
  });
  return features;
}
