#!/usr/bin/env python3
"""Whole-step PyTorch 1.13 parity fixtures for DnCNN training (training.md section 7 items 3, 5 and 9).

Regenerate (CI only reads the committed JSON; needs Debian's python3-torch 1.13):

    /usr/bin/python3 tools/torch/make_training_fixtures.py

Writes test/fixtures/training/dncnn-<act>-<loss>-<opt>.json, eleven files:
  act r / br  x  opt sgd / sgd-nesterov / adam / adamw  with loss mse,  plus  br-l1-adam,  r-charbonnier-adam  and
  r-ssim-adam (1 - SSIM, pytorch-msssim's definition, data range 1).

The network is our re-statement of KAIR's DnCNN (models/network_dncnn.py + basicblock.conv), as in
dncnn_reference.py: a flat nn.Sequential `model` of 3x3 convs with bias, then BatchNorm2d(momentum 0.9,
eps 1e-4) in act_mode 'BR', then ReLU; the output is x - model(x). Reduced size: in_nc 1, out_nc 1, nc 8, nb 5.
Everything runs in float32 on the CPU with one thread, deterministic algorithms and fixed seeds, so the
files are byte-identical between runs.

Each step, on the same batch every time, in train() mode (BatchNorm normalises with the batch statistics and
updates its running statistics and num_batches_tracked):
    optimizer.zero_grad(); out = model(input); loss = loss_fn(out, target); loss.backward(); optimizer.step()
20 steps. Optimizers use their single-tensor path (foreach=False, the 1.13 default for foreach=None).

Data: N = 2, 1 channel, H 16 x W 12. clean = a smooth random field in [0, 1] (bicubic upsampling of a 5 x 4
random grid, rescaled per image); input = clean + 25/255 * N(0, 1) noise, unclipped (KAIR's AWGN); target =
clean. Initial weights from a fixed generator: conv weights and biases uniform in [-0.3, 0.3]; BatchNorm gamma
uniform in [0.8, 1.2], beta in [-0.1, 0.1], running_mean in [-0.1, 0.1], running_var in [0.5, 1.5],
num_batches_tracked 0. Both act modes share the same batch; cases of one act mode share the initial weights.

JSON layout (tensors as {"shape": [...], "data": [...]}, row-major / NCHW, float32 values written as
float(), i.e. the exact value; num_batches_tracked as integers; names are state_dict keys):
  torch           torch.__version__
  config          {"in_nc", "out_nc", "nc", "nb", "act_mode"}
  loss            "mse" (nn.MSELoss, mean) | "l1" (nn.L1Loss, mean) | "charbonnier" (mean sqrt(d^2 + 1e-9), KAIR)
  optimizer       {"kind", "lr", "betas", "eps", "weight_decay", "momentum", "nesterov", "dampening"},
                  null where the kind has no such setting
  input, target   the batch
  initial         the full state_dict before step 1
  losses          the loss of each of the 20 steps, computed before that step's update
  grads_step1     every parameter's .grad after the first backward
  output_step1    the model output of step 1
  after           {"1", "5", "20"}: the full state_dict after that many steps (running stats and
                  num_batches_tracked included)
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loss_fixtures import msssim_ssim  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "training")

CONFIG = {"in_nc": 1, "out_nc": 1, "nc": 8, "nb": 5}
BATCH_SHAPE = (2, 1, 16, 12)
NOISE_SIGMA = 25 / 255
STEPS = 20
SNAPSHOTS = (1, 5, 20)
CHARBONNIER_EPS = 1e-9


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


def uniform(shape, low, high, gen):
    return low + (high - low) * torch.rand(shape, generator=gen, dtype=torch.float32)


def initialise(model, gen):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(uniform(m.weight.shape, -0.3, 0.3, gen))
                m.bias.copy_(uniform(m.bias.shape, -0.3, 0.3, gen))
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(uniform(c, 0.8, 1.2, gen))
                m.bias.copy_(uniform(c, -0.1, 0.1, gen))
                m.running_mean.copy_(uniform(c, -0.1, 0.1, gen))
                m.running_var.copy_(uniform(c, 0.5, 1.5, gen))
                m.num_batches_tracked.zero_()


def make_batch(gen):
    n, c, h, w = BATCH_SHAPE
    coarse = torch.rand((n, c, 5, 4), generator=gen)
    field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    low = field.amin(dim=(1, 2, 3), keepdim=True)
    high = field.amax(dim=(1, 2, 3), keepdim=True)
    clean = (field - low) / (high - low)
    noisy = clean + NOISE_SIGMA * torch.randn(BATCH_SHAPE, generator=gen)
    return noisy.contiguous(), clean.contiguous()


def charbonnier(out, target):
    d = out - target
    return torch.mean(torch.sqrt(d * d + CHARBONNIER_EPS))


def ssim_loss(out, target):
    # 1 - SSIM with pytorch-msssim's definition (restated in loss_fixtures.py), data range 1.
    return 1 - msssim_ssim(out, target, data_range=1)


def filtered(x, kernel):
    # F.conv2d with the 3x3 kernel per channel (groups = C), zero padding 1: training.md section 2.4.
    c = x.shape[1]
    k = torch.tensor(kernel, dtype=x.dtype).expand(c, 1, 3, 3)
    return F.conv2d(x, k, padding=1, groups=c)


SOBEL_X = [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]
SOBEL_Y = [list(r) for r in zip(*SOBEL_X)]
LAPLACIAN = [[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]


def sobel_l1(out, target):
    # L1 mean over both Sobel maps stacked.
    d = torch.cat([filtered(out, SOBEL_X) - filtered(target, SOBEL_X), filtered(out, SOBEL_Y) - filtered(target, SOBEL_Y)])
    return d.abs().mean()


def laplacian_mse(out, target):
    return ((filtered(out, LAPLACIAN) - filtered(target, LAPLACIAN)) ** 2).mean()


def total_variation(out):
    # kornia total_variation(reduction='sum'): anisotropic L1 summed per image, then the batch mean.
    dh = (out[:, :, 1:, :] - out[:, :, :-1, :]).abs().sum(dim=(1, 2, 3))
    dw = (out[:, :, :, 1:] - out[:, :, :, :-1]).abs().sum(dim=(1, 2, 3))
    return (dh + dw).mean()


# SINSR-style content loss: L1 + Sobel + second order + TV + SSIM, weights as a LossConfig of kind 'sum'.
SUM_TERMS = [
    ({"kind": "l1", "weight": 1.0}, lambda o, t: F.l1_loss(o, t)),
    ({"kind": "sobel", "criterion": "l1", "weight": 0.1}, sobel_l1),
    ({"kind": "laplacian", "criterion": "mse", "weight": 0.05}, laplacian_mse),
    ({"kind": "tv", "variant": "anisotropic-l1", "weight": 1e-4}, lambda o, t: total_variation(o)),
    ({"kind": "ssim", "weight": 0.5}, ssim_loss),
]


def sum_loss(out, target):
    total = None
    for config, fn in SUM_TERMS:
        term = config["weight"] * fn(out, target)
        total = term if total is None else total + term
    return total


LOSSES = {"mse": nn.MSELoss(), "l1": nn.L1Loss(), "charbonnier": charbonnier, "ssim": ssim_loss, "sum": sum_loss}

OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, weight_decay=1e-4, foreach=False),
    "sgd-nesterov": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True, foreach=False),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-3, foreach=False),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=1e-2, foreach=False),
    "adamw-groups": lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=1e-2, foreach=False),
    "sgd-groups": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, weight_decay=1e-4, foreach=False),
}


def param_groups(model, optimizer_kind):
    """The model's parameters as torch.optim param groups (GROUPS, then the rest), and their JSON description."""
    named = list(model.named_parameters())
    bn = {f"{m}.{p}" for m, mod in model.named_modules() if isinstance(mod, nn.BatchNorm2d) for p, _ in mod.named_parameters()}
    lr = 1e-3 if optimizer_kind.startswith("adam") else 0.01
    groups, described, taken = [], [], set()
    for g in GROUPS:
        names = [n for n, _ in named if g["names"](n, bn) and n not in taken]
        if not names:
            continue
        taken.update(names)
        options = {"lr": lr * g.get("lr_scale", 1.0)} if "lr_scale" in g else {}
        if "weight_decay" in g:
            options["weight_decay"] = g["weight_decay"]
        groups.append(dict(params=[p for n, p in named if n in names], **options))
        described.append(dict(params=names, **options))
    groups.append({"params": [p for n, p in named if n not in taken]})
    return groups, described

