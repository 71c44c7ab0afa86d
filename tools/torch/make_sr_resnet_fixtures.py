#!/usr/bin/env python3
"""PyTorch fixtures for the DnCNN variants (cszn, SaoYan), BasicSR's MSRResNet and SRGAN's SRResNet.

Run with Debian's python3-torch: /usr/bin/python3 tools/torch/make_sr_resnet_fixtures.py [dncnn|msrresnet|srresnet ...]
(no argument: all three). The networks are our own definitions in nets/dncnn_variants.py, nets/msrresnet.py and
nets/srresnet.py.

Writes test/fixtures/{dncnn-variants,msrresnet,srresnet}/<name>.json, <name>.input.f32 and <name>.output.f32
(little-endian float32, NCHW, inputs uniform in [0, 1)). The JSON holds the architecture, our TypeScript
config, the PyTorch constructor kwargs, the input/output shapes and either
- `checkpoint`: a tiny real torch.save file next to it, in the authors' wrapper layouts (plain state_dict;
  cszn's whole pickled module in the legacy format; SaoYan's DataParallel 'module.' prefix; BasicSR's
  {'params': sd} and {'params': sd_raw, 'params_ema': sd}),
- or `seed` + `manifest`: full-size configurations filled by seeded_weights.fill_module; the test regenerates the
  identical tensors (test/helpers/seeded-weights.ts), so no full-size weights are committed.
SRResNet cases carry `forward`: {'clamp': ...}, the argument of our reference's forward (upstream always clamps).
Every case also records the float32-vs-float64 PyTorch difference (the accuracy floor of any f32 port) and,
where the output is "input + something" (DnCNN clean output, MSRResNet's bilinear base), how large that
something is, so a test that only compares the sum is known to be meaningful.
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from nets.dncnn_variants import CsznDnCNN, SaoYanDnCNN  # noqa: E402
from nets.msrresnet import MSRResNet  # noqa: E402
from nets.srresnet import SRResNet  # noqa: E402
from seeded_weights import fill_module  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, 'test', 'fixtures')


# --------------------------------------------------------------------------------------------------------------
# shared helpers


def randomize(model, gen, small_bn_var=False):
    """Trained-looking random weights for tiny real checkpoints: fan-in-scaled convs, non-zero biases, BatchNorm
    statistics away from the identity and PReLU slopes of both signs. With `small_bn_var` some running
    variances are of the order of the BatchNorm eps, so that using the wrong eps (1e-4 vs 1e-5) shows."""
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                b = (3.0 / fan_in) ** 0.5
                m.weight.copy_((torch.rand(m.weight.shape, generator=gen) * 2 - 1) * b)
                if m.bias is not None:
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(1.0 + 0.2 * torch.randn(c, generator=gen))
                m.bias.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_mean.copy_(0.2 * torch.randn(c, generator=gen))
                var = 0.5 + torch.rand(c, generator=gen)
                if small_bn_var:
                    # Half the channels get a variance of 2e-5 .. 2e-4: rsqrt(var + eps) then depends on eps by
                    # 10-200 %. Their gamma is scaled down so activations stay of order one.
                    small = torch.arange(c) % 2 == 0
                    tiny_var = 2e-5 + 1.8e-4 * torch.rand(c, generator=gen)
                    var = torch.where(small, tiny_var, var)
                    m.weight.copy_(torch.where(small, m.weight * tiny_var.sqrt(), m.weight))
                m.running_var.copy_(var)
                m.num_batches_tracked.fill_(1000)
            elif isinstance(m, nn.PReLU):
                m.weight.copy_(-0.2 + 0.8 * torch.rand(m.weight.shape, generator=gen))


def run(model, x, **forward_kwargs):
    """float32 output, and its relative L2 distance to the same network in float64."""
    model.eval()
    with torch.no_grad():
        y = model(x, **forward_kwargs)
        y64 = model.double()(x.double(), **forward_kwargs)
        model.float()
    rel = float(torch.linalg.norm(y.double() - y64) / torch.linalg.norm(y64))
    return y, rel


def rel_norm(part, whole):
    return float(torch.linalg.norm(part.double()) / torch.linalg.norm(whole.double()))


def write_case(folder, name, architecture, config, kwargs, x, y, rel64, weights, extra=None):
    out = os.path.join(FIXTURES, folder)
    x.numpy().astype('<f4').tofile(os.path.join(out, name + '.input.f32'))
    y.numpy().astype('<f4').tofile(os.path.join(out, name + '.output.f32'))
    meta = {
        'architecture': architecture,
        'config': config,
        'kwargs': kwargs,
        **weights,
        'inputShape': list(x.shape),
        'outputShape': list(y.shape),
        'float32VsFloat64RelL2': rel64,
        **(extra or {}),
        'torch': torch.__version__,
    }
    with open(os.path.join(out, name + '.json'), 'w') as f:
        json.dump(meta, f, indent=1)
    note = ', '.join(f'{k} {v:.3g}' for k, v in (extra or {}).items() if isinstance(v, float))
    print(f'{folder}/{name}: {tuple(x.shape)} -> {tuple(y.shape)}, |y| max {y.abs().max():.3g}, '
          f'f32 vs f64 relL2 {rel64:.2e}' + (f', {note}' if note else ''))


def save_checkpoint(folder, file, obj):
    path = os.path.join(FIXTURES, folder, file)
    torch.save(obj, path)
    return {'checkpoint': file}


def seeded(model, seed):
    return {'seed': seed, 'manifest': fill_module(model, seed)}


# --------------------------------------------------------------------------------------------------------------
# DnCNN variants


def main_module_class(name, base):
    """A subclass of `base` that pickles as `__main__.<name>`, like a class defined in a training script."""
    cls = type(name, (base,), {})
    cls.__module__ = '__main__'
    cls.__qualname__ = name
    setattr(sys.modules['__main__'], name, cls)
    return cls



def dncnn_config(layout, channels, features, depth, output='clean'):
    """Our TypeScript DnCNNVariantConfig (src/models/dncnn-variants.ts)."""
    return {'layout': layout, 'imageChannels': channels, 'features': features, 'depth': depth, 'output': output}


def dncnn_fixtures(gen):
    folder = 'dncnn-variants'
    os.makedirs(os.path.join(FIXTURES, folder), exist_ok=True)

    def case(name, layout, model, kwargs, x, weights, output='clean'):
        channels, features, depth = x.shape[1], model.dncnn[0].out_channels, (len(model.dncnn) + 4) // 3
        if layout == 'cszn':
            y, rel = run(model, x)  # the module returns the clean image
            noise = x - y
        else:
            noise, rel = run(model, x)  # the module returns the noise
            y = x - noise if output == 'clean' else noise
        extra = {'noiseRelNorm': rel_norm(noise, y)} if output == 'clean' else {}
        arch = 'DnCNN-cszn' if layout == 'cszn' else 'DnCNN-SaoYan'
        write_case(folder, name, arch, dncnn_config(layout, channels, features, depth, output), kwargs, x, y, rel,
                   weights, extra)

    # cszn/DnCNN: a plain state_dict of the module (the shipped model.pth is a whole pickled module instead,
    # which a safe reader cannot load; re-saving its state_dict gives exactly these keys).
    tiny = CsznDnCNN(depth=5, n_channels=8, image_channels=1)
    randomize(tiny, gen, small_bn_var=True)
    w = save_checkpoint(folder, 'cszn_tiny_gray.pth', tiny.state_dict())
    case('cszn_tiny_gray', 'cszn', tiny, {'depth': 5, 'n_channels': 8, 'image_channels': 1}, torch.rand((1, 1, 13, 11), generator=gen), w)

    tiny = CsznDnCNN(depth=4, n_channels=12, image_channels=3)
    randomize(tiny, gen, small_bn_var=True)
    w = save_checkpoint(folder, 'cszn_tiny_color.pth', tiny.state_dict())
    case('cszn_tiny_color', 'cszn', tiny, {'depth': 4, 'n_channels': 12, 'image_channels': 3}, torch.rand((1, 3, 7, 10), generator=gen), w)

    # SaoYan/DnCNN-PyTorch: its logs/*/net.pth are state_dicts of nn.DataParallel(model): 'module.' prefix.
    tiny = SaoYanDnCNN(channels=1, num_of_layers=5, features=8)
    randomize(tiny, gen, small_bn_var=True)
    w = save_checkpoint(folder, 'saoyan_tiny_gray.pth', nn.DataParallel(tiny).state_dict())
    x = torch.rand((1, 1, 12, 15), generator=gen)
    case('saoyan_tiny_gray', 'saoyan', tiny, {'channels': 1, 'num_of_layers': 5, 'features': 8}, x, w)
    case('saoyan_tiny_gray_noise', 'saoyan', tiny, {'channels': 1, 'num_of_layers': 5, 'features': 8}, x, w, output='noise')

    # Full size (17 layers, 64 features), seeded.
    x = torch.rand((1, 1, 33, 47), generator=gen)
    model = CsznDnCNN(depth=17, n_channels=64, image_channels=1)
    case('cszn_full_gray', 'cszn', model, {'depth': 17, 'n_channels': 64, 'image_channels': 1}, x, seeded(model, 17))
    model = SaoYanDnCNN(channels=1, num_of_layers=17)
    case('saoyan_full_gray', 'saoyan', model, {'channels': 1, 'num_of_layers': 17}, x, seeded(model, 18))
    model = SaoYanDnCNN(channels=3, num_of_layers=20)  # the blind DnCNN-B depth, colour
    case('saoyan_full20_color_noise', 'saoyan', model, {'channels': 3, 'num_of_layers': 20},
         torch.rand((1, 3, 19, 22), generator=gen), seeded(model, 20), output='noise')

    # cszn's released models/DnCNN_sigma25/model.pth is a whole pickled module (torch.save(model)) of a class
    # named DnCNN in its training script's __main__, in the legacy (pre-1.6) format. The same for a tiny net.
    tiny = CsznDnCNN(depth=5, n_channels=8, image_channels=1)
    randomize(tiny, gen, small_bn_var=True)
    tiny.__class__ = main_module_class('DnCNN', CsznDnCNN)
    w = {'checkpoint': 'cszn_tiny_gray_module.pth'}
    torch.save(tiny, os.path.join(FIXTURES, folder, w['checkpoint']), _use_new_zipfile_serialization=False)
    case('cszn_tiny_gray_module', 'cszn', tiny, {'depth': 5, 'n_channels': 8, 'image_channels': 1},
         torch.rand((1, 1, 9, 12), generator=gen), w)


# --------------------------------------------------------------------------------------------------------------
# MSRResNet


def msrresnet_config(cin, cout, feat, blocks, scale):
    """Our TypeScript MSRResNetConfig (src/models/msrresnet.ts)."""
    return {'inChannels': cin, 'outChannels': cout, 'features': feat, 'blocks': blocks, 'scale': scale}


def msrresnet_fixtures(gen):
    folder = 'msrresnet'
    os.makedirs(os.path.join(FIXTURES, folder), exist_ok=True)

    def case(name, model, kwargs, x, weights):
        y, rel = run(model, x)
        base = F.interpolate(x, scale_factor=kwargs['upscale'], mode='bilinear', align_corners=False)
        config = msrresnet_config(kwargs['num_in_ch'], kwargs['num_out_ch'], kwargs['num_feat'], kwargs['num_block'], kwargs['upscale'])
        write_case(folder, name, 'MSRResNet', config, kwargs, x, y, rel, weights, {'residualRelNorm': rel_norm(y - base, y)})

    def kw(cin, feat, blocks, scale):
        return {'num_in_ch': cin, 'num_out_ch': cin, 'num_feat': feat, 'num_block': blocks, 'upscale': scale}

    # Tiny real checkpoints, one per scale and per BasicSR wrapper layout.
    k = kw(3, 8, 2, 2)
    model = MSRResNet(**k)
    randomize(model, gen)
    case('tiny_x2', model, k, torch.rand((1, 3, 7, 9), generator=gen), save_checkpoint(folder, 'tiny_x2.pth', model.state_dict()))

    k = kw(1, 8, 2, 3)
    model = MSRResNet(**k)
    randomize(model, gen)
    w = save_checkpoint(folder, 'tiny_x3_params.pth', {'params': model.state_dict()})
    case('tiny_x3', model, k, torch.rand((1, 1, 6, 5), generator=gen), w)

    # BasicSR with EMA saves both; inference uses params_ema (the reader prefers it). The raw 'params' differ.
    k = kw(3, 8, 3, 4)
    model = MSRResNet(**k)
    randomize(model, gen)
    raw = {key: (t + 0.05 * torch.randn(t.shape, generator=gen) if t.is_floating_point() else t) for key, t in model.state_dict().items()}
    w = save_checkpoint(folder, 'tiny_x4_params_ema.pth', {'params': raw, 'params_ema': model.state_dict()})
    case('tiny_x4', model, k, torch.rand((1, 3, 5, 7), generator=gen), w)

    # Full size (64 features, 16 blocks), seeded, at odd LR sizes.
    for scale, size, seed in ((2, (23, 20), 42), (3, (21, 17), 43), (4, (24, 19), 44)):
        k = kw(3, 64, 16, scale)
        model = MSRResNet(**k)
        case(f'full_x{scale}', model, k, torch.rand((1, 3) + size, generator=gen), seeded(model, seed))


# --------------------------------------------------------------------------------------------------------------
# SRResNet


def srresnet_config(cin, cout, feat, blocks, scale, per_channel, clamp=True):
    """Our TypeScript SRResNetConfig (src/models/srresnet.ts)."""
    return {'inChannels': cin, 'outChannels': cout, 'features': feat, 'blocks': blocks, 'scale': scale,
            'prelu': 'channel' if per_channel else 'shared', 'clampOutput': clamp}


def srresnet_fixtures(gen):
    folder = 'srresnet'
    os.makedirs(os.path.join(FIXTURES, folder), exist_ok=True)

    def case(name, model, kwargs, x, weights, clamp=True):
        y, rel = run(model, x, clamp=clamp)
        with torch.no_grad():
            unclamped = model(x, clamp=False)
        config = srresnet_config(kwargs['in_channels'], kwargs['out_channels'], kwargs['channels'], kwargs['num_rcb'],
                                 kwargs['upscale_factor'], kwargs['prelu_per_channel'], clamp)
        clamped = float(((unclamped < 0) | (unclamped > 1)).double().mean())
        extra = {'forward': {'clamp': clamp}, 'clampedFraction': clamped}
        write_case(folder, name, 'SRResNet', config, kwargs, x, y, rel, weights, extra)

    def kw(cin, cout, feat, blocks, scale, per_channel):
        return {'in_channels': cin, 'out_channels': cout, 'channels': feat, 'num_rcb': blocks, 'upscale_factor': scale,
                'prelu_per_channel': per_channel}

    # Tiny real checkpoints: x4 with shared slopes (upstream's nn.PReLU()), x2 with per-channel slopes, gray.
    k = kw(3, 3, 8, 2, 4, False)
    model = SRResNet(**k)
    randomize(model, gen)
    w = save_checkpoint(folder, 'tiny_x4_shared.pth', model.state_dict())
    x = torch.rand((1, 3, 9, 7), generator=gen)
    case('tiny_x4_shared', model, k, x, w)
    case('tiny_x4_shared_noclamp', model, k, x, w, clamp=False)

    k = kw(1, 1, 8, 2, 2, True)
    model = SRResNet(**k)
    randomize(model, gen)
    w = save_checkpoint(folder, 'tiny_x2_channel.pth', model.state_dict())
    x = torch.rand((1, 1, 7, 6), generator=gen)
    case('tiny_x2_channel', model, k, x, w)
    case('tiny_x2_channel_noclamp', model, k, x, w, clamp=False)

    # Full size (64 channels, 16 blocks), seeded. The seeded weights make large outputs, so most of the clamped
    # output is exactly 0 or 1; the unclamped twins check the values themselves.
    k = kw(3, 3, 64, 16, 4, False)
    model = SRResNet(**k)
    w = seeded(model, 64)
    x = torch.rand((1, 3, 24, 20), generator=gen)
    case('full_x4', model, k, x, w)
    case('full_x4_noclamp', model, k, x, w, clamp=False)

    k = kw(3, 3, 64, 16, 2, True)
    model = SRResNet(**k)
    w = seeded(model, 65)
    x = torch.rand((1, 3, 23, 19), generator=gen)
    case('full_x2_channel_noclamp', model, k, x, w, clamp=False)

    # x8 (three upsample blocks), 3 -> 1 channels (no global skip ties them), tiny and real.
    k = kw(3, 1, 4, 1, 8, True)
    model = SRResNet(**k)
    randomize(model, gen)
    w = save_checkpoint(folder, 'tiny_x8_rgb_to_gray.pth', model.state_dict())
    case('tiny_x8_rgb_to_gray_noclamp', model, k, torch.rand((1, 3, 3, 5), generator=gen), w, clamp=False)


def main(argv):
    torch.manual_seed(0)
    which = argv or ['dncnn', 'msrresnet', 'srresnet']
    # One generator per family, so regenerating one family leaves the others' files unchanged.
    if 'dncnn' in which:
        dncnn_fixtures(torch.Generator().manual_seed(1701))
    if 'msrresnet' in which:
        msrresnet_fixtures(torch.Generator().manual_seed(1702))
    if 'srresnet' in which:
        srresnet_fixtures(torch.Generator().manual_seed(1703))
    for folder in ('dncnn-variants', 'msrresnet', 'srresnet'):
        path = os.path.join(FIXTURES, folder)
        if os.path.isdir(path):
            total = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
            print(f'{folder}: {total / 1024:.0f} KiB')


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
