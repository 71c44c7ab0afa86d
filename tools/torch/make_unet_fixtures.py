#!/usr/bin/env python3
"""PyTorch fixtures for the two U-Nets (run with Debian's python3-torch: /usr/bin/python3).

Networks: nets/unet.py (milesial's U-Net, transposed-conv and bilinear variants) and nets/smp_unet.py (smp Unet with
a ResNet34 encoder, with and without SCSE decoder attention). Writes to test/fixtures/unet/:
  <name>.json        {architecture, config (our TypeScript config), kwargs (the PyTorch constructor's), seed,
                      checkpoint (tiny networks: a real .pth) or manifest (full-size: key/shape list for the seeded
                      weights of tools/torch/seeded_weights.py), inputShape, outputShape, sensitivity, torch}
  <name>.input.f32 / <name>.output.f32   little-endian float32, NCHW
  <checkpoint>.pth   tiny networks only, in milesial's wrapper: the plain state_dict plus a `mask_values` list
Every BatchNorm gets non-trivial statistics from the seeded weights (running_var in [0.5, 1.5)).

`sensitivity` is ||f(x') - f(x)|| / ||f(x)|| for an unrelated input x': deep networks with unit-variance seeded
weights can end up with outputs dominated by biases, and a fixture whose output hardly depends on the input would
not catch wiring mistakes; the test's 1e-4 tolerance is meaningful only when this is much larger.
"""
import json
import os
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the repository

import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from nets.smp_unet import SmpUnet, padded_forward  # noqa: E402
from nets.unet import UNet  # noqa: E402
from seeded_weights import fill_module  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'unet')


def rel_l2(a, b):
    return float((a - b).norm() / b.norm())


def write_fixture(name, meta, forward, x, gen):
    with torch.no_grad():
        y = forward(x)
        other = forward(torch.rand(x.shape, generator=gen))
    x.numpy().astype('<f4').tofile(os.path.join(OUT, name + '.input.f32'))
    y.numpy().astype('<f4').tofile(os.path.join(OUT, name + '.output.f32'))
    meta = dict(meta)
    meta.update({
        'inputShape': list(x.shape),
        'outputShape': list(y.shape),
        'sensitivity': round(rel_l2(other, y), 6),
        'torch': torch.__version__,
    })
    manifest = meta.pop('manifest', None)
    with open(os.path.join(OUT, name + '.json'), 'w') as f:
        text = json.dumps(meta, indent=2)
        if manifest is not None:
            # One manifest entry per line keeps the file readable and diffs small.
            rows = ',\n'.join('    ' + json.dumps(e) for e in manifest)
            text = text[:-2] + ',\n  "manifest": [\n' + rows + '\n  ]\n}'
        f.write(text + '\n')
    print('%-34s %-18s -> %-18s sensitivity %.3g' % (name, tuple(x.shape), tuple(y.shape), meta['sensitivity']))


def unet_meta(n_channels, n_classes, bilinear, base, sigmoid):
    return {
        'architecture': 'UNet',
        'config': {'inChannels': n_channels, 'outChannels': n_classes, 'bilinear': bilinear, 'baseChannels': base,
                   'sigmoid': sigmoid},
        'kwargs': {'n_channels': n_channels, 'n_classes': n_classes, 'bilinear': bilinear, 'base': base,
                   'sigmoid': sigmoid},
    }


def tiny_unet(name, seed, n_channels, n_classes, bilinear, mask_values, cases, gen):
    """A base-4 U-Net saved as a real checkpoint, and one fixture per (height, width, sigmoid) case, all sharing
    that .pth (the sigmoid is not in the state_dict)."""
    model = UNet(n_channels, n_classes, bilinear=bilinear, base=4).eval()
    fill_module(model, seed)
    sd = model.state_dict()
    sd['mask_values'] = mask_values  # what milesial's train.py adds before torch.save
    torch.save(sd, os.path.join(OUT, name + '.pth'))
    for h, w, sigmoid in cases:
        model.sigmoid = sigmoid
        meta = unet_meta(n_channels, n_classes, bilinear, 4, sigmoid)
        meta.update({'seed': seed, 'checkpoint': name + '.pth'})
        suffix = '_sigmoid' if sigmoid else ''
        x = torch.rand(1, n_channels, h, w, generator=gen)
        write_fixture('%s_%dx%d%s' % (name, h, w, suffix), meta, model, x, gen)


def full_unet(name, seed, n_channels, n_classes, bilinear, size, gen, sigmoid=False):
    model = UNet(n_channels, n_classes, bilinear=bilinear, base=64, sigmoid=sigmoid).eval()
    meta = unet_meta(n_channels, n_classes, bilinear, 64, sigmoid)
    meta.update({'seed': seed, 'manifest': fill_module(model, seed)})
    write_fixture(name, meta, model, torch.rand(1, n_channels, *size, generator=gen), gen)


def resnet34_unet(name, seed, in_channels, classes, attention, size, gen, sigmoid=False,
                  decoder_channels=(256, 128, 64, 32, 16), pad_mode='replicate'):
    model = SmpUnet(in_channels, classes, decoder_attention_type=attention, decoder_channels=decoder_channels,
                    activation='sigmoid' if sigmoid else None).eval()
    torch_mode = {'replicate': 'replicate', 'zeros': 'constant', 'reflect': 'reflect'}[pad_mode]
    meta = {
        'architecture': 'ResNet34UNet',
        'config': {'inChannels': in_channels, 'outChannels': classes, 'decoderChannels': list(decoder_channels),
                   'attention': attention or 'none', 'sigmoid': sigmoid, 'sizePolicy': 'pad', 'padMode': pad_mode},
        'kwargs': {'encoder_name': 'resnet34', 'encoder_weights': None, 'in_channels': in_channels, 'classes': classes,
                   'decoder_attention_type': attention, 'decoder_channels': list(decoder_channels),
                   'activation': 'sigmoid' if sigmoid else None},
        'padding': 'F.pad(x, (0, -W %% 32, 0, -H %% 32), mode=%r), run, crop' % torch_mode,
        'seed': seed,
        'manifest': fill_module(model, seed),
    }
    write_fixture(name, meta, lambda t: padded_forward(model, t, torch_mode),
                  torch.rand(1, in_channels, *size, generator=gen), gen)


def main():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(2024)
    torch.set_num_threads(2)

    tiny_unet('unet_tiny_transposed_rgb', 11, 3, 2, False, [0, 1], [(35, 49, False), (16, 16, False)], gen)
    tiny_unet('unet_tiny_bilinear_gray', 12, 1, 1, True, [[0, 0, 0], [255, 255, 255]],
              [(23, 37, False), (64, 80, True)], gen)
    full_unet('unet_full_transposed_gray_35x49', 21, 1, 1, False, (35, 49), gen)
    full_unet('unet_full_bilinear_rgb_64x80', 22, 3, 2, True, (64, 80), gen)

    resnet34_unet('r34_scse_rgb_96x128', 31, 3, 3, 'scse', (96, 128), gen)
    resnet34_unet('r34_scse_gray_sigmoid_70x90', 32, 1, 1, 'scse', (70, 90), gen, sigmoid=True)
    resnet34_unet('r34_plain_rgb_40x52_zeros', 33, 3, 2, None, (40, 52), gen,
                  decoder_channels=(128, 64, 32, 16, 8), pad_mode='zeros')


if __name__ == '__main__':
    sys.exit(main())
