import type { TensorValue } from '../gpu/graph';
import { windowAttention } from '../kernels/window-attention';
import { windowAttentionBackward } from '../kernels/window-attention-backward';
import { selectWindowAttentionVariant } from '../kernels/window-attention-variants';
import type { ForwardBuilder, ForwardOptions } from './forward-builder';
import type { WMSA } from './swin';

/**
 * SCUNet's WMSA in a training graph: embedding Linear (C→3C), the fused window attention core with the relative
 * position table read from the training arena, output Linear (with the caller's epilogue, the block's shortcut).
 * The core's backward (kernels/window-attention-backward.ts) recomputes the softmax from qkv, so only qkv is kept.
 */
export function wmsaTrainingForward(b: ForwardBuilder, msa: WMSA, x: TensorValue, options: ForwardOptions, label: string): TensorValue {
  const training = b.training!;
  const table = training.value(msa.relativePositionParams, `${label}.relative_position_params`);
  const qkv = msa.embeddingLayer.forward(b, x, { label: `${label}.embedding_layer` });
  const core = `${label}.attention${msa.shifted ? '[SW]' : '[W]'}`;
  const attention = windowAttention(b.graph, qkv, {
    // The forward binds it as a plain storage array, so an arena range works; its type says GPUBuffer only
    // (window-attention.ts: `bias: Binding` would say so).
    bias: table,
    heads: msa.heads,
    shifted: msa.shifted,
    variant: selectWindowAttentionVariant(b.ctx),
    label: core,
  });
  const learnsTable = training.learns(msa.relativePositionParams);
  training.tape.record(core, [qkv], [attention], learnsTable, (t) => {
    const dqkv = windowAttentionBackward(b.graph, qkv, t.gradOf(attention)!, {
      bias: table,
      heads: msa.heads,
      shifted: msa.shifted,
      ...(learnsTable ? { dBias: training.grad(msa.relativePositionParams, `${label}.relative_position_params`) } : {}),
      label: `${core} backward`,
    });
    if (t.needsGrad(qkv)) t.addGrad(qkv, dqkv);
  });
  return msa.linear.forward(b, attention, { ...options, label: `${label}.linear` });
}
