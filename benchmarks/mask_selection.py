"""Edge-popup's top-k selection (issue 25, item 5): a full stable argsort of each layer's scores
on every forward pass (before) against ``supermask.topk_mask``'s ``torch.kthvalue`` selection
(after), which gives the same mask bit for bit.

Two measurements, on the bundled mnist5k digits (3,500 training images), mlp_300_100 as the
default no_gd study trains it (batch 128, default method parameters, k = 0.5):

1. One mask selection per layer shape of mlp_300_100 (300x784, 100x300, 10x100): milliseconds
   per call, and that both give the same mask.
2. One training epoch of ``edge_popup`` and ``ticket_finder`` (``method_loop``'s runner, as a
   training job runs it, without the validation pass), before and after, in turns (before,
   after, before, after, ...), with the ratio per pair; and that both end with bit-identical
   scores.

    uv run python benchmarks/mask_selection.py            # 5 repeats: ~1 min
    uv run python benchmarks/mask_selection.py --quick    # a few batches (a smoke test)
    uv run python benchmarks/mask_selection.py --only argsort   # one variant's epochs alone
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import _common

METHODS = ("edge_popup", "ticket_finder")
LAYERS = ((300, 784), (100, 300), (10, 100))
VARIANTS = ("argsort", "kthvalue")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="pairs of epochs per method")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--only", choices=VARIANTS, help="time this variant's epochs alone")
    p.add_argument("--quick", action="store_true", help="4 batches an epoch, 2 repeats")
    return p.parse_args(argv)


def argsort_mask(scores, k: float):
    """The selection before issue 25: a stable ascending argsort, its first
    ``int((1 - k) * numel)`` entries dropped."""
    flat = scores.detach().flatten()
    drop = int((1.0 - k) * flat.numel())
    order = flat.argsort(stable=True)
    mask = flat.new_ones(flat.shape)
    mask[order[:drop]] = 0.0
    return mask.view_as(scores)


def use(variant: str) -> None:
    """Make edge-popup and TicketFinder select with ``variant``."""
    from corruptlab.train import supermask, ticket_finder

    selection = argsort_mask if variant == "argsort" else KTHVALUE
    supermask.topk_mask = selection
    ticket_finder.topk_mask = selection


def selection_table(repeats: int) -> list[list]:
    import torch

    rows = []
    g = torch.Generator().manual_seed(0)
    for shape in LAYERS:
        scores = torch.rand(shape, generator=g)
        if not torch.equal(argsort_mask(scores, 0.5), KTHVALUE(scores, 0.5)):
            raise _common.BenchmarkError(f"the two selections differ on a {shape} score tensor")
        times = {}
        for variant, fn in (("argsort", argsort_mask), ("kthvalue", KTHVALUE)):
            times[variant], _ = _common.median_time(
                lambda fn=fn, s=scores: fn(s, 0.5), 10 * repeats
            )
        rows.append(
            [
                f"{shape[0]}x{shape[1]}",
                1e3 * times["argsort"],
                1e3 * times["kthvalue"],
                f"{times['argsort'] / times['kthvalue']:.2f}x",
            ]
        )
    return rows


def mnist5k():
    """The training and validation digits as a training job holds them (normalised)."""
    import torch

    from corruptlab.data.datasets import normalization_stats, normalize, prepare
    from corruptlab.train.training import TrainData

    data = prepare("mnist5k", raw_dir=None, split_seed=0)
    mean, std = normalization_stats(data["train_images"])
    images = normalize(data["train_images"], mean, std)
    return TrainData(
        images=images,
        indices=torch.arange(len(images)),
        labels=data["train_labels"],
        val_images=normalize(data["val_images"], mean, std),
        val_labels=data["val_labels"],
    )


def epoch(method: str, data, quick: bool):
    """Seconds of one training epoch of ``method`` from seed 0, and its final trained tensors
    (the scores)."""
    from corruptlab.train.method_loop import Budget, MethodConfig, build_runner
    from corruptlab.train.models import build_model
    from corruptlab.train.training import seeded_model

    spec = {"name": method}
    cfg = MethodConfig(
        method=spec, batch_size=128, max_epochs=1, seed=0, max_examples=512 if quick else None
    )
    model = seeded_model(lambda: build_model("mlp_300_100", tuple(data.images.shape[1:]), 10), 0)
    runner = build_runner(model, spec, cfg.seed)
    t0 = time.perf_counter()
    runner.train_epoch(data, cfg, 1, Budget(cfg))
    seconds = time.perf_counter() - t0
    if method == "ticket_finder":
        state = [s["score"].clone() for s in runner.optimizer.state.values()]
    else:
        state = [p.detach().clone() for p in runner.model.parameters()]
    return seconds, state


def epoch_table(data, repeats: int, quick: bool, only: str | None) -> list[list]:
    import torch

    rows = []
    variants = (only,) if only else VARIANTS
    for method in METHODS:
        seconds: dict[str, list[float]] = {v: [] for v in variants}
        final = {}
        for _ in range(repeats):
            for variant in variants:
                use(variant)
                s, state = epoch(method, data, quick)
                seconds[variant].append(s)
                final[variant] = state
        use("kthvalue")
        if only:
            rows.append([method, only, statistics.median(seconds[only]), "-", "-", "-"])
            continue
        same = all(
            torch.equal(a, b) for a, b in zip(final["argsort"], final["kthvalue"], strict=True)
        )
        if not same:
            raise _common.BenchmarkError(f"{method}: the two selections trained other scores")
        ratios = [a / b for a, b in zip(seconds["argsort"], seconds["kthvalue"], strict=True)]
        rows.append(
            [
                method,
                statistics.median(seconds["argsort"]),
                statistics.median(seconds["kthvalue"]),
                f"{statistics.median(ratios):.2f}x",
                f"{min(ratios):.2f}x-{max(ratios):.2f}x",
                "yes",
            ]
        )
    return rows


def main(argv=None) -> int:
    import torch

    from corruptlab.train.supermask import topk_mask

    global KTHVALUE
    KTHVALUE = topk_mask
    args = parse_args(argv)
    repeats = 2 if args.quick else args.repeats
    _common.print_machine(
        "Edge-popup's top-k selection: argsort (before) vs kthvalue (after)",
        extra=[("torch threads (used)", str(args.threads))],
    )
    torch.set_num_threads(args.threads)
    if not args.only:
        _common.print_table(
            ["scores", "argsort ms", "kthvalue ms", "ratio"],
            selection_table(repeats),
            title="One mask selection at k = 0.5 (median of calls)",
        )
    data = mnist5k()
    batches = "4 batches" if args.quick else f"{len(data.indices):,} digits, batch 128"
    if args.only:
        headers = ["method", "variant", "epoch s (median)", "-", "-", "-"]
    else:
        headers = ["method", "argsort epoch s", "kthvalue epoch s", "ratio", "ratio range", "same"]
    _common.print_table(
        headers,
        epoch_table(data, repeats, args.quick, args.only),
        title=f"One epoch of mlp_300_100 ({batches}), median of {repeats} in turns",
    )
    return 0


KTHVALUE = None  # supermask.topk_mask, set in main (imported with torch)

if __name__ == "__main__":
    try:
        sys.exit(main())
    except _common.BenchmarkError as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        sys.exit(1)
