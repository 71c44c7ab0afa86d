#!/usr/bin/env python3
"""Whole-step PyTorch 1.13 parity fixtures for self-supervised training (training.md section 4, section 7 item 5).

Regenerate (CI only reads the committed files; needs Debian's python3-torch 1.13):

    /usr/bin/python3 tools/torch/make_self_supervised_training_fixtures.py

Writes test/fixtures/training/<name>.json + .bin (layout: training_record.py) for the reduced KAIR DnCNN of
make_training_fixtures.py (nc 8, nb 5, act_mode BR: BatchNorm momentum 0.9, eps 1e-4), Adam lr 1e-3, 20 steps:

  dncnn-br-n2v-adam    Noise2Void: the noisy batch y with blind spots on a stratified grid (one random pixel per
                       4x4 cell), each replaced by a random neighbour with a non-zero offset on both axes inside
                       a 5x5 window (clipped to the patch); loss sum(m (f(x~) - y)^2) / sum(m) over the batch
                       (n2v / CAREamics). Written: input = x~, target = y, mask = m ([N, 1, H, W]).
  dncnn-br-nb2nb-adam  Neighbor2Neighbor (train.py of Huang et al. 2021, restated): per step new pair choices
                       (0..7 per 2x2 cell, exported in "choices", one list per step) and gamma (exported in
                       "gammas"); with torch.no_grad(): f(y) first (train mode: BatchNorm statistics move), then
                       f(g1 y), loss mean((f(g1 y) - g2 y)^2) + gamma * mean((f(g1 y) - g2 y - (g1 f(y) - g2 f(y)))^2).
                       The sub-images are made as the reference makes them: space_to_depth by F.unfold with block 2,
                       boolean masks over (N, H/2, W/2, 4), written independently of our gather. output_step1 =
                       f(g1 y) of step 1; target = y (unused).

Data: y = clean + 25/255 N(0, 1) on the smooth fields of make_training_fixtures.make_batch, N = 2, 1 x 16 x 12.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_training_fixtures import DnCNN, initialise, make_batch, CONFIG, OUT  # noqa: E402
from training_record import Blob, record_training  # noqa: E402

STEPS = 20
SNAPSHOTS = (1, 5, 20)
PAIRS = [[0, 1], [0, 2], [1, 3], [2, 3], [1, 0], [2, 0], [3, 1], [3, 2]]
OPTIMIZER = {"kind": "adam", "lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0}


def fresh_model(seed):
    torch.manual_seed(seed)
    model = DnCNN(act_mode="BR", **CONFIG)
    gen = torch.Generator().manual_seed(seed)
    initialise(model, gen)
    model.train()
    return model


def adam(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)


def blind_spots(y, gen, cell=4, radius=2):
    """A stratified blind-spot mask and the input with each spot replaced by a random off-centre neighbour."""
    n, c, h, w = y.shape
    x = y.clone()
    mask = torch.zeros(n, 1, h, w)
    for b in range(n):
        for cy in range(0, h, cell):
            for cx in range(0, w, cell):
                py = cy + int(torch.randint(0, cell, (1,), generator=gen))
                px = cx + int(torch.randint(0, cell, (1,), generator=gen))
                if py >= h or px >= w:
                    continue
                offsets = [d for d in range(-radius, radius + 1) if d != 0]
                dy = offsets[int(torch.randint(0, len(offsets), (1,), generator=gen))]
                dx = offsets[int(torch.randint(0, len(offsets), (1,), generator=gen))]
                sy = min(max(py + dy, 0), h - 1)
                sx = min(max(px + dx, 0), w - 1)
                x[b, :, py, px] = y[b, :, sy, sx]
                mask[b, 0, py, px] = 1
    return x, mask


def n2v_fixture():
    gen = torch.Generator().manual_seed(1801)
    y, _ = make_batch(gen)
    x, mask = blind_spots(y, gen)
    model = fresh_model(18)

    def loss_fn(out, target):
        m = mask.expand_as(out)
        return torch.sum(m * (out - target) ** 2) / torch.sum(m)

    _, size = record_training(
        "dncnn-br-n2v-adam", model, adam(model), loss_fn, x, y,
        config={**CONFIG, "act_mode": "BR"}, loss="blind-spot", optimizer_settings=OPTIMIZER,
        steps=STEPS, snapshots=SNAPSHOTS, out=OUT,
        extra={"loss_config": {"kind": "blind-spot"}, "mask": {"shape": list(mask.shape), "data": mask.reshape(-1).tolist()}},
    )
    return size


def subimage(img, choice_masks):
    """The reference's generate_subimages: space_to_depth(block 2) per channel, then the masked pixels."""
    n, c, h, w = img.shape
    out = torch.zeros(n, c, h // 2, w // 2)
    for i in range(c):
        cells = F.unfold(img[:, i:i + 1], kernel_size=2, stride=2)  # (n, 4, h/2 * w/2), corners row-major
        cells = cells.view(n, 4, h // 2, w // 2).permute(0, 2, 3, 1).reshape(-1)
        out[:, i:i + 1] = cells[choice_masks].reshape(n, h // 2, w // 2, 1).permute(0, 3, 1, 2)
    return out


def pair_masks(choices):
    """Boolean masks over the flattened (n, h/2, w/2, 4) cells for g1 and g2, from one choice per cell."""
    pairs = torch.tensor(PAIRS, dtype=torch.int64)[choices.reshape(-1)]
    base = torch.arange(0, choices.numel() * 4, 4, dtype=torch.int64).reshape(-1, 1)
    pairs = pairs + base
    first = torch.zeros(choices.numel() * 4, dtype=torch.bool)
    second = torch.zeros(choices.numel() * 4, dtype=torch.bool)
    first[pairs[:, 0]] = True
    second[pairs[:, 1]] = True
    return first, second


def nb2nb_fixture():
    gen = torch.Generator().manual_seed(1802)
    y, _ = make_batch(gen)
    model = fresh_model(19)
    optimizer = adam(model)
    n, _, h, w = y.shape
    blob = Blob()
    record = {
        "torch": torch.__version__,
        "config": {**CONFIG, "act_mode": "BR"},
        "loss": "neighbor2neighbor",
        "optimizer": OPTIMIZER,
        "input": blob.encode(y),
        "target": blob.encode(y),
        "initial": blob.state(model),
        "losses": [],
        "choices": [],
        "gammas": [],
        "after": {},
    }
    for step in range(1, STEPS + 1):
        choices = torch.randint(0, 8, (n, h // 2, w // 2), generator=gen)
        gamma = 2.0 * ((step + 4) // 5) / 4  # four "epochs" of five steps, increase ratio 2
        mask1, mask2 = pair_masks(choices)
        optimizer.zero_grad()
        sub1 = subimage(y, mask1)
        sub2 = subimage(y, mask2)
        with torch.no_grad():
            denoised = model(y)
        sub1_denoised = subimage(denoised, mask1)
        sub2_denoised = subimage(denoised, mask2)
        output = model(sub1)
        diff = output - sub2
        exp_diff = sub1_denoised - sub2_denoised
        loss = torch.mean(diff ** 2) + gamma * torch.mean((diff - exp_diff) ** 2)
        loss.backward()
        record["losses"].append(float(loss.item()))
        record["choices"].append([int(v) for v in choices.reshape(-1).tolist()])
        record["gammas"].append(gamma)
        if step == 1:
            record["output_step1"] = blob.encode(output)
            record["grads_step1"] = {k: blob.encode(p.grad) for k, p in model.named_parameters()}
        optimizer.step()
        if step in SNAPSHOTS:
            record["after"][str(step)] = blob.state(model)
    with open(os.path.join(OUT, "dncnn-br-nb2nb-adam.json"), "w") as f:
        f.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
    with open(os.path.join(OUT, "dncnn-br-nb2nb-adam.bin"), "wb") as f:
        f.write(bytes(blob.data))
    return len(blob.data)


if __name__ == "__main__":
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    print("n2v", n2v_fixture(), "bytes")
    print("nb2nb", nb2nb_fixture(), "bytes")
