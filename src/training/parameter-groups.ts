import { InvalidInputError } from '../errors';
import type { Parameter } from '../layers/module';
import type { OptimizerConfig } from './optimizer-config';

/**
 * One of torch.optim's `param_groups`: the parameters it holds (by state_dict name) and the options it overrides
 * (an encoder that learns ten times slower, biases without weight decay). Parameters in no group form the last
 * group, with the optimizer's own options.
 */
export interface ParameterGroup {
  /** Whether the parameter of this state_dict name belongs to the group. */
  params: (name: string) => boolean;
  /** The group's learning rate; a schedule scales it by the same factor as the main one (see `groupLearningRate`). */
  lr?: number;
  weightDecay?: number;
}

export interface ResolvedGroup {
  /** The group's optimizer: the main one with the group's overrides. */
  optimizer: OptimizerConfig;
  /** Its parameters in model order: they sit back to back in the arena, so one dispatch updates the group. */
  params: [string, Parameter][];
  label: string;
}

function checkGroup(g: ParameterGroup, i: number): void {
  if (typeof g !== 'object' || g === null || typeof g.params !== 'function') {
    throw new InvalidInputError(`parameterGroups[${i}] needs params, a function of the parameter name`);
  }
  for (const key of Object.keys(g)) {
    if (!['params', 'lr', 'weightDecay'].includes(key)) {
      throw new InvalidInputError(`parameterGroups[${i}]: unknown option '${key}' (expected params, lr, weightDecay)`);
    }
  }
  for (const key of ['lr', 'weightDecay'] as const) {
    const v = g[key];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v >= 0)) {
      throw new InvalidInputError(`parameterGroups[${i}].${key} must be a finite number ≥ 0, got ${String(v)}`);
    }
  }
}

/**
 * Splits the learning parameters into groups as torch.optim does with a list of dicts: a parameter may belong to
 * one group only (PyTorch raises "some parameters appear in more than one parameter group"), and a group that
 * holds none is refused, since it is almost certainly a misspelt name.
 */
export function resolveParameterGroups(
  learns: readonly [string, Parameter][],
  groups: readonly ParameterGroup[],
  optimizer: OptimizerConfig,
): ResolvedGroup[] {
  groups.forEach(checkGroup);
  const members: [string, Parameter][][] = groups.map(() => []);
  const rest: [string, Parameter][] = [];
  for (const entry of learns) {
    const hits = groups.flatMap((g, i) => (g.params(entry[0]) ? [i] : []));
    if (hits.length > 1) {
      throw new InvalidInputError(`parameter '${entry[0]}' is in more than one parameter group (${hits.join(' and ')})`);
    }
    (hits.length === 1 ? members[hits[0]] : rest).push(entry);
  }
  const resolved = groups.map((g, i): ResolvedGroup => {
    if (members[i].length === 0) throw new InvalidInputError(`parameterGroups[${i}] holds no parameter that learns`);
    return {
      optimizer: {
        ...optimizer,
        ...(g.lr !== undefined ? { lr: g.lr } : {}),
        ...(g.weightDecay !== undefined ? { weightDecay: g.weightDecay } : {}),
      },
      params: members[i],
      label: `parameter group ${i}`,
    };
  });
  if (rest.length > 0) resolved.push({ optimizer, params: rest, label: groups.length > 0 ? 'other parameters' : 'parameters' });
  return resolved;
}

/** The learning rate the trainer starts from when the optimizer names none (torch.optim.Adam's default). */
export const DEFAULT_LR = 1e-3;

/**
 * A group's learning rate when the main one is `lr` now: PyTorch's StepLR, MultiStepLR, ReduceLROnPlateau (with
 * min_lr 0) and CosineAnnealingLR (with eta_min 0) scale every group by the same factor, so a group keeps its
 * ratio to the main learning rate. With a floor (eta_min, min_lr ≠ 0) PyTorch clamps each group on its own, so a
 * group then differs from PyTorch once its rate reaches the floor.
 */
export function groupLearningRate(group: OptimizerConfig, main: OptimizerConfig, lr: number): number {
  const base = main.lr ?? DEFAULT_LR;
  const own = group.lr ?? DEFAULT_LR;
  return base > 0 ? own * (lr / base) : own;
}
