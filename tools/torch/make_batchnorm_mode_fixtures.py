#!/usr/bin/env python3
"""Whole-step PyTorch 1.13 parity fixtures for BatchNorm modes in training (training.md section 1.4).

Regenerate (CI only reads the committed JSON; needs Debian's python3-torch 1.13):

    /usr/bin/python3 tools/torch/make_batchnorm_mode_fixtures.py

Same network, batch, initial weights, steps and JSON layout as make_training_fixtures.py (reduced KAIR DnCNN,
act_mode 'BR', nc 8, nb 5, BatchNorm2d eps 1e-4; 20 steps on one batch, snapshots after 1, 5 and 20), whose
functions this script imports. Two cases:

  dncnn-br-frozenbn-adam.json            every BatchNorm2d in eval mode while the rest trains (the fine-tuning
                                         setup with small batches): `model.train()` and then `m.eval()` for each
                                         BatchNorm2d m. The running statistics normalise and stay as loaded,
                                         num_batches_tracked stays 0, gamma and beta learn. Adam, MSE.
  dncnn-br-bn-momentum-none-sgd.json     BatchNorm2d(momentum=None): the cumulative moving average, factor
                                         1 / num_batches_tracked (1, 1/2, 1/3, ...). SGD momentum 0.9, wd 1e-4, MSE.

"config" adds "batch_norm": "frozen" | "train" and "bn_momentum": 0.9 | null.
"""
import json
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_training_fixtures import (  # noqa: E402
    CONFIG,
    LOSSES,
    OPTIMIZERS,
    OUT,
    SNAPSHOTS,
    STEPS,
    DnCNN,
    encode,
    encode_state,
    initialise,
    make_batch,
    optimizer_settings,
)


class DnCNNMomentumNone(DnCNN):
    """make_training_fixtures.DnCNN with BatchNorm2d(momentum=None, eps=1e-4) instead of momentum 0.9."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = None


def bn_eval(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


CASES = [
    # name, network class, BatchNorm mode, optimizer
    ("dncnn-br-frozenbn-adam", DnCNN, "frozen", "adam"),
    ("dncnn-br-bn-momentum-none-sgd", DnCNNMomentumNone, "train", "sgd"),
]


def run_case(cls, batch_norm, opt_kind, batch, initial_state):
    model = cls(CONFIG["in_nc"], CONFIG["out_nc"], CONFIG["nc"], CONFIG["nb"], "BR")
    model.load_state_dict(initial_state, strict=True)
    model.train()
    if batch_norm == "frozen":
        bn_eval(model)
    bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    x, target = batch
    loss_fn = LOSSES["mse"]
    optimizer = OPTIMIZERS[opt_kind](model.parameters())
    record = {
        "torch": torch.__version__,
        "config": dict(CONFIG, act_mode="BR", batch_norm=batch_norm, bn_momentum=bn[0].momentum),
        "loss": "mse",
        "optimizer": optimizer_settings(opt_kind, optimizer),
        "input": encode(x),
        "target": encode(target),
        "initial": encode_state(model),
        "losses": [],
        "grads_step1": None,
        "output_step1": None,
        "after": {},
    }
    for step in range(1, STEPS + 1):
        optimizer.zero_grad()
        out = model(x)
        loss = loss_fn(out, target)
        loss.backward()
        record["losses"].append(float(loss.item()))
        if step == 1:
            record["output_step1"] = encode(out)
            record["grads_step1"] = {name: encode(p.grad) for name, p in model.named_parameters()}
        optimizer.step()
        if step in SNAPSHOTS:
            record["after"][str(step)] = encode_state(model)
    return record


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)

    # The batch and BR initial weights of make_training_fixtures.py (same seeds).
    batch = make_batch(torch.Generator().manual_seed(1717))
    model = DnCNN(CONFIG["in_nc"], CONFIG["out_nc"], CONFIG["nc"], CONFIG["nb"], "BR")
    initialise(model, torch.Generator().manual_seed(1713))
    initial = {k: v.clone() for k, v in model.state_dict().items()}

    for name, cls, batch_norm, opt_kind in CASES:
        record = run_case(cls, batch_norm, opt_kind, batch, initial)
        text = json.dumps(record, separators=(",", ":"), allow_nan=False)
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            f.write(text + "\n")
        losses = record["losses"]
        print(f"{name}.json: {len(text) + 1} bytes, loss {losses[0]:.6g} -> {losses[-1]:.6g}")


if __name__ == "__main__":
    sys.exit(main())
