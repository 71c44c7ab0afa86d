/**
 * The restricted unpickler, checked against pickles that CPython wrote at every protocol (pickles.json),
 * plus hand-written opcode sequences for the error paths.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/errors';
import { PyGlobal, unpickle, unpickleAt, ZipArchive, type GlobalAllowList, type UnpickleOptions } from '../../src/weights';
import { torchGlobals } from '../../src/weights/torch-pickle';
import { expectCheckpointError, fixture, FIXTURES, rng } from './helpers';

type Tagged =
  | { none: null }
  | { bool: boolean }
  | { int: string }
  | { float: string }
  | { str: string }
  | { bytes: string }
  | { tuple: Tagged[] }
  | { list: Tagged[] }
  | { intlist: number[] }
  | { set: Tagged[] }
  | { dict: [Tagged, Tagged][] };

const PICKLES = JSON.parse(readFileSync(new URL('pickles.json', FIXTURES), 'utf8')) as {
  values: Record<string, Tagged>;
  cases: { name: string; protocol: number; pickle: string }[];
};

const hex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (b) => parseInt(b, 16));
const bytesOf = (...parts: (number | string)[]) =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'number' ? [p] : [...p].map((c) => c.charCodeAt(0)))));

function pyFloat(repr: string): number {
  if (repr === 'inf') return Infinity;
  if (repr === '-inf') return -Infinity;
  if (repr === 'nan') return NaN;
  return Number(repr);
}

/** Compare an unpickled JS value with CPython's tagged description, recursively. */
function expectPy(actual: unknown, expected: Tagged, path: string): void {
  const at = `at ${path}`;
  if ('none' in expected) expect(actual, at).toBeNull();
  else if ('bool' in expected) expect(actual, at).toBe(expected.bool);
  else if ('int' in expected) {
    const want = BigInt(expected.int);
    if (typeof actual === 'number') {
      expect(Number.isSafeInteger(actual), at).toBe(true);
      expect(BigInt(actual), at).toBe(want);
    } else {
      // Only ints beyond 2^53 may be bigint.
      expect(typeof actual, at).toBe('bigint');
      expect(actual, at).toBe(want);
      expect(want > BigInt(Number.MAX_SAFE_INTEGER) || want < BigInt(Number.MIN_SAFE_INTEGER), at).toBe(true);
    }
  } else if ('float' in expected)
    expect(Object.is(actual, pyFloat(expected.float)), `${at}: ${String(actual)} vs ${expected.float}`).toBe(true);
  else if ('str' in expected) expect(actual, at).toBe(expected.str);
  else if ('bytes' in expected) {
    expect(actual, at).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(actual as Uint8Array).toString('hex'), at).toBe(expected.bytes);
  } else if ('tuple' in expected || 'list' in expected) {
    const items = 'tuple' in expected ? expected.tuple : expected.list;
    expect(Array.isArray(actual), at).toBe(true);
    expect(Object.isFrozen(actual), `${at}: tuples are frozen arrays, lists are not`).toBe('tuple' in expected);
    const arr = actual as unknown[];
    expect(arr.length, at).toBe(items.length);
    items.forEach((item, i) => expectPy(arr[i], item, `${path}[${i}]`));
  } else if ('intlist' in expected) {
    expect(actual, at).toEqual(expected.intlist);
  } else if ('set' in expected) {
    expect(actual, at).toBeInstanceOf(Set);
    const sorted = [...(actual as Set<unknown>)].sort((a, b) => (String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0));
    expect(sorted.length, at).toBe(expected.set.length);
    expected.set.forEach((item, i) => expectPy(sorted[i], item, `${path}{${i}}`));
  } else if ('dict' in expected) {
    expect(actual, at).toBeInstanceOf(Map);
    const entries = [...(actual as Map<unknown, unknown>)];
    expect(entries.length, at).toBe(expected.dict.length);
    expected.dict.forEach(([k, v], i) => {
      expectPy(entries[i][0], k, `${path} key ${i}`);
      expectPy(entries[i][1], v, `${path}[${String(entries[i][0])}]`);
    });
  } else throw new Error(`unknown tag ${JSON.stringify(expected)}`);
}

const globals = torchGlobals('test');
const opts: UnpickleOptions = { globals, name: 'test.pkl' };

