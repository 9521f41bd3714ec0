"""Job-level functions of the labels and train rules: read the rule's inputs, call the library,
write its outputs atomically. Callable without Snakemake (the tests do). The evaluate and
testset rules' job functions live in corruptlab.evaluation and corruptlab.testsets."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, TextIO

from corruptlab.seeding import derive_seed

log = logging.getLogger("corruptlab")
# the outputs of a training job, per run (keys of train_job's ``out``)
PACK_FILES = ("model", "history", "run")


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
    from corruptlab.devices import configure_torch, resolve_device
    from corruptlab.training import train

    t0 = time.perf_counter()
    device = resolve_device(run["device"])
    configure_torch(threads, device)
    job = _RunInputs(run, data_path, labels_path, device)
    checkpoint = Path(out["model"]).with_name("checkpoint.pt")
    on_epoch = csr_callback(run, job.data.val_images, job.data.val_labels, job.shared["std"])
    with _progress(job.cfg.max_epochs * job.n_train, run["run_id"], progress_file) as bar:
        result = train(
            job.model(), job.data, job.cfg, checkpoint=checkpoint, progress=bar, on_epoch=on_epoch
        )
    record = job.write(result, out, device, job_seconds=time.perf_counter() - t0)
    checkpoint.unlink(missing_ok=True)
    return record


def train_pack_job(
    runs: list[dict],
    data_path: str,
    labels_paths: list[str],
    outs: list[dict[str, str]],
    threads: int = 1,
    progress_file: TextIO | None = None,
    packing: str = "sequential",
) -> list[dict]:
    """Train several seeds of one configuration in one job (``seeds_per_job``); writes for each
    run the same files as ``train_job``. Each run.json records the pack's seeds (``packed_with``),
    the ``packing`` and its share of the job's time.

    ``packing``: "sequential" trains the runs one after another, each exactly as ``train_job``
    would (bit-identical results; each run's checkpoint is resumed after a kill, those of
    finished runs included, and removed once every run's outputs exist); "vmap" trains them
    together (``packing.train_packed``) with one checkpoint for the pack.
    """
    from corruptlab.devices import configure_torch, resolve_device
    from corruptlab.training import train

    if packing not in ("sequential", "vmap"):
        raise ValueError(f"packing {packing!r}; accepted: sequential, vmap")
    t0 = time.perf_counter()
    device = resolve_device(runs[0]["device"])
    configure_torch(threads, device)
    shared: dict = {}
    jobs = [
        _RunInputs(run, data_path, labels, device, shared)
        for run, labels in zip(runs, labels_paths, strict=True)
    ]
    seeds = [run["seed"] for run in runs]
    total = sum(job.cfg.max_epochs * job.n_train for job in jobs)
    name = runs[0]["run_id"].rsplit("/", 1)[0] + f"/{packing}-seeds{seeds[0]}-{seeds[-1]}"
    callbacks = [
        csr_callback(job.run, job.data.val_images, job.data.val_labels, shared["std"])
        for job in jobs
    ]
    with _progress(total, name, progress_file) as bar:
        if packing == "sequential":
            checkpoints = [Path(out["model"]).with_name("checkpoint.pt") for out in outs]
            results = []
            for job, callback, checkpoint in zip(jobs, callbacks, checkpoints, strict=True):
                results.append(
                    train(job.model(), job.data, job.cfg, checkpoint, bar, on_epoch=callback)
                )
                epochs = results[-1].history[-1]["epoch"]
                bar.total -= (job.cfg.max_epochs - epochs) * job.n_train  # if it stopped early
        else:
            from corruptlab.packing import train_packed

            checkpoints = [
                Path(outs[0]["model"]).with_name(f"pack-checkpoint-seeds{seeds[0]}-{seeds[-1]}.pt")
            ]
            on_epoch = None
            if any(callbacks):

                def on_epoch(epoch, model, member):
                    return callbacks[member](epoch, model) if callbacks[member] else {}

            results = train_packed(
                [job.model() for job in jobs],
                [job.data for job in jobs],
                [job.cfg for job in jobs],
                checkpoint=checkpoints[0],
                progress=bar,
                on_epoch=on_epoch,
            )
    share = (time.perf_counter() - t0) / len(jobs)
    records = [
        job.write(result, out, device, job_seconds=share, packed_with=seeds, packing=packing)
        for job, result, out in zip(jobs, results, outs, strict=True)
    ]
    for checkpoint in checkpoints:
        checkpoint.unlink(missing_ok=True)
    return records


def _progress(total: int, desc: str, progress_file: TextIO | None):
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="ex",
        unit_scale=True,
        mininterval=2.0,
        file=progress_file,
        dynamic_ncols=False,
        ncols=100,
    )


def synthetic_inputs(run: dict, noisy, shape) -> Any:
    """randX's noise images of a run (normalised input space: N(0, 1), i.e. the data's mean and
    standard deviation), drawn from the run's data seed (``data_seed``, else its seed)."""
    import torch

    seed = run.get("data_seed", run["seed"])
    g = torch.Generator().manual_seed(labels_seed(run["study"], run["noise_slug"], seed) + 1)
    return torch.randn((noisy.n_synthetic, *shape), generator=g)


def training_examples(run: dict, data: dict, labels_path: str, mean: float, std: float, n: int):
    """``n`` examples of a run's training set as it was trained on, the same in every seed
    (``memorization.example_subset`` of the run's data seed): (positions in the training set
    [n], normalised images [n, C, H, W], labels [n]); randX's noise images and randY's labels
    included."""
    import torch

    from corruptlab.memorization import example_subset
    from corruptlab.noise import load_noisy_labels
    from corruptlab.training import normalize

    noisy = load_noisy_labels(labels_path)
    positions = example_subset(len(noisy.indices), n, run.get("data_seed", run["seed"]))
    images = normalize(data["train_images"], mean, std)
    if noisy.n_synthetic:
        images = torch.cat([images, synthetic_inputs(run, noisy, images.shape[1:])])
    idx = torch.from_numpy(noisy.indices[positions])
    return positions, images.index_select(0, idx), torch.from_numpy(noisy.labels[positions])


