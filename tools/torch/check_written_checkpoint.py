#!/usr/bin/env python3
"""Check that a checkpoint written by our TypeScript writer (src/weights/pth-write.ts) loads in PyTorch 1.13.

Run with Debian's python3-torch (/usr/bin/python3):

    /usr/bin/python3 tools/torch/check_written_checkpoint.py test/fixtures/training/written-dncnn-br.pth \
        [--safetensors FILE] [--in-nc 1] [--out-nc 1] [--nc 8] [--nb 5] [--act-mode BR]

The .pth comes from test/weights/pth-write.test.ts (WEBGPU_RESTORE_WRITE_FIXTURES=1 rewrites it). Checks, as
training.md section 5 asks of a checkpoint a trainer saves:
  1. torch.load(f, weights_only=True) succeeds (the restricted unpickler: no Python floats, only allowed globals);
  2. load_state_dict(strict=True) into our re-statement of KAIR's DnCNN succeeds, with the keys in the order
     model.state_dict() lists them, num_batches_tracked int64 0-d;
  3. the zip is what torch.save writes: entries stored, data 64-byte aligned, one top folder, version "3\\n",
     data.pkl at protocol 2 with no float opcode, and byte-identical to the data.pkl torch.save writes when
     it re-saves the loaded OrderedDict (same memo, same opcodes); every storage byte-identical too;
  4. with --safetensors: the same tensors load from it with safetensors.torch.load_file (skipped, with a
     message, when the safetensors package is not installed);
  5. an eval-mode forward pass gives finite output.
Prints OK (and exits 0) when everything holds.
"""
import argparse
import io
import pickletools
import struct
import sys
import zipfile

import torch
import torch.nn as nn


class DnCNN(nn.Module):
    """KAIR models/network_dncnn.py DnCNN restated: flat Sequential `model`, conv3x3 with bias, BN(momentum 0.9,
    eps 1e-4) in act_mode 'BR', ReLU; output x - model(x)."""

    def __init__(self, in_nc=1, out_nc=1, nc=64, nb=17, act_mode="BR"):
        super().__init__()
        layers = [nn.Conv2d(in_nc, nc, 3, 1, 1, bias=True), nn.ReLU(inplace=True)]
        for _ in range(nb - 2):
            layers.append(nn.Conv2d(nc, nc, 3, 1, 1, bias=True))
            if act_mode == "BR":
                layers.append(nn.BatchNorm2d(nc, momentum=0.9, eps=1e-4, affine=True))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(nc, out_nc, 3, 1, 1, bias=True))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return x - self.model(x)


def fail(message):
    print("FAIL:", message)
    sys.exit(1)


def check_zip_layout(raw):
    """Stored entries, 64-byte aligned data (read from each local header), one folder, version 3."""
    z = zipfile.ZipFile(io.BytesIO(raw))
    infos = z.infolist()
    folder = infos[0].filename.split("/")[0]
    if infos[0].filename != folder + "/data.pkl":
        fail(f"first entry is {infos[0].filename}, not <folder>/data.pkl")
    for info in infos:
        if not info.filename.startswith(folder + "/"):
            fail(f"entry {info.filename} is outside the folder {folder}/")
        if info.compress_type != zipfile.ZIP_STORED:
            fail(f"entry {info.filename} is compressed")
        at = info.header_offset
        sig, = struct.unpack_from("<I", raw, at)
        name_len, extra_len = struct.unpack_from("<HH", raw, at + 26)
        if sig != 0x04034B50:
            fail(f"no local header for {info.filename}")
        data_at = at + 30 + name_len + extra_len
        if data_at % 64 != 0:
            fail(f"data of {info.filename} starts at {data_at}, not a multiple of 64")
    if z.read(folder + "/version") != b"3\n":
        fail("version record is not 3")
    pickle = z.read(folder + "/data.pkl")
    if pickle[:2] != b"\x80\x02":
        fail("data.pkl is not pickle protocol 2")
    for op, _, pos in pickletools.genops(pickle):
        if op.name in ("FLOAT", "BINFLOAT"):
            fail(f"data.pkl has a {op.name} opcode at {pos}, which weights_only refuses")
    return z, folder, len(infos)


