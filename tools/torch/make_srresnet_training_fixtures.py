#!/usr/bin/env python3
"""Whole-step PyTorch 1.13 parity fixtures for SRGAN's SRResNet training (training.md section 7 item 5).

Regenerate (CI only reads the committed files; needs Debian's python3-torch 1.13):

    /usr/bin/python3 tools/torch/make_srresnet_training_fixtures.py

Writes test/fixtures/training/srresnet-x<scale>-<prelu>-<loss>-<opt>.json + .bin, laid out as
make_unet_training_fixtures.py's. The network is tools/torch/nets/srresnet.py (our restatement of SRGAN's SRResNet
in the Lornatang/SRGAN-PyTorch layout: 9x9 head + PReLU, residual blocks conv -> BatchNorm -> PReLU -> conv ->
BatchNorm + x, conv -> BatchNorm + long skip, upsample blocks conv -> PixelShuffle(2) -> PReLU, 9x9 tail,
clamp to [0, 1]) with 8 features and 2 blocks, BatchNorm in train mode (PyTorch's defaults: momentum 0.1, eps
1e-5). Weights are seeded: fan-in-scaled convolutions, BatchNorm affine and running statistics away from the
identity, PReLU slopes in [-0.2, 0.6) (shared nn.PReLU() or one per channel). The tail is scaled and shifted so that
part of the output, but not most of it, is clamped (its gradient is then 0; `clampedFraction` says how much).
The batch is 2 low-resolution inputs and their x2 / x4 targets (a smooth field downsampled by area averaging,
plus noise on the input). Cases:
  srresnet-x2-shared-mse-adam    x2, shared slopes, 3 channels, MSE, Adam lr 1e-3
  srresnet-x4-channel-mse-adam   x4 (two upsample blocks), per-channel slopes, gray, MSE, Adam lr 1e-4 (Lornatang's)
  srresnet-x4-shared-mse-sgd     x4, shared slopes, gray, MSE, SGD lr 0.02 momentum 0.9
20 steps on the same batch; state after 1, 5 and 20 steps. `float64Drift` is the relative L2 distance between
this float32 run's final state and the same run in float64: how far PyTorch's own float32 strays.
"""
import copy
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_training_fixtures import optimizer_settings  # noqa: E402
from make_unet_training_fixtures import Blob  # noqa: E402
from nets.srresnet import SRResNet  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "training")
FEATURES = 8
BLOCKS = 2
STEPS = 20
SNAPSHOTS = (1, 5, 20)
OUTPUT_STD = 0.4
# (scale, per-channel PReLU, image channels, low-resolution H, W, loss, optimizer)
CASES = [
    (2, False, 3, 8, 7, "mse", "adam"),
    (4, True, 1, 7, 6, "mse", "adam_lornatang"),
    (4, False, 1, 7, 6, "mse", "sgd"),
]
LOSSES = {"mse": nn.MSELoss()}
OPTIMIZERS = {
    "adam": lambda p: torch.optim.Adam(p, lr=1e-3, foreach=False),
    "adam_lornatang": lambda p: torch.optim.Adam(p, lr=1e-4, betas=(0.9, 0.999), foreach=False),
    "sgd": lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9, foreach=False),
}


def initialise(model, gen):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
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
            elif isinstance(m, nn.PReLU):
                m.weight.copy_(-0.2 + 0.8 * torch.rand(m.weight.shape, generator=gen))


def spread_output(model, x):
    """Scales and shifts the tail so that the unclamped output of `x` has mean 0.5 and standard deviation
    OUTPUT_STD: the clamp then cuts a fair part of it on both sides (zero gradient there), not all or nothing."""
    probe = copy.deepcopy(model).train()  # a train-mode forward steps the running statistics: not on `model`
    with torch.no_grad():
        out = probe(x, clamp=False)
        gain = OUTPUT_STD / out.std()
        tail = model.conv3
        tail.weight.mul_(gain)
        # out = conv(w) + b  ->  gain·conv(w) + b', with b' putting the mean at 0.5.
        tail.bias.copy_(0.5 + gain * (tail.bias - out.mean(dim=(0, 2, 3))))


