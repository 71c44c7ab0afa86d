#!/usr/bin/env python3
"""PyTorch fixtures for ESRGAN's RRDBNet and the SINSR generator (run with Debian's python3-torch: /usr/bin/python3).

Writes test/fixtures/rrdbnet/ and test/fixtures/sinsr/. Each fixture is
  <name>.json        {architecture, config (our TypeScript config), kwargs (the PyTorch constructor's), keyScheme?,
                      checkpoint (a .pth next to it) or seed + manifest (tools/torch/seeded_weights.py), inputShape,
                      outputShape, torch}
  <name>.input.f32   little-endian float32, NCHW
  <name>.output.f32  little-endian float32, NCHW
Tiny RRDBNets commit real .pth files in every key layout: BasicSR wrapped as {'params': ...} or as
{'params_ema': ..., 'params': <other weights>} (the EMA weights are the ones that must load), xinntao's plain
dict, and the 2018 layout. Each layout's output comes from its own module tree (tools/torch/nets/rrdbnet.py),
loaded strictly, and must equal the BasicSR module's output. Full-size networks use seeded weights.
"""
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from nets.rrdbnet import RRDBNet, RRDBNetOld, RRDBNetXinntao, basicsr_to_old, basicsr_to_xinntao  # noqa: E402
from nets.sinsr import SINSRGenerator  # noqa: E402
from seeded_weights import fill_module  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, 'test', 'fixtures')


