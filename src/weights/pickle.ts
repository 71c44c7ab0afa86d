/**
 * A restricted, data-only unpickler for Python pickle protocols 0-5.
 *
 * Python's own unpickler imports and calls whatever the file names, which is why loading an untrusted
 * checkpoint with `torch.load(weights_only=False)` can run arbitrary code. This one never executes anything:
 * a GLOBAL / STACK_GLOBAL / INST is resolved only through an allow-list supplied by the caller (a map from
 * 'module.name' to a JS factory), and every other name is rejected with CHECKPOINT_UNSAFE before anything
 * is built. Every read is bounds-checked, so a truncated pickle is CHECKPOINT_TRUNCATED, never a RangeError.
 *
 * With `unknownGlobals: 'inert'` (used for torch files, so whole pickled models can be read), a name outside
 * the allow-list becomes an inert PyGlobal that may only be used as data: NEWOBJ on it records a PyInstance
 * (nothing is constructed), BUILD stores state on that record, and the allow-listed reconstruction helpers
 * (copyreg._reconstructor...) may receive it as an argument. Calling it - REDUCE, INST, OBJ - is still
 * rejected with CHECKPOINT_UNSAFE naming the global, so `os.system(...)` or `builtins.eval(...)` never load.
 *
 * Work is bounded by the input size: every opcode consumes at least one byte, and the copies that factories
 * and BUILD make (which a hostile pickle could repeat on one big memoised container) are charged against a
 * budget proportional to the pickle's length.
 *
 * Python values map to JS as follows:
 *   None -> null, bool -> boolean, int -> number (bigint beyond +/-2^53), float -> number, str -> string,
 *   bytes/bytearray -> Uint8Array, tuple -> frozen array, list -> array, dict -> Map (keys compared with
 *   JS semantics, so tuple keys compare by identity), set/frozenset -> Set, allowed global -> PyGlobal,
 *   and whatever the allowed factories and the persistent-id callback return.
 */
import { CheckpointError } from '../errors';
import { PyInstance } from './py-instance';

/**
 * What an allowed global does when the pickle calls it. `how` is 'reduce' for REDUCE (`f(*args)`) and INST/
 * OBJ, 'newobj' for NEWOBJ / NEWOBJ_EX (`cls.__new__(cls, *args)`). Factories must only build data.
 */
export type GlobalFactory = (args: readonly unknown[], how: 'reduce' | 'newobj', context: FactoryContext) => unknown;

/** What a factory may ask of the unpickler. */
export interface FactoryContext {
  /** Account for copying `items` values (container elements, characters); throws once the budget is spent. */
  charge(items: number): void;
}

/** Allowed globals, keyed by fully qualified name such as 'collections.OrderedDict'. */
export type GlobalAllowList = ReadonlyMap<string, GlobalFactory>;

/**
 * A reference to a global (a class or function), as pushed by GLOBAL / STACK_GLOBAL. Allowed globals carry
 * the factory that stands in for calling them; inert ones (unknown names, in 'inert' mode) have none and
 * are only data.
 */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly factory?: GlobalFactory,
  ) {}

  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }

  /** True for names on the allow-list; false for inert references to unknown classes or functions. */
  get allowed(): boolean {
    return this.factory !== undefined;
  }
}

/** Objects returned by factories may implement this to receive BUILD state (Python's `__setstate__`). */
export interface PickleBuildable {
  __setstate__(state: unknown): void;
}

export interface UnpickleOptions {
  /** The only globals the pickle may reference. */
  globals: GlobalAllowList;
  /** Resolves persistent ids (BINPERSID / PERSID); without it, a persistent id is a format error. */
  persistentLoad?: (pid: unknown) => unknown;
  /** Prefix for error messages (file name, or file name + entry). */
  name?: string;
  /** Appended to the CHECKPOINT_UNSAFE message, e.g. advice on how to re-save the checkpoint. */
  unsafeHint?: string;
  /** Maximum number of memo entries (default 4,194,304). */
  maxMemo?: number;
  /** Maximum MARK nesting depth (default 10,000). */
  maxMarkDepth?: number;
  /**
   * 'reject' (default): any global outside the allow-list is CHECKPOINT_UNSAFE as soon as it is named.
   * 'inert': it becomes an inert PyGlobal usable only as data and with NEWOBJ (see the file comment).
   */
  unknownGlobals?: 'reject' | 'inert';
  /** Budget of values that factories and BUILD may copy (default 16 per input byte + 1,000,000). */
  maxCopies?: number;
}

