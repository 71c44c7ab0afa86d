#!/usr/bin/env python3
"""PyTorch 1.13 references for the optimizer kernels, gradient clipping and learning-rate schedules.

Run with Debian's python3-torch: /usr/bin/python3 tools/torch/make_optimizer_fixtures.py

Writes two small JSON files to test/fixtures/training/ (float32 values as JSON numbers: a float32 printed as the
shortest float64 that equals it parses back to exactly that float32):

- optimizers.json
  * `tensors`, `initial`, `grads`: three small float32 parameters, their starting values and a fixed gradient for
    each of 5 steps (exact zeros included: single elements of one tensor, and one whole tensor at one step).
  * `cases`: torch.optim.SGD / Adam / AdamW (`foreach=None`, the single-tensor path) stepped 5 times on those
    gradients, the group's lr set to `lrs[k]` before step k (so the per-step scalars change), with the float32
    parameters after every step (`params[step][tensor]`).
  * `clip`: torch.nn.utils.clip_grad_norm_(max_norm, 2) on gradients whose total norm is below, at and above
    max_norm: the returned total norm and the clipped gradients.
- schedules.json: get_last_lr() (per parameter group) after each of 30 scheduler steps of StepLR, MultiStepLR,
  CosineAnnealingLR and ReduceLROnPlateau (with the metric fed at each step), each stepped after optimizer.step()
  as PyTorch asks; `initial` is the lr before the first step.

Option names are written as the TypeScript API spells them (camelCase).
"""
import json
import os

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "training")
STEPS = 5
SCHEDULE_STEPS = 30

TENSOR_SHAPES = [("a", [7]), ("b", [3, 5]), ("c", [2, 2, 3])]


def values(t):
    return [float(v) for v in t.detach().to(torch.float32).flatten().tolist()]


def make_gradients(gen):
    grads = []
    for step in range(STEPS):
        per_tensor = []
        for k, (_, shape) in enumerate(TENSOR_SHAPES):
            g = torch.randn(shape, generator=gen, dtype=torch.float32) * (0.5 + 0.3 * step)
            if k == 1:
                # Exact zeros: a fixed pattern of elements that never get a gradient.
                g.view(-1)[::4] = 0.0
            if k == 2 and step == 2:
                # A whole tensor with a zero gradient for one step (still updated by PyTorch: .grad is not None).
                g.zero_()
            per_tensor.append(g)
        grads.append(per_tensor)
    return grads


def torch_optimizer(kind, params, options):
    o = dict(options)
    kwargs = {"lr": o.pop("lr")}
    if "momentum" in o:
        kwargs["momentum"] = o.pop("momentum")
    if "dampening" in o:
        kwargs["dampening"] = o.pop("dampening")
    if "weightDecay" in o:
        kwargs["weight_decay"] = o.pop("weightDecay")
    if "nesterov" in o:
        kwargs["nesterov"] = o.pop("nesterov")
    if "betas" in o:
        kwargs["betas"] = tuple(o.pop("betas"))
    if "eps" in o:
        kwargs["eps"] = o.pop("eps")
    assert not o, o
    if kind == "sgd":
        return torch.optim.SGD(params, foreach=None, **kwargs)
    if kind == "adam":
        return torch.optim.Adam(params, foreach=None, **kwargs)
    return torch.optim.AdamW(params, foreach=None, **kwargs)


def run_case(name, kind, options, lrs, initial, grads):
    params = [torch.nn.Parameter(t.clone()) for t in initial]
    opt = torch_optimizer(kind, params, options)
    history = []
    for step in range(STEPS):
        for group in opt.param_groups:
            group["lr"] = lrs[step]
        for p, g in zip(params, grads[step]):
            p.grad = g.clone()
        opt.step()
        history.append([values(p) for p in params])
    return {"name": name, "optimizer": kind, "options": options, "lrs": lrs, "params": history}


def clip_case(name, gen, max_norm, target_norm):
    grads = [torch.randn(shape, generator=gen, dtype=torch.float32) for _, shape in TENSOR_SHAPES]
    grads[1].view(-1)[::3] = 0.0
    if target_norm is not None:
        norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
        grads = [(g.double() * (target_norm / norm)).float() for g in grads]
    params = [torch.nn.Parameter(torch.zeros(shape)) for _, shape in TENSOR_SHAPES]
    before = []
    for p, g in zip(params, grads):
        p.grad = g.clone()
        before.append(values(g))
    total = torch.nn.utils.clip_grad_norm_(params, max_norm, 2.0)
    return {
        "name": name,
        "maxNorm": max_norm,
        "grads": before,
        "totalNorm": float(total),
        "clipped": [values(p.grad) for p in params],
    }


