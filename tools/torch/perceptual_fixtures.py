#!/usr/bin/env python3
"""PyTorch 1.13 references for the VGG perceptual loss and the LPIPS metric (training.md §2.5).

Run with Debian's python3-torch: /usr/bin/python3 tools/torch/perceptual_fixtures.py

Nothing is downloaded and neither torchvision nor the lpips package is needed: the backbones are written here as
plain nn.Sequential modules with torchvision's layer indices (so their state_dict keys are torchvision's
`features.N.weight`), with RANDOM seeded weights and reduced widths (VGG [4, 8, 8, 12, 12] instead of
[64, 128, 256, 512, 512], AlexNet [4, 8, 16, 12, 12] instead of [64, 192, 384, 256, 256]) so the files stay small.
Weights are float32 and written with torch.save (zip format) so that our own .pth reader is exercised; the VGG files
also carry a tiny `classifier.0.*` that a loader must ignore. References are computed in float64 from exactly
those float32 weights and float32 inputs.

Writes test/fixtures/perceptual/:
- vgg19.pth, vgg16.pth, alexnet.pth: `{'features.N.weight': …, 'features.N.bias': …, 'classifier.0.…': …}`.
- lpips-vgg.pth, lpips-alex.pth: the LPIPS v0.1 heads, `lin{k}.model.1.weight` [1, C_k, 1, 1] (no bias).
- fixtures.json + fixtures.bin: tensors as {shape, offset} (byte offset of little-endian float32 in the .bin),
  NCHW in PyTorch order.
  * `perceptual`: BasicSR PerceptualLoss (basicsr/losses/basic_loss.py + basicsr/archs/vgg_arch.py
    VGGFeatureExtractor): features taken at the named layers (conv = before the ReLU, relu = after it, as
    `x.clone()` of each layer output), input transform `(x + 1) / 2` if range_norm, then `(x − mean) / std` with
    ImageNet statistics if use_input_norm, loss `perceptual_weight · Σ w_k · criterion(φ_k(pred), φ_k(target))`
    with criterion nn.L1Loss / nn.MSELoss ('l2') / torch.norm(·, p='fro'), target under no_grad. A gray input is
    repeated to 3 channels first (our extension; BasicSR would fail). Expected: loss and d loss / d pred.
  * `lpips`: LPIPS v0.1 (Zhang et al. 2018, the `lpips` package's LPIPS(net, lpips=True, version='0.1') forward
    with normalize=True): x ↦ 2x − 1, ScalingLayer (x − shift) / scale with shift [−.030, −.088, −.188] and scale
    [.458, .448, .450], backbone features (vgg16 relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 = indices 3, 8, 15,
    22, 29; alexnet relu1 … relu5 = 1, 4, 7, 9, 11), each unit-normalised over channels x / (√Σx² + 1e-10), squared
    difference, 1×1 head without bias, spatial mean, sum over layers. Expected: the distance of each image pair.
  * `cli`: one pair of 8-bit RGB images (interleaved HWC values 0…255) and their vgg16 LPIPS distance (x = v/255).
"""
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "perceptual")

VGG_BLOCKS = {16: [2, 2, 3, 3, 3], 19: [2, 2, 4, 4, 4]}
VGG_WIDTHS = [4, 8, 8, 12, 12]
ALEX_WIDTHS = [4, 8, 16, 12, 12]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
LPIPS_SHIFT = [-0.030, -0.088, -0.188]
LPIPS_SCALE = [0.458, 0.448, 0.450]
LPIPS_LAYERS = {"vgg16": [3, 8, 15, 22, 29], "alexnet": [1, 4, 7, 9, 11]}


def vgg_layers(depth):
    """torchvision's make_layers(cfg) with reduced widths, and BasicSR's layer names."""
    layers, names, c = [], [], 3
    for b, convs in enumerate(VGG_BLOCKS[depth]):
        for j in range(1, convs + 1):
            layers += [nn.Conv2d(c, VGG_WIDTHS[b], 3, padding=1), nn.ReLU(inplace=False)]
            names += [f"conv{b + 1}_{j}", f"relu{b + 1}_{j}"]
            c = VGG_WIDTHS[b]
        layers.append(nn.MaxPool2d(2, 2))
        names.append(f"pool{b + 1}")
    return layers, names


