#!/usr/bin/env python3
"""Write the small checkpoint fixtures used by test/weights/*.test.ts.

Run with a Python that has PyTorch (developed against Debian's python3-torch 1.13):

    /usr/bin/python3 tools/torch/make_weight_fixtures.py

Everything goes to test/fixtures/weights/ and is committed, because CI has no Python. Next to the .pth files
it writes expected.json, whose values come from PyTorch itself (torch.load of each written file), so the
TypeScript reader is checked against PyTorch and not against its own output.

Tensor values are deterministic (fixed seeds), but the legacy-format files are not byte-identical between
runs: their storage keys are memory addresses.

Besides torch.save output it writes whole pickled models (torch.save(model), with model classes defined in
this script, so they pickle as __main__.*), safetensors files from a writer that follows the published
format (struct + json, below), and pickles that call forbidden globals (never loaded here).
"""

import collections
import io
import json
import math
import os
import pickle
import pickletools
import struct
import sys
import zipfile
import zlib

import torch
import torch.nn as nn
import torch.nn.backends.thnn  # only for the torch <= 0.4 style fixture

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'weights')


# ---------------------------------------------------------------------------------------------------------
# JSON encoding of tensors, as torch.load returns them

def encode_value(dtype, v):
    if dtype.is_floating_point:
        v = float(v)
        if math.isnan(v):
            return 'nan'
        if math.isinf(v):
            return 'inf' if v > 0 else '-inf'
        return v  # json writes repr(), which round-trips doubles exactly
    if dtype == torch.bool:
        return 1 if v else 0
    if dtype == torch.int64:
        return str(int(v))  # strings: JSON numbers lose precision above 2^53
    return int(v)


def encode_tensor(t):
    flat = t.detach().contiguous().reshape(-1)
    # float16/bfloat16 go through float32, which is exact for both
    if flat.dtype in (torch.float16, torch.bfloat16):
        values = flat.float().tolist()
    else:
        values = flat.tolist()
    return {
        'dtype': str(t.dtype).replace('torch.', ''),
        'shape': list(t.shape),
        'values': [encode_value(t.dtype, v) for v in values],
    }


def encode_state_dict(sd):
    return {k: encode_tensor(v) for k, v in sd.items()}


def pickle_globals(pkl_bytes):
    """Names of the globals a pickle references, found by Python's own pickletools (for expected.json)."""
    names, strings = [], []
    for op, arg, _pos in pickletools.genops(pkl_bytes):
        if op.name in ('GLOBAL', 'INST'):
            names.append(arg.replace(' ', '.'))
        elif op.name in ('SHORT_BINUNICODE', 'BINUNICODE', 'BINUNICODE8', 'UNICODE'):
            strings.append(arg)
        elif op.name == 'STACK_GLOBAL':
            names.append('%s.%s' % (strings[-2], strings[-1]))
    # protocols < 3 write Python 2 module names, which Python 3 (and our reader) map back
    py2 = {'__builtin__': 'builtins', 'copy_reg': 'copyreg', 'commands': 'subprocess'}
    return ['.'.join([py2.get(n.split('.')[0], n.split('.')[0])] + n.split('.')[1:]) for n in names]


# ---------------------------------------------------------------------------------------------------------
# fixture contents

