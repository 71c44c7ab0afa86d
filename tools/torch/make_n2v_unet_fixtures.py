#!/usr/bin/env python3
"""PyTorch 1.13 fixtures for CAREamics' N2V / N2V2 U-Net (tools/torch/n2v_unet.py). Run with /usr/bin/python3.

Inference, test/fixtures/n2v-unet/ (same layout as make_unet_fixtures.py's):
  <name>.json        {architecture 'N2VUNet', config (our TypeScript N2VUNetConfig), kwargs (n2v_unet.N2VUNet's),
                      seed, checkpoint (tiny networks: a real torch.save state_dict) or manifest (full-size: key/shape
                      list for tools/torch/seeded_weights.py), inputShape, outputShape, sensitivity, torch}
  <name>.input.f32 / <name>.output.f32   little-endian float32, NCHW
Cases: width 8 networks saved as .pth (N2V, N2V2; N2V also run with use_batch_norm=False and with residual=True,
which leave the state_dict as it is), and the CAREamics defaults (width 32) from seeded weights, grey N2V and RGB
N2V2 (independent_channels off). Sizes: multiples of 4 (depth 2) that are not powers of two, and sizes that are
not multiples, run as F.pad(x, (0, -W % 4, 0, -H % 4), mode='replicate') -> network -> crop (our sizePolicy 'pad').

Training, test/fixtures/training/ (training_record.py's whole-step layout, read by test/helpers/training-parity.ts):
  n2v-unet-c4-mse-adam       N2V, num_channels_init 4, batch 2 x 1 x 40 x 36, MSE, Adam lr 1e-3
  n2v2-unet-c6-pad-mse-adam  N2V2, num_channels_init 6 (channel counts that are not multiples of 4), batch
                             2 x 1 x 22 x 18 replicate-padded to 24 x 20 and cropped back, MSE, Adam lr 1e-3
BatchNorm in train mode (momentum 0.1, eps 1e-5), 5 steps on one batch. Widths below CAREamics' minimum of 8 keep
the files small; the structure is the same.
"""
import os
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the repository

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_training_fixtures import optimizer_settings  # noqa: E402
from make_unet_fixtures import write_fixture  # noqa: E402
import make_unet_fixtures  # noqa: E402
from make_unet_training_fixtures import initialise  # noqa: E402
from n2v_unet import N2VUNet  # noqa: E402
from seeded_weights import fill_module  # noqa: E402
from training_record import record_training  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'n2v-unet')
TRAINING_OUT = os.path.join(ROOT, 'test', 'fixtures', 'training')
DEPTH = 2


def padded_forward(model, x, multiple=2 ** DEPTH):
    """Our sizePolicy 'pad': replicate-pad right and bottom to a multiple, run, crop back."""
    h, w = x.shape[-2:]
    y = model(F.pad(x, (0, -w % multiple, 0, -h % multiple), mode='replicate'))
    return y[..., :h, :w]


def meta(kwargs, seed, padded, **extra):
    config = {
        'inChannels': kwargs['in_channels'], 'outChannels': kwargs['num_classes'], 'depth': kwargs['depth'],
        'numChannelsInit': kwargs['num_channels_init'], 'n2v2': kwargs['n2v2'],
        'useBatchNorm': kwargs['use_batch_norm'], 'residual': kwargs['residual'],
        'sizePolicy': 'pad' if padded else 'strict', 'padMode': 'replicate',
    }
    out = {'architecture': 'N2VUNet', 'config': config, 'kwargs': kwargs, 'seed': seed}
    if padded:
        out['padding'] = "F.pad(x, (0, -W % 4, 0, -H % 4), mode='replicate'), run, crop"
    out.update(extra)
    return out


def kwargs_of(in_channels=1, num_classes=1, num_channels_init=8, n2v2=False, use_batch_norm=True, residual=False):
    return {'in_channels': in_channels, 'num_classes': num_classes, 'depth': DEPTH,
            'num_channels_init': num_channels_init, 'use_batch_norm': use_batch_norm, 'n2v2': n2v2,
            'residual': residual}


def case(name, model, fixture_meta, size, gen):
    h, w = size
    padded = h % 2 ** DEPTH != 0 or w % 2 ** DEPTH != 0
    forward = (lambda t: padded_forward(model, t)) if padded else model
    x = torch.rand(1, fixture_meta['kwargs']['in_channels'], h, w, generator=gen)
    write_fixture(name, fixture_meta, forward, x, gen)


