"""The arithmetic limit: how close corruptlab's trainer comes to what the machine can compute.

mlp1 (784 -> 256 -> 10): every matrix multiply one training step of a batch of 128 runs
(forward, and the backward products autograd computes: no gradient for the input images) is
timed alone on this machine, as the same torch call on the same shapes and layouts. Their summed
time is the step's GEMM-only time: the machine's limit at mlp1's shapes. The trainer's samples/s
times mlp1's FLOPs per sample (counted by ``torch.utils.flop_counter``) gives the fraction of that
limit it reaches. For context, a 1024^3 ``torch.mm`` and fc1's forward as a 1x1 convolution
(oneDNN instead of MKL's GEMM).

Loop overhead (conv4, and mlp1 for comparison): the trainer's time per batch against a bare
step (forward, loss, backward, corruptlab's optimizer step) repeated on one pre-made batch.
"trainer loop" is ``corruptlab.train.training.train`` with a one-image validation set (the epoch
loop: shuffling, index-slice batches, loss bookkeeping); "train()" adds what a job also pays,
validation on the 500 validation digits after every epoch.

    uv run python benchmarks/arithmetic_limit.py            # full sizes, a few minutes
    uv run python benchmarks/arithmetic_limit.py --profile  # also the profiler's top operators
    uv run python benchmarks/arithmetic_limit.py --quick    # seconds (a smoke test)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import _common

BATCH = 128
ALPHA = 5
TARGET_OVERHEAD = 0.10  # issue 6: conv4 loop overhead at most 10% over the bare step
OPTIMIZER = {"name": "adadelta", "lr": 1.0}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", default="1,0", help="torch threads to measure; 0 = default")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--gemm-seconds", type=float, default=0.3, help="time per GEMM measurement")
    p.add_argument("--mlp-batches", type=int, default=328, help="batches timed, mlp1")
    p.add_argument("--conv-batches", type=int, default=60, help="batches timed, conv4")
    p.add_argument("--profile", action="store_true", help="print torch.profiler's top ops")
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (a smoke test)")
    args = p.parse_args(argv)
    if args.quick:
        args.threads, args.repeats, args.gemm_seconds = "1", 1, 0.02
        args.mlp_batches, args.conv_batches = 8, 2
    return args


# --------------------------------------------------------------------------- GEMMs


def flops_per_batch(model, x, y) -> tuple[int, dict[str, int]]:
    """FLOPs of one forward + backward, total and per operator (torch's flop counter)."""
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    per_op = {str(k): int(v) for k, v in counter.get_flop_counts()["Global"].items()}
    return int(counter.get_total_flops()), per_op


def time_call(fn, seconds: float, repeats: int) -> float:
    """Median seconds per call of ``fn`` (blocks of calls lasting about ``seconds``)."""
    fn()
    t0 = time.perf_counter()
    n = 0
    while n < 3 or time.perf_counter() - t0 < seconds / 4:
        fn()
        n += 1
    per_call = (time.perf_counter() - t0) / n
    iters = max(3, int(seconds / per_call))

    def block():
        for _ in range(iters):
            fn()

    return _common.median_time(block, repeats)[0] / iters


def mlp1_gemms(model, x2d):
    """(name, m, k, n, call) of every matrix product of one mlp1 training step on ``x2d``,
    written as autograd runs them (addmm forward; grad input = grad @ W, grad weight =
    input^T @ grad; no product for the images' gradient)."""
    import torch

    fc1, fc2 = model[1], model[3]
    w1, b1, w2, b2 = fc1.weight.detach(), fc1.bias.detach(), fc2.weight.detach(), fc2.bias.detach()
    n, d_in, d_hid, d_out = x2d.shape[0], w1.shape[1], w1.shape[0], w2.shape[0]
    h = torch.relu(torch.addmm(b1, x2d, w1.t()))
    g_out = torch.randn(n, d_out)
    g_hid = torch.randn(n, d_hid)
    return [
        ("fc1 forward", n, d_in, d_hid, lambda: torch.addmm(b1, x2d, w1.t())),
        ("fc2 forward", n, d_hid, d_out, lambda: torch.addmm(b2, h, w2.t())),
        ("fc2 grad input", n, d_out, d_hid, lambda: g_out.mm(w2)),
        ("fc2 grad weight", d_hid, n, d_out, lambda: h.t().mm(g_out)),
        ("fc1 grad weight", d_in, n, d_hid, lambda: x2d.t().mm(g_hid)),
    ]


def gemm_table(args, threads: int) -> tuple[list, float, int]:
    """Rows of GEMM throughput; the GEMM-only time of one mlp1 step; mlp1's FLOPs per batch."""
    import torch
    import torch.nn.functional as F

    model = fresh_model("mlp1")
    x = torch.randn(BATCH, 1, 28, 28)
    y = torch.randint(0, 10, (BATCH,))
    total, per_op = flops_per_batch(model, x, y)
    gemms = mlp1_gemms(model, x.flatten(1))
    counted = sum(2 * m * k * n for _, m, k, n, _ in gemms)
    if counted != total:
        raise _common.BenchmarkError(
            f"mlp1's GEMMs add up to {counted} FLOPs, the flop counter says {total} ({per_op})"
        )
    rows, step_seconds = [], 0.0
    for name, m, k, n, call in gemms:
        seconds = time_call(call, args.gemm_seconds, args.repeats)
        step_seconds += seconds
        flops = 2 * m * k * n
        rows.append(
            [threads, name, f"{m}x{k} @ {k}x{n}", flops / 1e6, seconds * 1e6, flops / seconds / 1e9]
        )
    rows.append(
        [
            threads,
            "mlp1 step, GEMMs only",
            "sum of the above",
            total / 1e6,
            step_seconds * 1e6,
            total / step_seconds / 1e9,
        ]
    )
    big_a, big_b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    seconds = time_call(lambda: big_a.mm(big_b), args.gemm_seconds, args.repeats)
    rows.append(
        [
            threads,
            "square mm (context)",
            "1024x1024 @ 1024x1024",
            2 * 1024**3 / 1e6,
            seconds * 1e6,
            2 * 1024**3 / seconds / 1e9,
        ]
    )
    x4 = x.flatten(1)[:, :, None, None].contiguous()
    w4 = model[1].weight.detach()[:, :, None, None].contiguous()
    seconds = time_call(lambda: F.conv2d(x4, w4), args.gemm_seconds, args.repeats)
    flops = 2 * BATCH * 784 * 256
    rows.append(
        [
            threads,
            "fc1 forward as 1x1 conv (oneDNN)",
            "128x784 @ 784x256",
            flops / 1e6,
            seconds * 1e6,
            flops / seconds / 1e9,
        ]
    )
    return rows, step_seconds, total


# --------------------------------------------------------------------------- loops


def fresh_model(name: str, seed: int = 0):
    import torch

    from corruptlab.train.models import build_model

    torch.manual_seed(seed)
    return build_model(name, (1, 28, 28), 10)


class Setup:
    """mnist5k with alpha=5 uniform noise as corruptlab's train job builds it."""

    def __init__(self):
        import torch

        from corruptlab.data.datasets import normalization_stats, normalize, prepare
        from corruptlab.data.noise import make_noisy_labels

        data = prepare("mnist5k", split_seed=0)
        mean, std = normalization_stats(data["train_images"])
        noisy = make_noisy_labels(
            data["train_labels"].numpy(), 10, {"kind": "uniform", "alpha": ALPHA}, 1
        )
        self.images = normalize(data["train_images"], mean, std)
        self.indices = torch.from_numpy(noisy.indices)
        self.labels = torch.from_numpy(noisy.labels)
        self.val_images = normalize(data["val_images"], mean, std)
        self.val_labels = data["val_labels"]

    def train_data(self, n_batches: int, validation: bool):
        """(TrainData, epochs) of ``n_batches`` full batches: whole epochs over the noisy set
        while they fit, else a random subset of it for one epoch."""
        import torch

        from corruptlab.train.training import TrainData

        per_epoch = len(self.indices) // BATCH
        epochs = max(1, n_batches // per_epoch)
        batches = n_batches // epochs
        keep = torch.randperm(len(self.indices), generator=torch.Generator().manual_seed(3))
        keep = keep[: batches * BATCH]
        val_n = len(self.val_labels) if validation else 1
        data = TrainData(
            self.images,
            self.indices[keep],
            self.labels[keep],
            self.val_images[:val_n],
            self.val_labels[:val_n],
        )
        return data, epochs


def trainer_seconds_per_batch(setup: Setup, name: str, n_batches: int, validation: bool):
    from corruptlab.train.training import TrainConfig, train

    data, epochs = setup.train_data(n_batches, validation)
    cfg = TrainConfig(OPTIMIZER, BATCH, max_epochs=epochs, patience=epochs + 1, seed=0)
    model = fresh_model(name)
    t0 = time.perf_counter()
    train(model, data, cfg)
    seconds = time.perf_counter() - t0
    return seconds / (epochs * len(data.indices) // BATCH)


def bare_seconds_per_batch(setup: Setup, name: str, n_batches: int) -> float:
    """Forward, loss, backward and optimizer step on one pre-made batch, ``n_batches`` times."""
    import torch.nn.functional as F

    from corruptlab.train.optim import build_optimizer

    model = fresh_model(name)
    optimizer = build_optimizer(model.parameters(), OPTIMIZER)
    x = setup.images[setup.indices[:BATCH]]
    y = setup.labels[:BATCH]
    model.train()
    t0 = time.perf_counter()
    for _ in range(n_batches):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - t0) / n_batches


def loop_times(setup: Setup, name: str, n_batches: int, repeats: int) -> dict[str, float]:
    """Median seconds per batch of the bare step, the trainer loop and train(), alternating."""
    trainer_seconds_per_batch(setup, name, 2, validation=True)  # warm-up
    bare_seconds_per_batch(setup, name, 4)
    times = {"bare": [], "loop": [], "train": []}
    for _ in range(repeats):
        times["bare"].append(bare_seconds_per_batch(setup, name, n_batches))
        times["loop"].append(trainer_seconds_per_batch(setup, name, n_batches, False))
        times["train"].append(trainer_seconds_per_batch(setup, name, n_batches, True))
    return {k: statistics.median(v) for k, v in times.items()}


def profile(setup: Setup, name: str, n_batches: int) -> None:
    """torch.profiler's operators by self CPU time: the bare step, then the trainer loop."""
    import torch.profiler

    for label, fn in [
        ("bare step", lambda: bare_seconds_per_batch(setup, name, n_batches)),
        ("trainer loop", lambda: trainer_seconds_per_batch(setup, name, n_batches, False)),
    ]:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            fn()
        print(f"\n## Profile: {name}, {label}, {n_batches} batches\n")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    default_threads = torch.get_num_threads()
    thread_counts = [int(t) or default_threads for t in args.threads.split(",")]
    _common.print_machine(
        "Arithmetic limit: GEMM throughput at mlp1's shapes, loop overhead over the bare step",
        extra=[
            (
                "setting",
                f"batch {BATCH}, Adadelta lr 1.0, mnist5k alpha={ALPHA}, "
                f"{args.repeats} repeats (median)",
            ),
        ],
    )
    setup = Setup()
    gemm_rows, limit_rows, loop_rows, targets = [], [], [], []
    for threads in thread_counts:
        torch.set_num_threads(threads)
        rows, gemm_step, flops = gemm_table(args, threads)
        gemm_rows += rows
        loops = {
            "mlp1": loop_times(setup, "mlp1", args.mlp_batches, args.repeats),
            "conv4": loop_times(setup, "conv4", args.conv_batches, args.repeats),
        }
        for name, t in loops.items():
            loop_rows.append(
                [
                    threads,
                    name,
                    t["bare"] * 1e3,
                    t["loop"] * 1e3,
                    f"{(t['loop'] / t['bare'] - 1) * 100:+.1f}%",
                    t["train"] * 1e3,
                    f"{(t['train'] / t['bare'] - 1) * 100:+.1f}%",
                    BATCH / t["train"],
                ]
            )
        mlp = loops["mlp1"]
        for label, seconds in [
            ("GEMMs alone (the limit)", gemm_step),
            ("bare step", mlp["bare"]),
            ("trainer loop", mlp["loop"]),
            ("train()", mlp["train"]),
        ]:
            limit_rows.append(
                [
                    threads,
                    label,
                    BATCH / seconds,
                    flops / seconds / 1e9,
                    f"{gemm_step / seconds * 100:.0f}%",
                ]
            )
        overhead = loops["conv4"]["loop"] / loops["conv4"]["bare"] - 1
        targets.append(
            [
                f"conv4 loop overhead, {threads} thread(s)",
                f"<= {TARGET_OVERHEAD * 100:.0f}%",
                f"{overhead * 100:+.1f}%",
                "met"
                if overhead <= TARGET_OVERHEAD
                else f"missed by {(overhead - TARGET_OVERHEAD) * 100:.1f} points",
            ]
        )
        print(f"  measured {threads} thread(s)", flush=True)
        if args.profile:
            profile(setup, "mlp1", args.mlp_batches)
            profile(setup, "conv4", args.conv_batches)

    _common.print_table(
        ["threads", "product", "shape", "MFLOP", "us per call", "GFLOP/s"],
        gemm_rows,
        title="Matrix products of one mlp1 training step (batch 128), timed alone",
    )
    _common.print_table(
        ["threads", "mlp1 step", "samples/s", "GFLOP/s", "of the GEMM limit"],
        limit_rows,
        title=f"mlp1: the trainer against the GEMM limit ({flops / BATCH / 1e6:.3f} MFLOP "
        "per sample, forward + backward)",
    )
    _common.print_table(
        [
            "threads",
            "model",
            "bare ms/batch",
            "loop ms/batch",
            "loop overhead",
            "train() ms/batch",
            "train() overhead",
            "train() samples/s",
        ],
        loop_rows,
        title="Loop overhead: time per batch over a bare step on a pre-made batch",
    )
    _common.print_table(["target", "wanted", "measured", "verdict"], targets, "Target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
