import { Module } from './module';

/** nn.ModuleList: children named by their index (`body.3.rdb1.conv1.weight`); the owner decides how they run. */
export class ModuleList<T extends Module> extends Module {
  constructor(readonly items: readonly T[]) {
    super();
  }

  override children(): [string, Module][] {
    return this.items.map((m, i) => [String(i), m]);
  }

  get length(): number {
    return this.items.length;
  }
}