def basic_state_dict():
    g = torch.Generator().manual_seed(1234)
    sd = collections.OrderedDict()
    sd['conv.weight'] = torch.randn(2, 3, 2, 2, generator=g)
    sd['conv.bias'] = torch.randn(2, generator=g)
    sd['f64'] = torch.tensor([1.0 / 3.0, -2.5, 1e-300, 123456789.123456789], dtype=torch.float64)
    # float16 edge cases: max, -0, smallest subnormal, 1/3 rounded
    sd['f16'] = torch.tensor([65504.0, -0.0, 2.0 ** -24, 1.0 / 3.0, -1.5], dtype=torch.float16)
    sd['bf16'] = torch.tensor([1.0, -3.140625, 1e30, 2.0 ** -100], dtype=torch.bfloat16)
    sd['i64'] = torch.tensor([0, -1, 2 ** 40, -(2 ** 62), 2 ** 63 - 1], dtype=torch.int64)
    sd['i32'] = torch.tensor([7, -2 ** 31, 2 ** 31 - 1], dtype=torch.int32)
    sd['i16'] = torch.tensor([-32768, 32767, 5], dtype=torch.int16)
    sd['i8'] = torch.tensor([-128, 127, 0], dtype=torch.int8)
    sd['u8'] = torch.tensor([0, 255, 17], dtype=torch.uint8)
    sd['flags'] = torch.tensor([True, False, True])
    # non-contiguous views: a transpose (strides (1, 4)), a slice with a storage offset, a stride-0 expand
    sd['transposed'] = torch.arange(12, dtype=torch.float32).reshape(3, 4).t()
    base = torch.arange(20, dtype=torch.float32).reshape(4, 5)
    sd['sliced'] = base[1:, 2:]
    sd['expanded'] = torch.tensor([1.0, 2.0, 3.0]).expand(2, 3)
    # two tensors viewing one storage (tied weights)
    shared = torch.randn(6, generator=g)
    sd['tied.a'] = shared[:3]
    sd['tied.b'] = shared.view(2, 3)
    sd['scalar'] = torch.tensor(3.5)
    sd['empty'] = torch.zeros(0, 3)
    sd['param'] = torch.nn.Parameter(torch.tensor([0.25, -0.75]))  # pickled via _rebuild_parameter
    sd['bn.num_batches_tracked'] = torch.tensor(42)
    return sd


def check_layout(sd):
    """Make sure the fixture really exercises what it claims to."""
    assert not sd['transposed'].is_contiguous() and sd['transposed'].stride() == (1, 4)
    assert sd['sliced'].storage_offset() == 7 and not sd['sliced'].is_contiguous()
    assert sd['expanded'].stride() == (0, 1)
    assert sd['tied.a'].data_ptr() == sd['tied.b'].data_ptr()


# ---------------------------------------------------------------------------------------------------------
# hand-written zip writers (for deflate, renamed folders and Zip64)

def copy_zip(src, dst, compression, rename=None):
    """Re-pack a torch zip with another compression method and/or top-level folder name."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w', compression) as zout:
        for info in zin.infolist():
            name = info.filename
            if rename:
                name = rename + name[name.index('/'):]
            zi = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            zi.compress_type = compression
            zout.writestr(zi, zin.read(info.filename))


def write_zip64(entries, dst, comment=b''):
    """A stored zip in which every size, offset and count is given through Zip64 records (sizes in the
    regular fields are 0xFFFFFFFF / 0xFFFF), to exercise the Zip64 paths with a tiny file."""
    out = io.BytesIO()
    central = []
    for name, data in entries:
        name_b = name.encode()
        crc = zlib.crc32(data) & 0xFFFFFFFF
        offset = out.tell()
        local_extra = struct.pack('<HHQQ', 0x0001, 16, len(data), len(data))
        out.write(struct.pack('<IHHHHHIIIHH', 0x04034B50, 45, 0, 0, 0, 0x21, crc,
                              0xFFFFFFFF, 0xFFFFFFFF, len(name_b), len(local_extra)))
        out.write(name_b + local_extra + data)
        central.append((name_b, crc, len(data), offset))
    cd_start = out.tell()
    for name_b, crc, size, offset in central:
        extra = struct.pack('<HHQQQ', 0x0001, 24, size, size, offset)
        out.write(struct.pack('<IHHHHHHIIIHHHHHII', 0x02014B50, 45, 45, 0, 0, 0, 0x21, crc,
                              0xFFFFFFFF, 0xFFFFFFFF, len(name_b), len(extra), 0, 0, 0, 0, 0xFFFFFFFF))
        out.write(name_b + extra)
    cd_size = out.tell() - cd_start
    zip64_eocd = out.tell()
    out.write(struct.pack('<IQHHIIQQQQ', 0x06064B50, 44, 45, 45, 0, 0,
                          len(central), len(central), cd_size, cd_start))
    out.write(struct.pack('<IIQI', 0x07064B50, 0, zip64_eocd, 1))
    out.write(struct.pack('<IHHHHIIH', 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, len(comment)))
    out.write(comment)
    with open(dst, 'wb') as f:
        f.write(out.getvalue())


def torch_like_zip(dst, folder, pkl, storages=()):
    """A zip laid out like torch.save's, around a pickle we wrote ourselves."""
    with zipfile.ZipFile(dst, 'w', zipfile.ZIP_STORED) as z:
        def put(name, data):
            z.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
        put(folder + '/data.pkl', pkl)
        for key, data in storages:
            put(folder + '/data/' + key, data)
        put(folder + '/version', b'3\n')


