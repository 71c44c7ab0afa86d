#!/usr/bin/env python3
"""Whole-step PyTorch 1.13 parity fixture for GAN training (training.md section 2.6 and section 7's "one GAN step").

Regenerate (CI only reads the committed files; needs Debian's python3-torch 1.13):

    /usr/bin/python3 tools/torch/make_gan_training_fixtures.py

Writes test/fixtures/training/gan-pix2pix.json + .bin and gan-esrgan.json + .bin (tensors at byte offsets of the .bin, as
make_unet_training_fixtures.py's Blob). One step is pix2pix's optimize_parameters
(junyanz/pytorch-CycleGAN-and-pix2pix, models/pix2pix_model.py), restated here:

    fake_B = G(real_A)
    D step:  loss_D = 0.5 * (BCE(D(cat(real_A, fake_B).detach()), 0) + BCE(D(cat(real_A, real_B)), 1))
             loss_D.backward(); optimizer_D.step()
    G step (D's parameters requires_grad False, D still in train mode):
             loss_G = BCE(D(cat(real_A, fake_B)), 1) + 100 * L1(fake_B, real_B)
             loss_G.backward(); optimizer_G.step()

BCE is nn.BCEWithLogitsLoss (gan_mode 'vanilla'); both optimizers Adam lr 2e-4 betas (0.5, 0.999) (pix2pix's).
The generator is our reduced KAIR DnCNN (BR: conv, BatchNorm(momentum 0.9, eps 1e-4), ReLU; output x - model(x))
with nc 8, nb 4; the discriminator pix2pix's NLayerDiscriminator(input_nc 2, ndf 8, n_layers 2, BatchNorm2d),
written out below with its state_dict names. Batch 2 x 1 x 24 x 20 (logits 4 x 3 per image). Weights uniform in
+-1/sqrt(fan_in) (pix2pix's N(0, 0.02) gives gradients too small to compare), BatchNorm gamma in [0.8, 1.2],
beta in +-0.1, running statistics near 0 and 1. 5 steps; losses of every step, both networks' gradients of step 1,
state_dicts after 1 and 5 steps (running statistics and num_batches_tracked: D's BatchNorms count three forwards
a step).

gan-esrgan is BasicSR's ESRGANModel.optimize_parameters (models/esrgan_model.py) with the relativistic average GAN
loss, generator first:
    output = G(lq)
    G step (D frozen): real = D(gt).detach(); fake = D(output)
             l_g = w_pix * L1(output, gt) + w_gan * 0.5 * (BCE(real - mean(fake), 0) + BCE(fake - mean(real), 1))
    D step:  fake_d = D(output).detach(); real_d = D(gt)
             (0.5 * BCE(real_d - mean(fake_d), 1)).backward()
             fake_d = D(output.detach()); (0.5 * BCE(fake_d - mean(real_d.detach()), 0)).backward(); optimizer_d.step()
with BasicSR's MSRResNet x2 (8 features, 2 blocks) as the generator and a PatchGAN (input_nc 1, ndf 8, n_layers 2)
as the discriminator, w_pix 1, w_gan 0.1 (ESRGAN's 1e-2 and 5e-3 leave the adversarial part too small to check),
Adam lr 1e-4 betas (0.9, 0.99) (BasicSR's). D's BatchNorms count five forwards a step.
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_training_fixtures import DnCNN  # noqa: E402
from make_unet_training_fixtures import Blob  # noqa: E402
from nets.msrresnet import MSRResNet  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "training")
SHAPE = (2, 1, 24, 20)
STEPS = 5
SNAPSHOTS = (1, 5)
LAMBDA_L1 = 100.0


class NLayerDiscriminator(nn.Module):
    """pix2pix's PatchGAN with norm_layer=nn.BatchNorm2d (so use_bias False after the first layer)."""

    def __init__(self, input_nc, ndf=64, n_layers=3):
        super().__init__()
        seq = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2**n_layers, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=False), nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
        seq += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x)


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
                m.bias.copy_((torch.rand(c, generator=gen) * 2 - 1) * 0.1)
                m.running_mean.copy_((torch.rand(c, generator=gen) * 2 - 1) * 0.1)
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))


def set_requires_grad(net, flag):
    for p in net.parameters():
        p.requires_grad = flag


def write(name, record, blob):
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        f.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
    with open(os.path.join(OUT, name + ".bin"), "wb") as f:
        f.write(bytes(blob.data))
    losses = record["losses"]
    print(f"{name}: {len(blob.data)} bytes, D {losses['discriminator'][0]:.5g} -> {losses['discriminator'][-1]:.5g}, "
          f"G adv {losses['adversarial'][0]:.5g} -> {losses['adversarial'][-1]:.5g}, "
          f"content {losses['content'][0]:.5g} -> {losses['content'][-1]:.5g}")


