#!/usr/bin/env python3
"""Check that the .pth files our trainer writes for every network that trains load in PyTorch 1.13.

Run with Debian's python3-torch (/usr/bin/python3):

    /usr/bin/python3 tools/torch/check_written_checkpoints.py [test/fixtures/training/written/NET.pth ...]

Without arguments it checks every file in test/fixtures/training/written/, which
test/training/written-checkpoints.test.ts writes (WEBGPU_RESTORE_WRITE_FIXTURES=1) from a Trainer's
stateDict() at the reduced configuration of each network's parity fixture. For each file, as training.md
section 5 asks of a checkpoint a trainer saves:
  1. the zip and data.pkl are laid out as torch.save writes them (check_written_checkpoint.py's checks);
  2. torch.load(f, weights_only=True) succeeds and load_state_dict(strict=True) into the PyTorch module at the
     same configuration (the classes the fixture generators train) succeeds, keys in model.state_dict()'s order,
     float32 tensors and int64 0-d num_batches_tracked;
  3. torch.save of the loaded OrderedDict gives the same data.pkl and storages;
  4. an eval-mode forward pass on the fixture's batch shape gives finite output.
Prints OK per file and exits 0 when every file passes.
"""
import io
import json
import os
import sys

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from check_written_checkpoint import check_same_as_torch_save, check_zip_layout, fail  # noqa: E402
from make_gan_training_fixtures import NLayerDiscriminator  # noqa: E402
from make_resunet_training_fixtures import ReducedSmpUnet  # noqa: E402
from nets.msrresnet import MSRResNet  # noqa: E402
from nets.rrdbnet import RRDBNet  # noqa: E402
from nets.scunet import ConvTransBlock  # noqa: E402
from nets.sinsr import SINSRGenerator  # noqa: E402
from nets.srresnet import SRResNet  # noqa: E402
from nets.unet import UNet  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "test", "fixtures", "training")
WRITTEN = os.path.join(FIXTURES, "written")


def fixture(name):
    with open(os.path.join(FIXTURES, name + ".json")) as f:
        return json.load(f)


def unet(name):
    fx = fixture(name)
    c = fx["config"]
    return UNet(c["n_channels"], c["n_classes"], bilinear=c["bilinear"], base=c["base"], sigmoid=c["sigmoid"]), fx["input"]["shape"]


def resunet():
    fx = fixture("resunet-mse-adamw")
    c = fx["config"]
    model = ReducedSmpUnet(c["in_channels"], c["classes"])
    # ReducedSmpUnet takes its widths from the generator's constants: they must be the fixture's.
    widths = [model.encoder.conv1.out_channels] + [getattr(model.encoder, f"layer{i}")[0].conv1.out_channels for i in range(1, 5)]
    if widths != c["encoder_widths"]:
        fail(f"ReducedSmpUnet's widths {widths} are not the fixture's {c['encoder_widths']}")
    return model, fx["input"]["shape"]


def scunet_pair():
    fx = fixture("scunet-ctb-pair-mse-adam")
    c = fx["config"]
    model = nn.Sequential(ConvTransBlock(c["convDim"], c["transDim"], "W", 256), ConvTransBlock(c["convDim"], c["transDim"], "SW", 256))
    return model, fx["input"]["shape"]


def msrresnet():
    fx = fixture("msrresnet-x2-l1-adam")
    c = fx["config"]
    model = MSRResNet(num_in_ch=c["in"], num_out_ch=c["out"], num_feat=c["features"], num_block=c["blocks"], upscale=c["scale"])
    return model, fx["input"]["shape"]


def srresnet():
    fx = fixture("srresnet-x2-shared-mse-adam")
    c = fx["config"]
    model = SRResNet(in_channels=c["inChannels"], out_channels=c["outChannels"], channels=c["features"], num_rcb=c["blocks"],
                     upscale_factor=c["scale"], prelu_per_channel=c["prelu"] == "channel")
    return model, fx["input"]["shape"]


