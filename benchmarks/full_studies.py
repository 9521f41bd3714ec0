"""Full studies: what each study config in config/studies/ (the paper-sized ones; ``*_quick`` are
skipped) would cost to run, in training and evaluation work, and the hours it should take on
this CPU and on a GPU, estimated from throughput measured here (issue 26, item 6).

The runs are the project's own: each config is validated and expanded by
``corruptlab.core.config`` (``validate_config``, ``expand_runs``: each study kind's ``expand``),
and each run's length is ``corruptlab.jobs.train.training_length`` (a distillation student's
step budget, early stopping off). A run's training set is its noisy labels as
``corruptlab.data.noise.make_noisy_labels`` makes them (uniform and structured noise add alpha
copies of every example) restricted to its transfer set (``corruptlab.data.transfer``), on
class-balanced stand-in labels of the dataset's training split (55,000 for the MNIST-like
datasets, 45,000 for CIFAR-10; ``in_classes`` keeps that fraction of the classes). Training work
is examples forwarded, as ``corruptlab.train.method_loop`` counts them: max_epochs passes over
the training set (an upper bound wherever early stopping may stop a run earlier), times the
members a gradient-free method forwards per minibatch (asked of the method itself, one
generation on random data).

Every piece of work (a training step of a model with its optimizer or training method, a
gradient-free generation, a forward pass at the evaluation batch, a test-time adaptation
method over a test stream) is timed here on random tensors of the dataset's shape, for
``--seconds`` each; its matmul and convolution FLOPs are counted by
``torch.utils.flop_counter.FlopCounterMode`` and its aten operators by a dispatch mode. The CPU
estimate is ``--jobs`` jobs of ``--threads`` torch threads side by side: by default two
one-thread jobs on the 2 cores, timed by the process's CPU time, which other processes on a
shared machine do not stretch. (Two-thread timings there are not measurements: a call whose
second thread is descheduled waits for it, up to 100x slower; ``--threads 2 --jobs 1`` measures
the configs' own ``threads: 2`` on a quiet machine, by the fastest call's wall time.) The
GPU estimate of a batch is its FLOPs at a sustained fraction of a GPU's fp32 peak plus a fixed
cost per aten operator (kernel launch and framework overhead, which bounds small MLPs), summed
without overlap, i.e. conservatively. Evaluation work is counted roughly: the validation pass
after every epoch, the test set under every corruption, severity and adaptation method, the OOD
sets, a teacher's logits on the training split, the critical sample ratio's searches.

    uv run python benchmarks/full_studies.py            # ~2 min (73 pieces of work timed)
    uv run python benchmarks/full_studies.py --write    # and docs/reproductions/gpu_estimates.csv
    uv run python benchmarks/full_studies.py --quick    # tiny timings (a smoke test)
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import math
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import _common

STUDY_CONFIGS = _common.REPO / "config" / "studies"
CSV_PATH = _common.REPO / "docs" / "reproductions" / "gpu_estimates.csv"
CSV_COLUMNS = (
    "paper",
    "config",
    "study",
    "adds",
    "runs",
    "train_examples",
    "cpu_hours",
    "gpu_hours",
    "assumption",
)

# the reproduction (config/reproductions/<name>.yaml) each study config is the full form of
PAPERS = {
    "label_noise": "rolnick2017",
    "memorization": "arpit2017",
    "ood": "hendrycks2017",
    "corruption_tta": "wang2021_tent",
    "distillation": "hinton2015",
    "no_gd": "zhou2019_ramanujan2020",
    "batchnorm": "bjorck2018",
}
# what each study adds over its CPU reproduction (read from the two configs)
ADDS = {
    "label_noise": (
        "all of Figure 1: mlp4 and the ConvNet (conv4, the paper's 91% at alpha = 100) beside "
        "the perceptron, mlp1 and mlp2; alpha 0-100 in steps of 10; 5 learning rates; 5 seeds; "
        "up to 100 epochs (patience 5). The reproduction: 3 models, 6 alphas, 2 lrs, 2 seeds, "
        "at most 4 epochs"
    ),
    "memorization": (
        "100 seeds instead of 20 (P(correct) in steps of 1/100), 10-epoch runs beside the "
        "1-epoch ones, the CSR at epochs 0, 1, 2, 5, 10; still MNIST: no config has the paper's "
        "CIFAR-10 Figure 1"
    ),
    "ood_mnist": (
        "the ConvNet (conv4) beside mlp2 (Adadelta, up to 20 epochs) and Fashion-MNIST, KMNIST "
        "and 15 MNIST-C corruptions as OOD sets beside the noise sets; the paper's mlp3_gelu is "
        "in the reproduction only. Not GPU-sized"
    ),
    "ood_held_out": (
        "mlp2 and conv4 trained on the digits 0-5, the held-out 6-9 as an OOD set (not in the "
        "reproduction). Not GPU-sized"
    ),
    "corruption_tta": (
        "5 severities instead of 3, 20 corruptions instead of 16, TENT's lr x batch grid (4 x 5, "
        "its Figure 5) instead of lr 0.001 at batch 128, the mlp_bn mCE baseline, 5 seeds "
        "instead of 3, up to 30 epochs instead of 10"
    ),
    "distillation": (
        "the temperature grid T = 1, 2, 4, 8, 20 (the reproduction: 20), teachers and students "
        "up to 100 epochs / a 100-pass step budget instead of 30 / 20, teachers trained on "
        "noisy labels (uniform alpha 1, 5; flip p 0.2, 0.5) and their students; its resources "
        "ask for no GPU"
    ),
    "no_gd": (
        "the notebook's baseline (net_notebook and mlp_300_100, Adadelta, 4 epochs, batch 64) "
        "and its TicketFinder, the genetic algorithm, every gradient-free method for up to 20 "
        "epochs (about 10x the reproduction's ~66 passes of forwards), 5 seeds, OOD sets beyond "
        "noise (Fashion-MNIST, KMNIST, 5 corruptions)"
    ),
    "batchnorm_mnist": (
        "the ConvNet (conv4 / conv4_bn) and pre-activation ResNet pairs beside the deep MLPs, "
        "xavier init beside kaiming, 10 epochs instead of 5"
    ),
    "batchnorm_cifar10": (
        "CIFAR-10, the paper's data (a small pre-activation ResNet for its ResNet-110), with "
        "the ResNet, ConvNet and 10-layer MLP pairs, both inits, 10 lrs, 3 seeds, 30 epochs"
    ),
}

# training split sizes (the registry's docs say them; checked against corruptlab.data.datasets)
TRAIN_SIZE = {
    "mnist5k": 3_500,
    "mnist": 55_000,
    "fashion-mnist": 55_000,
    "kmnist": 55_000,
    "cifar10": 45_000,
}
TEST_SIZE = 10_000  # the test split of every torchvision dataset (mnist5k: its n_test)
ADAPT_IMAGES = 1024  # images per timed call of a test-time adaptation method
STAND_IN = 10_000  # class-balanced stand-in labels the noise and transfer fractions come from


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--configs",
        nargs="+",
        type=Path,
        help="study configs (default: config/studies/*.yaml but *_quick.yaml)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads per job")
    p.add_argument(
        "--jobs", type=int, default=2, help="jobs side by side (CPU hours: work / (rate x jobs))"
    )
    p.add_argument("--seconds", type=float, default=1.0, help="timing per piece of work")
    p.add_argument("--gpu-name", default="NVIDIA A100 (fp32 without TF32)")
    p.add_argument("--gpu-tflops", type=float, default=19.5, help="the GPU's fp32 peak, TFLOP/s")
    p.add_argument(
        "--gpu-fraction",
        type=float,
        default=0.3,
        help="sustained fraction of that peak for the counted matmul / conv FLOPs",
    )
    p.add_argument(
        "--gpu-us-per-op",
        type=float,
        default=10.0,
        help="microseconds per aten operator (kernel launch and framework overhead)",
    )
    p.add_argument(
        "--write",
        nargs="?",
        const=CSV_PATH,
        type=Path,
        help="write the per-study figures as CSV (default: docs/reproductions/gpu_estimates.csv)",
    )
    p.add_argument(
        "--largest", type=int, default=3, help="largest model and noise settings shown per study"
    )
    p.add_argument("--quick", action="store_true", help="one short timing per piece of work")
    return p.parse_args(argv)


# --------------------------------------------------------------------------- the work of a run


@dataclass(frozen=True)
class Unit:
    """A piece of work timed once and reused by every run that does it: ``what`` is ``step``
    (forward, loss, backward and update of a training minibatch: gd with its optimizer, or a
    mask method's runner), ``generation`` (a gradient-free method's generation on a minibatch),
    ``forward`` (``training.predict`` at its evaluation batch) or ``adapt`` (a test-time
    adaptation method over a stream of test batches); ``setting`` the optimizer, method or
    adaptation setting as sorted JSON (learning rates set alike: they do not change the time)."""

    what: str
    model: str
    dataset: str
    batch: int
    setting: str = "{}"


@dataclass
class Item:
    """Work of one run on one unit: ``examples`` minibatch examples in ``batches`` batches;
    ``op_share`` the share of the per-operator GPU cost it pays (1 / K for K seeds trained in
    one vmap pack)."""

    phase: str  # "train" or "eval"
    unit: Unit
    examples: float
    batches: float
    op_share: float = 1.0


def _setting(**parts) -> str:
    return json.dumps(parts, sort_keys=True, default=str)


def _without_lr(spec: dict) -> dict:
    """An optimizer setting with one learning rate for all (and no schedule): the time of a
    step does not depend on them."""
    return {**{k: v for k, v in spec.items() if k != "schedule"}, "lr": 0.01}


def in_shape(dataset: str) -> tuple[int, int, int]:
    from corruptlab.data.datasets import get_dataset

    return (1, 28, 28) if get_dataset(dataset).grey else (3, 32, 32)


def split_sizes(dataset: str) -> tuple[int, int, int]:
    """(train, validation, test) examples of a dataset's prepared split."""
    from corruptlab.data.datasets import get_dataset

    spec = get_dataset(dataset)
    n_train = TRAIN_SIZE[dataset]
    if f"{n_train:,} train" not in spec.doc:
        raise _common.BenchmarkError(f"{dataset}: the registry says {spec.doc!r}, not {n_train:,}")
    return n_train, spec.n_val, spec.n_test or TEST_SIZE


