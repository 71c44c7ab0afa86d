#!/usr/bin/env python3
"""PyTorch reference for Neighbor2Neighbor's random neighbour sub-sampler (src/training/data/neighbor-pairs.ts).

Run with Debian's python3-torch: /usr/bin/python3 tools/torch/make_neighbor_pairs_fixture.py

Written anew from the description of TaoHuang2018/Neighbor2Neighbor train.py (`space_to_depth`,
`generate_mask_pair`, `generate_subimages`): each image is cut into 2x2 blocks with F.unfold (kernel 2, stride
2), whose 4 rows per block are the block's pixels in row-major order (0 TL, 1 TR, 2 BL, 3 BR); per (image, block)
torch.randint draws one of 8 ordered neighbour pairs; two boolean masks over the flattened (n, h/2, w/2, 4) blocks
pick the pair's first and second pixel; boolean indexing of each channel's blocks gives the sub-images.

One departure: the reference sizes its masks with `n * h // 2 * w // 2`, which Python reads as
((n*h)//2*w)//2. That equals n*(h//2)*(w//2) for even h and w (the reference's 256x256 crops), but not for odd
sizes, where the reference would fail to index; here the count is n*(h//2)*(w//2), so an odd last row/column is
dropped as unfold drops it. The even case asserts the two counts agree.

Writes test/fixtures/training/neighbor-pairs.json: per case the shape, the float32 input (distinct values, so a
wrong pixel cannot match by chance), the exported choices (0-7, in (image, block row, block column) order) and
both sub-images, NCHW.
"""
import json
import os

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "training", "neighbor-pairs.json")

PAIRS = torch.tensor([[0, 1], [0, 2], [1, 3], [2, 3], [1, 0], [2, 0], [3, 1], [3, 2]], dtype=torch.int64)

CASES = [
    ("odd-2x3x9x7", (2, 3, 9, 7), 1),
    ("even-3x2x6x8", (3, 2, 6, 8), 2),
    ("odd-1x1x5x4", (1, 1, 5, 4), 3),
]


def blocks_of(x):
    """(n, 1, h, w) -> (n, 4, h//2, w//2): the 4 pixels of every 2x2 block as channels."""
    n, _, h, w = x.shape
    return F.unfold(x, kernel_size=2, stride=2).view(n, 4, h // 2, w // 2)


def mask_pair(n, h, w, gen):
    cells = n * (h // 2) * (w // 2)
    choices = torch.randint(0, 8, (cells,), generator=gen, dtype=torch.int64)
    picked = PAIRS[choices] + torch.arange(0, 4 * cells, 4, dtype=torch.int64).reshape(-1, 1)
    first = torch.zeros(4 * cells, dtype=torch.bool)
    second = torch.zeros(4 * cells, dtype=torch.bool)
    first[picked[:, 0]] = True
    second[picked[:, 1]] = True
    return choices, first, second


def subimage(img, mask):
    n, c, h, w = img.shape
    out = torch.zeros(n, c, h // 2, w // 2, dtype=img.dtype)
    for ch in range(c):
        flat = blocks_of(img[:, ch : ch + 1]).permute(0, 2, 3, 1).reshape(-1)
        out[:, ch : ch + 1] = flat[mask].reshape(n, h // 2, w // 2, 1).permute(0, 3, 1, 2)
    return out


def values(t):
    return [float(v) for v in t.flatten().tolist()]


def main():
    cases = []
    for name, (n, c, h, w), seed in CASES:
        gen = torch.Generator().manual_seed(seed)
        numel = n * c * h * w
        # Distinct exact float32 values.
        img = (torch.randperm(numel, generator=gen).to(torch.float32) * 0.5 - 7.0).reshape(n, c, h, w)
        choices, m1, m2 = mask_pair(n, h, w, gen)
        if h % 2 == 0 and w % 2 == 0:
            assert n * h // 2 * w // 2 == choices.numel()
        cases.append(
            {
                "name": name,
                "shape": [n, c, h, w],
                "input": values(img),
                "choices": [int(v) for v in choices.tolist()],
                "first": values(subimage(img, m1)),
                "second": values(subimage(img, m2)),
            }
        )
    with open(OUT, "w") as f:
        json.dump({"torch": torch.__version__, "pairs": PAIRS.tolist(), "cases": cases}, f)
        f.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