def rrdbnet():
    fx = fixture("rrdbnet-x4-l1-adam")
    c = fx["config"]
    model = RRDBNet(num_in_ch=c["in"], num_out_ch=c["out"], scale=c["scale"], num_feat=c["numFeat"], num_block=c["numBlock"],
                    num_grow_ch=c["numGrowCh"])
    return model, fx["input"]["shape"]


def sinsr():
    fx = fixture("sinsr-cbam-mse-sgd")
    c = fx["config"]
    model = SINSRGenerator(in_ch=c["inChannels"], out_ch=c["outChannels"], first_feat=c["firstFeat"], num_feat=c["numFeat"],
                           growth=c["growth"], num_layers=c["numLayers"], num_rdbs=c["numRDBs"], num_rrdbs=c["numRRDBs"],
                           attention=None if c["attention"] == "none" else c["attention"], reduction=c["reduction"])
    return model, fx["input"]["shape"]


def patchgan():
    fx = fixture("gan-pix2pix")
    d = fx["discriminator"]
    n, _, h, w = fx["input"]["shape"]
    return NLayerDiscriminator(d["in_channels"], ndf=d["ndf"], n_layers=d["n_layers"]), [n, d["in_channels"], h, w]


# File name (test/training/written-checkpoints.test.ts's case) -> the module and the batch shape of its forward.
NETWORKS = {
    "unet-transposed": lambda: unet("unet-transposed-mse-adam"),
    "unet-bilinear": lambda: unet("unet-bilinear-l1-sgd"),
    "resunet": resunet,
    "scunet-pair": scunet_pair,
    "msrresnet-x2": msrresnet,
    "srresnet-x2-shared": srresnet,
    "rrdbnet-x4": rrdbnet,
    "sinsr-cbam": sinsr,
    "patchgan-n2": patchgan,
}


def check(path):
    net = os.path.splitext(os.path.basename(path))[0]
    if net not in NETWORKS:
        fail(f"{path}: no PyTorch module is known for '{net}' (known: {', '.join(NETWORKS)})")
    model, shape = NETWORKS[net]()
    raw = open(path, "rb").read()
    z, folder, count = check_zip_layout(raw)
    state_dict = torch.load(io.BytesIO(raw), weights_only=True)
    model.load_state_dict(state_dict, strict=True)
    expected_keys = list(model.state_dict().keys())
    if list(state_dict.keys()) != expected_keys:
        fail(f"{net}: key order {list(state_dict.keys())} differs from model.state_dict()'s {expected_keys}")
    batch_norms = 0
    for k, t in state_dict.items():
        if k.endswith("num_batches_tracked"):
            batch_norms += 1
            if t.dtype != torch.int64 or t.dim() != 0:
                fail(f"{net}: {k} is {t.dtype} of shape {tuple(t.shape)}, not an int64 scalar")
        elif t.dtype != torch.float32:
            fail(f"{net}: {k} is {t.dtype}")
    check_same_as_torch_save(state_dict, z, folder)
    model.eval()
    with torch.no_grad():
        y = model(torch.rand(*shape, generator=torch.Generator().manual_seed(0)))
    if not torch.isfinite(y).all():
        fail(f"{net}: the eval forward pass is not finite")
    params = sum(t.numel() for t in state_dict.values())
    print(f"OK {os.path.relpath(path, ROOT)}: {type(model).__name__}, {len(state_dict)} tensors ({params} values, "
          f"{batch_norms} BatchNorms), {count} zip entries; weights_only + strict load, torch.save-identical, "
          f"forward {list(shape)} -> {list(y.shape)} finite")


def main():
    print("torch", torch.__version__)
    torch.set_num_threads(1)
    paths = sys.argv[1:] or sorted(os.path.join(WRITTEN, f) for f in os.listdir(WRITTEN) if f.endswith(".pth"))
    missing = sorted(set(NETWORKS) - {os.path.splitext(os.path.basename(p))[0] for p in paths})
    if not sys.argv[1:] and missing:
        fail(f"no written checkpoint for {', '.join(missing)} in {WRITTEN}")
    for path in paths:
        check(path)
    print(f"all {len(paths)} checkpoints load in PyTorch {torch.__version__}")


if __name__ == "__main__":
    main()
