/**
 * The writing side of pickle.ts, for the few value kinds a PyTorch state_dict needs: ints, strings, tuples,
 * globals, persistent ids, REDUCE calls and dict items, at protocol 2 (what torch.save uses by default).
 *
 * It memoises the way CPython's pickler does (every string, non-empty tuple, global, dict and REDUCE result
 * gets a BINPUT in the order it is finished; an object pickled again is a BINGET), so that a caller emitting
 * the same objects in the same order as torch.save produces the same bytes. There is deliberately no way to
 * write a Python float: PyTorch 1.13's weights_only unpickler refuses the BINFLOAT opcode.
 */

// Opcode bytes, named as in CPython's pickle.py.
const MARK = 0x28;
const STOP = 0x2e;
const BININT = 0x4a;
const BININT1 = 0x4b;
const BININT2 = 0x4d;
const BINPERSID = 0x51;
const REDUCE = 0x52;
const BINUNICODE = 0x58;
const BUILD = 0x62;
const GLOBAL = 0x63;
const BINGET = 0x68;
const LONG_BINGET = 0x6a;
const BINPUT = 0x71;
const LONG_BINPUT = 0x72;
const SETITEM = 0x73;
const TUPLE = 0x74;
const SETITEMS = 0x75;
const EMPTY_TUPLE = 0x29;
const EMPTY_DICT = 0x7d;
const PROTO = 0x80;
const TUPLE1 = 0x85;
const NEWFALSE = 0x89;
const NEWTRUE = 0x88;
const LONG1 = 0x8a;

/** CPython writes dict items in batches of this many (pickle.Pickler._BATCHSIZE). */
const SETITEMS_BATCH = 1000;

/** A position in the pickle's memo, for objects that are pickled again later (shared strings, globals). */
export type MemoIndex = number;

export class PickleWriter {
  private buffer = new Uint8Array(1024);
  private length = 0;
  private memoSize = 0;
  private readonly globals = new Map<string, MemoIndex>();
  private readonly encoder = new TextEncoder();

  /** PROTO 2: the header torch.save's pickles start with (`\x80\x02`). */
  constructor() {
    this.bytes(PROTO, 2);
  }

  /** MARK: the start of a TUPLE's or SETITEMS's items. */
  mark(): this {
    return this.bytes(MARK);
  }

  /** A non-negative or negative int as CPython's save_long picks: BININT1, BININT2, BININT, else LONG1. */
  int(value: number): this {
    if (!Number.isSafeInteger(value)) throw new RangeError(`pickle: ${value} is not a safe integer`);
    if (value >= 0 && value <= 0xff) return this.bytes(BININT1, value);
    if (value >= 0 && value <= 0xffff) return this.bytes(BININT2, value & 0xff, value >>> 8);
    if (value >= -0x80000000 && value <= 0x7fffffff) return this.bytes(BININT, ...le32(value));
    // LONG1: little-endian two's complement, as short as possible (Python's int.to_bytes(..., signed=True)).
    const out: number[] = [];
    let v = BigInt(value);
    for (;;) {
      const byte = Number(v & 0xffn);
      out.push(byte);
      v >>= 8n;
      if ((v === 0n && (byte & 0x80) === 0) || (v === -1n && (byte & 0x80) !== 0)) break;
    }
    return this.bytes(LONG1, out.length, ...out);
  }

  bool(value: boolean): this {
    return this.bytes(value ? NEWTRUE : NEWFALSE);
  }

  /** BINUNICODE, memoised; the returned index lets the same string object be referenced again with get(). */
  str(value: string): MemoIndex {
    const utf8 = this.encoder.encode(value);
    this.bytes(BINUNICODE, ...le32(utf8.length));
    this.append(utf8);
    return this.put();
  }

