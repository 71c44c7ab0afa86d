#!/usr/bin/env python3
"""PyTorch 1.13 fixtures for the spatial backward kernels (run with Debian's python3-torch: /usr/bin/python3).

Covers what a float64 adjoint written from the documentation could get wrong in the same way as the kernel:
max-pool argmax ties (first tap in row-major window order), NaN (PyTorch's `val > max || isnan(val)`, so the
last NaN of a window wins), overlapping windows, ceil mode; bilinear with both align_corners settings when the
forward is given a scale factor (ratio 1/s) versus an output size (ratio in/out), including a non-integer factor
where the two differ and a factor whose output size equals the input (identity); legacy 'nearest' including
nearest_idx's special cases (out == in, out == 2·in whatever the factor) and non-integer ratios.

All in float32 on the CPU (the index rules are PyTorch's float ones), one thread, deterministic algorithms.
Writes test/fixtures/spatial-backward/<name>.json: {op, args, inputShape (NCHW), input (max pool only; null
stands for NaN, "±Infinity" for ±inf), gradOutputShape, gradOutput, gradInput, output and indices (max pool only), torch}.
Upstream gradients are multiples of 1/16 so they print short; the whole directory stays well under 200 KB.
"""
import json
import os

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "spatial-backward")


def number(v):
    # JSON has no NaN or infinity: null stands for NaN, the strings "Infinity" / "-Infinity" for ±inf (the
    # TypeScript test maps both back). Finite float32 values get 9 significant digits, enough to round-trip.
    if v != v:
        return None
    if v in (float("inf"), float("-inf")):
        return "Infinity" if v > 0 else "-Infinity"
    return float("%.9g" % v)


def numbers(t):
    return [number(v) for v in t.detach().flatten().tolist()]


def write(name, data):
    data["torch"] = torch.__version__
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    g = torch.Generator().manual_seed(1713)

    def grad(*shape):
        return (torch.randint(-16, 17, shape, generator=g) / 16.0).float()

    def ties(*shape):
        # Few distinct values, so most windows hold ties.
        return torch.randint(0, 3, shape, generator=g).float()

    def max_pool(name, x, kernel, stride, padding, ceil_mode=False):
        x = x.clone().requires_grad_(True)
        y, idx = F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode, return_indices=True)
        gy = grad(*y.shape)
        y.backward(gy)
        args = {"kernel": kernel, "stride": stride, "padding": padding, "ceilMode": ceil_mode}
        write(name, {"op": "maxPool2d", "args": args, "inputShape": list(x.shape), "input": numbers(x),
                     "output": numbers(y), "indices": idx.flatten().tolist(), "gradOutputShape": list(gy.shape),
                     "gradOutput": numbers(gy), "gradInput": numbers(x.grad)})

    def interpolate(name, shape, mode, size=None, scale=None, align_corners=None):
        x = torch.zeros(*shape, requires_grad=True)
        y = F.interpolate(x, size=size, scale_factor=scale, mode=mode, align_corners=align_corners)
        gy = grad(*y.shape)
        y.backward(gy)
        args = {"mode": mode}
        if size is not None:
            args["size"] = list(size)
        if scale is not None:
            args["scaleFactor"] = list(scale) if isinstance(scale, tuple) else scale
        if align_corners is not None:
            args["alignCorners"] = align_corners
        write(name, {"op": "resample", "args": args, "inputShape": list(shape), "gradOutputShape": list(gy.shape),
                     "gradOutput": numbers(gy), "gradInput": numbers(x.grad)})

    # Max pooling: ties everywhere, overlapping windows (ResNet stem), ceil mode, NaN.
    max_pool("maxpool_ties_3x3_s2_p1_9x7", ties(2, 3, 9, 7), 3, 2, 1)
    max_pool("maxpool_ties_2x2_s2_7x5", ties(2, 3, 7, 5), 2, 2, 0)
    max_pool("maxpool_ties_2x2_s1_6x5", ties(1, 2, 6, 5), 2, 1, 0)
    max_pool("maxpool_ties_3x3_s2_p1_ceil_10x9", ties(1, 3, 10, 9), 3, 2, 1, ceil_mode=True)
    x = ties(1, 2, 7, 6)
    x[0, 0, 1, 1] = float("nan")
    x[0, 0, 2, 2] = float("nan")  # two NaNs in one window: the later one takes the gradient
    x[0, 0, 5, 0] = float("nan")
    x[0, 1, 6, 5] = float("nan")
    x[0, 1, 0, 3] = float("-inf")
    max_pool("maxpool_nan_3x3_s2_p1_7x6", x, 3, 2, 1)
    x = torch.full((1, 1, 3, 4), float("-inf"))
    x[0, 0, 2, 3] = float("nan")
    max_pool("maxpool_neginf_2x2_ceil_3x4", x, 2, 2, 0, ceil_mode=True)

    # Bilinear, both align_corners, scale factor (ratio 1/s) vs size (ratio in/out).
    for ac in (False, True):
        tag = "ac" if ac else "noac"
        interpolate(f"bilinear_{tag}_x2_5x7", (2, 3, 5, 7), "bilinear", scale=2.0, align_corners=ac)
        interpolate(f"bilinear_{tag}_x1.5_5x7", (1, 2, 5, 7), "bilinear", scale=1.5, align_corners=ac)
        interpolate(f"bilinear_{tag}_size_7x10_5x7", (1, 2, 5, 7), "bilinear", size=(7, 10), align_corners=ac)
        interpolate(f"bilinear_{tag}_x0.6_9x7", (1, 3, 9, 7), "bilinear", scale=0.6, align_corners=ac)
        interpolate(f"bilinear_{tag}_size_4x3_9x7", (1, 3, 9, 7), "bilinear", size=(4, 3), align_corners=ac)
        interpolate(f"bilinear_{tag}_x1.1x2.5_5x3", (1, 2, 5, 3), "bilinear", scale=(1.1, 2.5), align_corners=ac)
    interpolate("bilinear_noac_x4_3x2", (1, 3, 3, 2), "bilinear", scale=4.0, align_corners=False)

    # Legacy nearest: ×2 (out = 2·in), a factor giving out = 2·in anyway, non-integer factors and sizes.
    interpolate("nearest_x2_5x7", (2, 3, 5, 7), "nearest", scale=2.0)
    interpolate("nearest_x2.1_5x7", (1, 2, 5, 7), "nearest", scale=2.1)
    interpolate("nearest_x1.5_5x7", (1, 2, 5, 7), "nearest", scale=1.5)
    interpolate("nearest_size_7x10_5x7", (1, 2, 5, 7), "nearest", size=(7, 10))
    interpolate("nearest_x0.7_10x9", (1, 3, 10, 9), "nearest", scale=0.7)
    interpolate("nearest_x1.1x3_5x3", (1, 2, 5, 3), "nearest", scale=(1.1, 3.0))


if __name__ == "__main__":
    main()
