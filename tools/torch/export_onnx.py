#!/usr/bin/env python3
"""ONNX exports of our full-size networks for the peer comparison (bench/peers.ts).

Run with Debian's python3-torch: /usr/bin/python3 tools/torch/export_onnx.py [--networks dncnn,unet] [--sizes 50x70]

Every network is our own PyTorch definition (tools/torch/nets/, and the KAIR DnCNN of dncnn_reference.py) in eval
mode, filled with the SEEDED weights of seeded_weights.fill_module: bench/peers.ts regenerates the identical
tensors in TypeScript from the seed and the key/shape manifest (test/helpers/seeded-weights.ts), so our kernels,
onnxruntime-web and onnxruntime-node all run the very same numbers. Writes to bench/.onnx/ (gitignored; RRDBNet
alone is 67 MB):

  <network>.onnx               dynamic H/W (batch 1), for networks whose graph does not depend on the size
  <network>.<W>x<H>.onnx       one per size, for SCUNet: its shifted-window mask and window reshapes are built
                               from the padded size at trace time, so a traced graph is only valid for one size
  <network>.json               seed, manifest, our TypeScript config, the PyTorch kwargs, opset, files, references
  <network>.<W>x<H>.output.f32 PyTorch's float32 output (NCHW, little endian) for the bench input below

The bench input is the deterministic pattern of bench/models.ts: element i of the NCHW input (C-order) is
((i * 7919) % 256) / 255 (computed in float64, rounded to float32, as TypeScript does).
Sizes are W x H (image convention, as bench/peers.ts --size). Without --sizes each network gets its default.
"""
import argparse
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # keep __pycache__ out of the repository

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import nets.scunet  # noqa: E402
from nets.msrresnet import MSRResNet  # noqa: E402
from nets.rrdbnet import RRDBNet  # noqa: E402
from nets.scunet import SCUNet  # noqa: E402
from nets.smp_unet import SmpUnet, padded_forward  # noqa: E402
from nets.unet import UNet  # noqa: E402
from seeded_weights import fill_module  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, 'bench', '.onnx')
# torch 1.13 exports up to opset 17 (LayerNormalization is a single op from 17 on).
OPSET = 17


class KairDnCNN(nn.Module):
    """KAIR's DnCNN 'R' (BatchNorm merged, as the built-in dncnn_25 weights): keys model.N, output x - model(x).
    The same layout as tools/torch/dncnn_reference.py, restated here so this script needs no PIL."""

    def __init__(self, in_nc=1, nc=64, nb=17):
        super().__init__()
        layers = [nn.Conv2d(in_nc, nc, 3, 1, 1, bias=True), nn.ReLU(inplace=True)]
        for _ in range(nb - 2):
            layers += [nn.Conv2d(nc, nc, 3, 1, 1, bias=True), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(nc, in_nc, 3, 1, 1, bias=True))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return x - self.model(x)


def traceable_shifted_window_mask(n_wh, n_ww, ws=8):
    """nets.scunet.shifted_window_mask without its in-place `|=` on slices (aten::__ior_, which torch 1.13 cannot
    export): the same boolean mask, built from comparisons. Checked equal to the original below."""
    s = ws // 2
    r = torch.arange(ws).repeat_interleave(ws)
    c = torch.arange(ws).repeat(ws)
    row_split = (r[:, None] < s) != (r[None, :] < s)
    col_split = (c[:, None] < s) != (c[None, :] < s)
    last_row = (torch.arange(n_wh) == n_wh - 1)[:, None, None, None]
    last_col = (torch.arange(n_ww) == n_ww - 1)[None, :, None, None]
    mask = (last_row & row_split) | (last_col & col_split)
    return mask.reshape(n_wh * n_ww, ws * ws, ws * ws)


def use_traceable_scunet_mask():
    for n_wh, n_ww in ((1, 1), (2, 3), (4, 4), (16, 12)):
        assert torch.equal(traceable_shifted_window_mask(n_wh, n_ww), nets.scunet.shifted_window_mask(n_wh, n_ww))
    nets.scunet.shifted_window_mask = traceable_shifted_window_mask  # WMSA.forward looks it up at call time


class PaddedSmpUnet(nn.Module):
    """smp's Unet needs multiples of 32; our TypeScript model pads right/bottom (replicate), runs and crops. The
    export puts that padding inside the graph so that ONNX Runtime runs exactly what we run, at any size."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, x):
        return padded_forward(self.unet, x, 'replicate')


def residual_dncnn(model, x, y):
    """How much of the output is the network's (not the input copied through): ||model(x)|| / ||y||."""
    return rel_norm(x - y, y)


