"""Training throughput: corruptlab's trainer against the loop the seed blog posts train with.

Both train the same model (``corruptlab.train.models.build_model``) on the same data (the 3,500
training digits of ``mnist5k``, split by ``corruptlab.data.datasets.prepare``) with uniform label
noise (alpha noisy copies per clean example), Adadelta with lr 1.0 and batch 128.

* trainer: ``corruptlab.train.training.train`` on ``TrainData`` built as
  ``jobs.train.train_job`` builds it (one normalised image tensor, noisy labels as index arrays
  from ``corruptlab.data.noise``); the time includes what ``train`` does besides stepping
  (validation on the 500 validation digits after every epoch, copies of the best weights).
* reference: a per-item ``Dataset`` that normalises one uint8 image per ``__getitem__``, wrapped
  by a label-noise ``Dataset`` that appends alpha copies of every example with uniform random
  labels, a shuffling ``DataLoader`` (batch 128, main process), ``torch.optim.Adadelta(lr=1.0)``
  and the plain zero_grad / forward / backward / step loop.
* PIL reference (context; ``--no-pil`` skips it): the same loop over items served the way
  torchvision's MNIST serves them, a PIL image per item through ``transforms.ToTensor()`` and
  ``transforms.Normalize``. The target is measured against the tensor reference above.

Each measurement trains a fixed number of samples after a warm-up: whole epochs over the
alpha-expanded set when it is smaller than that number, else that many samples of one epoch
(a random subset for the trainer, the first batches of a shuffled epoch for the reference).
Trainer and reference alternate within each repeat; the table gives medians.

    uv run python benchmarks/trainer_throughput.py            # full sizes, a few minutes
    uv run python benchmarks/trainer_throughput.py --quick    # seconds (a smoke test)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import _common

TARGET_RATIO = 5.0  # issue 6: trainer >= 5x the reference on mlp1 at alpha 5
BATCH = 128
LR = 1.0


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="mlp1,conv4", help="comma-separated model names")
    p.add_argument("--alphas", default="0,5", help="comma-separated noisy copies per example")
    p.add_argument("--threads", default="1,0", help="torch threads to measure; 0 = default")
    p.add_argument("--mlp-samples", type=int, default=42_000, help="samples timed, MLPs")
    p.add_argument("--conv-samples", type=int, default=7_680, help="samples timed, ConvNets")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers of the reference")
    p.add_argument(
        "--no-pil",
        dest="pil",
        action="store_false",
        help="skip the second reference (PIL images + torchvision transforms per item)",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (a smoke test)")
    args = p.parse_args(argv)
    if args.quick:
        args.threads, args.mlp_samples, args.conv_samples, args.repeats = "1", 1024, 256, 1
    return args


# --------------------------------------------------------------------------- data


def load_digits():
    """mnist5k as the prepare rule makes it, and the normalisation the train rule uses."""
    from corruptlab.data.datasets import normalization_stats, prepare

    data = prepare("mnist5k", split_seed=0)
    mean, std = normalization_stats(data["train_images"])
    return data, mean, std


def make_reference_datasets():
    """The seed posts' Dataset classes (defined here so torch is imported lazily)."""
    import torch
    from torch.utils.data import Dataset

    class Digits(Dataset):
        """One normalised image tensor [1, 28, 28] and its label per item."""

        def __init__(self, images_u8, labels, mean: float, std: float):
            self.images, self.labels = images_u8, labels
            self.mean, self.std = mean, std

        def __len__(self) -> int:
            return len(self.labels)

        def __getitem__(self, i):
            x = self.images[i].float().div(255.0).sub(self.mean).div(self.std).unsqueeze(0)
            return x, int(self.labels[i])

    class DigitsPIL(Dataset):
        """As torchvision's MNIST serves them: a PIL image per item, then ToTensor and
        Normalize (the seed posts' ``transforms.Compose``)."""

        def __init__(self, images_u8, labels, mean: float, std: float):
            from torchvision import transforms

            self.images, self.labels = images_u8.numpy(), labels.tolist()
            self.transform = transforms.Compose(
                [transforms.ToTensor(), transforms.Normalize((mean,), (std,))]
            )

        def __len__(self) -> int:
            return len(self.labels)

        def __getitem__(self, i):
            from PIL import Image

            return self.transform(Image.fromarray(self.images[i])), self.labels[i]

    class UniformLabelNoise(Dataset):
        """``base`` followed by ``alpha`` copies of it whose labels are uniformly random."""

        def __init__(self, base, alpha: int, n_classes: int, seed: int):
            self.base, self.n = base, len(base)
            g = torch.Generator().manual_seed(seed)
            self.noisy_labels = torch.randint(0, n_classes, (alpha * self.n,), generator=g)

        def __len__(self) -> int:
            return self.n + len(self.noisy_labels)

        def __getitem__(self, i):
            if i < self.n:
                return self.base[i]
            x, _ = self.base[(i - self.n) % self.n]
            return x, int(self.noisy_labels[i - self.n])

    return Digits, DigitsPIL, UniformLabelNoise