export interface UnpickleResult {
  value: unknown;
  /** Offset just past the STOP opcode, where a following pickle (legacy torch files) starts. */
  end: number;
}

const DEFAULT_MAX_MEMO = 1 << 22;
const DEFAULT_MAX_MARK_DEPTH = 10_000;
/** Like CPython's int_max_str_digits: bounds the cost of parsing text-mode integers. */
const MAX_INT_DIGITS = 4300;
const HIGHEST_PROTOCOL = 5;

// Opcode bytes, named as in CPython's pickle.py.
const OP = {
  MARK: 0x28,
  STOP: 0x2e,
  POP: 0x30,
  POP_MARK: 0x31,
  DUP: 0x32,
  FLOAT: 0x46,
  INT: 0x49,
  BININT: 0x4a,
  BININT1: 0x4b,
  LONG: 0x4c,
  BININT2: 0x4d,
  NONE: 0x4e,
  PERSID: 0x50,
  BINPERSID: 0x51,
  REDUCE: 0x52,
  STRING: 0x53,
  BINSTRING: 0x54,
  SHORT_BINSTRING: 0x55,
  UNICODE: 0x56,
  BINUNICODE: 0x58,
  APPEND: 0x61,
  BUILD: 0x62,
  GLOBAL: 0x63,
  DICT: 0x64,
  EMPTY_DICT: 0x7d,
  APPENDS: 0x65,
  GET: 0x67,
  BINGET: 0x68,
  INST: 0x69,
  LONG_BINGET: 0x6a,
  LIST: 0x6c,
  EMPTY_LIST: 0x5d,
  OBJ: 0x6f,
  PUT: 0x70,
  BINPUT: 0x71,
  LONG_BINPUT: 0x72,
  SETITEM: 0x73,
  TUPLE: 0x74,
  EMPTY_TUPLE: 0x29,
  SETITEMS: 0x75,
  BINFLOAT: 0x47,
  // protocol 2
  PROTO: 0x80,
  NEWOBJ: 0x81,
  EXT1: 0x82,
  EXT2: 0x83,
  EXT4: 0x84,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  LONG1: 0x8a,
  LONG4: 0x8b,
  // protocol 3
  BINBYTES: 0x42,
  SHORT_BINBYTES: 0x43,
  // protocol 4
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE8: 0x8d,
  BINBYTES8: 0x8e,
  EMPTY_SET: 0x8f,
  ADDITEMS: 0x90,
  FROZENSET: 0x91,
  NEWOBJ_EX: 0x92,
  STACK_GLOBAL: 0x93,
  MEMOIZE: 0x94,
  FRAME: 0x95,
  // protocol 5
  BYTEARRAY8: 0x96,
  NEXT_BUFFER: 0x97,
  READONLY_BUFFER: 0x98,
} as const;

/**
 * Python 2 module names that Python 3's unpickler renames (fix_imports, from _compat_pickle.IMPORT_MAPPING),
 * so allow-lists need only one spelling and errors name what Python would really import. Only renames of
 * modules that matter here are listed; others stay as written (and are not on any allow-list).
 */
const PY2_MODULES: Record<string, string> = {
  __builtin__: 'builtins',
  copy_reg: 'copyreg',
  commands: 'subprocess',
  cPickle: 'pickle',
  exceptions: 'builtins',
};

/** Unpickle the single pickle at the start of `bytes`. */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): unknown {
  return unpickleAt(bytes, 0, options).value;
}

/** Unpickle the pickle starting at `offset`; also returns where it ended (legacy torch files chain pickles). */
export function unpickleAt(bytes: Uint8Array, offset: number, options: UnpickleOptions): UnpickleResult {
  return new Unpickler(bytes, offset, options).run();
}

/** Short description of a value's Python type, for error messages. */
export function describePyValue(v: unknown): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'string') return 'str';
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return Object.isFrozen(v) ? 'tuple' : 'list';
  if (v instanceof Map) return 'dict';
  if (v instanceof Set) return 'set';
  if (v instanceof PyGlobal) return v.qualifiedName;
  if (v instanceof PyInstance) return `${v.className} object`;
  if (typeof v === 'object') return v.constructor?.name ?? 'object';
  return typeof v;
}

