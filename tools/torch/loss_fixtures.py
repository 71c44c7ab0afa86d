#!/usr/bin/env python3
"""PyTorch 1.13 references for the SSIM loss and the adversarial BCE-with-logits losses (training.md §2.3, §2.6).

Run with Debian's python3-torch: /usr/bin/python3 tools/torch/loss_fixtures.py

Writes test/fixtures/losses/ssim.json and test/fixtures/losses/bce.json. Every input is drawn in float32 and
written as the shortest decimal that parses back to that float32; losses and autograd gradients are computed in
float64 from exactly those float32 values. Tensors are NCHW, flattened in PyTorch order, with their shape.

- ssim.json: `1 − ssim(pred, target, data_range=R, size_average=True)` with our own restatement of pytorch-msssim's
  `ssim` (`_fspecial_gauss_1d`: an 11-tap Gaussian, σ 1.5, built in float32 as the package does and cast to the
  input's dtype; `gaussian_filter`: F.conv2d with groups=C along H then W, no padding (valid); `_ssim`: population
  (co)variances E[xy] − μxμy, C1 = (0.01R)², C2 = (0.03R)², mean of the map per channel, then over N and C), and the
  gradient with respect to pred. `window` is the float32 window.
- bce.json:
  * `bce`: nn.BCEWithLogitsLoss() (reduction 'mean') on logits including ±100 and 0 against targets 0, 1 (scalars
    broadcast as tensors of that value) and a tensor of 0 / 1 / 0.3, with the gradient with respect to the logits.
  * `vanilla`: the vanilla GAN losses on discriminator logits: discriminator ½ℓ(D(real), 1) and ½ℓ(D(fake), 0)
    (each half and its gradient), generator ℓ(D(fake), 1).
  * `relativistic`: BasicSR's ESRGAN losses (models/esrgan_model.py, GANLoss 'vanilla' = BCEWithLogitsLoss):
    generator ½[ℓ(D(r) − mean D(f), 0) + ℓ(D(f) − mean D(r), 1)] with the gradients to both inputs, nothing
    detached (BasicSR detaches D(r); the gradient to D(f) is the same either way, checked here);
    discriminator ½ℓ(D(r) − mean D(f).detach(), 1) + ½ℓ(D(f) − mean D(r).detach(), 0).
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "losses")


def f32_list(t):
    """The float32 values of t, each as the shortest decimal that parses back to the same float32."""
    return [float(repr(np.float32(v))) for v in t.detach().to(torch.float32).flatten().numpy()]


def f64_list(t, digits=15):
    return [float(f"{v:.{digits}g}") for v in t.detach().to(torch.float64).flatten().tolist()]


def as_f64(t32):
    return t32.to(torch.float64).detach().requires_grad_(True)


# --- pytorch-msssim, restated -----------------------------------------------------------------------------------


def fspecial_gauss_1d(size, sigma):
    coords = torch.arange(size, dtype=torch.float)
    coords -= size // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g /= g.sum()
    return g.unsqueeze(0).unsqueeze(0)


def gaussian_filter(x, win):
    channels = x.shape[1]
    out = x
    for i, size in enumerate(x.shape[2:]):
        assert size >= win.shape[-1], "the fixtures never take pytorch-msssim's skip-with-a-warning branch"
        out = F.conv2d(out, weight=win.transpose(2 + i, -1), stride=1, padding=0, groups=channels)
    return out


def msssim_ssim(x, y, data_range, win_size=11, win_sigma=1.5, k=(0.01, 0.03)):
    win = fspecial_gauss_1d(win_size, win_sigma)
    win = win.repeat([x.shape[1]] + [1] * (len(x.shape) - 1)).to(dtype=x.dtype)
    c1 = (k[0] * data_range) ** 2
    c2 = (k[1] * data_range) ** 2
    mu1 = gaussian_filter(x, win)
    mu2 = gaussian_filter(y, win)
    mu1_sq = mu1.pow(2)
    mu2_sq = mu2.pow(2)
    mu1_mu2 = mu1 * mu2
    sigma1_sq = gaussian_filter(x * x, win) - mu1_sq
    sigma2_sq = gaussian_filter(y * y, win) - mu2_sq
    sigma12 = gaussian_filter(x * y, win) - mu1_mu2
    cs_map = (2 * sigma12 + c2) / (sigma1_sq + sigma2_sq + c2)
    ssim_map = ((2 * mu1_mu2 + c1) / (mu1_sq + mu2_sq + c1)) * cs_map
    per_channel = torch.flatten(ssim_map, 2).mean(-1)
    return per_channel.mean()


def ssim_case(name, shape, data_range, noise, gen):
    target32 = torch.rand(shape, generator=gen, dtype=torch.float32) * data_range
    pred32 = (target32 + torch.randn(shape, generator=gen, dtype=torch.float32) * noise * data_range).to(torch.float32)
    pred = as_f64(pred32)
    target = target32.to(torch.float64)
    loss = 1 - msssim_ssim(pred, target, data_range)
    loss.backward()
    return {
        "name": name,
        "shape": list(shape),
        "dataRange": data_range,
        "pred": f32_list(pred32),
        "target": f32_list(target32),
        "loss": float(loss),
        "grad": f64_list(pred.grad),
    }


def make_ssim(gen):
    window = fspecial_gauss_1d(11, 1.5).flatten()
    cases = [
        ssim_case("1x1x16x13", (1, 1, 16, 13), 1.0, 0.1, gen),
        ssim_case("2x3x12x11", (2, 3, 12, 11), 1.0, 0.08, gen),
        ssim_case("range255-1x2x13x14", (1, 2, 13, 14), 255.0, 0.1, gen),
    ]
    return {"torch": torch.__version__, "window": f32_list(window), "cases": cases}


# --- BCE-with-logits and the GAN losses --------------------------------------------------------------------------

bce = torch.nn.BCEWithLogitsLoss()


def logits(shape, gen, scale=3.0, extremes=True):
    z = torch.randn(shape, generator=gen, dtype=torch.float32) * scale
    if extremes:
        flat = z.view(-1)
        flat[0], flat[1], flat[2], flat[3] = 100.0, -100.0, 0.0, 30.0
    return z


def bce_case(name, z32, target):
    z = as_f64(z32)
    if isinstance(target, float):
        t = torch.full(z.shape, target, dtype=torch.float64)
        stored = target
    else:
        t = target.to(torch.float64)
        stored = f32_list(target)
    loss = bce(z, t)
    loss.backward()
    return {"name": name, "shape": list(z32.shape), "logits": f32_list(z32), "target": stored, "loss": float(loss), "grad": f64_list(z.grad)}


def make_bce(gen):
    cases = []
    z = logits((2, 1, 5, 7), gen)
    cases.append(bce_case("target 1", z, 1.0))
    cases.append(bce_case("target 0", z, 0.0))
    z3 = logits((1, 3, 4, 5), gen)
    choice = torch.randint(0, 3, z3.shape, generator=gen)
    mixed = torch.tensor([0.0, 1.0, 0.3], dtype=torch.float32)[choice]
    cases.append(bce_case("mixed targets, 3 channels", z3, mixed))
    cases.append(bce_case("target 0.3 scalar", z3, 0.3))
    return cases


def make_vanilla(gen):
    real32 = logits((2, 1, 4, 6), gen, extremes=False)
    fake32 = logits((2, 1, 4, 6), gen, extremes=False)
    real, fake = as_f64(real32), as_f64(fake32)
    d_real = 0.5 * bce(real, torch.ones_like(real))
    d_fake = 0.5 * bce(fake, torch.zeros_like(fake))
    (d_real + d_fake).backward()
    d = {"lossReal": float(d_real), "lossFake": float(d_fake), "gradReal": f64_list(real.grad), "gradFake": f64_list(fake.grad)}
    fake_g = as_f64(fake32)
    g_loss = bce(fake_g, torch.ones_like(fake_g))
    g_loss.backward()
    return {
        "shape": list(real32.shape),
        "real": f32_list(real32),
        "fake": f32_list(fake32),
        "discriminator": d,
        "generator": {"loss": float(g_loss), "gradFake": f64_list(fake_g.grad)},
    }


def relativistic_generator(real, fake):
    l_g_real = bce(real - torch.mean(fake), torch.zeros_like(real))
    l_g_fake = bce(fake - torch.mean(real), torch.ones_like(fake))
    return (l_g_real + l_g_fake) / 2


def relativistic_discriminator(real, fake):
    l_d_real = bce(real - torch.mean(fake.detach()), torch.ones_like(real)) * 0.5
    l_d_fake = bce(fake - torch.mean(real.detach()), torch.zeros_like(fake)) * 0.5
    return l_d_real + l_d_fake


def relativistic_case(name, shape, gen):
    real32 = logits(shape, gen, scale=2.0, extremes=False)
    fake32 = logits(shape, gen, scale=2.0, extremes=False) - 1.0
    out = {"name": name, "shape": list(shape), "real": f32_list(real32), "fake": f32_list(fake32)}
    for key, fn in (("generator", relativistic_generator), ("discriminator", relativistic_discriminator)):
        real, fake = as_f64(real32), as_f64(fake32)
        loss = fn(real, fake)
        loss.backward()
        out[key] = {"loss": float(loss), "gradReal": f64_list(real.grad), "gradFake": f64_list(fake.grad)}
    # BasicSR's generator step detaches D(real): the gradient to D(fake) does not change.
    real, fake = as_f64(real32).detach(), as_f64(fake32)
    relativistic_generator(real, fake).backward()
    full = torch.tensor(out["generator"]["gradFake"], dtype=torch.float64).view(shape)
    assert torch.allclose(fake.grad, full, rtol=1e-12, atol=1e-15)
    return out


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(1717)
    ssim = make_ssim(gen)
    losses = {
        "torch": torch.__version__,
        "bce": make_bce(gen),
        "vanilla": make_vanilla(gen),
        "relativistic": [relativistic_case("1x1x5x6", (1, 1, 5, 6), gen), relativistic_case("2x3x3x4", (2, 3, 3, 4), gen)],
    }
    for name, data in (("ssim.json", ssim), ("bce.json", losses)):
        path = os.path.join(OUT, name)
        with open(path, "w") as f:
            json.dump(data, f, separators=(",", ":"))
            f.write("\n")
        print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
