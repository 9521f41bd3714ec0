"""The train rule's job: read a pack of runs' inputs (a single run is a pack of one), train them
and write each run's outputs atomically. Callable without Snakemake (the tests do)."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import TextIO

from corruptlab.core.registry import Registry
from corruptlab.core.runs import FULL_SET_STEPS
from corruptlab.core.seeding import derive_seed

log = logging.getLogger("corruptlab")
# the outputs of a training job, per run (keys of each of train_job's ``outs``)
RUN_FILES = ("model", "history", "run")
PACKINGS = ("sequential", "vmap")


def train_job(
    runs: list[dict],
    data_path: str,
    labels_paths: list[str],
    outs: list[dict[str, str]],
    threads: int = 1,
    progress_file: TextIO | None = None,
    packing: str | None = None,
) -> list[dict]:
    """Train a pack of runs, seeds of one configuration (``train.seeds_per_job``; a single run
    is a pack of one); writes each run's ``out["model"]``, ``out["history"]`` and ``out["run"]``
    (run.json) and returns their records. In a study that packs its seeds (``packing`` given),
    run.json records the pack's seeds (``packed_with``), the ``packing`` and the run's share of
    the job's time.

    ``packing``: "sequential" (or None) trains the runs one after another, each exactly as it
    would be alone (bit-identical results). A checkpoint beside each run's outputs is written
    every epoch and resumed if the job is rerun after a kill (those of finished runs too); they
    are removed once every run's outputs exist. "vmap" trains them together
    (``packing.train_packed``) with one checkpoint for the pack.
    """
    from corruptlab.core.devices import configure_torch, resolve_device
    from corruptlab.train.methods import DEFAULT_METHOD, fit_run, method_of

    if packing is not None and packing not in PACKINGS:
        raise ValueError(f"packing {packing!r}; accepted: {', '.join(PACKINGS)}")
    others = sorted({method_of(r)["name"] for r in runs} - {DEFAULT_METHOD})
    if packing == "vmap" and len(runs) > 1 and others:
        raise ValueError(
            f"packing vmap trains gradient descent only, these runs use {', '.join(others)}; "
            "accepted: packing sequential"
        )
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
    name = runs[0]["run_id"]
    if len(runs) > 1:
        name = name.rsplit("/", 1)[0] + f"/{packing}-seeds{seeds[0]}-{seeds[-1]}"
    callbacks = [
        _measurements(*(m(job.run, job.data, shared["std"]) for _, m in MEASUREMENTS.items()))
        for job in jobs
    ]
    with _progress(total, name, progress_file) as bar:
        if packing != "vmap" or len(runs) == 1:
            checkpoints = [Path(out["model"]).with_name("checkpoint.pt") for out in outs]
            results = []
            for job, callback, checkpoint in zip(jobs, callbacks, checkpoints, strict=True):
                # the run's training method (corruptlab.train.methods; gd without one)
                spec = method_of(job.run)
                results.append(
                    fit_run(job.model(), job.data, job.cfg, spec, checkpoint, bar, callback)
                )
                if spec["name"] == DEFAULT_METHOD:  # an epoch forwards the training set once
                    epochs = results[-1].history[-1]["epoch"]
                    bar.total -= (job.cfg.max_epochs - epochs) * job.n_train  # stopped early
        else:
            from corruptlab.train.packing import train_packed

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
            for job, result in zip(jobs, results, strict=True):  # as methods._fit_gd's rows
                for row in result.history:
                    row.setdefault("examples_forwarded", 0 if row["epoch"] == 0 else job.n_train)
    share = (time.perf_counter() - t0) / len(jobs)
    pack = {"packed_with": seeds, "packing": packing} if packing else {}
    records = [
        job.write(result, out, device, job_seconds=share, **pack)
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


def csr_callback(run: dict, val_images, val_labels, std: float):
    """``on_epoch`` measuring the critical sample ratio of a run at its ``csr`` epochs (history
    column ``csr``) on ``csr.n`` validation images: a class-stratified subset drawn with the
    run's data seed, the same points in every seed and epoch (``csr_examples``); None for runs
    without ``csr``."""
    spec = run.get("csr")
    if not spec:
        return None
    from corruptlab.eval.csr import critical_sample_ratio, pixel_scale_to_input

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


def probe_callback(run: dict, data):
    """``on_epoch`` measuring a run at initialisation (epoch 0) when it has a ``probe``
    (``corruptlab.train.probes.init_probe``: per-layer gradient norms and tails, activation
    statistics, relative loss vs step size) on ``probe.batches`` training minibatches of the
    run's batch size, drawn from (study, seed, "probe"): the same minibatches, and the same
    initial weights, for every learning rate of a seed. None for runs without ``probe``."""
    spec = run.get("probe")
    if not spec:
        return None
    import torch

    from corruptlab.train.probes import init_probe

    def measure(epoch: int, model) -> dict:
        if epoch != 0:
            return {}
        generator = torch.Generator().manual_seed(derive_seed(run["study"], run["seed"], "probe"))
        size = run["batch_size"]
        order = torch.randperm(len(data.indices), generator=generator)
        order = order[: spec["batches"] * size].to(data.indices.device)
        batches = [
            (data.images.index_select(0, data.indices.index_select(0, sel)), data.labels[sel])
            for sel in order.split(size)
        ]
        row = init_probe(model, batches, spec["step_sizes"])
        log.info("%s: measured %d quantities at initialisation", run["run_id"], len(row))
        return row

    return measure


def _measurements(*callbacks):
    """One ``on_epoch`` from the measurements a run has (None: none; one: itself)."""
    present = [c for c in callbacks if c is not None]
    if len(present) <= 1:
        return present[0] if present else None

    def measure(epoch: int, model) -> dict:
        row: dict = {}
        for callback in present:
            row.update(callback(epoch, model))
        return row

    return measure


# Measurements during training (a registry): each entry, named after the run-dict key that asks
# for it, maps (run, training data, the data's std) to the run's ``on_epoch`` (None for a run
# without the key); a run's history rows get the columns of every measurement it has.
MEASUREMENTS: Registry = Registry("training measurement")
MEASUREMENTS.add(
    "csr", lambda run, data, std: csr_callback(run, data.val_images, data.val_labels, std)
)
MEASUREMENTS.add("probe", lambda run, data, std: probe_callback(run, data))


def csr_examples(run: dict, val_labels):
    """The positions (int64 tensor, sorted) of the validation examples a run's critical sample
    ratio is measured on: ``csr.n`` of them, class-stratified, drawn from the study and the
    run's data seed."""
    import torch

    from corruptlab.data.datasets import stratified_subset

    seed = derive_seed(run["study"], "csr_examples", run.get("data_seed", run["seed"]))
    labels = val_labels.cpu().numpy()
    return torch.from_numpy(stratified_subset(labels, run["csr"]["n"], seed))


