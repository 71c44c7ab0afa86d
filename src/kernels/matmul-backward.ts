import type { GPUContext } from '../gpu/context';
import type { Binding, Graph, TensorValue } from '../gpu/graph';
import { conv2dInputGrad, conv2dWeightGrad } from './conv2d-backward';
import type { Conv2dGeometry } from './conv2d-geometry';

/*
 * Backward of nn.Linear applied to every pixel of a channels-last map (y = x·Wᵀ + b over the channel axis,
 * docs/training.md §1.9): dx = gy·W, dW = gyᵀ·x over all tokens, db = Σ_tokens gy.
 *
 * W [out, in] is the weight of a 1×1 convolution [out, in, 1, 1] with the same numbers, so these run on the
 * convolution backward kernels: dx on the tuned forward convolution with the (trivially flipped) transposed
 * weight, dW and db as split-K reductions over the tokens (conv-backward-split-k.ts: chunks of tokens summed in
 * parallel into partials, then added in chunk order; deterministic, no atomics).
 */

function pointwiseGeometry(inFeatures: number, outFeatures: number): Conv2dGeometry {
  return { inChannels: inFeatures, outChannels: outFeatures, kernelSize: [1, 1], stride: 1, padding: [0, 0], dilation: 1, groups: 1 };
}

/**
 * dx [n, h, w, in] = gy·W from gy [n, h, w, out] and the flat PyTorch weight [out, in] (e.g. an arena range).
 * Padded channels of dx are 0.
 */
export function linearInputGrad(
  graph: Graph,
  ctx: GPUContext,
  gy: TensorValue,
  weight: Binding,
  inFeatures: number,
  label: string,
): TensorValue {
  const [n, h, w, out] = gy.shape;
  return conv2dInputGrad(graph, ctx, gy, weight, pointwiseGeometry(inFeatures, out), [n, h, w, inFeatures], label);
}

export interface LinearWeightGradOptions {
  /** Also write (overwrite) db[o] = Σ_tokens gy[·, o] here (flat f32, `out` values). */
  dBias?: Binding;
  /** Tests: tokens per split-K chunk (default: chosen from the shapes). */
  tokensPerChunk?: number;
}

/**
 * Writes (overwrites) dW[o, i] = Σ_tokens gy[t, o]·x[t, i] into `dWeight` (flat f32 in PyTorch's [out, in]
 * layout), and db with `options.dBias`.
 */
export function linearWeightGrad(
  graph: Graph,
  x: TensorValue,
  gy: TensorValue,
  dWeight: Binding,
  label: string,
  options: LinearWeightGradOptions = {},
): void {
  conv2dWeightGrad(graph, x, gy, pointwiseGeometry(x.shape[3], gy.shape[3]), dWeight, label, {
    ...(options.dBias ? { dBias: options.dBias } : {}),
    ...(options.tokensPerChunk !== undefined ? { pixelsPerChunk: options.tokensPerChunk } : {}),
  });
}
