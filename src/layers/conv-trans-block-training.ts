import type { TensorValue } from '../gpu/graph';
import { concatChannels } from '../kernels/concat';
import { embedChannels, extractChannels } from '../kernels/layout-backward';
import { concat } from './autograd-ops';
import type { ConvTransBlock } from './conv-trans-block';
import type { ForwardBuilder } from './forward-builder';

/**
 * SCUNet's ConvTransBlock in a training graph, step for step as PyTorch runs it (the inference path's fusions —
 * conv1_1 cut in two, branches writing into one buffer — would give parameters two writers of their gradient):
 *   y = conv1_1(x);  c, t = split(y, (conv_dim, trans_dim))
 *   c = c + conv_block(c);  t = SwinBlock(t)
 *   out = x + conv1_2(cat(c, t))
 * The split's backward concatenates the two branch gradients (a zero block for a branch that got none).
 */
export function convTransBlockTrainingForward(b: ForwardBuilder, block: ConvTransBlock, x: TensorValue, label: string): TensorValue {
  const training = b.training!;
  const y = block.conv1_1.forward(b, x, { label: `${label}.conv1_1` });
  const splitLabel = `${label}.split`;
  const c = extractChannels(b.graph, y, 0, block.convDim, `${splitLabel}[conv]`);
  const t = extractChannels(b.graph, y, block.convDim, block.transDim, `${splitLabel}[trans]`);
  training.tape.record(splitLabel, [y], [c, t], false, (tape) => {
    const gc = tape.gradOf(c);
    const gt = tape.gradOf(t);
    let gy: TensorValue;
    if (gc && gt) gy = concatChannels(b.graph, gc, gt, {}, `${splitLabel} backward`);
    else if (gc) gy = embedChannels(b.graph, gc, block.channels, 0, `${splitLabel} backward`);
    else gy = embedChannels(b.graph, gt!, block.channels, block.convDim, `${splitLabel} backward`);
    tape.addGrad(y, gy);
  });
  const residual = (tensor: TensorValue) => ({ residual: { tensor, mode: 'afterActivation' as const } });
  const convOut = block.convBlock.forward(b, c, { epilogue: residual(c), label: `${label}.conv_block` });
  const transOut = block.transBlock.forward(b, t, { label: `${label}.trans_block` });
  const cat = concat(b, convOut, transOut, {}, `${label}.cat`);
  return block.conv1_2.forward(b, cat, { epilogue: residual(x), label: `${label}.conv1_2` });
}