TEACHER_INPUT = "teacher"  # the run input holding a teacher's logits on the training split


def transfer_set(run: dict, noisy, true_labels):
    """(indices, labels, soft targets or None) a run trains on: its noisy training set
    (``noisy``, indices into the training split whose true classes are ``true_labels``),
    restricted to its transfer set (``run["transfer"]``: corruptlab.data.transfer), with, for a
    run whose ``inputs`` name a ``teacher`` (another run's logits on every training image,
    float [N, C], corruptlab.jobs.soft_targets), that teacher's logits for each example."""
    import numpy as np

    from corruptlab.core.runs import input_paths
    from corruptlab.data.transfer import transfer_mask

    indices, labels = noisy.indices, noisy.labels
    spec = run.get("transfer")
    teacher = input_paths(run).get(TEACHER_INPUT)
    if (spec is not None or teacher is not None) and noisy.n_synthetic:
        raise ValueError(
            f"{run['run_id']}: a transfer set or a teacher needs real training images, and its "
            f"labels add {noisy.n_synthetic} synthetic ones (randx); accepted: noise kinds "
            "without synthetic inputs"
        )
    if spec is not None:
        keep = transfer_mask(true_labels[indices], spec)
        if not keep.any():
            raise ValueError(f"{run['run_id']}: transfer set {spec['name']!r} is empty")
        indices, labels = indices[keep], labels[keep]
    if teacher is None:
        return indices, labels, None
    logits = np.load(teacher)
    if logits.ndim != 2 or len(logits) != len(true_labels):
        raise ValueError(
            f"{teacher}: teacher logits of shape {logits.shape}, for a training split of "
            f"{len(true_labels)} images; accepted: float [{len(true_labels)}, classes]"
        )
    log.info("%s learns from the soft targets of %s", run["run_id"], teacher)
    return indices, labels, np.ascontiguousarray(logits[indices], dtype=np.float32)


