#!/usr/bin/env python3
"""PyTorch fixtures for SCUNet (run with Debian's python3-torch: /usr/bin/python3 tools/torch/make_scunet_fixtures.py).

Writes test/fixtures/scunet/<name>.json, <name>.input.f32 and <name>.output.f32 (little-endian float32, NCHW,
inputs uniform in [0, 1)), plus tiny_gray.pth. The network is our own definition in nets/scunet.py.

- Full-size configurations (config=[4]*7, dim=64, the released gray and colour models) use seeded weights
  (seeded_weights.fill_module): the JSON carries the seed and the key/shape manifest and the test regenerates
  the identical tensors (test/helpers/seeded-weights.ts); no weights are committed.
- The smallest real SCUNet is still large: the Swin half of level 1 (dim/2 channels) must be whole 32-wide
  heads, so dim >= 64, and even one block per stage is ~5.5M parameters (22 MB). To commit a real torch.save
  file anyway, `tiny_gray.pth` stores its parameters as strided views into a few small shared storages (one per
  value range): PyTorch writes each storage once and every key as (storage, offset, size, stride), so the file
  is ~0.4 MB while keys, shapes and dtypes are exactly those of a real checkpoint. Large weights overlap
  within their storage (row o+1 is row o shifted by a few elements), which is harmless for a numerical test.
  It also exercises the reader on non-contiguous, offset, shared views. Its config has empty stages (0 blocks
  in m_down3 and m_up2), so stage indices are not all the released ones.

Every case also reports the float32-vs-float64 PyTorch difference: the accuracy floor any f32 port can reach.
"""
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from nets.scunet import SCUNet  # noqa: E402
from seeded_weights import fill_module, value_range  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'scunet')

SHARED_STORAGE_ELEMENTS = 8192


def ts_config(in_nc, dim, config):
    """Our TypeScript SCUNetConfig (src/models/scunet.ts)."""
    return {'inChannels': in_nc, 'dim': dim, 'blocks': list(config)}


def share_storages(model, gen):
    """Replace every parameter by a strided view into a small shared storage of its value range (see above)."""
    storages = {}
    n = SHARED_STORAGE_ELEMENTS
    with torch.no_grad():
        for name, p in model.named_parameters():
            shape = list(p.shape)
            lo, hi = value_range(name, shape)
            if len(shape) >= 2:
                # Half-octave buckets of the fan-in bound b = sqrt(3 / fan_in).
                k = round(2 * math.log2(hi))
                lo, hi = -(2 ** (k / 2)), 2 ** (k / 2)
            key = (round(lo, 6), round(hi, 6))
            if key not in storages:
                storages[key] = lo + (hi - lo) * torch.rand(n, generator=gen)
            storage = storages[key]
            rows = shape[0]
            row = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            inner = [int(np.prod(shape[i + 1:])) for i in range(1, len(shape))]
            if rows * row <= n:
                row_stride = row
            else:
                row_stride = (n - row) // (rows - 1)
                assert row_stride >= 1, name
            span = (rows - 1) * row_stride + row
            offset = int(torch.randint(0, n - span + 1, (1,), generator=gen))
            p.data = torch.as_strided(storage, shape, [row_stride] + inner, offset)
    return len(storages)


def run(model, x):
    model.eval()
    with torch.no_grad():
        y = model(x)
        y64 = model.double()(x.double())
        model.float()
    rel = float(torch.linalg.norm(y.double() - y64) / torch.linalg.norm(y64))
    return y, rel


def to_json(meta):
    """Indented JSON with one manifest entry per line (a 540-key manifest stays short and diffable)."""
    lines = []
    for k, v in meta.items():
        if k == 'manifest':
            body = ',\n'.join('  ' + json.dumps(e) for e in v)
            lines.append(f' "{k}": [\n{body}\n ]')
        else:
            lines.append(f' {json.dumps(k)}: {json.dumps(v)}')
    return '{\n' + ',\n'.join(lines) + '\n}\n'


def write_case(name, in_nc, dim, config, x, y, rel64, weights):
    x.numpy().astype('<f4').tofile(os.path.join(OUT, name + '.input.f32'))
    y.numpy().astype('<f4').tofile(os.path.join(OUT, name + '.output.f32'))
    meta = {
        'architecture': 'SCUNet',
        'config': ts_config(in_nc, dim, config),
        'kwargs': {'in_nc': in_nc, 'config': list(config), 'dim': dim},
        **weights,
        'inputShape': list(x.shape),
        'outputShape': list(y.shape),
        'float32VsFloat64RelL2': rel64,
        'torch': torch.__version__,
    }
    with open(os.path.join(OUT, name + '.json'), 'w') as f:
        f.write(to_json(meta))
    print(f'{name}: {tuple(x.shape)} -> {tuple(y.shape)}, |y| max {y.abs().max():.3g}, f32 vs f64 relL2 {rel64:.2e}')


def seeded_case(name, in_nc, size, seed, gen):
    config = [4] * 7
    model = SCUNet(in_nc=in_nc, config=config, dim=64)
    manifest = fill_module(model, seed)
    x = torch.rand((1, in_nc) + size, generator=gen)
    y, rel = run(model, x)
    write_case(name, in_nc, 64, config, x, y, rel, {'seed': seed, 'manifest': manifest})


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(2024)

    # Tiny real checkpoint: empty stages, two blocks (W then SW) in level 1 and the body.
    tiny_config = [2, 1, 0, 2, 1, 0, 2]
    tiny = SCUNet(in_nc=1, config=tiny_config, dim=64)
    groups = share_storages(tiny, gen)
    pth = os.path.join(OUT, 'tiny_gray.pth')
    torch.save(tiny.state_dict(), pth)
    print(f'tiny_gray.pth: {len(tiny.state_dict())} keys in {groups} shared storages, {os.path.getsize(pth)} bytes')
    for name, size in (('tiny_gray', (70, 45)), ('tiny_gray_single_window', (17, 29))):
        x = torch.rand((1, 1) + size, generator=gen)
        y, rel = run(tiny, x)
        write_case(name, 1, 64, tiny_config, x, y, rel, {'checkpoint': 'tiny_gray.pth'})

    # The released configurations with seeded weights: gray with padding in both directions (128x128 inside),
    # colour on a small odd image (64x64 inside, so the body is one 8x8 window, attended by W and SW blocks).
    seeded_case('full_gray_72x100', 1, (72, 100), 25, gen)
    seeded_case('full_color_40x56', 3, (40, 56), 50, gen)


if __name__ == '__main__':
    sys.exit(main())
