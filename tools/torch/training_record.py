"""The whole-step recording that the *_training_fixtures.py scripts share (training.md section 7 item 5).

`record_training(...)` trains `model` on one batch for `steps` steps in PyTorch's order (zero_grad, forward, loss,
backward, step) and writes <name>.json + <name>.bin into `out`: the batch, the initial state_dict, the loss of
every step, the output and every gradient of step 1, and the state_dict after each snapshot step, tensors at byte
offsets of the .bin (Blob), read by test/helpers/training-parity.ts.
"""
import json
import os
import struct

import torch


class Blob:
    """float32 tensors appended to one little-endian byte buffer."""

    def __init__(self):
        self.data = bytearray()

    def encode(self, t):
        t = t.detach().contiguous()
        if t.dtype == torch.int64:
            return {"shape": list(t.shape), "data": [int(v) for v in t.reshape(-1).tolist()]}
        assert t.dtype == torch.float32, t.dtype
        offset = len(self.data)
        values = t.reshape(-1).tolist()
        self.data += struct.pack("<%df" % len(values), *values)
        return {"shape": list(t.shape), "offset": offset}

    def state(self, model):
        return {k: self.encode(v) for k, v in model.state_dict().items()}



def record_training(name, model, optimizer, loss_fn, x, target, *, config, loss, optimizer_settings, steps, snapshots, out,
                    extra=None):
    blob = Blob()
    record = {
        "torch": torch.__version__,
        "config": config,
        "loss": loss,
        "optimizer": optimizer_settings,
        "input": blob.encode(x),
        "target": blob.encode(target),
        "initial": blob.state(model),
        "losses": [],
        "grads_step1": None,
        "output_step1": None,
        "after": {},
        **(extra or {}),
    }
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        out_ = model(x)
        value = loss_fn(out_, target)
        value.backward()
        record["losses"].append(float(value.item()))
        if step == 1:
            record["output_step1"] = blob.encode(out_)
            record["grads_step1"] = {k: blob.encode(p.grad) for k, p in model.named_parameters()}
        optimizer.step()
        if step in snapshots:
            record["after"][str(step)] = blob.state(model)
    with open(os.path.join(out, name + ".json"), "w") as f:
        f.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
    with open(os.path.join(out, name + ".bin"), "wb") as f:
        f.write(bytes(blob.data))
    return record, len(blob.data)