describe('pickles written by CPython', () => {
  for (const c of PICKLES.cases) {
    it(`${c.name}, protocol ${c.protocol}`, () => {
      const bytes = hex(c.pickle);
      const result = unpickleAt(bytes, 0, opts);
      expect(result.end).toBe(bytes.length);
      expectPy(result.value, PICKLES.values[c.name], c.name);
    });
  }

  it('shared references stay shared (memo)', () => {
    const c = PICKLES.cases.find((x) => x.name === 'containers' && x.protocol === 2)!;
    const value = unpickle(hex(c.pickle), opts) as Map<string, unknown>;
    const shared = value.get('shared') as unknown[];
    expect(shared[0]).toBe(shared[1]);
  });

  it('every proper prefix of every pickle is reported as truncated', () => {
    for (const c of PICKLES.cases.filter((x) => x.name !== 'big_list')) {
      const bytes = hex(c.pickle);
      for (let cut = 0; cut < bytes.length; cut++) {
        const err = expectCheckpointError(() => unpickle(bytes.subarray(0, cut), opts), ['CHECKPOINT_TRUNCATED']);
        expect(err.message).toMatch(/truncated or incomplete/);
      }
    }
  });

  it('random corruptions give CheckpointErrors only', () => {
    const next = rng(42);
    for (const c of PICKLES.cases) {
      const original = hex(c.pickle);
      for (let iter = 0; iter < 100; iter++) {
        const bytes = original.slice();
        bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
        try {
          unpickle(bytes, opts);
        } catch (err) {
          if (!(err instanceof CheckpointError)) throw err;
        }
      }
    }
  });
});

describe('hand-written opcodes', () => {
  it('protocol 0 text opcodes: INT, LONG, FLOAT, STRING, UNICODE, PUT/GET, DICT, LIST, TUPLE', () => {
    const p = bytesOf(
      '(',
      'I01\n',
      'I00\n',
      'I-42\n',
      'L123456789012345678901234567890L\n',
      'F-1.5e3\n',
      "S'it\\'s\\n\\x41\\101'\n",
      'Vcaf\\u00e9\n',
      'p7\n',
      'g7\n',
      '(lp1\n',
      'I1\n',
      'a',
      '(dI2\nN',
      's',
      't.',
    );
    const v = unpickle(p, opts) as unknown[];
    expect(v.slice(0, 3)).toEqual([true, false, -42]);
    expect(v[3]).toBe(123456789012345678901234567890n);
    expect(v[4]).toBe(-1500);
    expect(v[5]).toBe("it's\nAA");
    expect(v[6]).toBe('café');
    expect(v[7]).toBe('café');
    expect(v[8]).toEqual([1]);
    expect(v[9]).toEqual(new Map([[2, null]]));
  });

  it('POP, POP_MARK, DUP, EMPTY_SET/ADDITEMS, FROZENSET, BINFLOAT, SHORT_BINBYTES', () => {
    const p = bytesOf(
      0x80,
      4,
      'K',
      1,
      '0',
      '(',
      'K',
      2,
      '1',
      'K',
      3,
      '2',
      0x86, // (3, 3)
      0x8f,
      '(',
      'K',
      5,
      'K',
      6,
      0x90,
      0x86, // ((3, 3), {5, 6})
      '(',
      'K',
      9,
      0x91,
      0x86,
      'G',
      0x3f,
      0xf8,
      0,
      0,
      0,
      0,
      0,
      0,
      0x86, // 1.5 big-endian
      'C',
      2,
      0xde,
      0xad,
      0x86,
      '.',
    );
    const v = unpickle(p, opts) as unknown[];
    const [[[[dup, set], frozen], float], bytes] = v as [[[[unknown[], Set<number>], Set<number>], number], Uint8Array];
    expect(dup).toEqual([3, 3]);
    expect([...set]).toEqual([5, 6]);
    expect([...frozen]).toEqual([9]);
    expect(float).toBe(1.5);
    expect([...bytes]).toEqual([0xde, 0xad]);
  });

  it('calls allowed globals via REDUCE, NEWOBJ, INST and OBJ, and applies BUILD', () => {
    const calls: string[] = [];
    class Thing {
      state: unknown;
      constructor(readonly args: readonly unknown[]) {}
      __setstate__(s: unknown) {
        this.state = s;
      }
    }
    const allow: GlobalAllowList = new Map([['m.f', (args: readonly unknown[], how: string) => (calls.push(how), new Thing(args))]]);
    const p = bytesOf(
      0x80,
      2,
      '(',
      'cm\nf\n',
      ')',
      'R',
      'K',
      7,
      'b', // f() then BUILD 7
      'cm\nf\n',
      'K',
      1,
      0x85,
      0x81, // NEWOBJ f(1)
      '(',
      'K',
      2,
      'im\nf\n', // INST f(2)
      '(',
      'cm\nf\n',
      'K',
      3,
      'o', // OBJ f(3)
      't.',
    );
    const [a, b, c, d] = unpickle(p, { globals: allow }) as Thing[];
    expect(a.state).toBe(7);
    expect(b.args).toEqual([1]);
    expect(c.args).toEqual([2]);
    expect(d.args).toEqual([3]);
    expect(calls).toEqual(['reduce', 'newobj', 'reduce', 'reduce']);
  });

  it('passes persistent ids to the callback', () => {
    const seen: unknown[] = [];
    const p = bytesOf(0x80, 2, 'X', 3, 0, 0, 0, 'abc', 'Q', 'Pxyz\n', 0x86, '.');
    const v = unpickle(p, { globals, persistentLoad: (pid) => (seen.push(pid), `<${String(pid)}>`) });
    expect(v).toEqual(['<abc>', '<xyz>']);
    expect(seen).toEqual(['abc', 'xyz']);
    expectCheckpointError(() => unpickle(p, { globals }), ['CHECKPOINT_FORMAT']);
  });

  it('resolves allowed globals to PyGlobal and maps Python 2 module names', () => {
    const v = unpickle(bytesOf('c__builtin__\nset\n.'), opts);
    expect(v).toBeInstanceOf(PyGlobal);
    expect((v as PyGlobal).qualifiedName).toBe('builtins.set');
  });
});

