"""Conv layout: a training step of conv4 and conv4_bn as registered (channels-last weights,
pooling before ReLU) against the same network in the layout it had before (NCHW, ReLU before
pooling), on one torch thread (a job's default).

Both variants compute the same function from the same initial weights; a step is forward,
cross-entropy and backward on a batch of 128 MNIST-sized inputs (what the trainer does per
step, less the optimizer's update, which is the same in both). The variants alternate, and the
median of the repeats is reported.

    uv run python benchmarks/conv_layout.py            # ~1 min
    uv run python benchmarks/conv_layout.py --quick    # seconds (a smoke test)
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys

import _common


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="conv4,conv4_bn")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=30, help="steps per timing")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (a smoke test)")
    return p.parse_args(argv)


def previous_layout(model):
    """The registered model with ReLU moved back before each pooling layer, in NCHW memory."""
    import torch
    from torch import nn

    layers = list(model.children())
    for i, layer in enumerate(list(layers)):
        if isinstance(layer, nn.MaxPool2d):
            layers[i], layers[i + 1] = layers[i + 1], layer
    return copy.deepcopy(nn.Sequential(*layers)).to(memory_format=torch.contiguous_format)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.steps, args.repeats, args.batch = 2, 1, 16
    import torch
    import torch.nn.functional as F

    from corruptlab.train.models import build_model

    torch.set_num_threads(1)
    _common.print_machine(
        "conv layout: channels-last + pool-then-ReLU vs NCHW + ReLU-then-pool",
        extra=[("torch threads used", "1"), ("batch", str(args.batch))],
    )
    x = torch.randn(args.batch, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 10, (args.batch,), generator=torch.Generator().manual_seed(1))
    rows = []
    for name in args.models.split(","):
        torch.manual_seed(0)
        now = build_model(name, (1, 28, 28), 10)
        before = previous_layout(now)
        with torch.no_grad():
            torch.testing.assert_close(now.eval()(x), before.eval()(x), rtol=1e-4, atol=1e-5)
        now.train(), before.train()

        def step(model):
            def run():
                for _ in range(args.steps):
                    model.zero_grad(set_to_none=True)
                    F.cross_entropy(model(x), y).backward()

            return run

        for model in (now, before):  # warm-up: oneDNN picks and caches its kernels
            step(model)()
        times = {"now": [], "before": []}
        for _ in range(args.repeats):
            for tag, model in (("before", before), ("now", now)):
                times[tag].append(_common.median_time(step(model), 1)[0] / args.steps)
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append(
            (
                name,
                f"{med['before'] * 1e3:.1f}",
                f"{med['now'] * 1e3:.1f}",
                f"{med['before'] / med['now']:.2f}x",
                _common.spread(times["now"]),
            )
        )
    _common.print_table(
        ["model", "NCHW, ReLU then pool (ms/step)", "as registered (ms/step)", "speed-up"]
        + ["spread"],
        rows,
        title="training step (forward + loss + backward), median of the repeats",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
