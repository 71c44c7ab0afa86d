#!/usr/bin/env python3
"""Whole-step PyTorch 1.13 parity fixtures for smp's ResNet34-SCSE U-Net training (training.md section 7 item 5).

Regenerate (CI only reads the committed files; needs Debian's python3-torch 1.13):

    /usr/bin/python3 tools/torch/make_resunet_training_fixtures.py

Writes test/fixtures/training/resunet-<loss>-<opt>.json plus a .bin beside it, in make_unet_training_fixtures.py's
layout (float32 tensors as {"shape", "offset"} into the .bin; num_batches_tracked as {"shape": [], "data": [n]}).

The network is a REDUCED smp.Unet('resnet34', decoder_attention_type='scse') of the same structure and with smp's
state_dict names (tools/torch/nets/smp_unet.py's blocks): stem conv7x7 s2 + BN + ReLU, MaxPool 3x3 s2 p1, four
ResNet stages of BasicBlocks (widths 4, 4, 8, 8 after a stem of 4; blocks 2, 2, 1, 1, so layer1 has identity
shortcuts and layers 2-4 start with a stride-2 block and a 1x1 conv + BN downsample), then five decoder blocks
(nearest x2, cat [up, skip], SCSE, conv-BN-ReLU x2, SCSE; width 8, SCSE reduction 4 instead of smp's 16 so
that 8 channels keep 2 hidden ones) and segmentation_head.0 (conv3x3 with bias). Every BatchNorm in train mode with
PyTorch's defaults (momentum 0.1, eps 1e-5). Batch 2 x 1 x 64 x 64, so the deepest map is 2 x 2 (BatchNorm over
8 values per channel; at 1 x 1 float32 itself drifts too far from float64 to compare against).
Case: resunet-mse-adamw, MSE, AdamW lr 1e-4 (weight decay 1e-2), 5 steps on the same batch; state after 1 and 5.
At lr 1e-3 PyTorch's own float32 run drifts 1e-3 from float64 by step 5 (Adam's sign-like steps on the
small BatchNorm sets); at 1e-4 it stays within 2e-5.
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_training_fixtures import optimizer_settings  # noqa: E402
from make_unet_training_fixtures import Blob, initialise  # noqa: E402
from nets.smp_unet import BasicBlock, Conv2dReLU, SCSEModule  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "training")
BATCH_SHAPE = (2, 1, 64, 64)
ENCODER_WIDTHS = (4, 4, 8, 8, 16)
ENCODER_DEPTHS = (2, 2, 1, 1)
DECODER_CHANNELS = (8, 8, 8, 8, 8)
REDUCTION = 4
STEPS = 5
SNAPSHOTS = (1, 5)


class Encoder(nn.Module):
    """torchvision's ResNet (BasicBlock) without avgpool/fc, at the given widths and depths; returns [x, f1..f5]."""

    def __init__(self, in_channels, widths, depths):
        super().__init__()
        stem = widths[0]
        self.conv1 = nn.Conv2d(in_channels, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = stem
        for i, (n, width) in enumerate(zip(depths, widths[1:])):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(cin, width, stride)] + [BasicBlock(width, width) for _ in range(n - 1)]
            setattr(self, "layer%d" % (i + 1), nn.Sequential(*blocks))
            cin = width
        self.out_channels = (in_channels,) + tuple(widths)

    def forward(self, x):
        f1 = self.relu(self.bn1(self.conv1(x)))
        f2 = self.layer1(self.maxpool(f1))
        f3 = self.layer2(f2)
        f4 = self.layer3(f3)
        f5 = self.layer4(f4)
        return [x, f1, f2, f3, f4, f5]


