"""Optimizer start-up: what a ``torch.optim`` optimizer adds to a job's process, against the
optimizers ``corruptlab.train.optim`` builds (subclasses of the same torch.optim classes).

Each measurement is a fresh process (as a Snakemake training job is): ``import torch``, an MLP
784-256-10, then three steps (zero_grad, forward and backward on a batch of 128, step) with a
``state_dict`` / ``load_state_dict`` round trip before the last one, as training does on
resume. The baseline does one forward and backward and no optimizer. Reported per variant: the
process's wall time, the time until its last step is done (before the interpreter's teardown,
which ``logs.end_job()`` skips in the real jobs), whether ``torch._dynamo`` was imported and
from where, and whether the parameters after the steps are bit-identical to those of the
default ``torch.optim`` class. The variants alternate; medians of the repeats.

``torch.optim``'s classes import ``torch._dynamo`` (sympy, torch._inductor, torch.distributed,
triton...) on their first call of ``add_param_group`` (in ``Optimizer.__init__``),
``zero_grad``, ``state_dict`` or ``load_state_dict`` (``@torch._disable_dynamo``, which imports
it to wrap the method in ``torch._dynamo.disable``) and of ``step``
(``@_use_grad_for_differentiable``, which imports it for ``torch._dynamo.graph_break()``), even
when nothing is compiled. corruptlab's optimizers are subclasses whose methods are the
undecorated ones (``inspect.unwrap``), ``step`` run under
``torch.set_grad_enabled(differentiable)`` as the decorator does. ``--candidates`` adds the
other ways tried to avoid the import (they do not).

    uv run python benchmarks/optim_import.py              # ~1.5 min
    uv run python benchmarks/optim_import.py --candidates # ~5 min (~3 with --repeats 3)
    uv run python benchmarks/optim_import.py --quick      # one repeat (a smoke test)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import _common

# the hyperparameters of each optimizer (corruptlab's spec; torch.optim takes the same keywords)
SPECS = {
    "adam": {"name": "adam", "lr": 1e-3, "weight_decay": 0.0},
    "sgd": {"name": "sgd", "lr": 1e-3, "momentum": 0.9, "weight_decay": 0.0},
    "adadelta": {"name": "adadelta", "lr": 1.0, "weight_decay": 0.0},
}

# argv: variant, spec as JSON. Prints one JSON line: timings, dynamo, a hash of the parameters.
CHILD = r"""
import time
t0 = time.perf_counter()
import hashlib, json, sys, traceback

where = []


class Watch:  # records who first imports torch._dynamo (two innermost frames outside importlib)
    def find_spec(self, name, path=None, target=None):
        if name == "torch._dynamo" and not where:
            frames = [f for f in traceback.extract_stack()[:-1] if "importlib" not in f.filename]
            where.extend(f"{f.filename.split('/')[-1]}:{f.lineno} {f.name}" for f in frames[-2:])


sys.meta_path.insert(0, Watch())
import torch
from torch import nn

t_torch = time.perf_counter() - t0
variant, spec = sys.argv[1], json.loads(sys.argv[2])
hyper = {k: v for k, v in spec.items() if k != "name"}
cls = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "adadelta": torch.optim.Adadelta}.get(
    spec.get("name")
)
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
x, y = torch.randn(128, 784), torch.randint(0, 10, (128,))


def loss():
    return nn.functional.cross_entropy(model(x), y)


if variant == "baseline":
    loss().backward()
else:
    if variant == "corruptlab":
        from corruptlab.train.optim import build_optimizer

        opt = build_optimizer(model.parameters(), spec)
    elif variant == "flags":
        flags = {"foreach": False, "differentiable": False}
        flags.update({"adam": {"fused": False, "capturable": False}, "sgd": {"fused": False},
                      "adadelta": {"capturable": False}}[spec["name"]])
        opt = cls(model.parameters(), **hyper, **flags)
    else:  # default, an environment variable, no_grad
        opt = cls(model.parameters(), **hyper)
    for i in range(3):
        if i == 2:
            opt.load_state_dict(opt.state_dict())
        opt.zero_grad(set_to_none=True)
        loss().backward()
        if variant == "no_grad":
            with torch.no_grad():
                opt.step()
        else:
            opt.step()
digest = hashlib.sha256()
for p in model.parameters():
    digest.update(p.detach().numpy().tobytes())