@functools.cache
def set_fractions(noise: str, transfer: str, n_classes: int) -> tuple[float, float]:
    """(whole training set, transfer set) per clean training example, for a noise spec and a
    transfer spec (JSON), from the project's own functions on class-balanced stand-in labels."""
    import numpy as np

    from corruptlab.data.noise import make_noisy_labels
    from corruptlab.data.transfer import transfer_mask

    labels = np.arange(STAND_IN) % n_classes
    noisy = make_noisy_labels(labels, n_classes, json.loads(noise), seed=0)
    full = len(noisy.indices) / STAND_IN
    spec = json.loads(transfer)
    if spec is None:
        return full, full
    keep = transfer_mask(labels[noisy.indices % STAND_IN], spec)
    return full, float(keep.sum()) / STAND_IN


def train_unit(run: dict) -> Unit:
    from corruptlab.train.methods import DEFAULT_METHOD, METHODS, method_of

    method = method_of(run)
    if method["name"] == DEFAULT_METHOD:
        setting = _setting(optimizer=_without_lr(run["optimizer"]))
        return Unit("step", run["model"], run["dataset"], run["batch_size"], setting)
    what = "generation" if METHODS.get(method["name"]).gradient_free else "step"
    return Unit(what, run["model"], run["dataset"], run["batch_size"], _setting(method=method))


