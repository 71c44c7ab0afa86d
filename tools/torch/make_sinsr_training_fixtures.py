#!/usr/bin/env python3
"""Whole-step PyTorch 1.13 parity fixtures for training the SINSR generator (training.md section 7 item 5).

Regenerate (CI only reads the committed files; needs Debian's python3-torch 1.13):

    /usr/bin/python3 tools/torch/make_sinsr_training_fixtures.py

Writes test/fixtures/training/sinsr-<attention>-<loss>-<opt>.json + .bin, laid out as
make_rrdbnet_training_fixtures.py's. The network is tools/torch/nets/sinsr.py's SINSRGenerator (our PyTorch
re-expression of aaivu/CSM-SR architecture_7, and its CBAM variant) at a reduced width: num_feat 8, 2 dense layers
per RDB, 1 RRDB per branch. Every op of the real network is there: dense concatenations, dilated and depthwise
convs, conv_res * 0.2, the 2x2 average pools and depth_to_space (DCR) of the three branches, the fuse concatenation,
two depth_to_space upsamplings and the tanh output. Weights are seeded He-uniform (bound sqrt(6/fan_in), biases
within 0.1): with PyTorch's default bound 1/sqrt(fan_in) the activations shrink through the narrow dense layers and
their gradients end up ~1e-6 of the tail's, too small to test anything. Inputs and targets lie in [-1, 1], as SINSR's.
Cases (20 steps on one batch of 2; state after 1, 5 and 20 steps):
  sinsr-none-l1-adam   3 -> 3 channels, first_feat 8, growth 4, 1 RDB per RRDB, LR 6 x 6, L1,
                       Adam lr 2e-4 betas (0.9, 0.99)
  sinsr-cbam-mse-sgd   1 -> 1 channel, first_feat 4, growth 3 (concatenation pieces not multiples of 4), 2 RDBs per
                       RRDB each followed by a CBAM (reduction 2), LR 8 x 6, MSE, SGD lr 0.05 momentum 0.9
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_training_fixtures import optimizer_settings  # noqa: E402
from training_record import record_training  # noqa: E402
from nets.sinsr import SINSRGenerator  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "training")
STEPS = 20
# name, attention, channels, first_feat, growth, RDBs per RRDB, CBAM reduction, LR H x W, loss, optimizer, snapshots
CASES = [
    ("sinsr-none-l1-adam", "none", 3, 8, 4, 1, 8, (6, 6), "l1", "adam", (1, 5, 20)),
    ("sinsr-cbam-mse-sgd", "cbam", 1, 4, 3, 2, 2, (8, 6), "mse", "sgd", (1, 5, 20)),
]
NUM_FEAT, NUM_LAYERS, NUM_RRDBS = 8, 2, 1
LOSSES = {"mse": nn.MSELoss(), "l1": nn.L1Loss()}
OPTIMIZERS = {
    "adam": lambda p: torch.optim.Adam(p, lr=2e-4, betas=(0.9, 0.99), foreach=False),
    "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, foreach=False),
}


def make_batch(channels, size, gen):
    """A smooth HR image in [-1, 1] (x4 of the LR size) and its noisy 4x4-average LR version."""
    h, w = size
    coarse = torch.rand((2, channels, 4, 4), generator=gen) * 2 - 1
    high = F.interpolate(coarse, size=(h * 4, w * 4), mode="bicubic", align_corners=False).clamp(-1, 1)
    low = F.avg_pool2d(high, 4) + 0.05 * torch.randn((2, channels, h, w), generator=gen)
    return low.contiguous(), high.contiguous()


def run_case(name, attention, channels, first_feat, growth, rdbs, reduction, size, loss_name, opt_kind, snapshots, seed):
    gen = torch.Generator().manual_seed(seed)
    model = SINSRGenerator(
        in_ch=channels,
        out_ch=channels,
        first_feat=first_feat,
        num_feat=NUM_FEAT,
        growth=growth,
        num_layers=NUM_LAYERS,
        num_rdbs=rdbs,
        num_rrdbs=NUM_RRDBS,
        attention=None if attention == "none" else attention,
        reduction=reduction,
    )
    with torch.no_grad():
        for p in model.parameters():
            bound = (6 / p[0].numel()) ** 0.5 if p.dim() > 1 else 0.1
            p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * bound)
    model.train()
    x, target = make_batch(channels, size, gen)
    optimizer = OPTIMIZERS[opt_kind](model.parameters())
    config = {
        "inChannels": channels,
        "outChannels": channels,
        "firstFeat": first_feat,
        "numFeat": NUM_FEAT,
        "growth": growth,
        "numLayers": NUM_LAYERS,
        "numRDBs": rdbs,
        "numRRDBs": NUM_RRDBS,
        "attention": attention,
        "reduction": reduction,
    }
    record, size = record_training(
        name, model, optimizer, LOSSES[loss_name], x, target,
        config=config, loss=loss_name, optimizer_settings=optimizer_settings(opt_kind, optimizer),
        steps=STEPS, snapshots=snapshots, out=OUT,
    )
    grads = sorted((float(p.grad.norm()), k) for k, p in model.named_parameters())
    print(f"{name}: {size} bytes, loss {record['losses'][0]:.6g} -> {record['losses'][-1]:.6g}, "
          f"smallest last grad norm {grads[0][0]:.3g} ({grads[0][1]})")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    for i, case in enumerate(CASES):
        run_case(*case, 171 + i)


if __name__ == "__main__":
    sys.exit(main())
