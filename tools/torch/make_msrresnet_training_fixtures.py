#!/usr/bin/env python3
"""Whole-step PyTorch 1.13 parity fixtures for BasicSR MSRResNet training (training.md section 7 item 5).

Regenerate (CI only reads the committed files; needs Debian's python3-torch 1.13):

    /usr/bin/python3 tools/torch/make_msrresnet_training_fixtures.py

Writes test/fixtures/training/msrresnet-x<scale>-<loss>-<opt>.json + .bin, laid out as
make_unet_training_fixtures.py's. The network is tools/torch/nets/msrresnet.py (our restatement of BasicSR's
MSRResNet: LeakyReLU 0.1, residual blocks without BatchNorm, PixelShuffle, the bilinear-upsampled input added)
with 8 features and 2 blocks. The batch is 2 x 1 x 10 x 9 low-resolution inputs and their x2 / x4 targets
(a smooth field downsampled by area averaging, plus noise on the input). Cases:
  msrresnet-x2-l1-adam    x2, L1 (BasicSR's pixel loss), Adam lr 2e-4 betas (0.9, 0.99) (BasicSR's recipe)
  msrresnet-x4-mse-sgd    x4 (two shuffle stages), MSE, SGD lr 0.05 momentum 0.9
20 steps on the same batch; state after 1, 5 and 20 steps.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_training_fixtures import optimizer_settings  # noqa: E402
from training_record import record_training  # noqa: E402
from nets.msrresnet import MSRResNet  # noqa: E402



ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "training")
LOW = (2, 1, 10, 9)
STEPS = 20
SNAPSHOTS = (1, 5, 20)
CASES = [(2, "l1", "adam"), (4, "mse", "sgd")]
LOSSES = {"mse": nn.MSELoss(), "l1": nn.L1Loss()}
OPTIMIZERS = {
    "adam": lambda p: torch.optim.Adam(p, lr=2e-4, betas=(0.9, 0.99), foreach=False),
    "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, foreach=False),
}


def make_batch(scale, gen):
    n, c, h, w = LOW
    coarse = torch.rand((n, c, 4, 4), generator=gen)
    high = F.interpolate(coarse, size=(h * scale, w * scale), mode="bicubic", align_corners=False)
    low = F.avg_pool2d(high, scale) + 10 / 255 * torch.randn(LOW, generator=gen)
    return low.contiguous(), high.contiguous()


def run_case(scale, loss_name, opt_kind, seed):
    gen = torch.Generator().manual_seed(seed)
    model = MSRResNet(num_in_ch=1, num_out_ch=1, num_feat=8, num_block=2, upscale=scale)
    with torch.no_grad():
        for p in model.parameters():
            bound = 1 / (p[0].numel() ** 0.5) if p.dim() > 1 else 0.1
            p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * bound)
    model.train()
    x, target = make_batch(scale, gen)
    optimizer = OPTIMIZERS[opt_kind](model.parameters())
    name = f"msrresnet-x{scale}-{loss_name}-{opt_kind}"
    record, size = record_training(
        name, model, optimizer, LOSSES[loss_name], x, target,
        config={"in": 1, "out": 1, "features": 8, "blocks": 2, "scale": scale},
        loss=loss_name, optimizer_settings=optimizer_settings(opt_kind, optimizer),
        steps=STEPS, snapshots=SNAPSHOTS, out=OUT,
    )
    print(f"{name}: {size} bytes, loss {record['losses'][0]:.6g} -> {record['losses'][-1]:.6g}")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    for i, (scale, loss_name, opt_kind) in enumerate(CASES):
        run_case(scale, loss_name, opt_kind, 77 + i)


if __name__ == "__main__":
    sys.exit(main())