def make_batch(channels, h, w, scale, gen):
    coarse = torch.rand((2, channels, 4, 4), generator=gen)
    high = F.interpolate(coarse, size=(h * scale, w * scale), mode="bicubic", align_corners=False).clamp(0, 1)
    low = F.avg_pool2d(high, scale) + 10 / 255 * torch.randn((2, channels, h, w), generator=gen)
    return low.contiguous(), high.contiguous()


def train(model, x, target, loss_name, opt_kind, on_step=lambda *_: None, on_update=lambda _: None):
    """STEPS steps on one batch, train mode; `on_step` sees each output and loss before the update."""
    optimizer = OPTIMIZERS[opt_kind](model.parameters())
    model.train()
    for step in range(1, STEPS + 1):
        optimizer.zero_grad()
        out = model(x)
        loss = LOSSES[loss_name](out, target)
        loss.backward()
        on_step(step, out, loss)
        optimizer.step()
        on_update(step)
    return optimizer


def flat_state(model):
    return torch.cat([v.detach().double().reshape(-1) for k, v in model.state_dict().items() if v.is_floating_point()])


def run_case(scale, per_channel, channels, h, w, loss_name, opt_kind, seed):
    gen = torch.Generator().manual_seed(seed)
    kwargs = dict(in_channels=channels, out_channels=channels, channels=FEATURES, num_rcb=BLOCKS,
                  upscale_factor=scale, prelu_per_channel=per_channel)
    model = SRResNet(**kwargs)
    initialise(model, gen)
    x, target = make_batch(channels, h, w, scale, gen)
    spread_output(model, x)
    twin = SRResNet(**kwargs).double()
    twin.load_state_dict(model.state_dict())
    blob = Blob()
    record = {
        "torch": torch.__version__,
        "config": {"inChannels": channels, "outChannels": channels, "features": FEATURES, "blocks": BLOCKS,
                   "scale": scale, "prelu": "channel" if per_channel else "shared", "clampOutput": True},
        "loss": loss_name,
        "optimizer": None,
        "input": blob.encode(x),
        "target": blob.encode(target),
        "initial": blob.state(model),
        "losses": [],
        "grads_step1": None,
        "output_step1": None,
        "clampedFraction": None,
        "after": {},
    }

    def on_step(step, out, loss):
        record["losses"].append(float(loss.item()))
        if step == 1:
            record["clampedFraction"] = float(((out == 0) | (out == 1)).double().mean())
            record["output_step1"] = blob.encode(out)
            record["grads_step1"] = {k: blob.encode(p.grad) for k, p in model.named_parameters()}

    def after_update(step):
        if step in SNAPSHOTS:
            record["after"][str(step)] = blob.state(model)

    optimizer = train(model, x, target, loss_name, opt_kind, on_step, after_update)
    record["optimizer"] = optimizer_settings("adam" if opt_kind.startswith("adam") else opt_kind, optimizer)
    train(twin, x.double(), target.double(), loss_name, opt_kind)
    final, final64 = flat_state(model), flat_state(twin)
    record["float64Drift"] = float((final - final64).norm() / final64.norm())
    prelu = "channel" if per_channel else "shared"
    opt_name = "adam" if opt_kind.startswith("adam") else opt_kind
    name = f"srresnet-x{scale}-{prelu}-{loss_name}-{opt_name}"
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        f.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
    with open(os.path.join(OUT, name + ".bin"), "wb") as f:
        f.write(bytes(blob.data))
    print(f"{name}: {len(blob.data)} bytes, loss {record['losses'][0]:.6g} -> {record['losses'][-1]:.6g}, "
          f"clamped {record['clampedFraction']:.3f}, f32/f64 drift {record['float64Drift']:.2e}")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    for i, case in enumerate(CASES):
        run_case(*case, seed=91 + i)


if __name__ == "__main__":
    sys.exit(main())
