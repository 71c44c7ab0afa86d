#!/usr/bin/env python3
"""Whole-step PyTorch 1.13 parity fixtures for SCUNet training (training.md section 7 item 5).

Regenerate (CI only reads the committed files; needs Debian's python3-torch 1.13):

    /usr/bin/python3 tools/torch/make_scunet_training_fixtures.py

Writes test/fixtures/training/scunet-<case>.json + .bin, laid out as make_unet_training_fixtures.py's. The
network is a pair of SCUNet ConvTransBlocks, W then SW (tools/torch/nets/scunet.py, our restatement of
cszn/SCUNet's), as nn.Sequential (keys 0.*, 1.*): the full SCUNet class needs dim >= 64 (32-wide heads in its
dim/2 Swin half) and 64x64 inputs, millions of values per state_dict, while this pair runs every code path of a
block (1x1 convs, split, residual 3x3-ReLU-3x3 branch, LayerNorms, qkv, W and SW window attention with the
relative position bias and mask, exact GELU MLP, concat, residuals). conv_dim 8, trans_dim 32 (one head), input
1 x 40 x 16 x 16 (2 x 2 windows, so the SW mask covers edge and inner windows). Cases:
  scunet-ctb-pair-mse-adam   MSE, Adam lr 2e-4 (KAIR's SCUNet lr 1e-4 is of the same order), eps 1e-6
The key third of each qkv bias has a zero gradient in exact arithmetic (a constant added to every key shifts a
query's scores by one constant, which the softmax removes): both sides hold f32 noise there (~1e-10), which Adam's
default eps 1e-8 would turn into steps of about +-lr of arbitrary sign, so the fixture uses eps 1e-6 (the real
gradients are >= 1e-5, where Adam is unchanged in effect).
5 steps on the same batch; state after 5 steps.

And the whole network, scunet-gray-d64-sgd.json: SCUNet(in_nc=1, config=[1,0,0,0,0,0,1], dim=64) on a 1 x 1 x 56 x 60
image (replicate-padded to 64 x 64 and cropped back), MSE, SGD lr 0.002 momentum 0.9, 3 steps. Its 1.35 M weights
are too many to store, so every random value (weights, image, target) comes from hash_uniform below, which the
test restates bit for bit in float64, and the fixture holds the losses, the step-1 output, and per parameter a
sketch (8 fixed pseudo-random projections) of its step-1 gradient and of its change over the 3 steps.
"""
import json
import os
import sys

import math

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_training_fixtures import optimizer_settings  # noqa: E402
from make_unet_training_fixtures import Blob  # noqa: E402
from nets.scunet import SCUNet, ConvTransBlock  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "training")
CONV_DIM = 8
TRANS_DIM = 32
SHAPE = (1, CONV_DIM + TRANS_DIM, 16, 16)
STEPS = 5
SNAPSHOTS = (5,)


