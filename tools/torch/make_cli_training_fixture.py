#!/usr/bin/env python3
"""PyTorch 1.13 reference for `webgpu-restore train` end to end (the CLI's deterministic case).

Regenerate (CI only reads the committed files; needs Debian's python3-torch 1.13 and PIL):

    /usr/bin/python3 tools/torch/make_cli_training_fixture.py

Writes test/fixtures/training/cli/:
  clean/a.png, clean/b.png, noisy/a.png, noisy/b.png   16x16 grayscale 16-bit PNGs (a noisy/clean pair each)
  init.pth        a reduced KAIR DnCNN (in/out 1, nc 8, nb 5, act_mode 'BR') saved with torch.save
  expected.json   {"torch", "steps", "losses": [...], "after": state_dict after STEPS steps}

The CLI, run with `--pairs noisy,clean --patch 16 --batch 2 --augment none --split 100,0,0 --optimizer adam
--lr 1e-3 --loss mse --steps 3`, sees exactly these two pairs in name order every step, so its output .pth
must equal `after`. Images are read as PyTorch users do: uint16 / 65535 in float64, then float32.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_training_fixtures import DnCNN  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "training", "cli")
STEPS = 3
SIZE = 16


def smooth_field(gen):
    grid = torch.rand((1, 1, 5, 5), generator=gen, dtype=torch.float64)
    up = F.interpolate(grid, size=(SIZE, SIZE), mode="bicubic", align_corners=True)[0, 0]
    up = (up - up.min()) / (up.max() - up.min())
    return 0.1 + 0.8 * up


def write_png16(path, values):
    codes = np.clip(np.round(values.numpy() * 65535), 0, 65535).astype(np.uint16)
    Image.fromarray(codes, mode="I;16").save(path)
    return torch.from_numpy(codes.astype(np.float64) / 65535.0).to(torch.float32)


def tensor_json(t):
    return {"shape": list(t.shape), "data": [float(v) if t.is_floating_point() else int(v) for v in t.flatten().tolist()]}


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    # The constructors' default initialisation (biases) draws from the global generator.
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    for sub in ("clean", "noisy"):
        os.makedirs(os.path.join(OUT, sub), exist_ok=True)
    clean, noisy = [], []
    for name in ("a", "b"):
        c = smooth_field(gen)
        n = (c + 25 / 255 * torch.randn((SIZE, SIZE), generator=gen, dtype=torch.float64)).clamp(0, 1)
        clean.append(write_png16(os.path.join(OUT, "clean", name + ".png"), c))
        noisy.append(write_png16(os.path.join(OUT, "noisy", name + ".png"), n))
    inputs = torch.stack(noisy)[:, None]
    targets = torch.stack(clean)[:, None]

    model = DnCNN(1, 1, 8, 5, "BR")
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * 0.3 if name.endswith("weight") and p.dim() > 1 else p)
    torch.save(model.state_dict(), os.path.join(OUT, "init.pth"))

    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(STEPS):
        optimizer.zero_grad()
        loss = F.mse_loss(model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    expected = {
        "torch": torch.__version__,
        "steps": STEPS,
        "losses": losses,
        "after": {k: tensor_json(v) for k, v in model.state_dict().items()},
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f)
    print("wrote", OUT, "losses", losses)


if __name__ == "__main__":
    main()