def optimizer_fixtures():
    gen = torch.Generator().manual_seed(20240517)
    initial = [torch.randn(shape, generator=gen, dtype=torch.float32) * 0.5 for _, shape in TENSOR_SHAPES]
    grads = make_gradients(gen)
    sgd_lrs = [0.1, 0.05, 0.2, 0.01, 0.07]
    adam_lrs = [1e-2, 3e-3, 2e-2, 1e-3, 5e-3]
    cases = [
        run_case("sgd_plain", "sgd", {"lr": 0.1}, sgd_lrs, initial, grads),
        run_case("sgd_momentum", "sgd", {"lr": 0.1, "momentum": 0.9}, sgd_lrs, initial, grads),
        run_case("sgd_dampening", "sgd", {"lr": 0.1, "momentum": 0.9, "dampening": 0.1}, sgd_lrs, initial, grads),
        run_case(
            "sgd_nesterov_wd", "sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weightDecay": 1e-2}, sgd_lrs, initial, grads
        ),
        run_case(
            "sgd_dampening_wd", "sgd", {"lr": 0.1, "momentum": 0.8, "dampening": 0.1, "weightDecay": 5e-3}, sgd_lrs, initial, grads
        ),
        run_case("sgd_wd_no_momentum", "sgd", {"lr": 0.1, "weightDecay": 1e-2}, sgd_lrs, initial, grads),
        run_case("adam", "adam", {"lr": 1e-2}, adam_lrs, initial, grads),
        run_case("adam_wd", "adam", {"lr": 1e-2, "weightDecay": 1e-2}, adam_lrs, initial, grads),
        run_case("adam_betas_eps", "adam", {"lr": 1e-2, "betas": [0.8, 0.99], "eps": 1e-6}, adam_lrs, initial, grads),
        run_case("adamw", "adamw", {"lr": 1e-2}, adam_lrs, initial, grads),
        run_case("adamw_wd", "adamw", {"lr": 1e-2, "weightDecay": 0.1, "betas": [0.9, 0.99]}, adam_lrs, initial, grads),
    ]
    clip = [
        clip_case("below_1", gen, 1.0, 0.6),
        clip_case("at_1", gen, 1.0, 1.0),
        clip_case("above_1", gen, 1.0, None),
        clip_case("below_0.5", gen, 0.5, 0.3),
        clip_case("at_0.5", gen, 0.5, 0.5),
        clip_case("above_0.5", gen, 0.5, 2.5),
    ]
    return {
        "torch": torch.__version__,
        "generator": "tools/torch/make_optimizer_fixtures.py",
        "tensors": [{"name": n, "shape": s} for n, s in TENSOR_SHAPES],
        "initial": [values(t) for t in initial],
        "grads": [[values(g) for g in step] for step in grads],
        "cases": cases,
        "clip": clip,
    }


def lr_of(opt):
    return [float(g["lr"]) for g in opt.param_groups]


def dummy_optimizer(base_lrs):
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in base_lrs]
    return torch.optim.SGD(groups, lr=base_lrs[0])


def schedule_case(name, kind, base_lrs, options, metrics=None):
    opt = dummy_optimizer(base_lrs)
    if kind == "StepLR":
        s = torch.optim.lr_scheduler.StepLR(opt, options["stepSize"], **({"gamma": options["gamma"]} if "gamma" in options else {}))
    elif kind == "MultiStepLR":
        s = torch.optim.lr_scheduler.MultiStepLR(
            opt, options["milestones"], **({"gamma": options["gamma"]} if "gamma" in options else {})
        )
    elif kind == "CosineAnnealingLR":
        s = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, options["tMax"], **({"eta_min": options["etaMin"]} if "etaMin" in options else {})
        )
    else:
        names = {
            "mode": "mode",
            "factor": "factor",
            "patience": "patience",
            "threshold": "threshold",
            "thresholdMode": "threshold_mode",
            "cooldown": "cooldown",
            "minLr": "min_lr",
            "eps": "eps",
        }
        s = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **{names[k]: v for k, v in options.items()})
    initial = lr_of(opt)
    lrs = []
    for step in range(SCHEDULE_STEPS):
        opt.step()
        if metrics is None:
            s.step()
        else:
            s.step(metrics[step])
        lrs.append(lr_of(opt))
    case = {"name": name, "kind": kind, "baseLrs": base_lrs, "options": options, "initial": initial, "lrs": lrs}
    if metrics is not None:
        case["metrics"] = metrics
    return case


