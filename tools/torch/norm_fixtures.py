#!/usr/bin/env python3
"""PyTorch references for the LayerNorm and SCSE kernels (run with Debian's python3-torch: /usr/bin/python3).

Writes small JSON files to test/fixtures/norm/: the input (NCHW, float32 values), the parameters (state_dict
names, float32 values, flattened) and the output computed in float64 from exactly those float32 values.

- layernorm_*.json: nn.LayerNorm(C) applied channels-last (permute to NHWC, normalise, permute back), as SCUNet.
- scse_*.json: our own restatement of segmentation_models_pytorch's SCSEModule:
    cSE = Sequential(AdaptiveAvgPool2d(1), Conv2d(C, C//r, 1), ReLU, Conv2d(C//r, C, 1), Sigmoid)
    sSE = Sequential(Conv2d(C, 1, 1), Sigmoid)
    out = x * cSE(x) + x * sSE(x)
"""
import json
import os

import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "norm")


class SCSEModule(nn.Module):
    def __init__(self, in_channels, reduction=16):
        super().__init__()
        self.cSE = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, in_channels // reduction, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels // reduction, in_channels, 1),
            nn.Sigmoid(),
        )
        self.sSE = nn.Sequential(nn.Conv2d(in_channels, 1, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.cSE(x) + x * self.sSE(x)


def f32_values(t):
    """Round to float32, return (float64 tensor of those values, flat list)."""
    t32 = t.detach().to(torch.float32)
    return t32.to(torch.float64), [float(v) for v in t32.flatten().tolist()]


def randomize(module, gen, scale=0.5):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_((torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1) * scale)
            p.copy_(p.to(torch.float32).to(torch.float64))


def write(name, meta):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(meta, f)
    print("wrote", name)


def layernorm_case(name, n, c, h, w, offset, seed):
    gen = torch.Generator().manual_seed(seed)
    ln = nn.LayerNorm(c).double()
    randomize(ln, gen, 1.0)
    x = offset + (torch.rand((n, c, h, w), generator=gen, dtype=torch.float64) * 2 - 1)
    x, x_list = f32_values(x)
    with torch.no_grad():
        y = ln(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous()
    write(name, {
        "kind": "layernorm",
        "inputShape": [n, c, h, w],
        "eps": ln.eps,
        "input": x_list,
        "params": {k: [float(v) for v in t.flatten().tolist()] for k, t in ln.state_dict().items()},
        "output": [float(v) for v in y.flatten().tolist()],
    })


def scse_case(name, n, c, h, w, reduction, seed):
    gen = torch.Generator().manual_seed(seed)
    m = SCSEModule(c, reduction).double().eval()
    randomize(m, gen, 1.0)
    x = torch.rand((n, c, h, w), generator=gen, dtype=torch.float64) * 2 - 1
    x, x_list = f32_values(x)
    with torch.no_grad():
        y = m(x)
    write(name, {
        "kind": "scse",
        "inputShape": [n, c, h, w],
        "reduction": reduction,
        "input": x_list,
        "params": {k: {"shape": list(t.shape), "data": [float(v) for v in t.flatten().tolist()]} for k, t in m.state_dict().items()},
        "output": [float(v) for v in y.flatten().tolist()],
    })


if __name__ == "__main__":
    layernorm_case("layernorm_c5", 2, 5, 3, 4, 0.0, 1)
    layernorm_case("layernorm_c96_offset1000", 1, 96, 3, 5, 1000.0, 2)
    scse_case("scse_c20_r4", 2, 20, 5, 3, 4, 3)
    scse_case("scse_c48_r16", 1, 48, 4, 7, 16, 4)