def alexnet_layers():
    w1, w2, w3, w4, w5 = ALEX_WIDTHS
    return [
        nn.Conv2d(3, w1, 11, stride=4, padding=2), nn.ReLU(inplace=False), nn.MaxPool2d(3, 2),
        nn.Conv2d(w1, w2, 5, padding=2), nn.ReLU(inplace=False), nn.MaxPool2d(3, 2),
        nn.Conv2d(w2, w3, 3, padding=1), nn.ReLU(inplace=False),
        nn.Conv2d(w3, w4, 3, padding=1), nn.ReLU(inplace=False),
        nn.Conv2d(w4, w5, 3, padding=1), nn.ReLU(inplace=False), nn.MaxPool2d(3, 2),
    ]


class Backbone(nn.Module):
    def __init__(self, layers, classifier_in):
        super().__init__()
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(classifier_in, 3))


def seed_weights(module, gen):
    """He-normal weights (activations neither vanish nor explode through 16 layers), small uniform biases."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2 / fan_in) ** 0.5)
                m.bias.copy_((torch.rand(m.bias.shape, generator=gen) * 2 - 1) * 0.1)


def features(net, x, indices):
    """Outputs of the layers at `indices` (each a copy, as BasicSR's `x.clone()`)."""
    out = {}
    for i, layer in enumerate(net.features[: max(indices) + 1]):
        x = layer(x)
        if i in indices:
            out[i] = x.clone()
    return [out[i] for i in indices]


class Blob:
    def __init__(self):
        self.parts, self.offset = [], 0

    def add(self, t):
        t = t.detach().to(torch.float32).contiguous()
        entry = {"shape": list(t.shape), "offset": self.offset}
        self.parts.append(t.numpy().tobytes())
        self.offset += t.numel() * 4
        return entry


def perceptual_case(blob, net, names, pred, target, layer_weights, criterion, use_input_norm, range_norm, weight):
    net64 = net.double()
    p = pred.double().requires_grad_(True)
    t = target.double()

    def prepare(x):
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        if range_norm:
            x = (x + 1) / 2
        if use_input_norm:
            mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1)
            x = (x - mean) / std
        return x

    indices = [names.index(k) for k in layer_weights]
    fp = features(net64, prepare(p), indices)
    with torch.no_grad():
        ft = features(net64, prepare(t), indices)
    loss = 0
    for (k, w), a, b in zip(layer_weights.items(), fp, ft):
        if criterion == "fro":
            term = torch.norm(a - b, p="fro")
        elif criterion == "l1":
            term = F.l1_loss(a, b)
        else:
            term = F.mse_loss(a, b)
        loss = loss + term * w
    loss = loss * weight
    loss.backward()
    return {
        "layerWeights": layer_weights,
        "criterion": criterion,
        "useInputNorm": use_input_norm,
        "rangeNorm": range_norm,
        "perceptualWeight": weight,
        "pred": blob.add(pred),
        "target": blob.add(target),
        "loss": loss.item(),
        "grad": blob.add(p.grad),
    }


def lpips_reference(net, heads, backbone, a, b):
    """LPIPS v0.1 with normalize=True, in float64: one distance per image pair."""
    net64 = net.double()
    shift = torch.tensor(LPIPS_SHIFT, dtype=torch.float64).view(1, 3, 1, 1)
    scale = torch.tensor(LPIPS_SCALE, dtype=torch.float64).view(1, 3, 1, 1)

    def prepare(x):
        return ((2 * x.double() - 1) - shift) / scale

    def unit(f):
        return f / (torch.sqrt(torch.sum(f**2, dim=1, keepdim=True)) + 1e-10)

    indices = LPIPS_LAYERS[backbone]
    fa = features(net64, prepare(a), indices)
    fb = features(net64, prepare(b), indices)
    total = 0
    for k, (x, y) in enumerate(zip(fa, fb)):
        d = (unit(x) - unit(y)) ** 2
        head = heads[f"lin{k}.model.1.weight"].double()
        total = total + F.conv2d(d, head).mean(dim=[2, 3], keepdim=True)
    return total.flatten().tolist()


