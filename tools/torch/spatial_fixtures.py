#!/usr/bin/env python3
"""PyTorch fixtures for the spatial kernels (run with Debian's python3-torch: /usr/bin/python3).

Covers the details that are easy to get subtly wrong: legacy 'nearest' indices on non-integer ratios,
bilinear align_corners=False/True borders, max-pool 3x3 s2 p1 output size on odd inputs, avg-pool padding,
reflect/replicate padding, pixel_shuffle/unshuffle ordering. Writes test/fixtures/spatial/<name>.json with
{op, args, inputShape (NCHW), input, outputShape, output} (float32 values as JSON numbers, NCHW order).
"""
import json
import os

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "spatial")


def write(name, op, args, x, y):
    data = {
        "op": op,
        "args": args,
        "inputShape": list(x.shape),
        # JSON has no NaN: null stands for it (the TypeScript loader maps it back).
        "input": [None if v != v else float(v) for v in x.flatten().tolist()],
        "outputShape": list(y.shape),
        "output": [None if v != v else float(v) for v in y.flatten().tolist()],
        "torch": torch.__version__,
    }
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(1234)

    def rand(*shape):
        return torch.rand(*shape, generator=g, dtype=torch.float32) * 2 - 1

    x = rand(1, 3, 9, 7)
    write("maxpool_3x3_s2_p1_9x7", "maxPool2d", {"kernel": 3, "stride": 2, "padding": 1}, x, F.max_pool2d(x, 3, 2, 1))
    x = rand(2, 2, 7, 5)
    write("maxpool_2x2_s2_7x5", "maxPool2d", {"kernel": 2, "stride": 2, "padding": 0}, x, F.max_pool2d(x, 2, 2))
    x = rand(1, 3, 7, 9)
    write("avgpool_3x3_s2_p1_7x9", "avgPool2d", {"kernel": 3, "stride": 2, "padding": 1}, x,
          F.avg_pool2d(x, 3, 2, 1, count_include_pad=True))
    x = rand(2, 5, 6, 11)
    write("global_avgpool_6x11", "globalAvgPool2d", {}, x, F.adaptive_avg_pool2d(x, 1))

    # Nearest: sizes whose ratio is not an integer (up and down), plus an integer factor.
    x = rand(1, 2, 5, 7)
    write("nearest_5x7_to_13x9", "resample", {"mode": "nearest", "size": [13, 9]}, x,
          F.interpolate(x, size=(13, 9), mode="nearest"))
    x = rand(1, 3, 11, 10)
    write("nearest_11x10_to_4x7", "resample", {"mode": "nearest", "size": [4, 7]}, x,
          F.interpolate(x, size=(4, 7), mode="nearest"))
    x = rand(1, 2, 3, 5)
    write("nearest_x3_3x5", "resample", {"mode": "nearest", "scaleFactor": 3}, x,
          F.interpolate(x, scale_factor=3, mode="nearest"))
    # Bilinear: both align_corners settings, up and down, integer factor and arbitrary sizes.
    for ac in (False, True):
        tag = "ac" if ac else "noac"
        x = rand(1, 2, 5, 7)
        write(f"bilinear_{tag}_5x7_to_13x9", "resample", {"mode": "bilinear", "size": [13, 9], "alignCorners": ac}, x,
              F.interpolate(x, size=(13, 9), mode="bilinear", align_corners=ac))
        x = rand(1, 3, 9, 8)
        write(f"bilinear_{tag}_9x8_to_4x5", "resample", {"mode": "bilinear", "size": [4, 5], "alignCorners": ac}, x,
              F.interpolate(x, size=(4, 5), mode="bilinear", align_corners=ac))
        x = rand(1, 1, 4, 3)
        write(f"bilinear_{tag}_x2_4x3", "resample", {"mode": "bilinear", "scaleFactor": 2, "alignCorners": ac}, x,
              F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=ac))
        x = rand(1, 1, 3, 4)
        write(f"bilinear_{tag}_3x4_to_1x1", "resample", {"mode": "bilinear", "size": [1, 1], "alignCorners": ac}, x,
              F.interpolate(x, size=(1, 1), mode="bilinear", align_corners=ac))

    x = rand(1, 12, 3, 2)
    write("pixel_shuffle_r2", "pixelShuffle", {"r": 2}, x, F.pixel_shuffle(x, 2))
    x = rand(1, 18, 2, 3)
    write("pixel_shuffle_r3", "pixelShuffle", {"r": 3}, x, F.pixel_shuffle(x, 3))
    x = rand(1, 3, 4, 6)
    write("pixel_unshuffle_r2", "pixelUnshuffle", {"r": 2}, x, F.pixel_unshuffle(x, 2))

    x = rand(1, 3, 5, 7)
    write("pad_reflect_5x7", "pad2d", {"mode": "reflect", "pads": {"left": 3, "right": 6, "top": 4, "bottom": 2}}, x,
          F.pad(x, (3, 6, 4, 2), mode="reflect"))
    write("pad_replicate_5x7", "pad2d", {"mode": "replicate", "pads": {"left": 2, "right": 9, "top": 0, "bottom": 3}}, x,
          F.pad(x, (2, 9, 0, 3), mode="replicate"))
    write("pad_zeros_crop_5x7", "pad2d", {"mode": "zeros", "pads": {"left": -2, "right": 3, "top": 1, "bottom": -3}}, x,
          F.pad(x, (-2, 3, 1, -3)))

    # Added later (at the end, so the random stream of the fixtures above is unchanged).
    x = rand(1, 3, 10, 9)
    write("maxpool_3x3_s2_p1_ceil_10x9", "maxPool2d", {"kernel": 3, "stride": 2, "padding": 1, "ceilMode": True}, x,
          F.max_pool2d(x, 3, 2, 1, ceil_mode=True))
    write("avgpool_3x3_s2_p1_ceil_nopad_10x9", "avgPool2d",
          {"kernel": 3, "stride": 2, "padding": 1, "ceilMode": True, "countIncludePad": False}, x,
          F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False))
    x = rand(1, 2, 7, 13)
    write("avgpool_2x2_ceil_7x13", "avgPool2d", {"kernel": 2, "stride": 2, "padding": 0, "ceilMode": True}, x,
          F.avg_pool2d(x, 2, 2, ceil_mode=True))
    x = rand(1, 2, 5, 6)
    x[0, 0, 1, 1] = float('nan')
    x[0, 1, 4, 5] = float('nan')
    write("maxpool_nan_5x6", "maxPool2d", {"kernel": 2, "stride": 2, "padding": 0, "ceilMode": True}, x,
          F.max_pool2d(x, 2, 2, ceil_mode=True))


if __name__ == "__main__":
    main()
