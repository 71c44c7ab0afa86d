import { InvalidInputError } from '../errors';
import type { BufferRange, Graph } from '../gpu/graph';
import type { ParameterArena } from '../gpu/parameter-arena';
import { clipGradNorm, gradNormSquared } from '../kernels/grad-norm';
import {
  type AdamOptions,
  adamScalars,
  adamUpdate,
  checkAdamOptions,
  checkSgdOptions,
  type SgdOptions,
  sgdScalars,
  sgdUpdate,
} from '../kernels/optimizer';

/** torch.optim.SGD, Adam or AdamW, with PyTorch 1.13's defaults and update order (kernels/optimizer.ts). */
export type OptimizerConfig = ({ kind: 'sgd' } & SgdOptions) | ({ kind: 'adam' } & AdamOptions) | ({ kind: 'adamw' } & AdamOptions);

export const OPTIMIZER_KINDS = ['sgd', 'adam', 'adamw'] as const;

export function checkOptimizerConfig(o: OptimizerConfig): void {
  switch (o.kind) {
    case 'sgd':
      return checkSgdOptions(o);
    case 'adam':
      return checkAdamOptions(o, false);
    case 'adamw':
      return checkAdamOptions(o, true);
    default:
      throw new InvalidInputError(`unknown optimizer '${String((o as { kind: unknown }).kind)}' (expected ${OPTIMIZER_KINDS.join(', ')})`);
  }
}

/** The per-step scalars (learning rate, bias corrections, …) the update of step `step` (1-based) reads. */
export function optimizerScalars(o: OptimizerConfig, lr: number, step: number): Float32Array {
  return o.kind === 'sgd' ? sgdScalars(o, lr, step) : adamScalars(o, lr, step, o.kind === 'adamw');
}

/** The optimizer's state buffers in an arena, by role (they persist across steps). */
export function optimizerStateRoles(o: OptimizerConfig): string[] {
  if (o.kind === 'sgd') return (o.momentum ?? 0) > 0 ? ['momentum_buffer'] : [];
  return ['exp_avg', 'exp_avg_sq'];
}

/**
 * One update dispatch over the whole arena (its gaps hold zeros and stay zero), or over the consecutive entries
 * of one parameter group (`span`), whose options (learning rate in `scalars`, weight decay in `o`) are its own.
 */
export function addOptimizerUpdate(
  graph: Graph,
  o: OptimizerConfig,
  arena: ParameterArena,
  scalars: BufferRange,
  span?: { keys: readonly object[]; label: string },
): void {
  const whole = (role: string) => (span ? arena.span(span.keys, role) : { range: arena.whole(role), elements: arena.elements });
  const param = whole('value');
  const grad = whole('grad').range;
  const label = `${o.kind} update (${span ? span.label : arena.label})`;
  if (o.kind === 'sgd') {
    const momentumBuffer = (o.momentum ?? 0) > 0 ? { momentumBuffer: whole('momentum_buffer').range } : {};
    sgdUpdate(graph, { param: param.range, grad, scalars, ...momentumBuffer }, o, param.elements, label);
    return;
  }
  adamUpdate(
    graph,
    { param: param.range, grad, expAvg: whole('exp_avg').range, expAvgSq: whole('exp_avg_sq').range, scalars },
    o,
    o.kind === 'adamw',
    param.elements,
    label,
  );
}

/** clip_grad_norm_(maxNorm, 2) over every gradient of the arena, before the update. */
export function addGradientClipping(graph: Graph, arena: ParameterArena, maxNorm: number): void {
  const grads = arena.whole('grad');
  const normSquared = gradNormSquared(graph, grads, arena.elements, `grad norm (${arena.label})`);
  clipGradNorm(graph, grads, arena.elements, normSquared, maxNorm, `clip grad norm (${arena.label})`);
}