print(json.dumps({
    "torch": t_torch,
    "done": time.perf_counter() - t0,
    "dynamo": "torch._dynamo" in sys.modules,
    "where": " <- ".join(reversed(where)),
    "hash": digest.hexdigest(),
}))
"""

BASELINE = ("baseline", "no optimizer (import torch, model, forward/backward)", "-", {})
TORCH_OPTIM = "torch.optim"
CORRUPTLAB = "corruptlab.train.optim"
MAIN = [
    ("default", TORCH_OPTIM, {}),
    ("corruptlab", CORRUPTLAB, {}),
]
CANDIDATES = [
    ("flags", "torch.optim, foreach/fused/capturable/differentiable=False", {}),
    ("default", "torch.optim, TORCHDYNAMO_DISABLE=1", {"TORCHDYNAMO_DISABLE": "1"}),
    ("default", "torch.optim, TORCH_COMPILE_DISABLE=1", {"TORCH_COMPILE_DISABLE": "1"}),
    ("no_grad", "torch.optim, step() under torch.no_grad()", {}),
]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--optimizers", default="adam,sgd,adadelta")
    p.add_argument(
        "--candidates",
        action="store_true",
        help="also the other ways tried to avoid the import, for every optimizer",
    )
    p.add_argument("--quick", action="store_true", help="one repeat (a smoke test)")
    return p.parse_args(argv)


def variants(optimizers: list[str], candidates: bool) -> list[tuple]:
    """(variant, label, optimizer, extra environment) of each measurement."""
    out = [BASELINE]
    for name in optimizers:
        out += [(v, label, name, env) for v, label, env in MAIN]
        if candidates:
            out += [(v, label, name, env) for v, label, env in CANDIDATES]
    return out


def measure(child: Path, variant: str, name: str, env: dict) -> dict:
    spec = json.dumps(SPECS[name]) if name in SPECS else "{}"
    # one thread and MKL's reproducible mode, so that the parameters of two processes compare
    # bit for bit (threads and memory alignment may otherwise change the sums' rounding)
    repro = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MKL_CBWR": "COMPATIBLE"}
    full_env = {**_common.workflow_env(_common.REPO), **repro, **env}
    seconds, proc = _common.run([sys.executable, str(child), variant, spec], env=full_env)
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "wall": seconds}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.repeats = 1
    optimizers = args.optimizers.split(",")
    if unknown := set(optimizers) - set(SPECS):
        _common.fail(f"unknown optimizers {sorted(unknown)}; accepted: {', '.join(SPECS)}")
    _common.print_machine("optimizer start-up: torch.optim vs corruptlab.train.optim")
    runs = variants(optimizers, args.candidates)
    results: dict[tuple, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="optim_import-") as tmp:
        child = Path(tmp) / "child.py"
        child.write_text(CHILD)
        measure(child, "baseline", "-", {})  # warm the page cache
        for _ in range(args.repeats):
            for v, label, name, env in runs:
                results.setdefault((label, name), []).append(measure(child, v, name, env))

    def med(label: str, name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[(label, name)])

    rows = []
    for _, label, name, _ in runs:
        rs = results[(label, name)]
        hashes = {r["hash"] for r in rs}
        if len(hashes) != 1:
            _common.fail(f"{label} / {name}: parameters differ between repeats")
        if name == "-":
            same = "-"
        else:
            same = "yes" if hashes == {results[(TORCH_OPTIM, name)][0]["hash"]} else "**no**"
        dynamo = {r["dynamo"] for r in rs}
        rows.append(
            (
                label,
                name,
                f"{med(label, name, 'wall'):.2f}",
                _common.spread([r["wall"] for r in rs]),
                f"{med(label, name, 'done'):.2f}",
                ("yes" if True in dynamo else "no") + (" (varies)" if len(dynamo) > 1 else ""),
                rs[0]["where"] or "-",
                same,
            )
        )
    _common.print_table(
        [
            "variant",
            "optimizer",
            "process wall (s)",
            "spread",
            "until last step (s)",
            "torch._dynamo imported",
            "first imported at",
            "params = torch.optim",
        ],
        rows,
        title=f"a fresh process, 3 steps (median of {args.repeats})",
    )

    saved = []
    for name in optimizers:
        row = [name]
        for key in ("wall", "done"):
            row.append(f"{med(TORCH_OPTIM, name, key) - med(CORRUPTLAB, name, key):+.2f}")
        saved.append(row)
    _common.print_table(
        [
            "optimizer",
            "corruptlab's optimizer saves per process (wall, s)",
            "saves before exit (s)",
        ],
        saved,
        title=f"what {CORRUPTLAB} saves against torch.optim (difference of the medians)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
