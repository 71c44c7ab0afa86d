#!/usr/bin/env python3
"""Whole-step PyTorch 1.13 parity fixtures for milesial U-Net training (training.md section 7 item 5).

Regenerate (CI only reads the committed files; needs Debian's python3-torch 1.13):

    /usr/bin/python3 tools/torch/make_unet_training_fixtures.py

Writes test/fixtures/training/unet-<upsampler>-<loss>-<opt>.json plus a .bin beside each: the JSON has the same
layout as make_training_fixtures.py's DnCNN files, except that every float32 tensor is {"shape", "offset"}, its
values being little-endian float32 at that byte offset of the .bin (4x smaller than JSON numbers), and
num_batches_tracked stays {"shape": [], "data": [n]}.

The network is tools/torch/nets/unet.py (our restatement of milesial's UNet) at base width 2 (levels 2, 4, 8,
16, 32): conv3x3 (no bias) -> BatchNorm (train mode, PyTorch's defaults: momentum 0.1, eps 1e-5) -> ReLU twice
per level, MaxPool2d(2), upsampling by ConvTranspose2d(k2, s2) or bilinear (align_corners=True), zero padding to
the skip's size and cat([skip, up]). Input 2 x 1 x 40 x 36, so pooling floors (9 -> 4, 5 -> 2) and Up pads
(4 -> 5, 2 -> 4 ... 8 -> 9). The last level is 2 x 2: at 1 x 1 (a 20 x 18 input) BatchNorm normalises two values
per channel and PyTorch's own float32 gradients drift 1e-3 from float64, too far to compare against. Cases:
  unet-transposed-mse-adam   ConvTranspose2d upsampling, MSE, Adam lr 1e-3
  unet-bilinear-l1-sgd       bilinear upsampling with a sigmoid output, L1, SGD lr 0.05 momentum 0.9 wd 1e-4
20 steps on the same batch; state after 1, 5 and 20 steps.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_training_fixtures import optimizer_settings  # noqa: E402
from nets.unet import UNet  # noqa: E402
from training_record import Blob, record_training  # noqa: E402,F401 (Blob: other scripts import it from here)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "training")
BATCH_SHAPE = (2, 1, 40, 36)
BASE = 2
STEPS = 20
SNAPSHOTS = (1, 5, 20)

CASES = [
    ("transposed", False, False, "mse", "adam"),
    ("bilinear", True, True, "l1", "sgd"),
]

LOSSES = {"mse": nn.MSELoss(), "l1": nn.L1Loss()}
OPTIMIZERS = {
    "adam": lambda p: torch.optim.Adam(p, lr=1e-3, foreach=False),
    "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-4, foreach=False),
}


def initialise(model, gen):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                bound = 1 / (m.weight[0].numel() ** 0.5)
                m.weight.copy_((torch.rand(m.weight.shape, generator=gen) * 2 - 1) * bound)
                if m.bias is not None:
                    m.bias.copy_((torch.rand(m.bias.shape, generator=gen) * 2 - 1) * bound)
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.8 + 0.4 * torch.rand(c, generator=gen))
                m.bias.copy_(0.2 * torch.rand(c, generator=gen) - 0.1)
                m.running_mean.copy_(0.2 * torch.rand(c, generator=gen) - 0.1)
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))


def make_batch(gen):
    n, c, h, w = BATCH_SHAPE
    coarse = torch.rand((n, c, 5, 4), generator=gen)
    field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    low = field.amin(dim=(1, 2, 3), keepdim=True)
    high = field.amax(dim=(1, 2, 3), keepdim=True)
    clean = (field - low) / (high - low)
    noisy = clean + 25 / 255 * torch.randn(BATCH_SHAPE, generator=gen)
    return noisy.contiguous(), clean.contiguous()


def run_case(name, bilinear, sigmoid, loss_name, opt_kind, batch, seed):
    model = UNet(1, 1, bilinear=bilinear, base=BASE, sigmoid=sigmoid)
    initialise(model, torch.Generator().manual_seed(seed))
    model.train()
    x, target = batch
    optimizer = OPTIMIZERS[opt_kind](model.parameters())
    record, size = record_training(
        name, model, optimizer, LOSSES[loss_name], x, target,
        config={"n_channels": 1, "n_classes": 1, "bilinear": bilinear, "base": BASE, "sigmoid": sigmoid},
        loss=loss_name, optimizer_settings=optimizer_settings(opt_kind, optimizer),
        steps=STEPS, snapshots=SNAPSHOTS, out=OUT,
    )
    losses = record["losses"]
    print(f"{name}: {size} bytes of tensors, loss {losses[0]:.6g} -> {losses[-1]:.6g}")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    batch = make_batch(torch.Generator().manual_seed(2024))
    for i, (upsampler, bilinear, sigmoid, loss_name, opt_kind) in enumerate(CASES):
        run_case(f"unet-{upsampler}-{loss_name}-{opt_kind}", bilinear, sigmoid, loss_name, opt_kind, batch, 31 + i)


if __name__ == "__main__":
    sys.exit(main())
