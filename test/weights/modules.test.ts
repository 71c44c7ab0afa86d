/**
 * Whole pickled models (torch.save(model)): unknown classes become inert records, their state is plain data,
 * and the state_dict is recovered from `_modules` / `_parameters` / `_buffers`. The tensors themselves are
 * compared with PyTorch's model.state_dict() in fixtures.test.ts; this file checks the structure, the inert
 * semantics of each opcode and helper, and that calls of unknown globals stay forbidden.
 */
import { describe, expect, it } from 'vitest';
import {
  canonicalizeStateDict,
  isTorchModule,
  moduleStateDict,
  PyGlobal,
  PyInstance,
  readPth,
  readTorchObject,
  unpickle,
  type CpuTensor,
  type StorageBytes,
  type UnpickleOptions,
} from '../../src/weights';
import { torchGlobals } from '../../src/weights/torch-pickle';
import { EXPECTED, expectCheckpointError, fixture } from './helpers';

const bytesOf = (...parts: (number | string | number[])[]) =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'number' ? [p] : Array.isArray(p) ? p : [...p].map((c) => c.charCodeAt(0)))));
/** BININT (4-byte little-endian int) opcode. */
const binint = (v: number) => ['J'.charCodeAt(0), v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
/** SHORT_BINUNICODE opcode. */
const str = (s: string) => [0x8c, s.length, ...[...s].map((c) => c.charCodeAt(0))];

const inert: UnpickleOptions = { globals: torchGlobals('test'), unknownGlobals: 'inert', name: 'test.pkl' };
const t = (values: number[]): CpuTensor => ({ dtype: 'float32', shape: [values.length], data: Float32Array.from(values) });

function module(
  className: string,
  parameters: [string, unknown][] = [],
  children: [string, unknown][] = [],
  buffers: [string, unknown][] = [],
): PyInstance {
  const m = new PyInstance(className);
  m.__setstate__(
    new Map<unknown, unknown>([
      ['training', false],
      ['_parameters', new Map(parameters)],
      ['_buffers', new Map(buffers)],
      ['_modules', new Map(children)],
    ]),
  );
  return m;
}

describe('whole pickled models from torch.save(model)', () => {
  const modules = Object.entries(EXPECTED.fixtures).filter(([, f]) => f.module_class !== undefined);

  for (const [name, expected] of modules) {
    it(`${name}: the root is an inert record of ${expected.module_class ?? 'a dict'}`, () => {
      const root = readTorchObject(fixture(name), { name });
      if (expected.module_class) {
        expect(root).toBeInstanceOf(PyInstance);
        expect((root as PyInstance).className).toBe(expected.module_class);
        expect(isTorchModule(root)).toBe(true);
        // The keys exactly as model.state_dict(), before any canonicalisation.
        expect([...moduleStateDict(root as PyInstance).keys()]).toEqual(Object.keys(expected.state_dict!));
      } else {
        expect(root).toBeInstanceOf(Map);
      }
    });
  }

  it('keeps attributes as plain data (BatchNorm eps and momentum, ReLU inplace, training)', () => {
    const root = readTorchObject(fixture('module_legacy.pth')) as PyInstance;
    const seq = (root.get('_modules') as Map<string, PyInstance>).get('dncnn')!;
    expect(seq.className).toBe('torch.nn.modules.container.Sequential');
    const layers = seq.get('_modules') as Map<string, PyInstance>;
    expect([...layers.keys()]).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8']);
    const bn = layers.get('3')!;
    expect(bn.className).toBe('torch.nn.modules.batchnorm.BatchNorm2d');
    expect(bn.get('eps')).toBe(1e-4);
    expect(bn.get('momentum')).toBe(0.95);
    expect(bn.get('training')).toBe(false);
    expect(layers.get('1')!.get('inplace')).toBe(true);
    expect(layers.get('0')!.get('kernel_size')).toEqual([3, 3]);
  });

  it('torch <= 0.4 files: Parameter(...) calls and _backend = _get_thnn_function_backend()', () => {
    const root = readTorchObject(fixture('module_torch04_legacy.pth')) as PyInstance;
    expect(root.get('_backend')).toBeNull();
    expect(readPth(fixture('module_torch04_legacy.pth')).get('dncnn.0.weight')!.shape).toEqual([3, 1, 3, 3]);
  });

  it('omits None parameters, None buffers, None submodules and non-persistent buffers; copies tied weights', () => {
    const sd = readPth(fixture('module_nested_zip_protocol4.pth'));
    for (const k of ['blocks.0.unused', 'blocks.0.absent', 'blocks.0.scratch', 'blocks.0.gate']) expect(sd.has(k)).toBe(false);
    const a = sd.get('tail.weight')!;
    const b = sd.get('tail_tied.weight')!;
    expect(Array.from(b.data as Float32Array)).toEqual(Array.from(a.data as Float32Array));
    expect(b.data.buffer).not.toBe(a.data.buffer); // each entry owns its data
    expect(sd.get('head.dncnn.3.num_batches_tracked')!.data).toEqual(new BigInt64Array([3n]));
  });

  it("unwraps a model stored under a wrapper key and strips DataParallel's module. prefix", () => {
    const root = readTorchObject(fixture('module_wrapped_dataparallel.pth')) as Map<string, unknown>;
    expect(root.get('epoch')).toBe(3);
    expect((root.get('model') as PyInstance).className).toBe('torch.nn.parallel.data_parallel.DataParallel');
    expect([...readPth(fixture('module_wrapped_dataparallel.pth')).keys()][0]).toBe('dncnn.0.weight');
  });
});

describe('moduleStateDict', () => {
  it('orders own parameters, own buffers, then children, like Module.state_dict()', () => {
    const child = module('C', [['w', t([1])]], [], [['b', t([2])]]);
    const root = module(
      'R',
      [
        ['p', t([0])],
        ['none', null],
      ],
      [
        ['kid', child],
        ['gone', null],
      ],
      [['buf', t([3])]],
    );
    expect([...moduleStateDict(root).keys()]).toEqual(['p', 'buf', 'kid.w', 'kid.b']);
    expect([
      ...canonicalizeStateDict(
        new Map<string, unknown>([
          ['net', root],
          ['epoch', 1],
        ]),
      ).keys(),
    ]).toEqual(['p', 'buf', 'kid.w', 'kid.b']);
  });

  it('rejects cycles, non-tensor parameters, non-module children and non-string names', () => {
    const loop = module('Loop');
    (loop.get('_modules') as Map<string, unknown>).set('self', loop);
    expect(expectCheckpointError(() => moduleStateDict(loop, 'f.pth'), ['CHECKPOINT_FORMAT']).message).toMatch(/contains itself/);
    const badParam = module('M', [['w', 'not a tensor']]);
    expect(expectCheckpointError(() => moduleStateDict(badParam), ['CHECKPOINT_FORMAT']).message).toMatch(/parameter 'w' is a str/);
    const badChild = module('M', [], [['x', 42]]);
    expect(expectCheckpointError(() => moduleStateDict(badChild), ['CHECKPOINT_FORMAT']).message).toMatch(/submodule 'x'/);
    const badKey = module('M');
    (badKey.get('_parameters') as Map<unknown, unknown>).set(7, t([1]));
    expectCheckpointError(() => moduleStateDict(badKey), ['CHECKPOINT_FORMAT']);
  });

  it('bounds nesting depth', () => {
    let m = module('Leaf', [['w', t([1])]]);
    for (let i = 0; i < 300; i++) m = module('Wrap', [], [['m', m]]);
    expectCheckpointError(() => moduleStateDict(m), ['CHECKPOINT_FORMAT']);
  });
});

describe('inert unknown classes in the unpickler', () => {
  it('NEWOBJ records an instance, BUILD stores dict and slot state as attributes', () => {
    // models.Net.__new__(models.Net, 1) then BUILD ({'a': 1}, {'s': 2}), then BUILD 'opaque'
    const p = bytesOf(
      0x80,
      2,
      'cmodels\nNet\n',
      'K',
      1,
      0x85,
      0x81,
      '}',
      str('a'),
      'K',
      1,
      's',
      '}',
      str('s'),
      'K',
      2,
      's',
      0x86,
      'b',
      str('opaque'),
      'b',
      '.',
    );
    const v = unpickle(p, inert) as PyInstance;
    expect(v).toBeInstanceOf(PyInstance);
    expect(v.className).toBe('models.Net');
    expect(v.args).toEqual([1]);
    expect([...v.attributes]).toEqual([
      ['a', 1],
      ['s', 2],
    ]);
    expect(v.otherStates).toEqual(['opaque']);
  });

  it('NEWOBJ_EX keeps keyword arguments as data', () => {
    const p = bytesOf(0x80, 4, str('m'), str('C'), 0x93, ')', '}', str('k'), 'K', 5, 's', 0x92, '.');
    const v = unpickle(p, inert) as PyInstance;
    expect(v.className).toBe('m.C');
    expect([...v.kwargs]).toEqual([['k', 5]]);
  });

  it('copyreg._reconstructor(cls, object, None) and copyreg.__newobj__ make inert records', () => {
    const p = bytesOf(
      'ccopy_reg\n_reconstructor\n',
      '(',
      'cmodels\nNet\n',
      'c__builtin__\nobject\n',
      'N',
      't',
      'R',
      'ccopyreg\n__newobj__\n',
      '(',
      'cmodels\nOther\n',
      'K',
      7,
      't',
      'R',
      0x86,
      '.',
    );
    const [a, b] = unpickle(p, inert) as PyInstance[];
    expect(a.className).toBe('models.Net');
    expect(b.className).toBe('models.Other');
    expect(b.args).toEqual([7]);
  });

  it('copyreg._reconstructor only supports the object base, and never instantiates allowed globals', () => {
    const dictBase = bytesOf('ccopyreg\n_reconstructor\n', '(', 'cmodels\nNet\n', 'cbuiltins\ndict\n', 'N', 't', 'R', '.');
    expect(expectCheckpointError(() => unpickle(dictBase, inert), ['CHECKPOINT_FORMAT']).message).toMatch(/only 'object'/);
    const allowed = bytesOf('ccopyreg\n__newobj__\n', '(', 'ccollections\nOrderedDict\n', 't', 'R', '.');
    expectCheckpointError(() => unpickle(allowed, inert), ['CHECKPOINT_FORMAT']);
  });

  it('a reference alone is data', () => {
    const v = unpickle(bytesOf('ctorch\nfloat32\n', '.'), inert);
    expect(v).toBeInstanceOf(PyGlobal);
    expect((v as PyGlobal).allowed).toBe(false);
    expect((v as PyGlobal).qualifiedName).toBe('torch.float32');
    // Module names are never looked up on a JS object (no prototype surprises).
    expect((unpickle(bytesOf('c__proto__\nconstructor\n', '.'), inert) as PyGlobal).qualifiedName).toBe('__proto__.constructor');
  });

  it('calling an unknown global is refused whichever opcode calls it', () => {
    const cases: [string, Uint8Array][] = [
      ['REDUCE', bytesOf('cos\nsystem\n', str('ls'), 0x85, 'R', '.')],
      ['REDUCE via memo', bytesOf('cposix\nsystem\n', 'q', 0, '0', 'h', 0, str('ls'), 0x85, 'R', '.')],
      ['REDUCE via STACK_GLOBAL', bytesOf(0x80, 4, str('subprocess'), str('Popen'), 0x93, str('ls'), 0x85, 'R', '.')],
      ['INST', bytesOf('(', str('ls'), 'ios\nsystem\n', '.')],
      ['OBJ', bytesOf('(', 'cbuiltins\neval\n', str('1'), 'o', '.')],
      ['REDUCE of a class', bytesOf('cmodels\nNet\n', ')', 'R', '.')],
      ['OBJ of a class', bytesOf('(', 'cmodels\nNet\n', 'o', '.')],
      ['getattr', bytesOf('c__builtin__\ngetattr\n', 'c__builtin__\nobject\n', str('__subclasses__'), 0x86, 'R', '.')],
    ];
    for (const [what, p] of cases) {
      const err = expectCheckpointError(() => unpickle(p, inert), ['CHECKPOINT_UNSAFE']);
      expect(err.message, what).toMatch(
        /calls the global '(os|posix)\.system'|'subprocess\.Popen'|'builtins\.eval'|'models\.Net'|'builtins\.getattr'/,
      );
    }
  });

  it('NEWOBJ of a dangerous name only records it (nothing is imported or run)', () => {
    const v = unpickle(bytesOf(0x80, 2, 'cos\nsystem\n', str('touch /tmp/x'), 0x85, 0x81, '.'), inert) as PyInstance;
    expect(v.className).toBe('os.system');
    expect(v.args).toEqual(['touch /tmp/x']);
  });

  it("in 'reject' mode (the default) any unknown name is refused as soon as it is referenced", () => {
    const err = expectCheckpointError(
      () => unpickle(bytesOf('cmodels\nNet\n', '.'), { globals: torchGlobals('t') }),
      ['CHECKPOINT_UNSAFE'],
    );
    expect(err.message).toMatch(/references the global 'models.Net'/);
  });
});

describe('work and memory bounds', () => {
  it('repeated copies of one memoised container hit the copy budget', () => {
    // a 1000-entry dict built once, then BUILD onto an instance 2000 times: ~6 bytes per million copies
    const dict = [...Array.from({ length: 1000 }, (_, i) => [...binint(i), 'N'.charCodeAt(0)]).flat()];
    const builds = Array.from({ length: 2000 }, () => ['h'.charCodeAt(0), 1, 'b'.charCodeAt(0)]).flat();
    const p = bytesOf(0x80, 2, 'cm\nC\n', ')', 0x81, 'q', 0, '}', '(', dict, 'u', 'q', 1, '0', 'h', 0, builds, '.');
    const err = expectCheckpointError(() => unpickle(p, inert), ['CHECKPOINT_FORMAT']);
    expect(err.message).toMatch(/copies far more data/);
    // The same with builtins.set(list) calls.
    const list = Array.from({ length: 1000 }, () => 'N'.charCodeAt(0));
    const sets = Array.from({ length: 2000 }, () => [
      'h'.charCodeAt(0),
      0,
      'h'.charCodeAt(0),
      1,
      0x85,
      'R'.charCodeAt(0),
      '0'.charCodeAt(0),
    ]).flat();
    const q = bytesOf(0x80, 2, 'c__builtin__\nset\n', 'q', 0, ']', '(', list, 'e', 'q', 1, '0', sets, 'N', '.');
    expect(expectCheckpointError(() => unpickle(q, inert), ['CHECKPOINT_FORMAT']).message).toMatch(/copies far more data/);
  });

  it('stride-0 views cannot make a few stored bytes into gigabytes', () => {
    const storage: StorageBytes = { key: '0', dtype: 'float32', numel: 1, bytes: new Uint8Array(4) };
    // _rebuild_tensor_v2(storage, 0, (100000000,), (0,))
    const p = bytesOf('ctorch._utils\n_rebuild_tensor_v2\n', '(', 'N', 'Q', 'K', 0, binint(100_000_000), 0x85, 'K', 0, 0x85, 't', 'R', '.');
    const globals = torchGlobals('tiny.pth', { maxTensorBytes: 1 << 20 });
    const err = expectCheckpointError(() => unpickle(p, { globals, persistentLoad: () => storage }), ['CHECKPOINT_FORMAT']);
    expect(err.message).toMatch(/400000000 bytes/);
    // Within the budget it materialises.
    const small = bytesOf('ctorch._utils\n_rebuild_tensor_v2\n', '(', 'N', 'Q', 'K', 0, 'K', 5, 0x85, 'K', 0, 0x85, 't', 'R', '.');
    expect((unpickle(small, { globals, persistentLoad: () => storage }) as CpuTensor).shape).toEqual([5]);
  });
});
