#!/usr/bin/env python3
"""PyTorch reference for DnCNN fixtures (run with Debian's python3-torch: /usr/bin/python3).

Our own re-statement of KAIR's DnCNN (models/network_dncnn.py + basicblock.conv): a flat nn.Sequential named
`model` of 3x3 convs with bias, ReLU (and BatchNorm eps=1e-4 in act_mode 'BR'), output x - model(x).

Writes to test/fixtures/dncnn/: <name>.pth (state_dict, torch zip format), <name>.input.f32 and
<name>.output.f32 (little-endian float32, NCHW), <name>.json (config and shapes). CI only reads these files.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "dncnn")
SHARED = os.path.join(os.path.dirname(ROOT), "shared")


class DnCNN(nn.Module):
    def __init__(self, in_nc=1, out_nc=1, nc=64, nb=17, act_mode="BR"):
        super().__init__()
        layers = [nn.Conv2d(in_nc, nc, 3, 1, 1, bias=True), nn.ReLU(inplace=True)]
        for _ in range(nb - 2):
            layers.append(nn.Conv2d(nc, nc, 3, 1, 1, bias=True))
            if act_mode == "BR":
                layers.append(nn.BatchNorm2d(nc, momentum=0.9, eps=1e-4, affine=True))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(nc, out_nc, 3, 1, 1, bias=True))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return x - self.model(x)


def randomize_batchnorm(model, gen):
    # Fresh BatchNorms are the identity (mean 0, var 1, gamma 1, beta 0): give them trained-looking statistics
    # so that folding is really exercised.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = 1.0 + 0.2 * torch.randn(c, generator=gen)
            m.bias.data = 0.1 * torch.randn(c, generator=gen)
            m.running_mean.data = 0.2 * torch.randn(c, generator=gen)
            m.running_var.data = 0.5 + torch.rand(c, generator=gen)
            m.num_batches_tracked.fill_(1000)


def randomize_biases(model, gen):
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.bias.data = 0.05 * torch.randn(m.bias.shape, generator=gen)


def write_case(name, model, x, config, weights_file=None):
    model.eval()
    with torch.no_grad():
        y = model(x)
    if weights_file is None:
        torch.save(model.state_dict(), os.path.join(OUT, name + ".pth"))
    x.numpy().astype("<f4").tofile(os.path.join(OUT, name + ".input.f32"))
    y.numpy().astype("<f4").tofile(os.path.join(OUT, name + ".output.f32"))
    meta = {
        "config": config,
        "inputShape": list(x.shape),
        "outputShape": list(y.shape),
        "weights": weights_file or (name + ".pth"),
        "torch": torch.__version__,
    }
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(meta, f, indent=2)
    print(name, tuple(x.shape), "->", tuple(y.shape))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)

    def make(name, in_nc, nc, nb, act_mode, shape):
        model = DnCNN(in_nc, in_nc, nc, nb, act_mode)
        randomize_biases(model, gen)
        randomize_batchnorm(model, gen)
        x = torch.rand(shape, generator=gen)
        config = {"inChannels": in_nc, "outChannels": in_nc, "nc": nc, "nb": nb, "actMode": act_mode}
        write_case(name, model, x, config)

    make("tiny_r_gray", 1, 8, 5, "R", (1, 1, 13, 17))
    make("tiny_br_gray", 1, 8, 5, "BR", (1, 1, 11, 9))
    make("tiny_r_color", 3, 8, 4, "R", (1, 3, 9, 14))
    make("tiny_br_color", 3, 12, 6, "BR", (1, 3, 1, 1))
    make("full_br_gray", 1, 64, 17, "BR", (1, 1, 12, 19))

    # The real released weights on a real image crop with sigma-25 noise.
    real = DnCNN(1, 1, 64, 17, "R")
    sd = torch.load(os.path.join(SHARED, "data", "weights", "dncnn_25.pth"), map_location="cpu")
    real.load_state_dict(sd, strict=True)
    img = np.asarray(Image.open(os.path.join(SHARED, "data", "set12", "01.png")), dtype=np.float32) / 255.0
    crop = img[100:141, 80:127]  # 41 x 47
    rng = np.random.default_rng(0)
    noisy = crop + rng.normal(0, 25 / 255.0, crop.shape).astype(np.float32)
    x = torch.from_numpy(noisy[None, None].copy())
    write_case("real_dncnn25_set12_01_crop", real, x, {"inChannels": 1, "outChannels": 1, "nc": 64, "nb": 17, "actMode": "R"},
               weights_file="../../../assets/dncnn_25.pth")


if __name__ == "__main__":
    sys.exit(main())
