#!/usr/bin/env python3
"""PyTorch fixtures for the WMSA attention core (run with Debian's python3-torch: /usr/bin/python3).

Our own re-statement of SCUNet's WMSA.forward (models/network_scunet.py, lines 12-95) from the qkv tensor on:
the input is the output of the embedding Linear, [1, H, W, 3C] channels-last, and the output is the attention
result before the output Linear, [1, H, W, C], so the fixture covers exactly the scope of
src/kernels/window-attention.ts. Steps as in SCUNet: roll (-4,-4) for SW, window partition
'b (w1 p1) (w2 p2) c -> b (w1 w2) (p1 p2) c', split 'b nw np (threeh c) -> threeh b nw np c' with c = 32 and
chunk(3), sim = q k^T * scale + relative_embedding(), SW mask from generate_mask() filled with -inf, softmax,
'h b w p c -> b w p (h c)', un-partition, roll (+4,+4). Computed in float64.

Inputs are not stored: qkv and the bias table are regenerated from seeds with the same mulberry32 generator as
test/helpers/random.ts (randomArray(n, seed, scale)), qkv in NHWC order, then rounded to float32 (what the GPU
sees). To keep the fixtures small, the output is stored only at every `stride`-th pixel (row-major pixel
index % stride == 0, all C channels), little-endian float32, in test/fixtures/wmsa/<name>.f32; the manifest is
test/fixtures/wmsa/cases.json.
"""
import json
import os

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "wmsa")
M32 = 0xFFFFFFFF


def imul(a, b):
    return (a * b) & M32


def random_array(n, seed, scale=1.0):
    """mulberry32, exactly as test/helpers/random.ts: (r() * 2 - 1) * scale in float64."""
    a = seed & M32
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        a = (a + 0x6D2B79F5) & M32
        t = a
        t = imul(t ^ (t >> 15), t | 1)
        t ^= (t + imul(t ^ (t >> 7), t | 61)) & M32
        r = ((t ^ (t >> 14)) & M32) / 4294967296
        out[i] = (r * 2 - 1) * scale
    return out


def relative_embedding(params, ws=8):
    cord = torch.tensor(np.array([[i, j] for i in range(ws) for j in range(ws)]))
    relation = cord[:, None, :] - cord[None, :, :] + ws - 1
    return params[:, relation[:, :, 0].long(), relation[:, :, 1].long()]


def generate_mask(h, w, p, shift):
    attn_mask = torch.zeros(h, w, p, p, p, p, dtype=torch.bool)
    s = p - shift
    attn_mask[-1, :, :s, :, s:, :] = True
    attn_mask[-1, :, s:, :, :s, :] = True
    attn_mask[:, -1, :, :s, :, s:] = True
    attn_mask[:, -1, :, s:, :, :s] = True
    return attn_mask.reshape(h * w, p * p, p * p)  # 'w1 w2 p1 p2 p3 p4 -> (w1 w2) (p1 p2) (p3 p4)'


def wmsa_core(qkv, params, shifted, ws=8, hd=32):
    """qkv [b, H, W, 3C] -> [b, H, W, C]."""
    b, H, W, C3 = qkv.shape
    C = C3 // 3
    nh = C // hd
    shift = ws // 2
    if shifted:
        qkv = torch.roll(qkv, shifts=(-shift, -shift), dims=(1, 2))
    nwh, nww = H // ws, W // ws
    x = qkv.reshape(b, nwh, ws, nww, ws, C3).permute(0, 1, 3, 2, 4, 5).reshape(b, nwh * nww, ws * ws, C3)
    x = x.reshape(b, nwh * nww, ws * ws, 3 * nh, hd).permute(3, 0, 1, 2, 4)  # threeh b nw np c
    q, k, v = x.chunk(3, dim=0)
    sim = torch.einsum("hbwpc,hbwqc->hbwpq", q, k) * hd ** -0.5
    sim = sim + relative_embedding(params, ws)[:, None, None]
    if shifted:
        sim = sim.masked_fill(generate_mask(nwh, nww, ws, shift), float("-inf"))
    probs = torch.softmax(sim, dim=-1)
    out = torch.einsum("hbwij,hbwjc->hbwic", probs, v)
    out = out.permute(1, 2, 3, 0, 4).reshape(b, nwh * nww, ws * ws, C)  # h b w p c -> b w p (h c)
    out = out.reshape(b, nwh, nww, ws, ws, C).permute(0, 1, 3, 2, 4, 5).reshape(b, H, W, C)
    if shifted:
        out = torch.roll(out, shifts=(shift, shift), dims=(1, 2))
    return out


CASES = [
    # name, H, W, nh, shifted, stride
    ("w_24x40_h2", 24, 40, 2, False, 3),
    ("sw_24x40_h2", 24, 40, 2, True, 3),
    ("sw_24x40_h1", 24, 40, 1, True, 3),
    ("w_8x8_h2", 8, 8, 2, False, 1),
    ("sw_8x8_h2", 8, 8, 2, True, 1),
    ("sw_8x8_h1", 8, 8, 1, True, 1),
    ("w_16x8_h2", 16, 8, 2, False, 2),
    ("sw_16x8_h2", 16, 8, 2, True, 2),
]
QKV_SCALE = 2.0
BIAS_SCALE = 2.0


def main():
    os.makedirs(OUT, exist_ok=True)
    manifest = []
    for idx, (name, H, W, nh, shifted, stride) in enumerate(CASES):
        C = nh * 32
        qkv_seed = 1000 + idx
        bias_seed = 2000 + idx
        qkv = random_array(H * W * 3 * C, qkv_seed, QKV_SCALE).astype(np.float32).astype(np.float64)
        bias = random_array(nh * 225, bias_seed, BIAS_SCALE).astype(np.float32).astype(np.float64)
        with torch.no_grad():
            out = wmsa_core(torch.from_numpy(qkv).reshape(1, H, W, 3 * C), torch.from_numpy(bias).reshape(nh, 15, 15), shifted)
        out = out.reshape(H * W, C).numpy()
        sampled = out[np.arange(0, H * W, stride)]
        sampled.astype("<f4").tofile(os.path.join(OUT, f"{name}.f32"))
        manifest.append({
            "name": name, "h": H, "w": W, "heads": nh, "shifted": shifted, "pixelStride": stride,
            "qkvSeed": qkv_seed, "qkvScale": QKV_SCALE, "biasSeed": bias_seed, "biasScale": BIAS_SCALE,
            "qkvHead": qkv[:4].tolist(), "biasHead": bias[:4].tolist(),
        })
        print(f"{name}: {sampled.shape[0]} pixels x {C} ch, |out| max {np.abs(out).max():.4f}")
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"generator": "tools/torch/wmsa_fixtures.py", "torch": torch.__version__, "cases": manifest}, f, indent=1)


if __name__ == "__main__":
    main()