def csr_callback(run: dict, val_images, val_labels, std: float):
    """``on_epoch`` measuring the critical sample ratio of a run at its ``csr`` epochs (history
    column ``csr``) on ``csr.n`` validation images: a class-stratified subset drawn with the
    run's data seed, the same points in every seed and epoch (``csr_examples``); None for runs
    without ``csr``."""
    spec = run.get("csr")
    if not spec:
        return None
    from corruptlab.csr import critical_sample_ratio, pixel_scale_to_input

    images = val_images.index_select(0, csr_examples(run, val_labels).to(val_images.device))
    scale = {k: pixel_scale_to_input(spec[k], std) for k in ("radius", "alpha", "beta")}

    def measure(epoch: int, model) -> dict:
        if epoch not in spec["epochs"]:
            return {}
        seed = derive_seed(run["study"], run["seed"], "csr", epoch)
        ratio = critical_sample_ratio(
            model, images, scale["radius"], scale["alpha"], scale["beta"], spec["steps"], seed
        )
        log.info("%s epoch %d: critical sample ratio %.4f", run["run_id"], epoch, ratio)
        return {"csr": float(ratio)}

    return measure


def csr_examples(run: dict, val_labels):
    """The positions (int64 tensor, sorted) of the validation examples a run's critical sample
    ratio is measured on: ``csr.n`` of them, class-stratified, drawn from the study and the
    run's data seed."""
    import torch

    from corruptlab.datasets import stratified_subset

    seed = derive_seed(run["study"], "csr_examples", run.get("data_seed", run["seed"]))
    labels = val_labels.cpu().numpy()
    return torch.from_numpy(stratified_subset(labels, run["csr"]["n"], seed))


class _RunInputs:
    """One run's training inputs on the device (data, labels, config, initial model), and the
    writing of its outputs. ``shared`` lets the runs of a pack share one copy of the dataset."""

    def __init__(self, run: dict, data_path: str, labels_path: str, device, shared=None):
        import torch

        from corruptlab.datasets import load_prepared, normalization_stats
        from corruptlab.noise import load_noisy_labels
        from corruptlab.training import TrainConfig, TrainData, normalize

        shared = {} if shared is None else shared
        if "data" not in shared:
            data = load_prepared(
                data_path, expected_split_seed=run["split_seed"], in_classes=run.get("in_classes")
            )
            mean, std = normalization_stats(data["train_images"])
            shared.update(
                data=data,
                mean=mean,
                std=std,
                images=normalize(data["train_images"], mean, std).to(device),
                val_images=normalize(data["val_images"], mean, std).to(device),
                val_labels=data["val_labels"].to(device),
            )
        self.run, self.shared = run, shared
        data, images = shared["data"], shared["images"]
        noisy = load_noisy_labels(labels_path)
        if noisy.n_synthetic:  # randX: Gaussian inputs with the data's mean and std (N(0, 1) here)
            images = torch.cat([images, synthetic_inputs(run, noisy, images.shape[1:]).to(device)])
        self.n_train = len(noisy.indices)
        self.data = TrainData(
            images=images,
            indices=torch.from_numpy(noisy.indices).to(device),
            labels=torch.from_numpy(noisy.labels).to(device),
            val_images=shared["val_images"],
            val_labels=shared["val_labels"],
        )
        self.in_shape = tuple(images.shape[1:])
        self.cfg = TrainConfig(
            optimizer=run["optimizer"],
            batch_size=run["batch_size"],
            max_epochs=run["max_epochs"],
            patience=run["patience"],
            seed=derive_seed(run["study"], run["seed"], "train"),
            restore_best=run.get("restore_best", True),
        )

    def model(self):
        """The run's initial model (weights drawn from its seed), on the data's device."""
        from corruptlab.models import build_model
        from corruptlab.training import seeded_model

        run, n_classes = self.run, self.shared["data"]["n_classes"]
        return seeded_model(
            lambda: build_model(run["model"], self.in_shape, n_classes),
            derive_seed(run["study"], run["seed"], "init"),
        ).to(self.data.images.device)

    def write(self, result, out: dict[str, str], device, job_seconds: float, **extra) -> dict:
        from corruptlab.io import torch_save, write_json, write_parquet
        from corruptlab.provenance import provenance

        run, data = self.run, self.shared["data"]
        if result.resumed_from_epoch:
            log.info(
                "%s resumed from the checkpoint of epoch %d",
                run["run_id"],
                result.resumed_from_epoch,
            )
        log.info(
            "%s: status %s (stopped by %s), best epoch %d, validation accuracy %.4f",
            run["run_id"],
            result.status,
            result.stopped_by,
            result.best_epoch,
            result.best_val_accuracy,
        )
        torch_save(
            {
                "state_dict": {k: v.cpu() for k, v in result.best_state.items()},
                "model": run["model"],
                "in_shape": list(self.in_shape),
                "n_classes": data["n_classes"],
                "in_classes": data.get("in_classes"),
                "mean": self.shared["mean"],
                "std": self.shared["std"],
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
            "n_train_examples": self.n_train,
            "train_seconds": sum(row["seconds"] for row in history),
            "job_seconds": job_seconds,
            "resumed_from_epoch": result.resumed_from_epoch,
            "dataset_hash": data["content_hash"],
            "provenance": provenance(device),
            **extra,
        }
        write_json(record, out["run"])
        return record
