import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import type { ForwardOptions } from './forward-builder';
import { Module } from './module';

/**
 * nn.ModuleList: children named by their index (`body.3.rdb1.conv1.weight`); the owner decides how they run,
 * so, as in PyTorch, it has no forward of its own.
 */
export class ModuleList<T extends Module<any, any>> extends Module {
  constructor(readonly items: readonly T[]) {
    super();
  }

  override children(): [string, Module<any, any>][] {
    return this.items.map((m, i) => [String(i), m]);
  }

  get length(): number {
    return this.items.length;
  }

  forward(_b: unknown, _x: TensorValue, options: ForwardOptions = {}): TensorValue {
    throw new InvalidInputError(`${options.label ?? 'ModuleList'}: a ModuleList has no forward; its owner runs the items`);
  }
}