class Attention(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.attention = SCSEModule(channels, REDUCTION)

    def forward(self, x):
        return self.attention(x)


class DecoderBlock(nn.Module):
    """smp 0.3's DecoderBlock: interpolate x2 nearest, cat [x, skip], attention1, conv1, conv2, attention2."""

    def __init__(self, cin, cskip, cout):
        super().__init__()
        self.conv1 = Conv2dReLU(cin + cskip, cout)
        self.attention1 = Attention(cin + cskip)
        self.conv2 = Conv2dReLU(cout, cout)
        self.attention2 = Attention(cout)

    def forward(self, x, skip=None):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
            x = self.attention1(x)
        x = self.conv1(x)
        x = self.conv2(x)
        return self.attention2(x)


class Decoder(nn.Module):
    def __init__(self, encoder_channels, decoder_channels):
        super().__init__()
        enc = list(encoder_channels[1:])[::-1]
        ins = [enc[0]] + list(decoder_channels[:-1])
        skips = enc[1:] + [0]
        self.center = nn.Identity()
        self.blocks = nn.ModuleList(DecoderBlock(i, s, o) for i, s, o in zip(ins, skips, decoder_channels))

    def forward(self, *features):
        feats = features[1:][::-1]
        x = self.center(feats[0])
        skips = feats[1:]
        for i, block in enumerate(self.blocks):
            x = block(x, skips[i] if i < len(skips) else None)
        return x


class ReducedSmpUnet(nn.Module):
    def __init__(self, in_channels=1, classes=1):
        super().__init__()
        self.encoder = Encoder(in_channels, ENCODER_WIDTHS, ENCODER_DEPTHS)
        self.decoder = Decoder(self.encoder.out_channels, DECODER_CHANNELS)
        self.segmentation_head = nn.Sequential(nn.Conv2d(DECODER_CHANNELS[-1], classes, 3, padding=1), nn.Identity(), nn.Identity())

    def forward(self, x):
        return self.segmentation_head(self.decoder(*self.encoder(x)))


def make_batch(gen):
    n, c, h, w = BATCH_SHAPE
    coarse = torch.rand((n, c, 6, 6), generator=gen)
    field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    low = field.amin(dim=(1, 2, 3), keepdim=True)
    high = field.amax(dim=(1, 2, 3), keepdim=True)
    clean = (field - low) / (high - low)
    noisy = clean + 25 / 255 * torch.randn(BATCH_SHAPE, generator=gen)
    return noisy.contiguous(), clean.contiguous()


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    x, target = make_batch(torch.Generator().manual_seed(2025))
    model = ReducedSmpUnet(1, 1)
    initialise(model, torch.Generator().manual_seed(47))
    model.train()
    blob = Blob()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-2, foreach=False)
    name = "resunet-mse-adamw"
    record = {
        "torch": torch.__version__,
        "config": {
            "in_channels": 1,
            "classes": 1,
            "encoder_widths": list(ENCODER_WIDTHS),
            "encoder_depths": list(ENCODER_DEPTHS),
            "decoder_channels": list(DECODER_CHANNELS),
            "reduction": REDUCTION,
        },
        "loss": "mse",
        "optimizer": optimizer_settings("adamw", optimizer),
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
        loss = F.mse_loss(out, target)
        loss.backward()
        record["losses"].append(float(loss.item()))
        if step == 1:
            record["output_step1"] = blob.encode(out)
            # The skipless last block's attention1 never runs: its grads are None and AdamW skips it, as smp.
            record["grads_step1"] = {k: blob.encode(p.grad) for k, p in model.named_parameters() if p.grad is not None}
            record["unused"] = [k for k, p in model.named_parameters() if p.grad is None]
        optimizer.step()
        if step in SNAPSHOTS:
            record["after"][str(step)] = blob.state(model)
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        f.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
    with open(os.path.join(OUT, name + ".bin"), "wb") as f:
        f.write(bytes(blob.data))
    losses = record["losses"]
    print(f"{name}: {len(blob.data)} bytes of tensors, loss {losses[0]:.6g} -> {losses[-1]:.6g}")


if __name__ == "__main__":
    sys.exit(main())