# ---------------------------------------------------------------------------------------------------------
# whole pickled models: torch.save(model) of classes defined here (they pickle as __main__.<name>)

class TinyDnCNN(nn.Module):
    """Laid out like the original cszn DnCNN (self.dncnn = Sequential; biasless body convs; BN eps 1e-4)."""

    def __init__(self, channels=1, features=4, blocks=2):
        super().__init__()
        layers = [nn.Conv2d(channels, features, 3, padding=1, bias=True), nn.ReLU(inplace=True)]
        for _ in range(blocks):
            layers += [nn.Conv2d(features, features, 3, padding=1, bias=False),
                       nn.BatchNorm2d(features, eps=1e-4, momentum=0.95), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(features, channels, 3, padding=1, bias=False))
        self.dncnn = nn.Sequential(*layers)

    def forward(self, x):
        return x - self.dncnn(x)


class Block(nn.Module):
    """Nested custom module with the corner cases of state_dict(): a None parameter, a None submodule, a
    persistent and a non-persistent buffer."""

    def __init__(self, ch):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU())
        self.register_parameter('gain', nn.Parameter(torch.full((ch,), 0.5)))
        self.register_parameter('unused', None)
        self.register_buffer('scale', torch.tensor([0.5, 2.0]))
        self.register_buffer('scratch', torch.zeros(3), persistent=False)
        self.register_buffer('absent', None)
        self.register_module('gate', None)


class Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = TinyDnCNN(channels=2, features=4, blocks=1)
        self.blocks = nn.ModuleList([Block(2), Block(2)])
        self.tail = nn.Linear(2, 3)
        self.tail_tied = nn.Linear(2, 3)
        self.tail_tied.weight = self.tail.weight  # one Parameter under two names, as state_dict() lists it
        self.note = 'plain attributes are ignored'


def trained(model, seed):
    """Deterministic weights, and BatchNorm statistics that are not the defaults (three training batches
    through every BatchNorm)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        model.train()
        for bn in [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]:
            for _ in range(3):
                bn(torch.randn(2, bn.num_features, 3, 3, generator=g) * 2 + 1)
    return model.eval()


class ThnnBackend:
    """What a torch <= 0.4 module's `_backend` attribute pickled as."""

    def __reduce__(self):
        return (torch.nn.backends.thnn._get_thnn_function_backend, ())


class Torch04Pickler(pickle.Pickler):
    """Pickles parameters the way torch < 1.0 did: a call of the Parameter class itself."""

    def reducer_override(self, obj):
        if isinstance(obj, nn.Parameter):
            return (nn.Parameter, (obj.data, obj.requires_grad))
        return NotImplemented


class Torch04PickleModule:
    Pickler = Torch04Pickler
    Unpickler = pickle.Unpickler
    dump = staticmethod(pickle.dump)
    load = staticmethod(pickle.load)
    __name__ = 'pickle'


# ---------------------------------------------------------------------------------------------------------
# safetensors, written from the published format description (huggingface/safetensors README):
# u64 little-endian header length N, N bytes of JSON header, then the byte buffer. Not the safetensors
# package (not installed here): this is an independent writer to check our reader and writer against.