def randomize(module, gen, scale=1.0):
    """Trained-looking random weights: fan-in scaled uniform, small biases."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() > 1:
                b = scale * (3.0 / np.prod(p.shape[1:])) ** 0.5
                p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * b)
            else:
                p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * 0.1)


def save_arrays(out_dir, name, x, y):
    x.numpy().astype('<f4').tofile(os.path.join(out_dir, name + '.input.f32'))
    y.numpy().astype('<f4').tofile(os.path.join(out_dir, name + '.output.f32'))


def write_meta(out_dir, name, meta, x, y):
    meta = dict(meta)
    meta['inputShape'] = list(x.shape)
    meta['outputShape'] = list(y.shape)
    meta['torch'] = torch.__version__
    manifest = meta.pop('manifest', None)
    text = json.dumps(meta, indent=1)
    if manifest is not None:  # one line per tensor keeps the file small and still readable
        rows = ',\n'.join('  ' + json.dumps(e, separators=(',', ':')) for e in manifest)
        text = text[:-2] + ',\n "manifest": [\n' + rows + '\n ]\n}'
    with open(os.path.join(out_dir, name + '.json'), 'w') as f:
        f.write(text + '\n')
    print('%-28s %-16s -> %-16s |y| mean %.3g, std %.3g' % (name, tuple(x.shape), tuple(y.shape), y.abs().mean(), y.std()))


# ---------------------------------------------------------------------------------------------------------------- RRDBNet

RRDB_DIR = os.path.join(FIXTURES, 'rrdbnet')


def rrdb_config(kw):
    return {'inChannels': kw['num_in_ch'], 'outChannels': kw['num_out_ch'], 'numFeat': kw['num_feat'],
            'numGrowCh': kw['num_grow_ch'], 'numBlock': kw['num_block'], 'scale': kw['scale']}


def run(model, x):
    model.eval()
    with torch.no_grad():
        return model(x)


def rrdb_real(name, kw, shape, gen, schemes):
    """A tiny RRDBNet with real .pth files, one fixture per key scheme."""
    net = RRDBNet(**kw)
    randomize(net, gen)
    x = torch.rand(shape, generator=gen)
    y = run(net, x)
    sd = net.state_dict()
    base = {'architecture': 'RRDBNet', 'config': rrdb_config(kw), 'kwargs': kw}
    for scheme in schemes:
        fname = '%s_%s' % (name, scheme)
        if scheme == 'basicsr':
            payload, ys = {'params': sd}, y
        elif scheme == 'basicsr_ema':
            other = RRDBNet(**kw)
            randomize(other, gen)  # different weights under 'params': the EMA ones must win
            payload, ys = {'params_ema': sd, 'params': other.state_dict()}, y
        elif scheme == 'xinntao':
            m = RRDBNetXinntao(kw['num_in_ch'], kw['num_out_ch'], kw['num_feat'], kw['num_block'], kw['num_grow_ch'])
            payload = basicsr_to_xinntao(sd)
            m.load_state_dict(payload, strict=True)
            ys = run(m, x)
        elif scheme == 'old':
            m = RRDBNetOld(kw['num_in_ch'], kw['num_out_ch'], kw['num_feat'], kw['num_block'], kw['num_grow_ch'])
            payload = basicsr_to_old(sd, kw['num_block'])
            m.load_state_dict(payload, strict=True)
            ys = run(m, x)
        else:
            raise ValueError(scheme)
        assert torch.equal(ys, y), '%s: %s layout output differs from BasicSR' % (name, scheme)
        torch.save(payload, os.path.join(RRDB_DIR, fname + '.pth'))
        save_arrays(RRDB_DIR, fname, x, ys)
        key_scheme = 'basicsr' if scheme.startswith('basicsr') else scheme
        write_meta(RRDB_DIR, fname, dict(base, keyScheme=key_scheme, checkpoint=fname + '.pth'), x, ys)


def rrdb_seeded(name, kw, shape, seed, gen):
    net = RRDBNet(**kw)
    manifest = fill_module(net, seed)
    x = torch.rand(shape, generator=gen)
    y = run(net, x)
    save_arrays(RRDB_DIR, name, x, y)
    write_meta(RRDB_DIR, name, {'architecture': 'RRDBNet', 'config': rrdb_config(kw), 'kwargs': kw, 'keyScheme': 'basicsr',
                                'seed': seed, 'manifest': manifest}, x, y)


# ---------------------------------------------------------------------------------------------------------------- SINSR

SINSR_DIR = os.path.join(FIXTURES, 'sinsr')


def sinsr_config(kw):
    return {'inChannels': kw['in_ch'], 'outChannels': kw['out_ch'], 'firstFeat': kw['first_feat'],
            'numFeat': kw['num_feat'], 'growth': kw['growth'], 'numLayers': kw['num_layers'], 'numRDBs': kw['num_rdbs'],
            'numRRDBs': kw['num_rrdbs'], 'attention': kw['attention'] or 'none', 'reduction': kw['reduction']}


def sinsr_seeded(name, kw, shape, seed, gen):
    net = SINSRGenerator(**kw)
    manifest = fill_module(net, seed)
    x = torch.rand(shape, generator=gen) * 2 - 1  # the model's input range is [-1, 1]
    y = run(net, x)
    # tanh saturating everywhere would make the comparison weak: insist on a spread of outputs.
    assert (y.abs() < 0.99).float().mean() > 0.5, '%s: tanh output is saturated' % name
    save_arrays(SINSR_DIR, name, x, y)
    arch = 'SINSR-CBAM' if kw['attention'] == 'cbam' else 'SINSR'
    write_meta(SINSR_DIR, name, {'architecture': arch, 'config': sinsr_config(kw), 'kwargs': kw, 'seed': seed,
                                 'manifest': manifest}, x, y)


def main():
    os.makedirs(RRDB_DIR, exist_ok=True)
    os.makedirs(SINSR_DIR, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(20240611)

    tiny = dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, num_grow_ch=4)
    rrdb_real('tiny_x4', dict(tiny, scale=4), (1, 3, 11, 9), gen, ['basicsr', 'basicsr_ema', 'xinntao', 'old'])
    rrdb_real('tiny_x2', dict(tiny, num_block=1, scale=2), (1, 3, 12, 10), gen, ['basicsr_ema'])
    rrdb_real('tiny_x1', dict(tiny, num_block=1, scale=1), (1, 3, 12, 8), gen, ['basicsr'])
    # Channel counts that are not multiples of 4: the dense block's concatenation has gaps between its pieces.
    rrdb_real('odd_gray_x4', dict(num_in_ch=1, num_out_ch=1, num_feat=6, num_block=1, num_grow_ch=3, scale=4),
              (1, 1, 7, 5), gen, ['basicsr'])
    rrdb_seeded('full_esrgan_x4', dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32, scale=4),
                (1, 3, 12, 10), 7, gen)

    tiny_s = dict(in_ch=3, out_ch=3, first_feat=6, num_feat=8, growth=3, num_layers=2, num_rdbs=2, num_rrdbs=1,
                  attention=None, reduction=8)  # reduction only matters with CBAM; 8 is the TypeScript default
    sinsr_seeded('tiny', tiny_s, (1, 3, 6, 8), 11, gen)
    sinsr_seeded('tiny_cbam', dict(tiny_s, attention='cbam', reduction=4), (1, 3, 8, 6), 12, gen)
    full_s = dict(in_ch=3, out_ch=3, first_feat=128, num_feat=64, growth=4, num_layers=5, num_rdbs=5, num_rrdbs=2,
                  attention=None, reduction=8)
    n = sum(p.numel() for p in SINSRGenerator(**full_s).parameters())
    assert n == 2212711, n  # networks.md §0
    sinsr_seeded('arch7', full_s, (1, 3, 16, 12), 13, gen)
    sinsr_seeded('arch7_cbam', dict(full_s, attention='cbam'), (1, 3, 12, 16), 14, gen)


if __name__ == '__main__':
    sys.exit(main())