def tiny(name, seed, n2v2, cases, gen):
    """A width-8 network saved with torch.save(model.state_dict()), as CAREamics' BMZ export saves weights.pth;
    one fixture per (size, options) case, all reading that file: use_batch_norm and residual leave the state_dict
    as it is."""
    kwargs = kwargs_of(n2v2=n2v2)
    model = N2VUNet(**kwargs).eval()
    fill_module(model, seed)
    torch.save(model.state_dict(), os.path.join(OUT, name + '.pth'))
    for (h, w), options in cases:
        model_kwargs = dict(kwargs, **options)
        for block in model.modules():
            if hasattr(block, 'use_batch_norm'):
                block.use_batch_norm = model_kwargs['use_batch_norm']
        model.residual = model_kwargs['residual']
        suffix = ('' if model_kwargs['use_batch_norm'] else '_nobn') + ('_residual' if model.residual else '')
        fixture_meta = meta(model_kwargs, seed, h % 4 != 0 or w % 4 != 0, checkpoint=name + '.pth')
        case('%s_%dx%d%s' % (name, h, w, suffix), model, fixture_meta, (h, w), gen)


def full(name, seed, size, gen, **kw):
    kwargs = kwargs_of(num_channels_init=32, **kw)
    model = N2VUNet(**kwargs).eval()
    manifest = fill_module(model, seed)
    h, w = size
    fixture_meta = meta(kwargs, seed, h % 4 != 0 or w % 4 != 0, manifest=manifest)
    case(name, model, fixture_meta, size, gen)


# ---------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------

class PaddedN2VUNet(N2VUNet):
    """The same network and keys, with our sizePolicy 'pad' around its forward."""

    def forward(self, x):
        h, w = x.shape[-2:]
        m = 2 ** DEPTH
        y = super().forward(F.pad(x, (0, -w % m, 0, -h % m), mode='replicate'))
        return y[..., :h, :w]


def make_batch(gen, shape):
    n, c, h, w = shape
    coarse = torch.rand((n, c, 5, 4), generator=gen)
    field = F.interpolate(coarse, size=(h, w), mode='bicubic', align_corners=False)
    low = field.amin(dim=(1, 2, 3), keepdim=True)
    high = field.amax(dim=(1, 2, 3), keepdim=True)
    clean = (field - low) / (high - low)
    noisy = clean + 25 / 255 * torch.randn(shape, generator=gen)
    return noisy.contiguous(), clean.contiguous()


TRAINING_CASES = [
    # name, n2v2, width, batch shape, padded, snapshots
    ('n2v-unet-c4-mse-adam', False, 4, (2, 1, 40, 36), False, (1, 5)),
    ('n2v2-unet-c6-pad-mse-adam', True, 6, (2, 1, 22, 18), True, (5,)),
]


def training_case(name, n2v2, width, shape, padded, snapshots, seed):
    kwargs = kwargs_of(num_channels_init=width, n2v2=n2v2)
    model = (PaddedN2VUNet if padded else N2VUNet)(**kwargs)
    initialise(model, torch.Generator().manual_seed(seed))
    model.train()
    x, target = make_batch(torch.Generator().manual_seed(seed + 1000), shape)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)
    record, size = record_training(
        name, model, optimizer, nn.MSELoss(), x, target,
        config=dict(kwargs, size_policy='pad' if padded else 'strict'),
        loss='mse', optimizer_settings=optimizer_settings('adam', optimizer),
        steps=max(snapshots), snapshots=snapshots, out=TRAINING_OUT,
    )
    losses = record['losses']
    print(f'{name}: {size} bytes of tensors, loss {losses[0]:.6g} -> {losses[-1]:.6g}')


def main():
    os.makedirs(OUT, exist_ok=True)
    make_unet_fixtures.OUT = OUT  # write_fixture writes there
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(2025)

    tiny('n2v_tiny_gray', 41, False,
         [((20, 28), {}), ((23, 37), {}), ((20, 28), {'use_batch_norm': False}), ((12, 16), {'residual': True})], gen)
    # Seed 45: with some seeds the width-8 N2V2 output hardly depends on the input (sensitivity ~0.015).
    tiny('n2v2_tiny_gray', 45, True, [((20, 28), {}), ((23, 37), {})], gen)
    full('n2v_full_gray_20x28', 43, (20, 28), gen)
    full('n2v2_full_rgb_30x22', 44, (30, 22), gen, in_channels=3, num_classes=3, n2v2=True)

    torch.use_deterministic_algorithms(True)
    for i, c in enumerate(TRAINING_CASES):
        training_case(*c, seed=51 + i)


if __name__ == '__main__':
    sys.exit(main())