describe('unsafe and malformed pickles', () => {
  it('rejects os.system via GLOBAL without calling anything', () => {
    const p = bytesOf(0x80, 2, 'cos\nsystem\n', 'X', 2, 0, 0, 0, 'ls', 0x85, 'R.');
    const err = expectCheckpointError(() => unpickle(p, opts), ['CHECKPOINT_UNSAFE']);
    expect(err.message).toContain("'os.system'");
  });

  it('rejects builtins.eval via STACK_GLOBAL', () => {
    const p = bytesOf(0x80, 4, 0x8c, 8, 'builtins', 0x8c, 4, 'eval', 0x93, 0x8c, 3, '1+1', 0x85, 'R.');
    const err = expectCheckpointError(() => unpickle(p, opts), ['CHECKPOINT_UNSAFE']);
    expect(err.message).toContain("'builtins.eval'");
  });

  it('rejects copyreg extension codes', () => {
    expectCheckpointError(() => unpickle(bytesOf(0x80, 2, 0x82, 1, '.'), opts), ['CHECKPOINT_UNSAFE']);
  });

  it('names unknown opcodes and their offset', () => {
    const err = expectCheckpointError(() => unpickle(bytesOf(0x80, 2, 'N', 0xff, '.'), opts), ['CHECKPOINT_FORMAT']);
    expect(err.message).toMatch(/unknown pickle opcode 0xff/);
    expect(err.message).toMatch(/offset 3/);
  });

  it('rejects stack underflow, bad MARKs, missing memo keys, calls on non-callables', () => {
    for (const p of [
      bytesOf('.'),
      bytesOf('t.'),
      bytesOf('h', 5, '.'),
      bytesOf('K', 1, ')', 'R.'),
      bytesOf(']', 'K', 1, 'K', 2, 's.'),
      bytesOf(0x80, 9, 'N.'),
      bytesOf('INaN\n.'),
    ]) {
      expectCheckpointError(() => unpickle(p, opts), ['CHECKPOINT_FORMAT']);
    }
  });

  it('caps memo size and MARK nesting', () => {
    const memo = bytesOf('N', ...Array.from({ length: 20 }, (_, i) => ['q', i]).flat(), '.');
    expectCheckpointError(() => unpickle(memo, { ...opts, maxMemo: 10 }), ['CHECKPOINT_FORMAT']);
    expect(unpickle(memo, { ...opts, maxMemo: 20 })).toBeNull();
    const marks = bytesOf(...Array.from({ length: 50 }, () => '('), 'N.');
    const err = expectCheckpointError(() => unpickle(marks, { ...opts, maxMarkDepth: 20 }), ['CHECKPOINT_FORMAT']);
    expect(err.message).toMatch(/MARK nesting/);
  });

  it('does not allocate for absurd declared lengths', () => {
    const huge = bytesOf(0x80, 4, 0x8e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '.');
    expectCheckpointError(() => unpickle(huge, opts), ['CHECKPOINT_TRUNCATED']);
    const long4 = bytesOf(0x80, 2, 0x8b, 0xff, 0xff, 0xff, 0x7f, '.');
    expectCheckpointError(() => unpickle(long4, opts), ['CHECKPOINT_TRUNCATED']);
  });

  it('fuzzes a torch data.pkl (mutated opcodes) without escaping CheckpointError', () => {
    const archive = new ZipArchive(fixture('zip_protocol4.pth'));
    const pkl = archive.read(archive.entries.find((e) => e.name.endsWith('/data.pkl'))!);
    const fake = { key: 'x', dtype: 'float32', numel: 1 << 20, bytes: new Uint8Array(4 << 20) };
    const next = rng(3);
    for (let iter = 0; iter < 2000; iter++) {
      const bytes = pkl.slice();
      for (let k = 0; k < 3; k++) bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
      try {
        unpickle(bytes, { globals: torchGlobals('fuzz'), persistentLoad: () => fake });
      } catch (err) {
        if (!(err instanceof CheckpointError)) throw new Error(`iteration ${iter}: ${String(err)}`, { cause: err });
      }
    }
  });
});
