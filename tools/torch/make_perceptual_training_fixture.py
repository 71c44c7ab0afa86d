#!/usr/bin/env python3
"""Whole-step PyTorch 1.13 parity fixture for training with a perceptual loss term (training.md section 2.5).

Regenerate (CI only reads the committed files; needs Debian's python3-torch 1.13; run after perceptual_fixtures.py,
whose tiny random VGG19 test/fixtures/perceptual/vgg19.pth it loads):

    /usr/bin/python3 tools/torch/make_perceptual_training_fixture.py

Writes test/fixtures/training/dncnn-r-l1-perceptual-adam.json + .bin (laid out as make_unet_training_fixtures.py's):
our reduced KAIR DnCNN (R, nc 8, nb 3) trained for 5 Adam steps with
    loss = L1(out, target) + 0.1 * [0.5 * L1(phi_conv2_2(out), phi_conv2_2(target)) + L1(phi_conv3_4(out), phi_conv3_4(target))]
BasicSR's PerceptualLoss (use_input_norm, no range_norm, criterion l1, target under no_grad) over the frozen VGG,
the gray image repeated to 3 channels (our extension, as src/training/perceptual-loss.ts). The JSON's loss_config
names the terms; the test adds the VGG (`network`) to the perceptual term.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_training_fixtures import DnCNN, initialise, make_batch, optimizer_settings  # noqa: E402
from training_record import record_training  # noqa: E402
from perceptual_fixtures import IMAGENET_MEAN, IMAGENET_STD, VGG_WIDTHS, Backbone, features, vgg_layers  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "training")
VGG = os.path.join(ROOT, "test", "fixtures", "perceptual", "vgg19.pth")
LAYERS = {"conv2_2": 0.5, "conv3_4": 1.0}
PERCEPTUAL_WEIGHT = 0.1
STEPS = 5
SNAPSHOTS = (1, 5)


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    layers, names = vgg_layers(19)
    vgg = Backbone(layers, VGG_WIDTHS[-1])
    vgg.load_state_dict(torch.load(VGG))
    vgg.eval()
    for p in vgg.parameters():
        p.requires_grad = False
    indices = [names.index(k) for k in LAYERS]
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def phi(x):
        return features(vgg, (x.repeat(1, 3, 1, 1) - mean) / std, indices)

    def loss_fn(out, target):
        fo = phi(out)
        with torch.no_grad():
            ft = phi(target)
        perceptual = sum(F.l1_loss(a, b) * w for (_, w), a, b in zip(LAYERS.items(), fo, ft))
        return F.l1_loss(out, target) + PERCEPTUAL_WEIGHT * perceptual

    model = DnCNN(1, 1, 8, 3, "R")
    initialise(model, torch.Generator().manual_seed(33))
    model.train()
    x, target = make_batch(torch.Generator().manual_seed(34))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)
    name = "dncnn-r-l1-perceptual-adam"
    loss_config = {
        "kind": "sum",
        "terms": [
            {"kind": "l1"},
            {"kind": "perceptual", "layerWeights": LAYERS, "criterion": "l1", "weight": PERCEPTUAL_WEIGHT},
        ],
    }
    record, size = record_training(
        name, model, optimizer, loss_fn, x, target,
        config={"in_nc": 1, "out_nc": 1, "nc": 8, "nb": 3, "act_mode": "R"},
        loss="sum", optimizer_settings=optimizer_settings("adam", optimizer),
        steps=STEPS, snapshots=SNAPSHOTS, out=OUT, extra={"loss_config": loss_config},
    )
    print(f"{name}: {size} bytes, loss {record['losses'][0]:.6g} -> {record['losses'][-1]:.6g}")


if __name__ == "__main__":
    sys.exit(main())