ST_CODES = collections.OrderedDict([
    (torch.float64, 'F64'), (torch.float32, 'F32'), (torch.float16, 'F16'), (torch.bfloat16, 'BF16'),
    (torch.int64, 'I64'), (torch.int32, 'I32'), (torch.int16, 'I16'), (torch.int8, 'I8'),
    (torch.uint8, 'U8'), (torch.bool, 'BOOL'),
])


def raw_le_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)  # numpy has no bfloat16; same bits
    a = t.numpy()
    return a.astype(a.dtype.newbyteorder('<')).tobytes()


def write_safetensors(dst, tensors, metadata=None, header_order=None, data_order=None, separators=(',', ':'),
                      pad=True):
    """header_order / data_order: tensor names in header and in byte-buffer order (default: sorted names in
    the header; data by decreasing element size, then name - the convention of our writer)."""
    names = sorted(tensors)
    header_order = header_order or names
    data_order = data_order or sorted(names, key=lambda n: (-tensors[n].element_size(), n))
    offsets, blobs, at = {}, [], 0
    for name in data_order:
        raw = raw_le_bytes(tensors[name])
        offsets[name] = [at, at + len(raw)]
        blobs.append(raw)
        at += len(raw)
    header = collections.OrderedDict()
    if metadata is not None:
        header['__metadata__'] = metadata
    for name in header_order:
        t = tensors[name]
        header[name] = collections.OrderedDict(
            [('dtype', ST_CODES[t.dtype]), ('shape', list(t.shape)), ('data_offsets', offsets[name])])
    text = json.dumps(header, separators=separators, ensure_ascii=False).encode('utf-8')
    if pad:
        text += b' ' * ((8 - (8 + len(text)) % 8) % 8)
    with open(dst, 'wb') as f:
        f.write(struct.pack('<Q', len(text)) + text + b''.join(blobs))


def read_safetensors_py(path):
    """Read back with the same format rules, for the expected values (and as a check of the writer)."""
    with open(path, 'rb') as f:
        data = f.read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n].decode('utf-8'), object_pairs_hook=collections.OrderedDict)
    header.pop('__metadata__', None)
    buf = data[8 + n:]
    out = collections.OrderedDict()
    by_code = {v: k for k, v in ST_CODES.items()}
    for name, info in header.items():
        dtype = by_code[info['dtype']]
        begin, end = info['data_offsets']
        raw = bytearray(buf[begin:end])
        if dtype == torch.bfloat16:
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16) if raw else torch.zeros(0, dtype=dtype)
        else:
            t = torch.frombuffer(raw, dtype=dtype) if raw else torch.zeros(0, dtype=dtype)
        out[name] = t.reshape(info['shape'])
    return out


def safetensors_tensors():
    g = torch.Generator().manual_seed(2024)
    sd = collections.OrderedDict()
    sd['conv.weight'] = torch.randn(2, 3, 3, 3, generator=g)
    sd['conv.bias'] = torch.tensor([float('nan'), float('inf'), -0.0])  # values are not checked by the format
    sd['f64'] = torch.tensor([1.0 / 3.0, -1e-300, 2.0 ** 60], dtype=torch.float64)
    sd['f16'] = torch.tensor([65504.0, -0.0, 2.0 ** -24, 1.0 / 3.0, float('-inf')], dtype=torch.float16)
    sd['bf16'] = torch.tensor([1.0, -3.140625, 1e30, 2.0 ** -100], dtype=torch.bfloat16)
    sd['bn.num_batches_tracked'] = torch.tensor(12345678901, dtype=torch.int64)  # 0-d scalar
    sd['i32'] = torch.tensor([[7, -2 ** 31], [2 ** 31 - 1, 0]], dtype=torch.int32)
    sd['i16'] = torch.tensor([-32768, 32767, 5], dtype=torch.int16)
    sd['i8'] = torch.tensor([-128, 127, 0], dtype=torch.int8)
    sd['u8'] = torch.tensor([0, 255, 17], dtype=torch.uint8)
    sd['mask'] = torch.tensor([True, False, True])
    sd['empty'] = torch.zeros(0, 4)
    sd['unicod\u00e9.\u2713'] = torch.tensor([1.5])
    return sd