def residual_msrresnet(model, x, y):
    """How much of the output is not the bilinear base: ||y - bilinear(x)|| / ||y||."""
    base = F.interpolate(x, scale_factor=4, mode='bilinear', align_corners=False)
    return rel_norm(y - base, y)


# key: (description, architecture name in src/models/registry.ts, seed, PyTorch constructor + kwargs, our TypeScript
# config, default W x H, dynamic H/W, residual measure or None). Seeds are fixed here so every export is the same.
NETWORKS = {
    'dncnn': dict(
        description='DnCNN-17 gray (KAIR layout, seeded weights)',
        architecture='DnCNN', seed=101,
        make=lambda: KairDnCNN(1, 64, 17), kwargs={'in_nc': 1, 'nc': 64, 'nb': 17, 'act_mode': 'R'},
        config={'inChannels': 1, 'outChannels': 1, 'nc': 64, 'nb': 17, 'actMode': 'R'},
        size=(50, 70), dynamic=True, residual=residual_dncnn),
    'scunet': dict(
        description='SCUNet gray, config [4]x7, dim 64',
        architecture='SCUNet', seed=102,
        make=lambda: SCUNet(in_nc=1, config=[4] * 7, dim=64), kwargs={'in_nc': 1, 'config': [4] * 7, 'dim': 64},
        config={'inChannels': 1, 'dim': 64, 'blocks': [4] * 7},
        size=(100, 72), dynamic=False, residual=None),
    'unet': dict(
        description='U-Net (milesial) gray, 64 base, transposed conv',
        architecture='UNet', seed=103,
        make=lambda: UNet(1, 1, bilinear=False, base=64),
        kwargs={'n_channels': 1, 'n_classes': 1, 'bilinear': False, 'base': 64, 'sigmoid': False},
        config={'inChannels': 1, 'outChannels': 1, 'bilinear': False, 'baseChannels': 64, 'sigmoid': False},
        size=(80, 64), dynamic=True, residual=None),
    'resnet34-unet': dict(
        description='ResNet34-SCSE U-Net (smp layout) gray, replicate-padded to 32',
        architecture='ResNet34UNet', seed=104,
        make=lambda: PaddedSmpUnet(SmpUnet(1, 1, decoder_attention_type='scse')),
        kwargs={'encoder_name': 'resnet34', 'in_channels': 1, 'classes': 1, 'decoder_attention_type': 'scse',
                'decoder_channels': [256, 128, 64, 32, 16], 'activation': None, 'padding': 'replicate to 32'},
        config={'inChannels': 1, 'outChannels': 1, 'decoderChannels': [256, 128, 64, 32, 16], 'attention': 'scse',
                'sigmoid': False, 'sizePolicy': 'pad', 'padMode': 'replicate'},
        size=(128, 96), dynamic=True, residual=None),
    'rrdbnet': dict(
        description='ESRGAN RRDBNet x4 RGB, 64/32/23',
        architecture='RRDBNet', seed=105,
        make=lambda: RRDBNet(num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=23, num_grow_ch=32),
        kwargs={'num_in_ch': 3, 'num_out_ch': 3, 'scale': 4, 'num_feat': 64, 'num_block': 23, 'num_grow_ch': 32},
        config={'inChannels': 3, 'outChannels': 3, 'numFeat': 64, 'numGrowCh': 32, 'numBlock': 23, 'scale': 4},
        size=(32, 32), dynamic=True, residual=None),
    'msrresnet': dict(
        description='MSRResNet x4 RGB, 64 feat, 16 blocks',
        architecture='MSRResNet', seed=106,
        make=lambda: MSRResNet(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=4),
        kwargs={'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 64, 'num_block': 16, 'upscale': 4},
        config={'inChannels': 3, 'outChannels': 3, 'features': 64, 'blocks': 16, 'scale': 4},
        size=(32, 32), dynamic=True, residual=residual_msrresnet),
}


def rel_norm(part, whole):
    return float(torch.linalg.norm(part.double()) / torch.linalg.norm(whole.double()))


def bench_input(channels, width, height):
    """bench/models.ts pattern(): ((i * 7919) % 256) / 255 over the NCHW elements, float64 then float32."""
    i = np.arange(channels * height * width, dtype=np.int64)
    v = ((i * 7919) % 256).astype(np.float64) / 255.0
    return torch.from_numpy(v.astype(np.float32).reshape(1, channels, height, width))


def parse_size(text):
    w, h = text.lower().replace('\u00d7', 'x').split('x')
    return int(w), int(h)


def export(model, x, path, dynamic):
    axes = {'input': {2: 'height', 3: 'width'}, 'output': {2: 'out_height', 3: 'out_width'}} if dynamic else None
    t0 = time.time()
    with torch.no_grad():
        torch.onnx.export(model, x, path, opset_version=OPSET, input_names=['input'], output_names=['output'],
                          dynamic_axes=axes, do_constant_folding=True)
    print('  %s: %.1f MB in %.1f s' % (os.path.relpath(path, ROOT), os.path.getsize(path) / 1e6, time.time() - t0))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--networks', default=','.join(NETWORKS), help='comma-separated: ' + ', '.join(NETWORKS))
    parser.add_argument('--sizes', help='comma-separated W x H sizes for every chosen network (default: its own)')
    parser.add_argument('--no-float64', action='store_true', help='skip the float32-vs-float64 PyTorch check')
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    use_traceable_scunet_mask()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

    for key in [k.strip() for k in args.networks.split(',') if k.strip()]:
        if key not in NETWORKS:
            parser.error('unknown network %r (known: %s)' % (key, ', '.join(NETWORKS)))
        spec = NETWORKS[key]
        sizes = [parse_size(s) for s in args.sizes.split(',')] if args.sizes else [spec['size']]
        model = spec['make']().eval()
        # The padding wrapper of the smp U-Net holds the real module as `.unet`: the keys (and so the seeded values)
        # must be the module's own, as our TypeScript model names them.
        manifest = fill_module(model.unet if isinstance(model, PaddedSmpUnet) else model, spec['seed'])
        in_ch = spec['config']['inChannels']
        print('%s: %s, seed %d, %d tensors' % (key, spec['description'], spec['seed'], len(manifest)))

        meta_path = os.path.join(OUT, key + '.json')
        old = {}
        if os.path.exists(meta_path):
            with open(meta_path) as f:
                old = json.load(f)
        # Keep references of earlier runs at other sizes, as long as they were made with the same weights.
        references = {r['size']: r for r in old.get('references', []) if old.get('seed') == spec['seed']}
        files = dict(old.get('files', {})) if old.get('seed') == spec['seed'] else {}

        if spec['dynamic']:
            w, h = sizes[0]
            export(model, bench_input(in_ch, w, h), os.path.join(OUT, key + '.onnx'), True)
            files['*'] = key + '.onnx'
        for w, h in sizes:
            size = '%dx%d' % (w, h)
            x = bench_input(in_ch, w, h)
            if not spec['dynamic']:
                export(model, x, os.path.join(OUT, '%s.%s.onnx' % (key, size)), False)
                files[size] = '%s.%s.onnx' % (key, size)
            with torch.no_grad():
                y = model(x)
                other = model(torch.rand(x.shape, generator=torch.Generator().manual_seed(7)))
            out_file = '%s.%s.output.f32' % (key, size)
            y.numpy().astype('<f4').tofile(os.path.join(OUT, out_file))
            ref = {
                'size': size,
                'inputShape': list(x.shape),
                'outputShape': list(y.shape),
                'output': out_file,
                # ||f(x') - f(x)|| / ||f(x)|| for an unrelated input x': a comparison is only meaningful when the
                # output really depends on the input (deep nets with seeded weights can be bias-dominated).
                'sensitivity': rel_norm(other - y, y),
            }
            if spec['residual']:
                ref['residualRelNorm'] = spec['residual'](model, x, y)
            if not args.no_float64:
                with torch.no_grad():
                    y64 = model.double()(x.double())
                model.float()
                # The accuracy floor any float32 implementation can be expected to reach.
                ref['float32VsFloat64RelL2'] = rel_norm(y.double() - y64, y64)
            references[size] = ref
            print('  %s -> %s, sensitivity %.3g%s' % (tuple(x.shape), tuple(y.shape), ref['sensitivity'],
                  ', f32 vs f64 relL2 %.2e' % ref['float32VsFloat64RelL2'] if 'float32VsFloat64RelL2' in ref else ''))

        meta = {
            'network': key,
            'description': spec['description'],
            'architecture': spec['architecture'],
            'config': spec['config'],
            'kwargs': spec['kwargs'],
            'seed': spec['seed'],
            'opset': OPSET,
            'dynamicAxes': spec['dynamic'],
            # '*': one file for every size (dynamic H/W); otherwise one file per 'WxH'.
            'files': files,
            'input': 'bench/models.ts pattern: NCHW element i = ((i * 7919) % 256) / 255',
            'references': sorted(references.values(), key=lambda r: r['size']),
            'torch': torch.__version__,
            'manifest': manifest,
        }
        with open(meta_path, 'w') as f:
            text = json.dumps({k: v for k, v in meta.items() if k != 'manifest'}, indent=1)
            # One manifest entry per line keeps the file short to scroll through.
            rows = ',\n'.join('  ' + json.dumps(e) for e in manifest)
            f.write(text[:-2] + ',\n "manifest": [\n' + rows + '\n ]\n}\n')


if __name__ == '__main__':
    sys.exit(main())