def training_length(run: dict, n_full: int, n_own: int) -> dict:
    """How long a run trains on its ``n_own`` training examples, ``n_full`` being those of its
    whole training set (its labels file, before its transfer set's restriction): a dict of
    ``max_epochs``, ``patience``, ``restore_best`` and, for a run with a step budget,
    ``step_budget`` (optimizer steps) and ``steps_per_epoch``.

    Without the run-dict key ``step_budget``, ``max_epochs`` passes over its own examples.
    With it, as many passes as reach that many optimizer steps (one per batch of
    ``batch_size``), rounded up to whole epochs: ``"full_set"`` is the steps of ``max_epochs``
    passes over the whole training set (a run on a smaller transfer set trains as many steps
    as one on all of it), an integer that many steps. ``early_stopping: False`` trains every
    epoch and keeps the last weights (patience = the epochs); otherwise the run's own
    ``patience`` and ``restore_best`` (default true) apply."""
    size = run["batch_size"]
    out = {
        "max_epochs": run["max_epochs"],
        "patience": run["patience"],
        "restore_best": run.get("restore_best", True),
    }
    budget = run.get("step_budget")
    if budget is not None:
        if budget == FULL_SET_STEPS:
            steps = run["max_epochs"] * math.ceil(n_full / size)
        elif isinstance(budget, int) and not isinstance(budget, bool) and budget >= 1:
            steps = budget
        else:
            raise ValueError(
                f"{run['run_id']}: step_budget {budget!r}; accepted: {FULL_SET_STEPS!r} or an "
                "integer >= 1 (optimizer steps)"
            )
        per_epoch = math.ceil(n_own / size)
        out.update(
            max_epochs=math.ceil(steps / per_epoch), step_budget=steps, steps_per_epoch=per_epoch
        )
    early = run.get("early_stopping", True)
    if early not in (True, False):
        raise ValueError(f"{run['run_id']}: early_stopping {early!r}; accepted: true or false")
    if not early:
        out.update(patience=out["max_epochs"], restore_best=False)
    return out


class _RunInputs:
    """One run's training inputs on the device (data, labels, config, initial model), and the
    writing of its outputs. ``shared`` lets the runs of a pack share one copy of the dataset."""

    def __init__(self, run: dict, data_path: str, labels_path: str, device, shared=None):
        import torch

        from corruptlab.data.datasets import load_prepared, normalization_stats, normalize
        from corruptlab.data.noise import load_noisy_labels, synthetic_inputs
        from corruptlab.train.objectives import DEFAULT_OBJECTIVE
        from corruptlab.train.training import TrainConfig, TrainData

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
        indices, labels, soft = transfer_set(run, noisy, data["train_labels"].numpy())
        self.n_train = len(indices)
        self.length = training_length(run, len(noisy.indices), self.n_train)
        self.data = TrainData(
            images=images,
            indices=torch.from_numpy(indices).to(device),
            labels=torch.from_numpy(labels).to(device),
            val_images=shared["val_images"],
            val_labels=shared["val_labels"],
            soft_targets=None if soft is None else torch.from_numpy(soft).to(device),
        )
        self.in_shape = tuple(images.shape[1:])
        self.cfg = TrainConfig(
            optimizer=run["optimizer"],
            batch_size=run["batch_size"],
            max_epochs=self.length["max_epochs"],
            patience=self.length["patience"],
            seed=derive_seed(run["study"], run["seed"], "train"),
            restore_best=self.length["restore_best"],
            # only a non-default objective is in the run dict (corruptlab.core.config)
            objective=run.get("objective", DEFAULT_OBJECTIVE),
        )

    def model(self):
        """The run's initial model, on the data's device: weights drawn from its seed, or, for
        a run whose ``inputs`` name an ``init`` (another run's model.pt), that run's weights."""
        import torch

        from corruptlab.core.runs import input_paths
        from corruptlab.train.models import build_model
        from corruptlab.train.training import seeded_model

        run, n_classes = self.run, self.shared["data"]["n_classes"]

        def build():
            built = build_model(run["model"], self.in_shape, n_classes)
            if "init" in run:  # a named initialisation (corruptlab.train.inits), same seed
                from corruptlab.train.inits import initialise

                initialise(built, run["init"])
            return built

        model = seeded_model(build, derive_seed(run["study"], run["seed"], "init"))
        init = input_paths(run).get("init")
        if init is not None:
            saved = torch.load(init, map_location="cpu", weights_only=True)
            if saved["model"] != run["model"]:
                raise ValueError(
                    f"{run['run_id']} starts from {init}, a {saved['model']!r}; "
                    f"accepted: a model.pt of a {run['model']!r}"
                )
            model.load_state_dict(saved["state_dict"])
            log.info("%s starts from the weights of %s", run["run_id"], init)
        return model.to(self.data.images.device)

    def write(self, result, out: dict[str, str], device, job_seconds: float, **extra) -> dict:
        from corruptlab.core.io import torch_save, write_json, write_parquet
        from corruptlab.core.provenance import provenance

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
        if "step_budget" in run or "early_stopping" in run:  # how long it was allowed to train
            record["training_length"] = self.length
        write_json(record, out["run"])
        return record