def lpips_heads(widths, gen):
    # The released heads are non-negative (clamped in training); random ones of that kind.
    return {f"lin{k}.model.1.weight": torch.rand((1, c, 1, 1), generator=gen) * 0.2 for k, c in enumerate(widths)}


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(1713)
    blob = Blob()

    vgg19_layers, vgg19_names = vgg_layers(19)
    vgg19 = Backbone(vgg19_layers, VGG_WIDTHS[-1])
    seed_weights(vgg19, gen)
    torch.save(vgg19.state_dict(), os.path.join(OUT, "vgg19.pth"))
    vgg16_layers, _ = vgg_layers(16)
    vgg16 = Backbone(vgg16_layers, VGG_WIDTHS[-1])
    seed_weights(vgg16, gen)
    torch.save(vgg16.state_dict(), os.path.join(OUT, "vgg16.pth"))
    alex = Backbone(alexnet_layers(), ALEX_WIDTHS[-1])
    seed_weights(alex, gen)
    torch.save(alex.state_dict(), os.path.join(OUT, "alexnet.pth"))
    heads_vgg = lpips_heads(VGG_WIDTHS, gen)
    torch.save(heads_vgg, os.path.join(OUT, "lpips-vgg.pth"))
    heads_alex = lpips_heads(ALEX_WIDTHS, gen)
    torch.save(heads_alex, os.path.join(OUT, "lpips-alex.pth"))

    # 20×18 is past VGG19's minimum (16 px for conv5_4, after four pools) and leaves 1×1 maps at block 5.
    shape = (2, 3, 20, 18)
    target = torch.rand(shape, generator=gen)
    pred = (target + 0.15 * torch.randn(shape, generator=gen)).clamp(0, 1)
    gray_target = torch.rand((2, 1, 20, 18), generator=gen)
    gray_pred = gray_target + 0.15 * torch.randn((2, 1, 20, 18), generator=gen)
    signed_target = target * 2 - 1
    signed_pred = pred * 2 - 1
    perceptual = {
        "esrgan": perceptual_case(blob, vgg19, vgg19_names, pred, target, {"conv5_4": 1.0}, "l1", True, False, 1.0),
        "gray-multi-mse": perceptual_case(
            blob,
            vgg19,
            vgg19_names,
            gray_pred,
            gray_target,
            {"conv1_2": 0.1, "relu2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0, "relu5_4": 0.5},
            "l2",
            True,
            False,
            0.7,
        ),
        "fro-range-norm": perceptual_case(
            blob, vgg19, vgg19_names, signed_pred, signed_target, {"relu2_2": 1.0, "conv4_4": 0.5}, "fro", False, True, 2.0
        ),
    }

    a = torch.rand(shape, generator=gen)
    b = (a + 0.2 * torch.randn(shape, generator=gen)).clamp(0, 1)
    alex_shape = (1, 3, 35, 31)
    a_alex = torch.rand(alex_shape, generator=gen)
    b_alex = (a_alex + 0.2 * torch.randn(alex_shape, generator=gen)).clamp(0, 1)
    lpips = {
        "vgg16": {"a": blob.add(a), "b": blob.add(b), "distance": lpips_reference(vgg16, heads_vgg, "vgg16", a, b)},
        "alexnet": {
            "a": blob.add(a_alex),
            "b": blob.add(b_alex),
            "distance": lpips_reference(alex, heads_alex, "alexnet", a_alex, b_alex),
        },
    }

    h, w = 24, 20
    u8a = torch.randint(0, 256, (h, w, 3), generator=gen, dtype=torch.int64)
    u8b = (u8a + torch.randint(-40, 41, (h, w, 3), generator=gen)).clamp(0, 255)
    to_nchw = lambda u: (u.double() / 255).permute(2, 0, 1).unsqueeze(0)  # noqa: E731
    cli = {
        "width": w,
        "height": h,
        "a": u8a.flatten().tolist(),
        "b": u8b.flatten().tolist(),
        "distance": lpips_reference(vgg16, heads_vgg, "vgg16", to_nchw(u8a), to_nchw(u8b))[0],
    }

    with open(os.path.join(OUT, "fixtures.bin"), "wb") as f:
        for part in blob.parts:
            f.write(part)
    record = {"torch": torch.__version__, "perceptual": perceptual, "lpips": lpips, "cli": cli}
    with open(os.path.join(OUT, "fixtures.json"), "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
