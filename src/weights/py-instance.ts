/**
 * An inert stand-in for an instance of a Python class the reader does not know (a model class such as
 * `models.DnCNN`, `torch.nn.modules.conv.Conv2d`, `argparse.Namespace`, ...). Python would import the class,
 * call `cls.__new__` and then the instance's `__setstate__`; here nothing is imported or called: the class
 * is only a name, and the arguments and BUILD state are kept as plain data. `torch.save(model)` files are
 * then read by walking the recorded `_modules` / `_parameters` / `_buffers` attributes (module-state.ts).
 */

export class PyInstance {
  /** The instance's `__dict__`, merged from every dict-shaped BUILD state (what `__setstate__` usually does). */
  readonly attributes = new Map<string, unknown>();
  /** BUILD states that are not dicts (a custom `__getstate__` result), kept verbatim in order. */
  readonly otherStates: unknown[] = [];

  constructor(
    /** Fully qualified class name, e.g. 'torch.nn.modules.conv.Conv2d'. */
    readonly className: string,
    /** Positional arguments of `cls.__new__(cls, *args)` (NEWOBJ), as data. */
    readonly args: readonly unknown[] = [],
    /** Keyword arguments of NEWOBJ_EX, as data. */
    readonly kwargs: ReadonlyMap<unknown, unknown> = new Map(),
  ) {}

  /**
   * BUILD: `(dict_state, slot_state)` pairs and plain dicts become attributes (string keys only, as in a
   * `__dict__`); anything else is kept in `otherStates`. Called by the unpickler, never by Python code.
   */
  __setstate__(state: unknown): void {
    if (state === null) return;
    if (Array.isArray(state) && state.length === 2 && isDictOrNone(state[0]) && isDictOrNone(state[1])) {
      this.merge(state[0] as Map<unknown, unknown> | null);
      this.merge(state[1] as Map<unknown, unknown> | null);
      return;
    }
    if (state instanceof Map) {
      this.merge(state);
      return;
    }
    this.otherStates.push(state);
  }

  get(name: string): unknown {
    return this.attributes.get(name);
  }

  private merge(dict: Map<unknown, unknown> | null): void {
    if (!dict) return;
    for (const [k, v] of dict) {
      if (typeof k === 'string') this.attributes.set(k, v);
    }
  }
}

function isDictOrNone(x: unknown): boolean {
  return x === null || x instanceof Map;
}