  /** GLOBAL 'module\nname\n', memoised by name: a second use of the same global is a BINGET, as in CPython. */
  global(module: string, name: string): this {
    const key = `${module}\n${name}\n`;
    const known = this.globals.get(key);
    if (known !== undefined) return this.get(known);
    this.bytes(GLOBAL);
    this.append(this.encoder.encode(key));
    this.globals.set(key, this.put());
    return this;
  }

  /** A tuple of ints (a size or a stride), written as tuple() writes any tuple. */
  intTuple(values: readonly number[]): this {
    return this.tuple(values.length, () => values.forEach((v) => this.int(v)));
  }

  /**
   * A tuple whose `count` items `writeItems` writes: EMPTY_TUPLE for none, TUPLE1/2/3 after the items for
   * up to three (protocol 2), else MARK ... TUPLE. Memoised unless empty, as CPython's save_tuple does.
   */
  tuple(count: number, writeItems: () => void): this {
    if (count === 0) return this.bytes(EMPTY_TUPLE);
    if (count <= 3) {
      writeItems();
      this.bytes(TUPLE1 + count - 1);
    } else {
      this.mark();
      writeItems();
      this.bytes(TUPLE);
    }
    this.put();
    return this;
  }

  /** The empty tuple, e.g. the arguments of `OrderedDict()`. */
  emptyTuple(): this {
    return this.bytes(EMPTY_TUPLE);
  }

  /** REDUCE (call the callable under the arguments tuple), memoising the result as CPython's save_reduce does. */
  reduce(): MemoIndex {
    this.bytes(REDUCE);
    return this.put();
  }

  /** BINPERSID: the tuple just written is a persistent id (torch: a storage reference). */
  persistentId(): this {
    return this.bytes(BINPERSID);
  }

  /** EMPTY_DICT, memoised. */
  emptyDict(): MemoIndex {
    this.bytes(EMPTY_DICT);
    return this.put();
  }

  /**
   * The items of the dict (or OrderedDict) on top of the stack, as CPython's batch_setitems writes them:
   * batches of 1000 as MARK ... SETITEMS, a batch of one as SETITEM, nothing for no items.
   */
  dictItems<T>(items: readonly T[], writeItem: (item: T) => void): this {
    for (let start = 0; start < items.length; start += SETITEMS_BATCH) {
      const batch = items.slice(start, start + SETITEMS_BATCH);
      if (batch.length > 1) this.mark();
      batch.forEach(writeItem);
      this.bytes(batch.length > 1 ? SETITEMS : SETITEM);
    }
    return this;
  }

  /** BUILD: set the state just written on the object below it (a dict of attributes, e.g. `_metadata`). */
  build(): this {
    return this.bytes(BUILD);
  }

  /** BINGET / LONG_BINGET: push a memoised object again. */
  get(index: MemoIndex): this {
    return index <= 0xff ? this.bytes(BINGET, index) : this.bytes(LONG_BINGET, ...le32(index));
  }

  /** STOP, and the pickle's bytes. The writer must not be used afterwards. */
  finish(): Uint8Array {
    this.bytes(STOP);
    return this.buffer.slice(0, this.length);
  }

  /** BINPUT / LONG_BINPUT of the object on top of the stack at the next memo index. */
  private put(): MemoIndex {
    const index = this.memoSize++;
    if (index <= 0xff) this.bytes(BINPUT, index);
    else this.bytes(LONG_BINPUT, ...le32(index));
    return index;
  }

  private bytes(...values: number[]): this {
    this.reserve(values.length);
    for (const v of values) this.buffer[this.length++] = v;
    return this;
  }

  private append(data: Uint8Array): void {
    this.reserve(data.length);
    this.buffer.set(data, this.length);
    this.length += data.length;
  }

  private reserve(extra: number): void {
    if (this.length + extra <= this.buffer.length) return;
    const grown = new Uint8Array(Math.max(2 * this.buffer.length, this.length + extra));
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
  }
}

/** Little-endian bytes of a 32-bit int (two's complement for negative values). */
function le32(value: number): number[] {
  return [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff];
}