def plan(n_examples: int, n_samples: int) -> tuple[int, int]:
    """(epochs, samples per epoch) for timing about ``n_samples`` of an ``n_examples`` set."""
    if n_examples >= n_samples:
        return 1, n_samples
    return max(1, round(n_samples / n_examples)), n_examples


# --------------------------------------------------------------------------- the two loops


class Trainer:
    """corruptlab's trainer on one (alpha, samples) setting; ``run(model)`` trains once."""

    def __init__(self, data, mean, std, alpha: int, n_samples: int, seed: int = 0):
        import torch

        from corruptlab.data.datasets import normalize
        from corruptlab.data.noise import make_noisy_labels
        from corruptlab.train.training import TrainConfig, TrainData

        noisy = make_noisy_labels(
            data["train_labels"].numpy(), data["n_classes"], {"kind": "uniform", "alpha": alpha}, 1
        )
        indices = torch.from_numpy(noisy.indices)
        labels = torch.from_numpy(noisy.labels)
        self.epochs, per_epoch = plan(len(indices), n_samples)
        if per_epoch < len(indices):  # a random subset of the noisy set, one epoch
            keep = torch.randperm(len(indices), generator=torch.Generator().manual_seed(2))
            indices, labels = indices[keep[:per_epoch]], labels[keep[:per_epoch]]
        self.samples = self.epochs * per_epoch
        self.data = TrainData(
            images=normalize(data["train_images"], mean, std),
            indices=indices,
            labels=labels,
            val_images=normalize(data["val_images"], mean, std),
            val_labels=data["val_labels"],
        )
        self.cfg = TrainConfig(
            optimizer={"name": "adadelta", "lr": LR},
            batch_size=BATCH,
            max_epochs=self.epochs,
            patience=self.epochs + 1,  # never stops early: every epoch is trained
            seed=seed,
        )

    def run(self, model) -> None:
        from corruptlab.train.training import train

        result = train(model, self.data, self.cfg)
        trained = len(result.history) - 1
        if trained != self.epochs:
            raise _common.BenchmarkError(f"trainer ran {trained} epochs, not {self.epochs}")


class Reference:
    """The seed posts' loop on one (alpha, samples) setting; ``run(model)`` trains once."""

    def __init__(
        self, data, mean, std, alpha: int, n_samples: int, workers: int, pil: bool = False
    ):
        Digits, DigitsPIL, UniformLabelNoise = make_reference_datasets()
        base = (DigitsPIL if pil else Digits)(data["train_images"], data["train_labels"], mean, std)
        self.dataset = UniformLabelNoise(base, alpha, data["n_classes"], seed=1)
        self.epochs, per_epoch = plan(len(self.dataset), n_samples)
        self.samples = self.epochs * per_epoch
        self.workers, self.seed = workers, 0

    def run(self, model) -> None:
        import torch
        import torch.nn.functional as F
        from torch.utils.data import DataLoader

        loader = DataLoader(
            self.dataset,
            batch_size=BATCH,
            shuffle=True,
            num_workers=self.workers,
            generator=torch.Generator().manual_seed(self.seed),
        )
        optimizer = torch.optim.Adadelta(model.parameters(), lr=LR)
        model.train()
        seen = 0
        for _ in range(self.epochs):
            for x, y in loader:
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
                seen += len(y)
                if seen >= self.samples:
                    break
        if seen != self.samples:
            raise _common.BenchmarkError(f"reference trained {seen} samples, not {self.samples}")


