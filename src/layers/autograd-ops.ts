import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import { RELU } from '../kernels/activation';
import { activationBackward } from '../kernels/activation-backward';
import { type ConcatOptions, concatChannels } from '../kernels/concat';
import { binary } from '../kernels/elementwise';
import { concatChannelsBackward, depthToSpaceBackward } from '../kernels/layout-backward';
import { depthToSpace } from '../kernels/pixel-shuffle';
import { affine, clamp, scaledAdd } from '../kernels/pointwise';
import { avgPool2d, type Pool2dOptions } from '../kernels/pool';
import { avgPool2dBackward } from '../kernels/pool-backward';
import type { ForwardBuilder } from './forward-builder';

/*
 * Parameter-free tensor operations that models call between modules, each recording its backward on the tape
 * when the builder builds a training graph (and nothing more when it does not).
 */

/** `a − c` (DnCNN's `x − model(x)`): the gradient passes to `a` as it is and to `c` negated. */
export function subtract(b: ForwardBuilder, a: TensorValue, c: TensorValue, label: string): TensorValue {
  const y = binary(b.graph, 'sub', a, c, label);
  b.training?.tape.record(label, [a, c], [y], false, (ctx) => {
    const g = ctx.gradOf(y)!;
    ctx.addGrad(a, g);
    if (ctx.needsGrad(c)) ctx.addGrad(c, affine(b.graph, g, -1, 0, `${label} backward`));
  });
  return y;
}

/** `a + c`: both receive the gradient as it is. */
export function add(b: ForwardBuilder, a: TensorValue, c: TensorValue, label: string): TensorValue {
  const y = binary(b.graph, 'add', a, c, label);
  b.training?.tape.record(label, [a, c], [y], false, (ctx) => {
    const g = ctx.gradOf(y)!;
    ctx.addGrad(a, g);
    ctx.addGrad(c, g);
  });
  return y;
}

/**
 * Channel concatenation with placements (U-Net's zero-pad of the upsampled map to the skip's size, then
 * cat([skip, up])): the gradient splits back into the parts' channel ranges, cropped (or summed over a nearest
 * upsampling) to each part's placement.
 */
export function concat(b: ForwardBuilder, first: TensorValue, second: TensorValue, options: ConcatOptions, label: string): TensorValue {
  const y = concatChannels(b.graph, first, second, options, label);
  b.training?.tape.record(label, [first, second], [y], false, (t) => {
    const parts = concatChannelsBackward(b.graph, t.gradOf(y)!, first.shape, second.shape, options, `${label} backward`);
    t.addGrad(first, parts.first);
    t.addGrad(second, parts.second);
  });
  return y;
}

/**
 * `a + s·c` (ESRGAN's `x5 * 0.2 + x` and `RRDB(x) * 0.2 + x`): `a` receives the gradient as it is and `c` receives
 * `s·g`, PyTorch's mul backward (one f32 product per element, so the 0.2 scaling stays exact).
 */
export function addScaled(b: ForwardBuilder, a: TensorValue, c: TensorValue, s: number, label: string): TensorValue {
  const y = scaledAdd(b.graph, a, c, s, label);
  b.training?.tape.record(label, [a, c], [y], false, (ctx) => {
    const g = ctx.gradOf(y)!;
    ctx.addGrad(a, g);
    if (ctx.needsGrad(c)) ctx.addGrad(c, affine(b.graph, g, s, 0, `${label} backward`));
  });
  return y;
}

/**
 * torch.cat(pieces, dim=1) of several same-sized tensors, densely (piece k starts right after piece k − 1, any
 * widths): chained two-piece concatenations, each recording its backward, so every piece gets back its own channel
 * range of the gradient.
 */
export function concatPieces(b: ForwardBuilder, pieces: readonly TensorValue[], label: string): TensorValue {
  if (pieces.length === 0) throw new InvalidInputError(`${label}: nothing to concatenate`);
  let y = pieces[0];
  for (let k = 1; k < pieces.length; k++) y = concat(b, y, pieces[k], {}, pieces.length > 2 ? `${label}.${k}` : label);
  return y;
}

/**
 * F.avg_pool2d (count_include_pad, as PyTorch's default): each input pixel gathers gy / divisor from every window
 * that covers it.
 */
export function averagePool2d(b: ForwardBuilder, x: TensorValue, options: Pool2dOptions, label: string): TensorValue {
  const y = avgPool2d(b.graph, x, options, label);
  b.training?.tape.record(label, [x], [y], false, (t) => {
    t.addGrad(x, avgPool2dBackward(b.graph, t.gradOf(y)!, x.shape, options, `${label} backward`));
  });
  return y;
}

/**
 * tf.nn.depth_to_space (DCR channel order, not PyTorch's PixelShuffle): a permutation, so the gradient is
 * space_to_depth of gy.
 */
export function depthToSpaceOp(b: ForwardBuilder, x: TensorValue, r: number, label: string): TensorValue {
  const y = depthToSpace(b.graph, x, r, label);
  b.training?.tape.record(label, [x], [y], false, (t) => {
    t.addGrad(x, depthToSpaceBackward(b.graph, t.gradOf(y)!, x.shape, r, `${label} backward`));
  });
  return y;
}

/**
 * nn.ReLU as a step of its own, where it cannot fuse into the step before it (after a residual add, or after a
 * convolution whose pre-activation output is also wanted): max(x, 0), its gradient from the saved output.
 */
export function relu(b: ForwardBuilder, x: TensorValue, label: string): TensorValue {
  const y = clamp(b.graph, x, 0, Infinity, label);
  b.training?.tape.record(label, [x], [y], false, (t) => {
    t.addGrad(x, activationBackward(b.graph, RELU, t.gradOf(y)!, y, `${label} backward`));
  });
  return y;
}