# ---------------------------------------------------------------------------------------------------------
# plain pickles of every protocol, to check the unpickler against CPython's pickler

def tag(v):
    """Tagged JSON form of a Python value, so the test can tell int from float and tuple from list."""
    if v is None:
        return {'none': None}
    if isinstance(v, bool):
        return {'bool': v}
    if isinstance(v, int):
        return {'int': str(v)}
    if isinstance(v, float):
        return {'float': repr(v)}
    if isinstance(v, str):
        return {'str': v}
    if isinstance(v, bytes):
        return {'bytes': v.hex()}
    if isinstance(v, tuple):
        return {'tuple': [tag(x) for x in v]}
    if isinstance(v, list) and len(v) > 100 and all(type(x) is int and abs(x) < 2 ** 31 for x in v):
        return {'intlist': v}  # compact form for long lists of small ints
    if isinstance(v, list):
        return {'list': [tag(x) for x in v]}
    if isinstance(v, (set, frozenset)):
        return {'set': [tag(x) for x in sorted(v)]}
    if isinstance(v, dict):
        return {'dict': [[tag(k), tag(x)] for k, x in v.items()]}
    raise TypeError(type(v))


def pickle_cases():
    shared = [1, 2]
    return collections.OrderedDict([
        ('ints', [0, 1, -1, 255, 256, 65535, 65536, 2 ** 31 - 1, -2 ** 31, 2 ** 31, 2 ** 53, -2 ** 53 - 1,
                  2 ** 70, -2 ** 70, 2 ** 2100]),
        ('floats', [0.0, -0.0, 1.5, -2.25, 1e-310, 1e300, float('inf'), float('-inf'), 0.1]),
        ('strings', ['', 'ascii', 'unicod\u00e9 \u2713 \U0001f600', 'x' * 300, 'back\\slash\nnew line']),
        ('bytes', [b'', b'\x00\xff\x80abc', bytes(range(256))]),
        ('tuples', [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), ((),)]),
        ('containers', {'list': [1, [2, [3]]], 'shared': [shared, shared], 'int_keys': {1: 'a', -7: 'b'},
                        'none': None, 'true': True, 'false': False, 'set': {3, 1, 2},
                        'frozenset': frozenset({'a', 'b'}), 'ordered': collections.OrderedDict([('z', 1), ('a', 2)])}),
        # more than 1000 items: CPython's pickler splits APPENDS / SETITEMS into batches of 1000
        ('big_list', [i % 200 for i in range(1001)]),
    ])


def write_pickle_cases(dst):
    values, cases = collections.OrderedDict(), []
    for name, value in pickle_cases().items():
        values[name] = tag(value)
        # the long list only where batching differs (protocol 0 has no APPENDS), to keep the file small
        for protocol in ((1, 2, 4) if name == 'big_list' else range(0, 6)):
            data = pickle.dumps(value, protocol=protocol)
            assert pickle.loads(data) == value
            cases.append(collections.OrderedDict(name=name, protocol=protocol, pickle=data.hex()))
    with open(dst, 'w') as f:
        json.dump({'generator': 'tools/torch/make_weight_fixtures.py', 'python_version': sys.version.split()[0],
                   'values': values, 'cases': cases}, f)
        f.write('\n')


# ---------------------------------------------------------------------------------------------------------

