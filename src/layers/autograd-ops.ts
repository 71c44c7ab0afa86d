import type { TensorValue } from '../gpu/graph';
import { type ConcatOptions, concatChannels } from '../kernels/concat';
import { binary } from '../kernels/elementwise';
import { concatChannelsBackward } from '../kernels/layout-backward';
import { affine } from '../kernels/pointwise';
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
