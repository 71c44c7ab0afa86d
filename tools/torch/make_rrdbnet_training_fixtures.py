#!/usr/bin/env python3
"""Whole-step PyTorch 1.13 parity fixtures for BasicSR RRDBNet (ESRGAN generator) training (training.md section 7
item 5).

Regenerate (CI only reads the committed files; needs Debian's python3-torch 1.13):

    /usr/bin/python3 tools/torch/make_rrdbnet_training_fixtures.py

Writes test/fixtures/training/rrdbnet-x<scale>-<loss>-<opt>.json + .bin, laid out as
make_unet_training_fixtures.py's. The network is tools/torch/nets/rrdbnet.py's RRDBNet (our restatement of BasicSR's
basicsr/archs/rrdbnet_arch.py: dense blocks of 5 convs with LeakyReLU 0.2, x5 * 0.2 + x in every RDB and
RRDB(x) * 0.2 + x in every RRDB, fea + conv_body(body(fea)), two nearest x2 upsamplings, pixel_unshuffle in front for
scale 2) reduced to num_feat 8 and num_grow_ch 4. Weights are seeded uniform (bound 1/sqrt(fan_in), biases 0.1)
rather than BasicSR's kaiming x0.1, so the dense blocks' gradients are not negligible next to the trunk's.
Cases (20 steps on one batch of 2; state after 1, 5 and 20 steps):
  rrdbnet-x4-l1-adam   x4, 3 -> 3 channels, 1 RRDB, LR 5 x 7, L1, Adam lr 2e-4 betas (0.9, 0.99) (BasicSR's recipe)
  rrdbnet-x2-mse-sgd   x2 (pixel_unshuffle by 2), 1 -> 1 channel, 2 RRDBs, input 8 x 6, MSE, SGD lr 0.02 momentum 0.9
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_training_fixtures import optimizer_settings  # noqa: E402
from training_record import record_training  # noqa: E402
from nets.rrdbnet import RRDBNet  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "training")
STEPS = 20
SNAPSHOTS = (1, 5, 20)
# (scale, channels, num_block, input H x W, loss, optimizer)
CASES = [(4, 3, 1, (5, 7), "l1", "adam"), (2, 1, 2, (8, 6), "mse", "sgd")]
LOSSES = {"mse": nn.MSELoss(), "l1": nn.L1Loss()}
OPTIMIZERS = {
    "adam": lambda p: torch.optim.Adam(p, lr=2e-4, betas=(0.9, 0.99), foreach=False),
    "sgd": lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9, foreach=False),
}


def make_batch(scale, channels, size, gen):
    h, w = size
    coarse = torch.rand((2, channels, 4, 4), generator=gen)
    high = F.interpolate(coarse, size=(h * scale, w * scale), mode="bicubic", align_corners=False)
    low = F.avg_pool2d(high, scale) + 10 / 255 * torch.randn((2, channels, h, w), generator=gen)
    return low.contiguous(), high.contiguous()


def run_case(scale, channels, blocks, size, loss_name, opt_kind, seed):
    gen = torch.Generator().manual_seed(seed)
    model = RRDBNet(num_in_ch=channels, num_out_ch=channels, scale=scale, num_feat=8, num_block=blocks, num_grow_ch=4)
    with torch.no_grad():
        for p in model.parameters():
            bound = 1 / (p[0].numel() ** 0.5) if p.dim() > 1 else 0.1
            p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * bound)
    model.train()
    x, target = make_batch(scale, channels, size, gen)
    optimizer = OPTIMIZERS[opt_kind](model.parameters())
    name = f"rrdbnet-x{scale}-{loss_name}-{opt_kind}"
    record, size = record_training(
        name, model, optimizer, LOSSES[loss_name], x, target,
        config={"in": channels, "out": channels, "numFeat": 8, "numGrowCh": 4, "numBlock": blocks, "scale": scale},
        loss=loss_name, optimizer_settings=optimizer_settings(opt_kind, optimizer),
        steps=STEPS, snapshots=SNAPSHOTS, out=OUT,
    )
    print(f"{name}: {size} bytes, loss {record['losses'][0]:.6g} -> {record['losses'][-1]:.6g}")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    for i, case in enumerate(CASES):
        run_case(*case, 91 + i)


if __name__ == "__main__":
    sys.exit(main())