def plan_study(study_name: str, study: dict, config: dict) -> list[tuple[dict, list[Item]]]:
    """Every run of a study with its work items."""
    from corruptlab.core.config import expand_runs
    from corruptlab.core.packs import seeds_per_job
    from corruptlab.data.datasets import get_dataset
    from corruptlab.eval.adaptation import eval_methods
    from corruptlab.jobs.train import training_length
    from corruptlab.studies import STUDIES
    from corruptlab.train.training import EVAL_BATCH

    kind = STUDIES.get(study["kind"])
    runs = expand_runs(study_name, study, config)
    teachers = {t.rsplit("/", 1)[0] for r in runs for t in r.get("inputs", {}).values()}
    vmap = study["train"].get("packing") == "vmap"
    vmap_share = 1 / seeds_per_job(study, len(runs)) if vmap else 1.0
    evaluation = study["evaluation"]
    methods = eval_methods(study)
    planned = []
    for run in runs:
        dataset, batch = run["dataset"], run["batch_size"]
        n_classes = get_dataset(dataset).n_classes
        share = len(run["in_classes"]) / n_classes if run.get("in_classes") else 1.0
        n_train, n_val, n_test = split_sizes(dataset)
        full, own = set_fractions(
            _setting(**run["noise"]), json.dumps(run.get("transfer")), n_classes
        )
        n_full, n_own = round(n_train * share * full), round(n_train * share * own)
        length = training_length(run, n_full, n_own)
        epochs = length["max_epochs"]
        forward = Unit("forward", run["model"], dataset, EVAL_BATCH)

        def fwd(n: float, sets: int = 1, forward: Unit = forward) -> Item:
            return Item("eval", forward, n * sets, math.ceil(n / EVAL_BATCH) * sets)

        unit = train_unit(run)
        items = [
            Item(
                "train",
                unit,
                epochs * n_own,
                epochs * math.ceil(n_own / batch),
                vmap_share if unit.what == "step" else 1.0,
            ),
            fwd(n_val * share, epochs + 1),  # validation at initialisation and every epoch
        ]
        tests = 1 + len(evaluation["corruptions"]) * len(evaluation["severities"])
        conditions = [n_test * share] * tests
        for condition in kind.eval_conditions(study):
            if condition.get("family") == "train":
                conditions.append(condition["n"])
            elif condition.get("family") == "bias_shift":  # the shift is chosen on validation
                conditions.append(n_test + n_val)
            else:
                conditions.append(n_test * share)
        for method in methods:
            if method["name"] == "source":
                items += [fwd(n) for n in conditions]
                continue
            bs = method["batch_size"]
            adapt = Unit(
                "adapt",
                run["model"],
                dataset,
                bs,
                _setting(**{k: v for k, v in method.items() if k not in ("lr", "stream")}),
            )
            steps = method.get("steps", 1)
            items += [Item("eval", adapt, n, math.ceil(n / bs) * steps) for n in conditions]
        if "ood" in kind.steps:
            for spec in kind.ood_sets(study):
                held_out = spec["family"] == "held_out"
                items.append(fwd(n_test * (1 - share) if held_out else n_test))
        if run["run_id"] in teachers:  # a teacher's logits on the training split
            items.append(fwd(n_train))
        if run.get("csr"):  # LASS: a forward and backward per step, batches of 512
            csr = run["csr"]
            n = len(csr["epochs"]) * csr["n"] * csr["steps"]
            items.append(Item("eval", unit, n, math.ceil(n / 512)))
        if run.get("probe"):  # gradients, then a forward per step size, on a few batches
            probe = run["probe"]
            n = probe["batches"] * batch * (1 + len(probe.get("step_sizes", [])))
            items.append(Item("eval", unit, n, n / batch))
        planned.append((run, items))
    return planned