CASES = [(act, "mse", opt) for act in ("R", "BR") for opt in ("sgd", "sgd-nesterov", "adam", "adamw")] + [
    ("BR", "l1", "adam"),
    ("R", "charbonnier", "adam"),
    ("R", "ssim", "adam"),
    ("BR", "mse", "adamw-groups"),
    ("R", "mse", "sgd-groups"),
    ("R", "sum", "adam"),
]

# Parameter groups (torch.optim's list of dicts): the first convolution learns 10x slower without weight decay,
# the BatchNorm affine parameters have no weight decay, every other parameter uses the optimizer's defaults.
# The groups are listed by state_dict name in the JSON ("param_groups") so the test can rebuild them.
GROUPS = [
    {"names": lambda n, bn: n.startswith("model.0."), "lr_scale": 0.1, "weight_decay": 0.0},
    {"names": lambda n, bn: n in bn, "weight_decay": 0.0},
]


def optimizer_settings(kind, optimizer):
    d = optimizer.defaults
    is_sgd = kind.startswith("sgd")
    return {
        "kind": "sgd" if is_sgd else kind,
        "lr": d["lr"],
        "betas": None if is_sgd else list(d["betas"]),
        "eps": None if is_sgd else d["eps"],
        "weight_decay": d["weight_decay"],
        "momentum": d["momentum"] if is_sgd else None,
        "nesterov": d["nesterov"] if is_sgd else None,
        "dampening": d["dampening"] if is_sgd else None,
    }