def fresh_model(name: str, seed: int = 0):
    import torch

    from corruptlab.train.models import build_model

    torch.manual_seed(seed)
    return build_model(name, (1, 28, 28), 10)


def measure(loop, model_name: str, results: list[float]) -> None:
    """One timed training of a fresh model; samples/s appended to ``results``."""
    model = fresh_model(model_name)
    t0 = time.perf_counter()
    loop.run(model)
    results.append(loop.samples / (time.perf_counter() - t0))


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    default_threads = torch.get_num_threads()
    thread_counts = [int(t) or default_threads for t in args.threads.split(",")]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    alphas = [int(a) for a in args.alphas.split(",")]
    from corruptlab.train.models import MODELS

    for name in models:
        MODELS.get(name)  # an unknown name fails here, naming the accepted ones
    _common.print_machine(
        "Trainer throughput: corruptlab's trainer vs the seed posts' DataLoader loop",
        extra=[
            ("data", "mnist5k: 3,500 training digits (+ alpha noisy copies each)"),
            (
                "setting",
                f"Adadelta lr {LR}, batch {BATCH}, reference DataLoader workers "
                f"{args.workers}, {args.repeats} repeats (median)",
            ),
        ],
    )
    data, mean, std = load_digits()

    rows, ratios = [], {}
    for threads in thread_counts:
        torch.set_num_threads(threads)
        for name in models:
            n_samples = args.conv_samples if name.startswith(("conv", "net")) else args.mlp_samples
            for alpha in alphas:
                loops = {
                    "trainer": Trainer(data, mean, std, alpha, n_samples),
                    "reference": Reference(data, mean, std, alpha, n_samples, args.workers),
                }
                if args.pil:
                    loops["pil"] = Reference(data, mean, std, alpha, n_samples, args.workers, True)
                if len({loop.samples for loop in loops.values()}) != 1:
                    raise _common.BenchmarkError("the loops would time different sizes")
                sps = {key: [] for key in loops}
                for key in loops:  # warm-up: kernels, allocator, lazy imports of a first step
                    warm = Trainer if key == "trainer" else Reference
                    extra = () if key == "trainer" else (args.workers, key == "pil")
                    warm(data, mean, std, alpha, 2 * BATCH, *extra).run(fresh_model(name))
                for _ in range(args.repeats):  # the loops take turns
                    for key, loop in loops.items():
                        measure(loop, name, sps[key])
                med = {key: statistics.median(v) for key, v in sps.items()}
                ratios[name, alpha, threads] = med["trainer"] / med["reference"]
                trainer = loops["trainer"]
                row = [
                    name,
                    alpha,
                    threads,
                    f"{trainer.epochs} x {trainer.samples // trainer.epochs:,}",
                    med["trainer"],
                    med["reference"],
                    f"{med['trainer'] / med['reference']:.2f}x",
                ]
                if args.pil:
                    row += [med["pil"], f"{med['trainer'] / med['pil']:.2f}x"]
                row.append(" / ".join(_common.spread(v) for v in sps.values()))
                rows.append(row)
                print(f"  measured {name} alpha={alpha} threads={threads}", flush=True)

    _common.print_table(
        [
            "model",
            "alpha",
            "threads",
            "epochs x samples",
            "trainer samples/s",
            "reference samples/s",
            "ratio",
            *(["PIL reference samples/s", "ratio to PIL"] if args.pil else []),
            "spread (" + " / ".join(["trainer", "reference", *(["PIL"] if args.pil else [])]) + ")",
        ],
        rows,
        title="Samples per second (median; spread = min/max relative to the median)",
    )
    target_rows = [
        [
            f"mlp1 alpha=5, {threads} thread(s)",
            f">= {TARGET_RATIO:.0f}x",
            f"{ratio:.2f}x",
            "met" if ratio >= TARGET_RATIO else f"missed by {TARGET_RATIO / ratio:.2f}x",
        ]
        for (name, alpha, threads), ratio in ratios.items()
        if name == "mlp1" and alpha == 5
    ]
    if target_rows:
        _common.print_table(["target", "wanted", "measured", "verdict"], target_rows, "Target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