const utf8 = new TextDecoder('utf-8');

class Unpickler {
  private readonly dv: DataView;
  private readonly label: string;
  private readonly maxMemo: number;
  private readonly maxMarkDepth: number;
  private pos: number;
  /** Start offset of the opcode being executed, for error messages. */
  private opStart = 0;
  private stack: unknown[] = [];
  private readonly metastack: unknown[][] = [];
  private readonly memo = new Map<number, unknown>();
  private copiesLeft: number;
  private readonly context: FactoryContext = { charge: (items) => this.charge(items) };

  constructor(
    private readonly bytes: Uint8Array,
    offset: number,
    private readonly options: UnpickleOptions,
  ) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.label = options.name ?? 'pickle';
    this.maxMemo = options.maxMemo ?? DEFAULT_MAX_MEMO;
    this.maxMarkDepth = options.maxMarkDepth ?? DEFAULT_MAX_MARK_DEPTH;
    this.pos = offset;
    this.copiesLeft = options.maxCopies ?? 16 * Math.max(0, bytes.length - offset) + 1_000_000;
  }

  private charge(items: number): void {
    this.copiesLeft -= items;
    if (this.copiesLeft < 0) {
      throw this.formatError('the pickle copies far more data than its size allows (a decompression-bomb-like structure)');
    }
  }

  // ---- errors -----------------------------------------------------------------------------------------

  private formatError(message: string): CheckpointError {
    return new CheckpointError('CHECKPOINT_FORMAT', `${this.label}: ${message} (pickle opcode at offset ${this.opStart})`);
  }

  private truncated(what: string): CheckpointError {
    return new CheckpointError(
      'CHECKPOINT_TRUNCATED',
      `${this.label}: pickle data ends in the middle of ${what} (offset ${this.pos}, ${this.bytes.length} bytes); ` +
        `the file is truncated or incomplete`,
    );
  }

  // ---- bounds-checked reads ---------------------------------------------------------------------------

  private need(n: number, what: string): void {
    if (!(n >= 0 && this.pos + n <= this.bytes.length)) throw this.truncated(what);
  }

  private u8(what: string): number {
    this.need(1, what);
    return this.bytes[this.pos++];
  }

  private u16(what: string): number {
    this.need(2, what);
    const v = this.dv.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  private u32(what: string): number {
    this.need(4, what);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  private i32(what: string): number {
    this.need(4, what);
    const v = this.dv.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** 8-byte length field; anything beyond the buffer is reported as truncation by the following read. */
  private u64(what: string): number {
    this.need(8, what);
    const v = this.dv.getBigUint64(this.pos, true);
    this.pos += 8;
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
  }

  /** A copy of the next n bytes, for values that outlive the input (bytes objects). */
  private takeCopy(n: number, what: string): Uint8Array {
    return new Uint8Array(this.take(n, what)); // bounds-checked first, then copied
  }

  private take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** A protocol-0 text argument: everything up to the next newline (which is consumed). */
  private line(what: string): string {
    const nl = this.bytes.indexOf(0x0a, this.pos);
    if (nl < 0) throw this.truncated(what);
    const text = latin1(this.bytes.subarray(this.pos, nl));
    this.pos = nl + 1;
    return text;
  }

  // ---- stack helpers ----------------------------------------------------------------------------------

  private push(v: unknown): void {
    this.stack.push(v);
  }

  private pop(): unknown {
    if (this.stack.length === 0) throw this.formatError('stack underflow');
    return this.stack.pop();
  }

  private top(): unknown {
    if (this.stack.length === 0) throw this.formatError('stack underflow');
    return this.stack[this.stack.length - 1];
  }

  private popMark(): unknown[] {
    const items = this.stack;
    const previous = this.metastack.pop();
    if (!previous) throw this.formatError('MARK expected but none is open');
    this.stack = previous;
    return items;
  }

  private memoPut(index: number, value: unknown): void {
    if (!this.memo.has(index) && this.memo.size >= this.maxMemo) {
      throw this.formatError(`memo exceeds ${this.maxMemo} entries`);
    }
    this.memo.set(index, value);
  }

  private memoGet(index: number): unknown {
    if (!this.memo.has(index)) throw this.formatError(`memo key ${index} is not defined`);
    return this.memo.get(index);
  }

  // ---- value helpers ----------------------------------------------------------------------------------

  private resolveGlobal(module: string, name: string): PyGlobal {
    const mod = Object.hasOwn(PY2_MODULES, module) ? PY2_MODULES[module] : module;
    const qualified = `${mod}.${name}`;
    const factory = this.options.globals.get(qualified);
    if (!factory && this.options.unknownGlobals !== 'inert') throw this.unsafe(qualified, 'references');
    return new PyGlobal(mod, name, factory);
  }

  private unsafe(qualified: string, verb: string): CheckpointError {
    const hint = this.options.unsafeHint ? ` ${this.options.unsafeHint}` : '';
    return new CheckpointError(
      'CHECKPOINT_UNSAFE',
      `${this.label}: the pickle ${verb} the global '${qualified}', which is not on the allow-list; refusing ` +
        `to load it (unpickling it in Python could execute arbitrary code).${hint}`,
    );
  }

  private call(callable: unknown, args: unknown, how: 'reduce' | 'newobj', opName: string, kwargs?: Map<unknown, unknown>): unknown {
    if (!(callable instanceof PyGlobal)) {
      throw this.formatError(`${opName} on a ${describePyValue(callable)}, which is not callable`);
    }
    if (!Array.isArray(args)) {
      throw this.formatError(`${opName} arguments for '${callable.qualifiedName}' must be a tuple, got ${describePyValue(args)}`);
    }
    if (!callable.factory) {
      // An unknown global: `cls.__new__(cls, *args)` only allocates an instance, so record one as data;
      // a call (REDUCE, INST, OBJ) could do anything and is refused.
      if (how === 'newobj') return new PyInstance(callable.qualifiedName, args, kwargs);
      throw this.unsafe(callable.qualifiedName, 'calls');
    }
    if (kwargs && kwargs.size > 0)
      throw this.formatError(`${opName} with keyword arguments is not supported for '${callable.qualifiedName}'`);
    return callable.factory(args, how, this.context);
  }

  private build(obj: unknown, state: unknown): void {
    // BUILD copies the state's entries; repeating it on one big memoised dict must not cost unbounded work.
    this.charge(1 + shallowSize(state) + (Array.isArray(state) ? state.reduce((n: number, s) => n + shallowSize(s), 0) : 0));
    if (typeof obj === 'object' && obj !== null && typeof (obj as Partial<PickleBuildable>).__setstate__ === 'function') {
      (obj as PickleBuildable).__setstate__(state);
      return;
    }
    if (state === null) return;
    if (obj instanceof Map && state instanceof Map) {
      for (const [k, v] of state) obj.set(k, v);
      return;
    }
    if (state instanceof Map && state.size === 0) return;
    throw this.formatError(`cannot apply BUILD state (${describePyValue(state)}) to a ${describePyValue(obj)}`);
  }

  private setItems(target: unknown, items: unknown[]): void {
    if (!(target instanceof Map)) throw this.formatError(`SETITEM(S) on a ${describePyValue(target)}, not a dict`);
    if (items.length % 2 !== 0) throw this.formatError('SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
  }

  private appendItems(target: unknown, items: unknown[]): void {
    if (!Array.isArray(target) || Object.isFrozen(target)) {
      throw this.formatError(`APPEND(S) on a ${describePyValue(target)}, not a list`);
    }
    for (const item of items) target.push(item);
  }

  private parseIntText(text: string, what: string): number | bigint | boolean {
    // Protocol 0 spells True/False as "I01"/"I00".
    if (what === 'INT' && text === '01') return true;
    if (what === 'INT' && text === '00') return false;
    const digits = what === 'LONG' && text.endsWith('L') ? text.slice(0, -1) : text;
    if (!/^[+-]?\d+$/.test(digits) || digits.length > MAX_INT_DIGITS) {
      throw this.formatError(`invalid ${what} literal (${digits.length} characters)`);
    }
    return normalizeInt(BigInt(digits));
  }

  private persistent(pid: unknown): unknown {
    if (!this.options.persistentLoad) throw this.formatError('persistent id found but no persistent_load handler given');
    return this.options.persistentLoad(pid);
  }

  // ---- main loop --------------------------------------------------------------------------------------

  run(): UnpickleResult {
    for (;;) {
      this.opStart = this.pos;
      if (this.pos >= this.bytes.length) throw this.truncated('the pickle (no STOP opcode)');
      const op = this.bytes[this.pos++];
      switch (op) {
        case OP.PROTO: {
          const proto = this.u8('PROTO');
          if (proto > HIGHEST_PROTOCOL) throw this.formatError(`unsupported pickle protocol ${proto}`);
          break;
        }
        case OP.FRAME:
          // Protocol-4 frames only group opcodes for buffered reading; we hold everything in memory.
          this.u64('FRAME length');
          break;
        case OP.STOP:
          return { value: this.pop(), end: this.pos };
        case OP.MARK:
          if (this.metastack.length >= this.maxMarkDepth) throw this.formatError(`MARK nesting deeper than ${this.maxMarkDepth}`);
          this.metastack.push(this.stack);
          this.stack = [];
          break;
        case OP.POP:
          this.pop();
          break;
        case OP.POP_MARK:
          this.popMark();
          break;
        case OP.DUP:
          this.push(this.top());
          break;

        // -- constants and numbers --
        case OP.NONE:
          this.push(null);
          break;
        case OP.NEWTRUE:
          this.push(true);
          break;
        case OP.NEWFALSE:
          this.push(false);
          break;
        case OP.BININT:
          this.push(this.i32('BININT'));
          break;
        case OP.BININT1:
          this.push(this.u8('BININT1'));
          break;
        case OP.BININT2:
          this.push(this.u16('BININT2'));
          break;
        case OP.LONG1: {
          const n = this.u8('LONG1 length');
          this.push(decodeLong(this.take(n, 'LONG1')));
          break;
        }
        case OP.LONG4: {
          const n = this.i32('LONG4 length');
          if (n < 0) throw this.formatError('negative LONG4 length');
          this.push(decodeLong(this.take(n, 'LONG4')));
          break;
        }
        case OP.INT:
          this.push(this.parseIntText(this.line('INT'), 'INT'));
          break;
        case OP.LONG:
          this.push(this.parseIntText(this.line('LONG'), 'LONG'));
          break;
        case OP.BINFLOAT: {
          this.need(8, 'BINFLOAT');
          this.push(this.dv.getFloat64(this.pos, false)); // big-endian, per the pickle spec
          this.pos += 8;
          break;
        }
        case OP.FLOAT: {
          const text = this.line('FLOAT').trim();
          const v = parsePythonFloat(text);
          if (v === undefined) throw this.formatError(`invalid FLOAT literal (${text.length} characters)`);
          this.push(v);
          break;
        }

        // -- strings and bytes --
        case OP.BINUNICODE:
          this.push(utf8.decode(this.take(this.u32('BINUNICODE length'), 'BINUNICODE')));
          break;
        case OP.SHORT_BINUNICODE:
          this.push(utf8.decode(this.take(this.u8('SHORT_BINUNICODE length'), 'SHORT_BINUNICODE')));
          break;
        case OP.BINUNICODE8:
          this.push(utf8.decode(this.take(this.u64('BINUNICODE8 length'), 'BINUNICODE8')));
          break;
        case OP.BINSTRING: {
          // Python 2 str; torch.load decodes these as UTF-8, and so do we.
          const n = this.i32('BINSTRING length');
          if (n < 0) throw this.formatError('negative BINSTRING length');
          this.push(utf8.decode(this.take(n, 'BINSTRING')));
          break;
        }
        case OP.SHORT_BINSTRING:
          this.push(utf8.decode(this.take(this.u8('SHORT_BINSTRING length'), 'SHORT_BINSTRING')));
          break;
        case OP.STRING: {
          const decoded = decodeQuotedString(this.line('STRING').trimEnd());
          if (decoded === undefined) throw this.formatError('invalid STRING literal');
          this.push(utf8.decode(decoded));
          break;
        }
        case OP.UNICODE:
          this.push(decodeRawUnicodeEscape(this.line('UNICODE')));
          break;
        case OP.BINBYTES:
          this.push(this.takeCopy(this.u32('BINBYTES length'), 'BINBYTES'));
          break;
        case OP.SHORT_BINBYTES:
          this.push(this.takeCopy(this.u8('SHORT_BINBYTES length'), 'SHORT_BINBYTES'));
          break;
        case OP.BINBYTES8:
          this.push(this.takeCopy(this.u64('BINBYTES8 length'), 'BINBYTES8'));
          break;
        case OP.BYTEARRAY8:
          this.push(this.takeCopy(this.u64('BYTEARRAY8 length'), 'BYTEARRAY8'));
          break;
        case OP.NEXT_BUFFER:
        case OP.READONLY_BUFFER:
          throw this.formatError('out-of-band pickle buffers (protocol 5) are not supported');

        // -- containers --
        case OP.EMPTY_TUPLE:
          this.push(Object.freeze([]));
          break;
        case OP.TUPLE1: {
          const a = this.pop();
          this.push(Object.freeze([a]));
          break;
        }
        case OP.TUPLE2: {
          const b = this.pop();
          const a = this.pop();
          this.push(Object.freeze([a, b]));
          break;
        }
        case OP.TUPLE3: {
          const c = this.pop();
          const b = this.pop();
          const a = this.pop();
          this.push(Object.freeze([a, b, c]));
          break;
        }
        case OP.TUPLE:
          this.push(Object.freeze(this.popMark()));
          break;
        case OP.EMPTY_LIST:
          this.push([]);
          break;
        case OP.LIST:
          this.push(this.popMark());
          break;
        case OP.APPEND: {
          const item = this.pop();
          this.appendItems(this.top(), [item]);
          break;
        }
        case OP.APPENDS: {
          const items = this.popMark();
          this.appendItems(this.top(), items);
          break;
        }
        case OP.EMPTY_DICT:
          this.push(new Map());
          break;
        case OP.DICT: {
          const d = new Map();
          this.setItems(d, this.popMark());
          this.push(d);
          break;
        }
        case OP.SETITEM: {
          const value = this.pop();
          const key = this.pop();
          this.setItems(this.top(), [key, value]);
          break;
        }
        case OP.SETITEMS: {
          const items = this.popMark();
          this.setItems(this.top(), items);
          break;
        }
        case OP.EMPTY_SET:
          this.push(new Set());
          break;
        case OP.ADDITEMS: {
          const items = this.popMark();
          const target = this.top();
          if (!(target instanceof Set)) throw this.formatError(`ADDITEMS on a ${describePyValue(target)}, not a set`);
          for (const item of items) target.add(item);
          break;
        }
        case OP.FROZENSET:
          this.push(new Set(this.popMark()));
          break;

        // -- memo --
        case OP.PUT: {
          const text = this.line('PUT');
          if (!/^\d{1,10}$/.test(text)) throw this.formatError(`invalid PUT index (${text.length} characters)`);
          this.memoPut(Number(text), this.top());
          break;
        }
        case OP.BINPUT:
          this.memoPut(this.u8('BINPUT'), this.top());
          break;
        case OP.LONG_BINPUT:
          this.memoPut(this.u32('LONG_BINPUT'), this.top());
          break;
        case OP.MEMOIZE:
          this.memoPut(this.memo.size, this.top());
          break;
        case OP.GET: {
          const text = this.line('GET');
          if (!/^\d{1,10}$/.test(text)) throw this.formatError(`invalid GET index (${text.length} characters)`);
          this.push(this.memoGet(Number(text)));
          break;
        }
        case OP.BINGET:
          this.push(this.memoGet(this.u8('BINGET')));
          break;
        case OP.LONG_BINGET:
          this.push(this.memoGet(this.u32('LONG_BINGET')));
          break;

        // -- globals and object construction (allow-listed only) --
        case OP.GLOBAL: {
          const module = this.line('GLOBAL module');
          const name = this.line('GLOBAL name');
          this.push(this.resolveGlobal(module, name));
          break;
        }
        case OP.STACK_GLOBAL: {
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') throw this.formatError('STACK_GLOBAL needs two strings');
          this.push(this.resolveGlobal(module, name));
          break;
        }
        case OP.EXT1:
        case OP.EXT2:
        case OP.EXT4: {
          const code = op === OP.EXT1 ? this.u8('EXT1') : op === OP.EXT2 ? this.u16('EXT2') : this.i32('EXT4');
          throw new CheckpointError(
            'CHECKPOINT_UNSAFE',
            `${this.label}: the pickle references global #${code} of the copyreg extension registry, which cannot be ` +
              `checked against the allow-list; refusing to load it`,
          );
        }
        case OP.REDUCE: {
          const args = this.pop();
          const callable = this.pop();
          this.push(this.call(callable, args, 'reduce', 'REDUCE'));
          break;
        }
        case OP.NEWOBJ: {
          const args = this.pop();
          const cls = this.pop();
          this.push(this.call(cls, args, 'newobj', 'NEWOBJ'));
          break;
        }
        case OP.NEWOBJ_EX: {
          const kwargs = this.pop();
          const args = this.pop();
          const cls = this.pop();
          if (!(kwargs instanceof Map))
            throw this.formatError(`NEWOBJ_EX keyword arguments must be a dict, got ${describePyValue(kwargs)}`);
          this.push(this.call(cls, args, 'newobj', 'NEWOBJ_EX', kwargs));
          break;
        }
        case OP.INST: {
          const module = this.line('INST module');
          const name = this.line('INST name');
          const cls = this.resolveGlobal(module, name);
          this.push(this.call(cls, Object.freeze(this.popMark()), 'reduce', 'INST'));
          break;
        }
        case OP.OBJ: {
          const items = this.popMark();
          if (items.length === 0) throw this.formatError('OBJ without a class');
          this.push(this.call(items[0], Object.freeze(items.slice(1)), 'reduce', 'OBJ'));
          break;
        }
        case OP.BUILD: {
          const state = this.pop();
          this.build(this.top(), state);
          break;
        }
        case OP.BINPERSID:
          this.push(this.persistent(this.pop()));
          break;
        case OP.PERSID:
          this.push(this.persistent(this.line('PERSID')));
          break;

        default:
          throw this.formatError(`unknown pickle opcode 0x${op.toString(16).padStart(2, '0')}`);
      }
    }
  }
}

/** Number of entries of a container (0 for anything else), for the copy budget. */
function shallowSize(x: unknown): number {
  if (x instanceof Map || x instanceof Set) return x.size;
  if (Array.isArray(x)) return x.length;
  return 0;
}

/** Little-endian two's-complement integer (LONG1/LONG4 payload). */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return normalizeInt(v);
}

/** Ints are plain numbers whenever that is exact; only huge values stay bigint. */
function normalizeInt(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

function parsePythonFloat(text: string): number | undefined {
  const t = text.toLowerCase();
  if (t === 'inf' || t === '+inf' || t === 'infinity') return Infinity;
  if (t === '-inf' || t === '-infinity') return -Infinity;
  if (t === 'nan' || t === '+nan' || t === '-nan') return NaN;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/.test(t)) return undefined;
  return Number(t);
}

const SIMPLE_ESCAPES: Record<string, number> = { n: 10, r: 13, t: 9, '\\': 92, "'": 39, '"': 34, a: 7, b: 8, f: 12, v: 11 };

/** Decode a protocol-0 STRING argument: a Python 2 repr such as 'abc' or "it's\n". */
function decodeQuotedString(text: string): Uint8Array | undefined {
  if (text.length < 2) return undefined;
  const q = text[0];
  if ((q !== "'" && q !== '"') || text[text.length - 1] !== q) return undefined;
  const body = text.slice(1, -1);
  const out: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const ch = body.charCodeAt(i);
    if (ch !== 0x5c /* backslash */) {
      out.push(ch & 0xff);
      continue;
    }
    const e = body[++i];
    if (e === undefined) return undefined;
    if (e in SIMPLE_ESCAPES) out.push(SIMPLE_ESCAPES[e]);
    else if (e === 'x' && /^[0-9a-fA-F]{2}$/.test(body.slice(i + 1, i + 3))) {
      out.push(parseInt(body.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (/[0-7]/.test(e)) {
      const m = /^[0-7]{1,3}/.exec(body.slice(i))![0];
      out.push(parseInt(m, 8) & 0xff);
      i += m.length - 1;
    } else out.push(0x5c, e.charCodeAt(0) & 0xff);
  }
  return Uint8Array.from(out);
}

/** Decode a protocol-0 UNICODE argument (Python's raw-unicode-escape: latin-1 plus \uXXXX / \UXXXXXXXX). */
function decodeRawUnicodeEscape(text: string): string {
  return text.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (m, u4: string | undefined, u8: string | undefined) => {
    const cp = parseInt(u4 ?? u8 ?? '', 16);
    return cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
  });
}