def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith('.pth') or f in ('expected.json', 'pickles.json'):
            os.remove(os.path.join(OUT, f))

    def path(name):
        return os.path.join(OUT, name)

    fixtures = collections.OrderedDict()

    def record(name, fmt, expected_sd, **extra):
        """Load the written file back with PyTorch; expected values come from that, not from `expected_sd`'s
        in-memory tensors, so they reflect what torch really reads from the file."""
        loaded = torch.load(path(name)) if expected_sd is not None else None
        entry = collections.OrderedDict(format=fmt)
        if expected_sd is not None:
            entry['state_dict'] = encode_state_dict(expected_sd(loaded))
        entry.update(extra)
        fixtures[name] = entry

    # 1. the basic state dict in both container formats and with pickle protocol 4
    sd = basic_state_dict()
    check_layout(sd)
    torch.save(sd, path('zip_basic.pth'))
    record('zip_basic.pth', 'torch-zip', lambda o: o, top_level_keys=list(sd.keys()))
    torch.save(sd, path('legacy_basic.pth'), _use_new_zipfile_serialization=False)
    record('legacy_basic.pth', 'torch-legacy', lambda o: o, top_level_keys=list(sd.keys()))
    small = collections.OrderedDict((k, sd[k]) for k in ('conv.bias', 'f16', 'i64', 'transposed', 'scalar'))
    for protocol in (1, 4):
        name = 'legacy_protocol%d.pth' % protocol
        torch.save(small, path(name), _use_new_zipfile_serialization=False, pickle_protocol=protocol)
        record(name, 'torch-legacy', lambda o: o, top_level_keys=list(small.keys()))
    torch.save(sd, path('zip_protocol4.pth'), pickle_protocol=4)
    record('zip_protocol4.pth', 'torch-zip', lambda o: o, top_level_keys=list(sd.keys()))

    # 2. the same archive re-packed: deflate + another folder name, and all-Zip64 with an archive comment
    copy_zip(path('zip_basic.pth'), path('zip_deflate_renamed.pth'), zipfile.ZIP_DEFLATED, rename='some_other_name')
    with zipfile.ZipFile(path('zip_basic.pth')) as z:
        entries = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    write_zip64(entries, path('zip64_comment.pth'), comment=b'written by make_weight_fixtures.py')
    for name in ('zip_deflate_renamed.pth', 'zip64_comment.pth'):
        with zipfile.ZipFile(path(name)) as z:
            assert z.testzip() is None  # Python's zipfile accepts it
        try:
            record(name, 'torch-zip', lambda o: o, top_level_keys=list(sd.keys()), loaded_by_torch=True)
        except Exception as e:  # torch's reader may not accept re-packed archives; values are zip_basic's then
            print('note: torch.load(%s) failed (%s); using zip_basic.pth values' % (name, e), file=sys.stderr)
            fixtures[name] = collections.OrderedDict(
                format='torch-zip', state_dict=fixtures['zip_basic.pth']['state_dict'],
                top_level_keys=list(sd.keys()), loaded_by_torch=False)

    # 3. BasicSR-style wrapper with DataParallel prefixes; params_ema must win over params
    g = torch.Generator().manual_seed(99)
    ema = collections.OrderedDict([('module.conv.weight', torch.randn(1, 1, 3, 3, generator=g)),
                                   ('module.conv.bias', torch.randn(1, generator=g))])
    plain = collections.OrderedDict((k, v + 1) for k, v in ema.items())
    torch.save({'params': plain, 'params_ema': ema, 'iter': 5000, 'note': 'basicsr'}, path('wrapped_params_ema.pth'))
    record('wrapped_params_ema.pth', 'torch-zip',
           lambda o: collections.OrderedDict((k[len('module.'):], v) for k, v in o['params_ema'].items()),
           top_level_keys=['params', 'params_ema', 'iter', 'note'], scalars={'iter': 5000, 'note': 'basicsr'})

    # 4. nested dicts with a netG. prefix under 'state_dict', next to an optimizer state (ints as keys,
    #    floats, tuples, lists: exercises the unpickler; dropped by canonicalisation)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.Conv2d(2, 1, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.ones(1, 1, 2, 2)).sum().backward()
    opt.step()
    msd = net.state_dict()
    nested = {'netG.body': {'0': {'weight': msd['0.weight'], 'bias': msd['0.bias']}},
              'netG.tail.weight': msd['1.weight'], 'netG.tail.bias': msd['1.bias'], 'netG.name': 'unet'}
    torch.save({'epoch': 7, 'state_dict': nested, 'optimizer_state_dict': opt.state_dict()}, path('nested_netG.pth'))
    record('nested_netG.pth', 'torch-zip',
           lambda o: collections.OrderedDict([
               ('body.0.weight', o['state_dict']['netG.body']['0']['weight']),
               ('body.0.bias', o['state_dict']['netG.body']['0']['bias']),
               ('tail.weight', o['state_dict']['netG.tail.weight']),
               ('tail.bias', o['state_dict']['netG.tail.bias'])]),
           top_level_keys=['epoch', 'state_dict', 'optimizer_state_dict'], scalars={'epoch': 7})

    # 5. non-finite weights, for checkFinite
    bad = collections.OrderedDict([('ok', torch.tensor([1.0, 2.0])),
                                   ('bad', torch.tensor([0.0, float('nan'), float('inf')])),
                                   ('worse', torch.tensor([float('-inf')]))])
    torch.save(bad, path('nonfinite.pth'))
    record('nonfinite.pth', 'torch-zip', lambda o: o, first_nonfinite='bad')

    # 6. pickles that reference forbidden globals. They are written as raw pickle bytes and never loaded
    #    here (loading them in Python would run the command). The command only creates a marker file.
    marker = '/tmp/webgpu-restore-pwned'
    os_system = (b'\x80\x02cos\nsystem\nq\x00X' + struct.pack('<I', len('touch ' + marker))
                 + ('touch ' + marker).encode() + b'\x85R.')

    class EvalPayload:
        def __reduce__(self):
            return (eval, ("__import__('os').system('touch %s')" % marker,))

    builtins_eval = pickle.dumps({'weight': 1, 'payload': EvalPayload()}, protocol=4)
    for name, pkl in (('evil_os_system.pth', os_system), ('evil_builtins_eval.pth', builtins_eval)):
        torch_like_zip(path(name), name[:-4], pkl)
        fixtures[name] = collections.OrderedDict(
            format='torch-zip', unsafe_global=pickle_globals(pkl)[0], marker_file=marker)

    # more payloads: subprocess, posix, getattr, and one hidden inside a whole pickled model (legacy format),
    # where unknown classes are read as data but the call must still be refused
    class PopenPayload:
        def __reduce__(self):
            return (__import__('subprocess').Popen, (['touch', marker],))

    class PosixPayload:
        def __reduce__(self):
            return (__import__('posix').system, ('touch ' + marker,))

    class GetattrPayload:
        def __reduce__(self):
            return (getattr, (object, '__subclasses__'))  # the usual first step of a sandbox escape

    for name, payload in (('evil_subprocess_popen.pth', PopenPayload()), ('evil_posix_system.pth', PosixPayload()),
                          ('evil_builtins_getattr.pth', GetattrPayload())):
        pkl = pickle.dumps(collections.OrderedDict([('weight', 1), ('payload', payload)]), protocol=2)
        torch_like_zip(path(name), name[:-4], pkl)
        fixtures[name] = collections.OrderedDict(
            format='torch-zip', unsafe_global=[g for g in pickle_globals(pkl) if g != 'collections.OrderedDict'][0],
            marker_file=marker)
    hidden = TinyDnCNN(features=2, blocks=1)
    hidden.dncnn[1].payload = PosixPayload()  # an attribute of the ReLU module
    torch.save(hidden, path('evil_in_module_legacy.pth'), _use_new_zipfile_serialization=False)
    fixtures['evil_in_module_legacy.pth'] = collections.OrderedDict(
        format='torch-legacy', unsafe_global='posix.system', marker_file=marker)

    # 7. whole pickled models (torch.save(model)): read without the classes, keys as model.state_dict()
    def record_module(name, fmt, model_class, expected_sd, **extra):
        loaded = torch.load(path(name))
        entry = collections.OrderedDict(format=fmt, module_class=model_class)
        entry['state_dict'] = encode_state_dict(expected_sd(loaded))
        entry.update(extra)
        fixtures[name] = entry

    tiny = trained(TinyDnCNN(), 7)
    torch.save(tiny, path('module_zip.pth'))
    record_module('module_zip.pth', 'torch-zip', '__main__.TinyDnCNN', lambda m: m.state_dict())
    torch.save(tiny, path('module_legacy.pth'), _use_new_zipfile_serialization=False)
    record_module('module_legacy.pth', 'torch-legacy', '__main__.TinyDnCNN', lambda m: m.state_dict())

    nested = trained(Nested(), 8)
    sd_keys = list(nested.state_dict().keys())
    assert 'blocks.0.scratch' not in sd_keys and 'blocks.0.unused' not in sd_keys and 'tail_tied.weight' in sd_keys
    torch.save(nested, path('module_nested_zip_protocol4.pth'), pickle_protocol=4)
    record_module('module_nested_zip_protocol4.pth', 'torch-zip', '__main__.Nested', lambda m: m.state_dict())
    # protocol 1 has no NEWOBJ: instances come from copyreg._reconstructor(cls, object, None) + BUILD
    torch.save(nested, path('module_nested_legacy_protocol1.pth'), _use_new_zipfile_serialization=False,
               pickle_protocol=1)
    record_module('module_nested_legacy_protocol1.pth', 'torch-legacy', '__main__.Nested', lambda m: m.state_dict())

    # a torch <= 0.4 style file: Parameter(data, requires_grad) calls and _backend attributes
    old = trained(TinyDnCNN(features=3, blocks=1), 9)
    for m in old.modules():
        m._backend = ThnnBackend()
    torch.save(old, path('module_torch04_legacy.pth'), _use_new_zipfile_serialization=False,
               pickle_module=Torch04PickleModule)
    record_module('module_torch04_legacy.pth', 'torch-legacy', '__main__.TinyDnCNN', lambda m: m.state_dict())

    # a model inside a training checkpoint, wrapped in DataParallel: keys lose 'module.'
    torch.save({'epoch': 3, 'model': nn.DataParallel(tiny)}, path('module_wrapped_dataparallel.pth'))
    record_module('module_wrapped_dataparallel.pth', 'torch-zip', None, lambda o: o['model'].module.state_dict())

    # 8. safetensors
    st = safetensors_tensors()
    meta = collections.OrderedDict([('format', 'pt'), ('note', 'unicod\u00e9 \u2713'), ('empty', '')])
    write_safetensors(path('st_basic.safetensors'), st, metadata=meta)
    # the same tensors in another legal layout: header order != data order, spaces in the JSON, no padding,
    # no metadata
    names = list(st.keys())
    write_safetensors(path('st_reordered.safetensors'), st, header_order=names[::-1], data_order=names,
                      separators=(', ', ': '), pad=False)
    for name, m in (('st_basic.safetensors', meta), ('st_reordered.safetensors', None)):
        back = read_safetensors_py(path(name))
        for k, v in st.items():  # bit-exact, NaN included
            assert back[k].dtype == v.dtype and back[k].shape == v.shape and raw_le_bytes(back[k]) == raw_le_bytes(v)
        fixtures[name] = collections.OrderedDict(
            format='safetensors', state_dict=encode_state_dict(back),
            metadata=m or {}, byte_identical_rewrite=(name == 'st_basic.safetensors'))

    write_pickle_cases(path('pickles.json'))

    meta = collections.OrderedDict(
        generator='tools/torch/make_weight_fixtures.py',
        torch_version=torch.__version__,
        python_version=sys.version.split()[0],
        fixtures=fixtures,
    )
    with open(path('expected.json'), 'w') as f:
        json.dump(meta, f, indent=1)
        f.write('\n')
    total = 0
    for name in sorted(os.listdir(OUT)):
        size = os.path.getsize(path(name))
        total += size
        print('%8d  %s' % (size, name))
    print('%8d  total' % total)


if __name__ == '__main__':
    main()