def initialise(model, gen):
    """Uniform weights of PyTorch's default scale, and visibly non-trivial LayerNorm and position-bias values."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("relative_position_params"):
                p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * 0.5)
            elif ".ln" in name and name.endswith("weight"):
                p.copy_(0.8 + 0.4 * torch.rand(p.shape, generator=gen))
            elif p.dim() > 1:
                bound = 1 / (p[0].numel() ** 0.5)
                p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * bound)
            else:
                p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * 0.1)


def run_case(seed):
    gen = torch.Generator().manual_seed(seed)
    model = nn.Sequential(
        ConvTransBlock(CONV_DIM, TRANS_DIM, "W", 256),
        ConvTransBlock(CONV_DIM, TRANS_DIM, "SW", 256),
    )
    initialise(model, gen)
    model.train()
    x = torch.rand(SHAPE, generator=gen)
    target = x + 0.1 * torch.randn(SHAPE, generator=gen)
    blob = Blob()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4, eps=1e-6, foreach=False)
    record = {
        "torch": torch.__version__,
        "config": {"convDim": CONV_DIM, "transDim": TRANS_DIM},
        "loss": "mse",
        "optimizer": optimizer_settings("adam", optimizer),
        "input": blob.encode(x),
        "target": blob.encode(target),
        "initial": blob.state(model),
        "losses": [],
        "grads_step1": None,
        "output_step1": None,
        "after": {},
    }
    for step in range(1, STEPS + 1):
        optimizer.zero_grad()
        out = model(x)
        loss = nn.MSELoss()(out, target)
        loss.backward()
        record["losses"].append(float(loss.item()))
        if step == 1:
            record["output_step1"] = blob.encode(out)
            record["grads_step1"] = {k: blob.encode(p.grad) for k, p in model.named_parameters()}
        optimizer.step()
        if step in SNAPSHOTS:
            record["after"][str(step)] = blob.state(model)
    name = "scunet-ctb-pair-mse-adam"
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        f.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
    with open(os.path.join(OUT, name + ".bin"), "wb") as f:
        f.write(bytes(blob.data))
    print(f"{name}: {len(blob.data)} bytes, loss {record['losses'][0]:.6g} -> {record['losses'][-1]:.6g}")


def hash_uniform(k, count):
    """[0, 1) values frac(sin((i + 1)·12.9898 + (k + 1)·78.233)·43758.5453), i < count, in float64."""
    i = np.arange(count, dtype=np.float64)
    v = np.sin((i + 1) * 12.9898 + (k + 1) * 78.233) * 43758.5453
    return v - np.floor(v)


def name_key(name):
    return sum((j + 1) * ord(ch) for j, ch in enumerate(name)) % 9973


SKETCHES = 8


def sketch(t):
    v = t.detach().double().reshape(-1).numpy()
    return [float(np.dot(v, hash_uniform(10000 + j, v.size) * 2 - 1) / math.sqrt(v.size)) for j in range(SKETCHES)]


def hashed_tensor(k, shape, scale, offset=0.0):
    n = math.prod(shape)
    return torch.from_numpy(offset + scale * (hash_uniform(k, n) * 2 - 1)).float().reshape(shape)


def scunet_case():
    config = {"inChannels": 1, "dim": 64, "blocks": [1, 0, 0, 0, 0, 0, 1]}
    model = SCUNet(in_nc=1, config=config["blocks"], dim=64, input_resolution=256)
    with torch.no_grad():
        for name, p in model.named_parameters():
            k = name_key(name)
            if name.endswith("relative_position_params"):
                p.copy_(hashed_tensor(k, p.shape, 0.5))
            elif ".ln" in name and name.endswith("weight"):
                p.copy_(hashed_tensor(k, p.shape, 0.2, 1.0))
            elif p.dim() > 1:
                p.copy_(hashed_tensor(k, p.shape, 1 / p[0].numel() ** 0.5))
            else:
                p.copy_(hashed_tensor(k, p.shape, 0.1))
    model.train()
    shape = (1, 1, 56, 60)
    x = hashed_tensor(20000, shape, 0.5, 0.5)
    target = (x + 0.1 * hashed_tensor(20001, shape, 1.0)).float()
    initial = {k: v.detach().clone() for k, v in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.002, momentum=0.9, foreach=False)
    record = {"torch": torch.__version__, "config": config, "shape": list(shape), "lr": 0.002, "momentum": 0.9, "losses": []}
    steps = 3
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        out = model(x)
        loss = nn.MSELoss()(out, target)
        loss.backward()
        record["losses"].append(float(loss.item()))
        if step == 1:
            record["output_step1"] = [float(v) for v in out.detach().reshape(-1).tolist()]
            record["grad_sketches"] = {k: sketch(p.grad) for k, p in model.named_parameters()}
        optimizer.step()
    record["change_sketches"] = {k: sketch(p.detach() - initial[k]) for k, p in model.named_parameters()}
    name = "scunet-gray-d64-sgd"
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        f.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
    print(f"{name}: loss {record['losses'][0]:.6g} -> {record['losses'][-1]:.6g}")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    run_case(1717)
    scunet_case()


if __name__ == "__main__":
    sys.exit(main())