# --------------------------------------------------------------------------- measuring


def _op_counter():
    """A dispatch mode that counts the aten operators (forward, backward, optimizer) run while
    it is active, in ``.n``."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class OpCount(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.n += 1
            return func(*args, **(kwargs or {}))

    return OpCount()


def _builder(unit: Unit):
    """(call, examples per call, batches per call, forward module, forward input): one call
    does the unit's work on random tensors of the dataset's shape."""
    import torch
    import torch.nn.functional as F

    from corruptlab.data.datasets import get_dataset
    from corruptlab.eval.adaptation import METHODS as ADAPTATIONS
    from corruptlab.train.method_loop import build_runner
    from corruptlab.train.models import build_model
    from corruptlab.train.optim import build_optimizer
    from corruptlab.train.training import predict

    shape, n_classes = in_shape(unit.dataset), get_dataset(unit.dataset).n_classes
    setting = json.loads(unit.setting)
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = build_model(unit.model, shape, n_classes)
    if unit.what in ("step", "generation"):
        x = torch.randn(unit.batch, *shape, generator=g)
        y = torch.randint(0, n_classes, (unit.batch,), generator=g)
        if "optimizer" in setting:
            net, optimizer = (
                model.train(),
                build_optimizer(model.parameters(), setting["optimizer"]),
            )
        else:
            runner = build_runner(model, setting["method"], seed=0)
            if unit.what == "generation":

                def generation():
                    with torch.no_grad():
                        return runner.method.step(x, y)

                return generation, unit.batch, 1, model, x
            net, optimizer = runner.model.train(), runner.optimizer

        def step():
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(net(x), y).backward()
            optimizer.step()

        return step, unit.batch, 1, net, x
    if unit.what == "forward":
        x = torch.randn(unit.batch, *shape, generator=g)
        return (lambda: predict(model, x)), unit.batch, 1, model.eval(), x
    if unit.what == "adapt":
        batches = max(1, math.ceil(ADAPT_IMAGES / unit.batch))
        images = torch.randn(batches * unit.batch, *shape, generator=g)
        fn = ADAPTATIONS.get(setting["name"])
        steps = setting.get("steps", 1)
        return (
            lambda: fn(model.eval(), images, batch_size=unit.batch, steps=steps),
            len(images),
            batches * steps,
            model.eval(),
            images[: unit.batch],
        )
    raise ValueError(f"unknown work {unit.what!r}")


def measure(unit: Unit, seconds: float, quick: bool, threads: int) -> dict:
    """Time one unit: seconds, FLOPs and aten operators per call, and forward FLOPs per
    example; examples forwarded per minibatch example (a generation's members)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    call, examples, batches, net, x = _builder(unit)
    with torch.no_grad():
        fwd = FlopCounterMode(display=False)
        with fwd:
            net(x)
    flops, ops = FlopCounterMode(display=False), _op_counter()
    with flops, ops:
        out = call()  # also the warm-up (oneDNN builds its kernels at the first call)
    forwards = out[1] / examples if unit.what == "generation" else 1.0
    if not quick:
        call()
    # One torch thread: its process CPU time is what the call costs a core of its own, however
    # busy the machine (a shared one stretches only the wall time). With more threads, wall
    # time (CPU time would count the threads' spin-waits), then the fastest call: a call whose
    # second thread was descheduled is slower by up to two orders of magnitude.
    clock = time.process_time if threads == 1 else time.perf_counter
    times, walls = [], []
    t0_cpu, t0_wall = clock(), time.perf_counter()
    while len(times) < (1 if quick else 3) or (
        clock() - t0_cpu < seconds and time.perf_counter() - t0_wall < 3 * seconds
    ):
        c0, w0 = clock(), time.perf_counter()
        call()
        times.append(clock() - c0)
        walls.append(time.perf_counter() - w0)
    per_call = statistics.median(times) if threads == 1 else min(times)
    return {
        "cpu_s_per_example": per_call / examples,
        "examples_per_s": examples / per_call,
        "stretched": f"{statistics.median(walls) / per_call:.2f}x",
        "calls": len(times),
        "fwd_flops_per_example": fwd.get_total_flops() / len(x),
        "flops_per_example": flops.get_total_flops() / examples,
        "ops_per_batch": ops.n / batches,
        "forwards_per_example": forwards,
    }


# --------------------------------------------------------------------------- the estimate


@dataclass
class Gpu:
    name: str
    tflops: float
    fraction: float
    us_per_op: float

    def parts(self, m: dict, item: Item) -> tuple[float, float]:
        """Seconds of an item's FLOPs and of its operators."""
        flop_s = item.examples * m["flops_per_example"] / (self.tflops * 1e12 * self.fraction)
        return flop_s, item.batches * item.op_share * m["ops_per_batch"] * self.us_per_op * 1e-6

    def seconds(self, m: dict, item: Item) -> float:
        return sum(self.parts(m, item))

    def describe(self) -> str:
        return (
            f"{self.name}: counted matmul/conv FLOPs at {self.fraction:.0%} of "
            f"{self.tflops:g} TFLOP/s, plus {self.us_per_op:g} us per aten operator, no overlap"
        )


def totals(items: list[Item], measured: dict, gpu: Gpu) -> dict:
    out = defaultdict(float)
    for item in items:
        m = measured[item.unit]
        out[f"{item.phase}_examples"] += item.examples * m["forwards_per_example"]
        out[f"{item.phase}_cpu"] += item.examples * m["machine_s_per_example"]
        flop_s, op_s = gpu.parts(m, item)
        out[f"{item.phase}_gpu"] += flop_s + op_s
        out["gpu_flops"] += flop_s
        out["gpu_ops"] += op_s
    return out


def group_rows(name: str, planned, measured: dict, gpu: Gpu, key) -> list[tuple]:
    """(study, group, runs, train examples, CPU h, GPU h) of the runs grouped by ``key(run)``."""
    groups = defaultdict(list)
    for run, items in planned:
        groups[key(run)].append(items)
    rows = []
    for group, runs in groups.items():
        t = totals([i for items in runs for i in items], measured, gpu)
        rows.append(
            (
                name,
                group,
                len(runs),
                round(t["train_examples"]),
                hours(t["train_cpu"] + t["eval_cpu"]),
                hours(t["train_gpu"] + t["eval_gpu"]),
            )
        )
    return rows


def sig(value: float) -> float | int:
    """Three significant digits (whole numbers from 100 up), for the CSV."""
    return round(value) if value >= 100 else float(f"{value:.3g}")


def hours(seconds: float) -> float:
    return seconds / 3600


def bound(planned: list[tuple[dict, list[Item]]]) -> str:
    """Whether the runs' epochs are an upper bound (early stopping) or what they train."""
    early = sum(
        1 for run, _ in planned if run["patience"] < run["max_epochs"] or "early_stopping" in run
    )
    if early == 0:
        return "every epoch trained (patience = max_epochs): exact but for diverged runs"
    return f"upper bound: {early:,} of {len(planned):,} runs may stop early"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.seconds = 0.0
    configs = args.configs or sorted(
        p for p in STUDY_CONFIGS.glob("*.yaml") if not p.stem.endswith("_quick")
    )
    import torch
    import yaml

    from corruptlab.core.config import validate_config

    torch.set_num_threads(args.threads)
    gpu = Gpu(args.gpu_name, args.gpu_tflops, args.gpu_fraction, args.gpu_us_per_op)
    _common.print_machine(
        "Full studies: training and evaluation work, CPU and GPU hours",
        extra=[
            ("CPU estimate", cpu_description(args)),
            ("timing per piece of work", "one call" if args.quick else f"{args.seconds:g} s"),
            ("GPU assumption", gpu.describe()),
        ],
    )
    plans = {}
    for path in configs:
        config = validate_config(yaml.safe_load(path.read_text()))
        plans[path] = {
            name: plan_study(name, study, config) for name, study in config["studies"].items()
        }
    units = sorted(
        {
            i.unit
            for studies in plans.values()
            for p in studies.values()
            for _, its in p
            for i in its
        },
        key=lambda u: (u.dataset, u.model, u.what, u.batch, u.setting),
    )
    measured, rows = {}, []
    t0 = time.perf_counter()
    for unit in units:
        m = measured[unit] = measure(unit, args.seconds, args.quick, args.threads)
        m["machine_s_per_example"] = m["cpu_s_per_example"] / args.jobs  # jobs side by side
        gpu_batch = gpu.seconds(m, Item("", unit, unit.batch, 1))
        rows.append(
            (
                unit.model,
                unit.dataset,
                unit.what,
                _label(unit),
                unit.batch,
                round(m["examples_per_s"]),
                m["calls"],
                m["stretched"],
                m["fwd_flops_per_example"] / 1e6,
                m["flops_per_example"] * unit.batch / 1e9,
                round(m["ops_per_batch"]),
                gpu_batch * 1e3,
                round(unit.batch / gpu_batch),
            )
        )
    _common.print_table(
        ["model", "dataset", "work", "setting", "batch", "CPU examples/s", "calls"]
        + ["wall / timed"]
        + ["forward MFLOP/example", "GFLOP/batch", "aten ops/batch", "GPU ms/batch"]
        + ["GPU examples/s"],
        rows,
        title=f"Measured work ({len(units)} pieces, {time.perf_counter() - t0:.0f} s): "
        f"examples/s of one job ({args.threads} torch thread(s); minibatch examples: a "
        "generation forwards each once per member); wall / timed: how much other processes "
        "stretched the calls' wall time",
    )
    summary = []
    for path, studies in plans.items():
        label = path.relative_to(_common.REPO) if path.is_relative_to(_common.REPO) else path
        paper = PAPERS.get(path.stem, "-")
        study_rows, model_rows, largest = [], [], []
        for name, planned in studies.items():
            t = totals([i for _, its in planned for i in its], measured, gpu)
            study_rows.append(
                (
                    name,
                    len(planned),
                    round(t["train_examples"]),
                    hours(t["train_cpu"]),
                    hours(t["train_gpu"]),
                    round(t["eval_examples"]),
                    hours(t["eval_cpu"]),
                    hours(t["eval_gpu"]),
                    hours(t["train_cpu"] + t["eval_cpu"]),
                    hours(t["train_gpu"] + t["eval_gpu"]),
                    hours(t["gpu_flops"]),
                    hours(t["gpu_ops"]),
                )
            )
            model_rows += group_rows(name, planned, measured, gpu, lambda r: r["model"])
            by_setting = group_rows(
                name, planned, measured, gpu, lambda r: f"{r['model']} {r['noise_slug']}"
            )
            if len(by_setting) > len(model_rows):
                largest += sorted(by_setting, key=lambda row: -row[-1])[: args.largest]
            summary.append(
                {
                    "paper": paper,
                    "config": str(label),
                    "study": name,
                    "adds": ADDS.get(name, "-"),
                    "runs": len(planned),
                    "train_examples": round(t["train_examples"]),
                    "cpu_hours": sig(hours(t["train_cpu"] + t["eval_cpu"])),
                    "gpu_hours": sig(hours(t["train_gpu"] + t["eval_gpu"])),
                    "assumption": f"{bound(planned)}; hours: training and evaluation; "
                    f"CPU: {cpu_description(args)}; GPU: {gpu.describe()}, one job at a time",
                }
            )
        _common.print_table(
            ["study", "runs", "train examples (upper bound)", "train CPU h", "train GPU h"]
            + ["eval examples", "eval CPU h", "eval GPU h", "CPU h", "GPU h"]
            + ["GPU h of FLOPs", "GPU h of operators"],
            study_rows,
            title=f"{label} ({paper})",
        )
        headers = ["study", "runs", "train examples", "CPU h", "GPU h"]
        _common.print_table(headers[:1] + ["model"] + headers[1:], model_rows)
        if largest:
            print(f"The {args.largest} largest model and noise settings of each study:\n")
            _common.print_table(headers[:1] + ["model and noise"] + headers[1:], largest)
    _common.print_table(
        ["paper", "config", "study", "runs", "train examples", "CPU h", "GPU h", "CPU / GPU"]
        + ["bound"],
        [
            (
                r["paper"],
                r["config"],
                r["study"],
                r["runs"],
                r["train_examples"],
                r["cpu_hours"],
                r["gpu_hours"],
                f"{r['cpu_hours'] / r['gpu_hours']:.1f}x",
                r["assumption"].split(";")[0],
            )
            for r in summary
        ],
        title="Summary",
    )
    print("Assumptions:\n")
    for note in notes(args, gpu):
        print(f"- {note}")
    print(flush=True)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        with open(args.write, "w", newline="") as f:
            writer = csv.DictWriter(f, CSV_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(summary)
        print(f"wrote {args.write}")
    return 0


def cpu_description(args: argparse.Namespace) -> str:
    threads = f"{args.threads} torch thread{'s' * (args.threads > 1)}"
    if args.jobs == 1:
        return f"one job at a time, {threads}, on {_common.cpu_model()}"
    return f"{args.jobs} jobs side by side, {threads} each, on {_common.cpu_model()}"


def notes(args: argparse.Namespace, gpu: Gpu) -> list[str]:
    """What the figures assume, printed under the tables."""
    return [
        "Training examples are examples forwarded in training (method_loop's count): max_epochs "
        "passes over each run's training set (a step budget's passes for distillation "
        "students), times a gradient-free method's members per minibatch. Where patience < "
        "max_epochs, early stopping may end a run sooner: the figure is an upper bound, and "
        "the hours scale with the epochs actually trained.",
        "Training sets: 55,000 (MNIST-like) or 45,000 (CIFAR-10) images, times (1 + alpha) "
        "for uniform and structured noise; transfer sets and in_classes take their share of "
        "class-balanced stand-in labels (MNIST's classes are 9.0-11.2% of its images).",
        "Evaluation (rough): a forward pass over the validation split at initialisation and "
        "after every epoch, the test set under every corruption x severity x adaptation "
        "setting (norm and tent timed on their own test batches), the OOD sets (as many "
        "images as the test set), a teacher's logits on the training split, the CSR's "
        "searches and the batch-norm probe (timed as training steps).",
        f"CPU hours: {cpu_description(args)}. Timed on random tensors; with one thread the "
        "process CPU time of a call (the median), which a busy machine does not stretch; "
        "with more, the fastest call's wall time. The study configs set threads: 2 (one "
        "two-thread job at a time on 2 cores), which is at most as fast as two one-thread "
        "jobs at these batch sizes (benchmarks/README.md: a second thread gains mlp1 6%, "
        "conv4 1.5x), and which assumes the two vCPUs are cores of their own (the VM reports "
        "one thread per core). Not counted: job start-up (2-5 s per job), data preparation, "
        "corrupted test sets, tables and figures.",
        f"GPU hours: {gpu.describe()}. The FLOPs are those FlopCounterMode counts (matmuls and "
        "convolutions: forward, backward and a gradient-free method's members); the "
        "per-operator cost stands for kernel launches and framework overhead, which bound "
        "small MLPs at batch 64-128, and for the memory-bound element-wise kernels. Operators "
        "are counted on this CPU, where the optimizers loop over parameters (on a GPU they "
        "use fewer, fused foreach kernels). A vmap pack of K seeds (memorization) pays the "
        "per-operator cost once per K. Several small jobs could share one GPU; the hours "
        "are one job at a time. The study tables split the GPU hours into their FLOP and "
        "operator parts: other assumptions scale each part (e.g. 5 us per operator halves the "
        "second).",
    ]


def _label(unit: Unit) -> str:
    """A short name of a unit's setting for the table."""
    setting = json.loads(unit.setting)
    if "optimizer" in setting:
        spec = setting["optimizer"]
        return spec["name"] + "".join(f" {k}={v:g}" for k, v in spec.items() if k != "name" and v)
    if "method" in setting:
        spec = setting["method"]
        extra = "k={k:g}".format(**spec) if "k" in spec else ""
        return f"{spec['name']} {extra}".strip()
    if setting:
        return setting["name"]
    return "predict"


if __name__ == "__main__":
    sys.exit(main())
