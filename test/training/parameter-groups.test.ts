import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { parameter, type Parameter } from '../../src/layers/module';
import { groupLearningRate, resolveParameterGroups } from '../../src/training/parameter-groups';
import type { OptimizerConfig } from '../../src/training/optimizer-config';

const named = (names: string[]): [string, Parameter][] => names.map((n) => [n, parameter([2])]);
const ADAMW: OptimizerConfig = { kind: 'adamw', lr: 1e-3, weightDecay: 0.01 };

describe('parameter groups (torch.optim param_groups)', () => {
  const params = named(['encoder.0.weight', 'encoder.0.bias', 'decoder.0.weight', 'decoder.0.bias']);

  it('puts each parameter in its group, the rest last with the optimizer’s options, in model order', () => {
    const groups = resolveParameterGroups(params, [{ params: (n) => n.startsWith('encoder.'), lr: 1e-4, weightDecay: 0 }], ADAMW);
    expect(groups.map((g) => g.params.map(([n]) => n))).toEqual([
      ['encoder.0.weight', 'encoder.0.bias'],
      ['decoder.0.weight', 'decoder.0.bias'],
    ]);
    expect(groups[0].optimizer).toEqual({ kind: 'adamw', lr: 1e-4, weightDecay: 0 });
    expect(groups[1].optimizer).toBe(ADAMW);
  });

  it('refuses a parameter in two groups, a group that holds nothing, and unknown or invalid options', () => {
    const overlap = () =>
      resolveParameterGroups(params, [{ params: (n) => n.endsWith('bias') }, { params: (n) => n.startsWith('enc') }], ADAMW);
    expect(overlap).toThrow(InvalidInputError);
    expect(overlap).toThrow(/'encoder.0.bias' is in more than one parameter group \(0 and 1\)/);
    expect(() => resolveParameterGroups(params, [{ params: (n) => n.startsWith('encodr') }], ADAMW)).toThrow(
      /parameterGroups\[0\] holds no parameter/,
    );
    expect(() => resolveParameterGroups(params, [{ params: () => true, lr: -1 }], ADAMW)).toThrow(/parameterGroups\[0\]\.lr/);
    expect(() => resolveParameterGroups(params, [{ params: () => true, momentum: 0.9 } as never], ADAMW)).toThrow(
      /unknown option 'momentum'/,
    );
    expect(() => resolveParameterGroups(params, [{ lr: 1 } as never], ADAMW)).toThrow(/needs params/);
  });

  it('scales every group by the schedule’s factor, as StepLR and ReduceLROnPlateau do', () => {
    const slow: OptimizerConfig = { ...ADAMW, lr: 1e-4 };
    expect(groupLearningRate(slow, ADAMW, 1e-3)).toBeCloseTo(1e-4, 15);
    expect(groupLearningRate(slow, ADAMW, 5e-4)).toBeCloseTo(5e-5, 15);
    expect(groupLearningRate(ADAMW, ADAMW, 2.5e-4)).toBe(2.5e-4);
  });
});
