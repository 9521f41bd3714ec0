"""Job-level functions of the labels and train rules: read the rule's inputs, call the library,
write its outputs atomically. Callable without Snakemake (the tests do). The evaluate and
testset rules' job functions live in corruptlab.evaluation and corruptlab.testsets."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TextIO

from corruptlab.seeding import derive_seed

log = logging.getLogger("corruptlab")


def labels_seed(run_or_study: str, noise_slug: str, seed: int) -> int:
    """Label noise is a function of (study, noise spec, seed) only: shared by every model."""
    return derive_seed(run_or_study, "labels", noise_slug, seed)


def make_labels(
    data_path: str,
    spec: dict,
    study: str,
    seed: int,
    out_path: str,
    in_classes: list[int] | None = None,
) -> None:
    """Noisy labels of the training set (restricted to ``in_classes`` when given)."""
    from corruptlab.datasets import load_prepared
    from corruptlab.noise import make_noisy_labels, noise_slug, save_noisy_labels

    data = load_prepared(data_path, in_classes=in_classes)
    slug = noise_slug(spec)
    noisy = make_noisy_labels(
        data["train_labels"].numpy(), data["n_classes"], spec, labels_seed(study, slug, seed)
    )
    log.info(
        "%s seed %d: %d training examples (%d with noise-drawn labels) from %d images",
        slug,
        seed,
        len(noisy.indices),
        int(noisy.noisy.sum()),
        len(data["train_labels"]),
    )
    save_noisy_labels(noisy, out_path)


def train_job(
    run: dict,
    data_path: str,
    labels_path: str,
    out: dict[str, str],
    threads: int = 1,
    progress_file: TextIO | None = None,
) -> dict:
    """Train one run; writes ``out["model"]``, ``out["history"]`` and ``out["run"]`` (run.json).

    A checkpoint beside the outputs is written every epoch and resumed if the job is rerun after
    a kill; it is removed once the outputs exist.
    """
    import torch
    from tqdm import tqdm

    from corruptlab.datasets import load_prepared, normalization_stats
    from corruptlab.devices import configure_torch, resolve_device
    from corruptlab.io import torch_save, write_json, write_parquet
    from corruptlab.models import build_model
    from corruptlab.noise import load_noisy_labels
    from corruptlab.provenance import provenance
    from corruptlab.training import TrainConfig, TrainData, normalize, seeded_model, train

    t0 = time.perf_counter()
    device = resolve_device(run["device"])
    configure_torch(threads, device)
    data = load_prepared(
        data_path, expected_split_seed=run["split_seed"], in_classes=run.get("in_classes")
    )
    mean, std = normalization_stats(data["train_images"])
    noisy = load_noisy_labels(labels_path)
    images = normalize(data["train_images"], mean, std)
    if noisy.n_synthetic:  # randX: Gaussian inputs with the data's mean and std (N(0, 1) here)
        g = torch.Generator().manual_seed(
            labels_seed(run["study"], run["noise_slug"], run["seed"]) + 1
        )
        noise = torch.randn((noisy.n_synthetic, *images.shape[1:]), generator=g)
        images = torch.cat([images, noise])
    tdata = TrainData(
        images=images.to(device),
        indices=torch.from_numpy(noisy.indices).to(device),
        labels=torch.from_numpy(noisy.labels).to(device),
        val_images=normalize(data["val_images"], mean, std).to(device),
        val_labels=data["val_labels"].to(device),
    )
    in_shape = tuple(tdata.images.shape[1:])
    model = seeded_model(
        lambda: build_model(run["model"], in_shape, data["n_classes"]),
        derive_seed(run["study"], run["seed"], "init"),
    ).to(device)
    cfg = TrainConfig(
        optimizer=run["optimizer"],
        batch_size=run["batch_size"],
        max_epochs=run["max_epochs"],
        patience=run["patience"],
        seed=derive_seed(run["study"], run["seed"], "train"),
    )
    checkpoint = Path(out["model"]).with_name("checkpoint.pt")
    with tqdm(
        total=cfg.max_epochs * len(noisy.indices),
        desc=run["run_id"],
        unit="ex",
        unit_scale=True,
        mininterval=2.0,
        file=progress_file,
        dynamic_ncols=False,
        ncols=100,
    ) as bar:
        result = train(model, tdata, cfg, checkpoint=checkpoint, progress=bar)
    if result.resumed_from_epoch:
        log.info("resumed from the checkpoint of epoch %d", result.resumed_from_epoch)
    log.info(
        "status %s (stopped by %s), best epoch %d, validation accuracy %.4f",
        result.status,
        result.stopped_by,
        result.best_epoch,
        result.best_val_accuracy,
    )

    torch_save(
        {
            "state_dict": {k: v.cpu() for k, v in result.best_state.items()},
            "model": run["model"],
            "in_shape": list(in_shape),
            "n_classes": data["n_classes"],
            "in_classes": data.get("in_classes"),
            "mean": mean,
            "std": std,
            "run_id": run["run_id"],
        },
        out["model"],
    )
    history = [{"run_id": run["run_id"], **row} for row in result.history]
    write_parquet(history, out["history"])
    record = {
        "run": run,
        "status": result.status,
        "stopped_by": result.stopped_by,
        "best_epoch": result.best_epoch,
        "best_val_accuracy": result.best_val_accuracy,
        "epochs_trained": history[-1]["epoch"],
        "n_train_examples": len(noisy.indices),
        "train_seconds": sum(row["seconds"] for row in history),
        "job_seconds": time.perf_counter() - t0,
        "resumed_from_epoch": result.resumed_from_epoch,
        "dataset_hash": data["content_hash"],
        "provenance": provenance(device),
    }
    write_json(record, out["run"])
    checkpoint.unlink(missing_ok=True)
    return record