def check_same_as_torch_save(state_dict, z, folder):
    """torch.save of the loaded OrderedDict must give the same data.pkl and storages."""
    buf = io.BytesIO()
    torch.save(state_dict, buf)
    ours = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    theirs_folder = ours.infolist()[0].filename.split("/")[0]
    if ours.read(theirs_folder + "/data.pkl") != z.read(folder + "/data.pkl"):
        fail("data.pkl differs from the one torch.save writes for the same OrderedDict")
    names = sorted(n.split("/", 1)[1] for n in z.namelist())
    theirs = sorted(n.split("/", 1)[1] for n in ours.namelist())
    if names != theirs:
        fail(f"entries differ from torch.save's: {names} vs {theirs}")
    for name in names:
        if name.startswith("data/") and z.read(folder + "/" + name) != ours.read(theirs_folder + "/" + name):
            fail(f"storage {name} differs from torch.save's")


def check_safetensors(path, state_dict):
    try:
        from safetensors.torch import load_file
    except ImportError:
        print("safetensors package not installed: safetensors check skipped")
        return
    tensors = load_file(path)
    if set(tensors) != set(state_dict):
        fail(f"safetensors keys differ: {sorted(set(tensors) ^ set(state_dict))}")
    for k, t in state_dict.items():
        if tensors[k].dtype != t.dtype or tensors[k].shape != t.shape or not torch.equal(tensors[k], t):
            fail(f"safetensors tensor {k} differs from the .pth one")
    print(f"safetensors: {len(tensors)} tensors equal to the .pth ones")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pth")
    parser.add_argument("--safetensors")
    parser.add_argument("--in-nc", type=int, default=1)
    parser.add_argument("--out-nc", type=int, default=1)
    parser.add_argument("--nc", type=int, default=8)
    parser.add_argument("--nb", type=int, default=5)
    parser.add_argument("--act-mode", default="BR", choices=["R", "BR"])
    args = parser.parse_args()
    print("torch", torch.__version__)

    raw = open(args.pth, "rb").read()
    z, folder, count = check_zip_layout(raw)
    state_dict = torch.load(io.BytesIO(raw), weights_only=True)
    model = DnCNN(args.in_nc, args.out_nc, args.nc, args.nb, args.act_mode)
    model.load_state_dict(state_dict, strict=True)
    expected_keys = list(model.state_dict().keys())
    if list(state_dict.keys()) != expected_keys:
        fail(f"key order {list(state_dict.keys())} differs from model.state_dict()'s {expected_keys}")
    for k, t in state_dict.items():
        if k.endswith("num_batches_tracked") and (t.dtype != torch.int64 or t.dim() != 0):
            fail(f"{k} is {t.dtype} of shape {tuple(t.shape)}, not an int64 scalar")
        if not k.endswith("num_batches_tracked") and t.dtype != torch.float32:
            fail(f"{k} is {t.dtype}")
    print(f"{args.pth}: {count} zip entries under '{folder}/', {len(state_dict)} tensors, "
          f"loaded with weights_only=True and strict=True into DnCNN(nc={args.nc}, nb={args.nb}, act_mode={args.act_mode})")
    print("_metadata:", dict(getattr(state_dict, "_metadata", {}) or {}))
    check_same_as_torch_save(state_dict, z, folder)
    print("data.pkl and storages byte-identical to torch.save's")
    if args.safetensors:
        check_safetensors(args.safetensors, state_dict)

    model.eval()
    with torch.no_grad():
        y = model(torch.rand(1, args.in_nc, 12, 16, generator=torch.Generator().manual_seed(0)))
    if not torch.isfinite(y).all():
        fail("the eval forward pass is not finite")
    print("OK")


if __name__ == "__main__":
    main()