def encode(t):
    t = t.detach().contiguous()
    values = t.reshape(-1).tolist()  # tolist() of float32 gives Python floats holding the exact f32 values
    if t.dtype == torch.float32:
        values = [float(v) for v in values]
    elif t.dtype == torch.int64:
        values = [int(v) for v in values]
    else:
        raise TypeError(f"unexpected dtype {t.dtype}")
    return {"shape": list(t.shape), "data": values}


def encode_state(model):
    return {k: encode(v) for k, v in model.state_dict().items()}


def run_case(act, loss_name, opt_kind, batch, initial_state):
    model = DnCNN(CONFIG["in_nc"], CONFIG["out_nc"], CONFIG["nc"], CONFIG["nb"], act)
    model.load_state_dict(initial_state, strict=True)
    model.train()
    x, target = batch
    loss_fn = LOSSES[loss_name]
    grouped = opt_kind.endswith("-groups")
    groups, described = param_groups(model, opt_kind) if grouped else (None, None)
    optimizer = OPTIMIZERS[opt_kind](groups if grouped else model.parameters())
    record = {
        "torch": torch.__version__,
        "config": dict(CONFIG, act_mode=act),
        "loss": loss_name,
        "optimizer": optimizer_settings(opt_kind.removesuffix("-groups"), optimizer),
        "input": encode(x),
        "target": encode(target),
        "initial": encode_state(model),
        "losses": [],
        "grads_step1": None,
        "output_step1": None,
        "after": {},
    }
    if grouped:
        record["param_groups"] = described
    if loss_name == "sum":
        record["loss_config"] = {"kind": "sum", "terms": [config for config, _ in SUM_TERMS]}
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

    batch = make_batch(torch.Generator().manual_seed(1717))
    initial = {}
    for act, seed in (("R", 17), ("BR", 1713)):
        model = DnCNN(CONFIG["in_nc"], CONFIG["out_nc"], CONFIG["nc"], CONFIG["nb"], act)
        initialise(model, torch.Generator().manual_seed(seed))
        initial[act] = {k: v.clone() for k, v in model.state_dict().items()}

    total = 0
    for act, loss_name, opt_kind in CASES:
        record = run_case(act, loss_name, opt_kind, batch, initial[act])
        name = f"dncnn-{act.lower()}-{loss_name}-{opt_kind}.json"
        text = json.dumps(record, separators=(",", ":"), allow_nan=False)
        with open(os.path.join(OUT, name), "w") as f:
            f.write(text + "\n")
        total += len(text) + 1
        losses = record["losses"]
        print(f"{name}: {len(text) + 1} bytes, loss {losses[0]:.6g} -> {losses[-1]:.6g}")
    print(f"total {total} bytes")


if __name__ == "__main__":
    sys.exit(main())
