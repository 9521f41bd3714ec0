"""Grid expansion, light (no torch): what runs a study's lists of models, noise settings,
optimizer settings, batch sizes, epochs and seeds make, and the packs of seeds trained in one
job. A study kind builds its runs from ``grid_runs`` (corruptlab.studies.StudyKind.expand)."""

from __future__ import annotations

import itertools
import re
from typing import Any

from corruptlab.core import runs
from corruptlab.core.params import Param, fmt_number
from corruptlab.data.noise import NOISE
from corruptlab.train.objectives import DEFAULT_OBJECTIVE, OBJECTIVES
from corruptlab.train.optim import OPTIMIZERS
from corruptlab.train.schedules import DEFAULT_SCHEDULE, SCHEDULES


def expand_grid(entry: dict, name_key: str, params: tuple[Param, ...]) -> list[dict]:
    """Expand list-valued parameters into the product of their values (declared order)."""
    lists = [
        entry.get(p.name, p.default)
        if isinstance(entry.get(p.name), list)
        else [entry.get(p.name, p.default)]
        for p in params
    ]
    return [
        {
            name_key: entry[name_key],
            **{p.name: p.kind(v) for p, v in zip(params, combo, strict=True)},
        }
        for combo in itertools.product(*lists)
    ]


PATIENCE = 5  # the default patience of a run of at least this many epochs


def default_patience(max_epochs: int) -> int:
    """A run's patience when its study sets none: 5 epochs, or all of a shorter run's epochs
    (so that the default is valid for every max_epochs)."""
    return min(PATIENCE, max_epochs)


def seed_list(seeds: int | list[int]) -> list[int]:
    return list(range(seeds)) if isinstance(seeds, int) else list(seeds)


def seed_packs(study: dict) -> list[list[int]]:
    """The seeds each training job of a (validated) study trains together, in chunks of
    ``train.seeds_per_job`` of the sorted seeds; [] when every run is a job of its own."""
    per_job = study.get("train", {}).get("seeds_per_job", 1)
    if per_job == 1:
        return []
    seeds = sorted(seed_list(study["seeds"]))
    return [seeds[i : i + per_job] for i in range(0, len(seeds), per_job)]


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def optimizer_grid(spec: dict) -> list[dict]:
    """A (validated) optimizer spec's settings: its list-valued parameters expanded, then its
    lr schedule's. A setting carries ``schedule`` only when it is not ``constant``, so that runs
    without a schedule keep the run dicts (and paths) they always had."""
    settings = expand_grid(spec, "name", OPTIMIZERS.get(spec["name"]).params)
    schedule = spec.get("schedule", DEFAULT_SCHEDULE)
    schedules = expand_grid(schedule, "name", SCHEDULES.get(schedule["name"]).params)
    return [
        o if s["name"] == DEFAULT_SCHEDULE["name"] else {**o, "schedule": s}
        for o in settings
        for s in schedules
    ]


def objective_grid(study: dict) -> list[dict]:
    """A (validated) study's objective settings, list-valued parameters expanded (the default:
    cross-entropy)."""
    spec = study.get("objective", DEFAULT_OBJECTIVE)
    return expand_grid(spec, "name", OBJECTIVES.get(spec["name"]).params)


def optimizer_slug(optim: dict, objective: dict | None = None) -> str:
    """The optimizer part of a run path, before ``-bs``: the optimizer's slug, then a
    non-constant schedule's (``adadelta-lr1-wd0-step-g0.7``) and a non-default objective's
    (``-kd-t4-a0.5``)."""
    out = OPTIMIZERS.get(optim["name"]).slug(optim)
    if "schedule" in optim:
        out += "-" + SCHEDULES.get(optim["schedule"]["name"]).slug(optim["schedule"])
    if objective is not None and objective["name"] != DEFAULT_OBJECTIVE["name"]:
        out += "-" + OBJECTIVES.get(objective["name"]).slug(objective)
    return out


def grid_runs(study_name: str, study: dict, config: dict) -> list[dict]:
    """The runs of a study's grid: models x noise settings x optimizer settings (with their lr
    schedules) x objectives x batch sizes x epochs x seeds, in that order."""
    noises = [
        n
        for spec in study["noise"]
        for n in expand_grid(spec, "kind", NOISE.get(spec["kind"]).params)
    ]
    optims = [o for spec in study["optimizers"] for o in optimizer_grid(spec)]
    out = []
    epoch_grid = isinstance(study["max_epochs"], list)  # then run paths name the epochs
    for model, noise, optim, objective, bs, epochs, seed in itertools.product(
        study["models"],
        noises,
        optims,
        objective_grid(study),
        as_list(study["batch_size"]),
        as_list(study["max_epochs"]),
        seed_list(study["seeds"]),
    ):
        noise_slug = NOISE.get(noise["kind"]).slug(noise)
        optim_slug = f"{optimizer_slug(optim, objective)}-bs{fmt_number(bs)}"
        if epoch_grid:
            optim_slug += f"-e{epochs}"
        out.append(
            {
                "study": study_name,
                "kind": study["kind"],
                "dataset": study["dataset"],
                "split_seed": config["data"]["split_seed"],
                "model": model,
                "noise": noise,
                "noise_slug": noise_slug,
                "optimizer": optim,
                "optim_slug": optim_slug,
                "batch_size": bs,
                "max_epochs": epochs,
                "patience": study.get("patience", default_patience(epochs)),
                "seed": seed,
                "device": config["device"],
                "run_id": runs.run_id(runs.config_id(model, noise_slug, optim_slug), seed),
            }
        )
        if objective["name"] != DEFAULT_OBJECTIVE["name"]:  # the default leaves run dicts be
            out[-1]["objective"] = objective
        if study.get("in_classes"):  # only when set: runs of other studies keep their params
            out[-1]["in_classes"] = sorted(study["in_classes"])
    return out


def noise_specs(runs: list[dict]) -> dict[str, dict]:
    """The distinct label-noise specs of a study's runs, by slug."""
    return {r["noise_slug"]: r["noise"] for r in runs}


def training_settings(study: dict, any_lr: bool = False) -> list[str]:
    """The distinct training settings of a study's models: run paths without the model and seed
    (noise, optimizer, batch size, epochs), with ``lr*`` for each learning rate if ``any_lr``
    (settings that differ only by lr are then one); [] for a study whose grid cannot be
    expanded (its schema errors are reported instead)."""
    try:
        one = {"batch_size": 128, "max_epochs": 1, **study, "seeds": 1}  # the schema default
        if any_lr:
            one["optimizers"] = [{**spec, "lr": 1} for spec in one["optimizers"]]
        found = grid_runs("check", one, {"data": {"split_seed": 0}, "device": ""})
    except Exception:  # a malformed study: the schema's messages name the fault
        return []
    settings = [r["run_id"].split("/", 1)[1].rsplit("/", 1)[0] for r in found]
    if any_lr:
        settings = [re.sub(r"-lr1(?=[-/]|$)", "-lr*", s) for s in settings]
    return list(dict.fromkeys(settings))