def esrgan():
    gen = torch.Generator().manual_seed(2607)
    G = MSRResNet(num_in_ch=1, num_out_ch=1, num_feat=8, num_block=2, upscale=2)
    D = NLayerDiscriminator(1, ndf=8, n_layers=2)
    initialise(G, gen)
    initialise(D, gen)
    G.train()
    D.train()
    n, c, h, w = 2, 1, 12, 10
    coarse = torch.rand((n, c, 5, 4), generator=gen)
    gt = F.interpolate(coarse, size=(2 * h, 2 * w), mode="bicubic", align_corners=False).contiguous()
    lq = (F.avg_pool2d(gt, 2) + 0.02 * torch.randn((n, c, h, w), generator=gen)).contiguous()
    opt_G = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.9, 0.99), foreach=False)
    opt_D = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.9, 0.99), foreach=False)
    bce = nn.BCEWithLogitsLoss()
    w_pix, w_gan = 1.0, 0.1

    def gan(pred, real):
        return bce(pred, torch.full_like(pred, 1.0 if real else 0.0))

    blob = Blob()
    record = {
        "torch": torch.__version__,
        "generator": {"in": 1, "out": 1, "features": 8, "blocks": 2, "scale": 2},
        "discriminator": {"in_channels": 1, "ndf": 8, "n_layers": 2},
        "pixel_weight": w_pix,
        "gan_weight": w_gan,
        "optimizer": {"kind": "adam", "lr": 1e-4, "betas": [0.9, 0.99], "eps": 1e-8, "weight_decay": 0},
        "input": blob.encode(lq),
        "target": blob.encode(gt),
        "initial": {"generator": blob.state(G), "discriminator": blob.state(D)},
        "losses": {"discriminator": [], "adversarial": [], "content": []},
        "grads_step1": None,
        "output_step1": None,
        "after": {},
    }
    for step in range(1, STEPS + 1):
        set_requires_grad(D, False)
        opt_G.zero_grad()
        output = G(lq)
        l_g_pix = w_pix * F.l1_loss(output, gt)
        real_d_pred = D(gt).detach()
        fake_g_pred = D(output)
        l_g_gan = w_gan * (gan(real_d_pred - torch.mean(fake_g_pred), False) + gan(fake_g_pred - torch.mean(real_d_pred), True)) / 2
        (l_g_pix + l_g_gan).backward()
        opt_G.step()
        set_requires_grad(D, True)
        opt_D.zero_grad()
        fake_d_pred = D(output).detach()
        real_d_pred = D(gt)
        l_d_real = gan(real_d_pred - torch.mean(fake_d_pred), True) * 0.5
        l_d_real.backward()
        fake_d_pred = D(output.detach())
        l_d_fake = gan(fake_d_pred - torch.mean(real_d_pred.detach()), False) * 0.5
        l_d_fake.backward()
        opt_D.step()
        record["losses"]["discriminator"].append(float(l_d_real.item() + l_d_fake.item()))
        record["losses"]["adversarial"].append(float(l_g_gan.item()))
        record["losses"]["content"].append(float(l_g_pix.item()))
        if step == 1:
            record["output_step1"] = blob.encode(output)
            record["grads_step1"] = {
                "generator": {k: blob.encode(p.grad) for k, p in G.named_parameters()},
                "discriminator": {k: blob.encode(p.grad) for k, p in D.named_parameters()},
            }
        if step in SNAPSHOTS:
            record["after"][str(step)] = {"generator": blob.state(G), "discriminator": blob.state(D)}
    write("gan-esrgan", record, blob)


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    esrgan()
    gen = torch.Generator().manual_seed(2606)
    G = DnCNN(1, 1, 8, 4, "BR")
    D = NLayerDiscriminator(2, ndf=8, n_layers=2)
    initialise(G, gen)
    initialise(D, gen)
    G.train()
    D.train()
    n, c, h, w = SHAPE
    coarse = torch.rand((n, c, 5, 4), generator=gen)
    real_B = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1).contiguous()
    real_A = (real_B + 0.1 * torch.randn(SHAPE, generator=gen)).contiguous()
    opt_G = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999), foreach=False)
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999), foreach=False)
    bce = nn.BCEWithLogitsLoss()
    blob = Blob()
    record = {
        "torch": torch.__version__,
        "generator": {"in_nc": 1, "out_nc": 1, "nc": 8, "nb": 4, "act_mode": "BR"},
        "discriminator": {"in_channels": 2, "ndf": 8, "n_layers": 2},
        "lambda_l1": LAMBDA_L1,
        "optimizer": {"kind": "adam", "lr": 2e-4, "betas": [0.5, 0.999], "eps": 1e-8, "weight_decay": 0},
        "input": blob.encode(real_A),
        "target": blob.encode(real_B),
        "initial": {"generator": blob.state(G), "discriminator": blob.state(D)},
        "losses": {"discriminator": [], "adversarial": [], "content": []},
        "grads_step1": None,
        "output_step1": None,
        "after": {},
    }
    for step in range(1, STEPS + 1):
        fake_B = G(real_A)
        set_requires_grad(D, True)
        opt_D.zero_grad()
        loss_D_fake = bce(D(torch.cat((real_A, fake_B), 1).detach()), torch.zeros(()).expand(n, 1, 4, 3))
        loss_D_real = bce(D(torch.cat((real_A, real_B), 1)), torch.ones(()).expand(n, 1, 4, 3))
        loss_D = (loss_D_fake + loss_D_real) * 0.5
        loss_D.backward()
        opt_D.step()
        set_requires_grad(D, False)
        opt_G.zero_grad()
        loss_G_GAN = bce(D(torch.cat((real_A, fake_B), 1)), torch.ones(()).expand(n, 1, 4, 3))
        loss_G_L1 = F.l1_loss(fake_B, real_B) * LAMBDA_L1
        (loss_G_GAN + loss_G_L1).backward()
        opt_G.step()
        record["losses"]["discriminator"].append(float(loss_D.item()))
        record["losses"]["adversarial"].append(float(loss_G_GAN.item()))
        record["losses"]["content"].append(float(loss_G_L1.item()))
        if step == 1:
            record["output_step1"] = blob.encode(fake_B)
            record["grads_step1"] = {
                "generator": {k: blob.encode(p.grad) for k, p in G.named_parameters()},
                "discriminator": {k: blob.encode(p.grad) for k, p in D.named_parameters()},
            }
        if step in SNAPSHOTS:
            record["after"][str(step)] = {"generator": blob.state(G), "discriminator": blob.state(D)}
    write("gan-pix2pix", record, blob)


if __name__ == "__main__":
    sys.exit(main())