def schedule_fixtures():
    gen = torch.Generator().manual_seed(7)
    flat = [1.0] * SCHEDULE_STEPS
    noisy_min = [float(v) for v in (1.0 / torch.arange(1, SCHEDULE_STEPS + 1, dtype=torch.float64) ** 0.3
                                    + 0.02 * torch.randn(SCHEDULE_STEPS, generator=gen, dtype=torch.float64))]
    decreasing_then_flat = [1.0, 0.9, 0.85, 0.845, 0.842, 0.84, 0.8, 0.795, 0.7945, 0.794] + [0.79] * 20
    accuracy = [0.5, 0.6, 0.65, 0.66, 0.661, 0.7, 0.705, 0.7051, 0.71, 0.71] * 3
    almost_better = [1.0] + [0.99995] * (SCHEDULE_STEPS - 1)
    cases = [
        schedule_case("step_3_half_two_groups", "StepLR", [0.1, 0.02], {"stepSize": 3, "gamma": 0.5}),
        schedule_case("step_7_default_gamma", "StepLR", [1.0], {"stepSize": 7}),
        schedule_case("multistep_repeated", "MultiStepLR", [0.1, 0.05], {"milestones": [2, 5, 5, 11], "gamma": 0.3}),
        schedule_case("multistep_default_gamma", "MultiStepLR", [1.0], {"milestones": [10, 20]}),
        schedule_case("cosine_7_past_tmax", "CosineAnnealingLR", [0.1, 0.02], {"tMax": 7, "etaMin": 1e-3}),
        schedule_case("cosine_10_default", "CosineAnnealingLR", [1.0], {"tMax": 10}),
        schedule_case("cosine_2", "CosineAnnealingLR", [0.5], {"tMax": 2, "etaMin": 0.1}),
        schedule_case("plateau_flat_cooldown", "ReduceLROnPlateau", [0.1, 0.01], {"patience": 2, "cooldown": 2, "factor": 0.5}, flat),
        schedule_case("plateau_min_rel_noisy", "ReduceLROnPlateau", [0.1], {"patience": 3, "cooldown": 1}, noisy_min),
        schedule_case(
            "plateau_min_abs",
            "ReduceLROnPlateau",
            [0.1, 0.03],
            {"thresholdMode": "abs", "threshold": 0.01, "patience": 3, "factor": 0.3},
            decreasing_then_flat,
        ),
        schedule_case(
            "plateau_max_rel", "ReduceLROnPlateau", [0.1], {"mode": "max", "threshold": 1e-2, "patience": 1, "cooldown": 1}, accuracy
        ),
        schedule_case(
            "plateau_max_abs",
            "ReduceLROnPlateau",
            [0.2],
            {"mode": "max", "thresholdMode": "abs", "threshold": 0.05, "patience": 0},
            accuracy,
        ),
        schedule_case(
            "plateau_min_lr_per_group", "ReduceLROnPlateau", [0.1, 0.01], {"patience": 0, "factor": 0.5, "minLr": [0.02, 0.001]}, flat
        ),
        schedule_case("plateau_min_lr_scalar", "ReduceLROnPlateau", [0.1, 0.01], {"patience": 1, "minLr": 0.004}, flat),
        schedule_case("plateau_eps_rule", "ReduceLROnPlateau", [1e-7, 1e-6], {"patience": 0, "factor": 0.5}, flat),
        schedule_case("plateau_almost_better", "ReduceLROnPlateau", [0.1], {"patience": 2}, almost_better),
    ]
    return {"torch": torch.__version__, "generator": "tools/torch/make_optimizer_fixtures.py", "steps": SCHEDULE_STEPS, "cases": cases}


def write(name, data):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", os.path.relpath(path, ROOT), os.path.getsize(path), "bytes")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    write("optimizers.json", optimizer_fixtures())
    write("schedules.json", schedule_fixtures())


if __name__ == "__main__":
    main()
