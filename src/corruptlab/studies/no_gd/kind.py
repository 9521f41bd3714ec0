"""Study kind ``no_gd``: "If the lottery ticket hypothesis is real, can we train a neural network
without gradient descent?" (issue 16; the notebook behind it trains the PyTorch MNIST example
and asks the question for its OOD behaviour). Every run trains a registered model by one
training method (``corruptlab.train.methods.METHODS``: gradient descent, masks over frozen
random weights, gradient-free search), and is evaluated and scored against OOD sets like an
``ood`` study's (the same ``ood:`` key and set definitions).

Runs: models x noise settings x method settings (each method's list-valued parameters
expanded; a method that trains with an optimizer, such as ``gd``, also times its optimizer
settings: the entry's own ``optimizers`` or the study's) x batch sizes x max_epochs x seeds.
A run's path names its method: ``<model>/<noise>/<method slug>/<optimizer slug>-bs<batch>``
(``mlp2/none/gd/adadelta-lr1-wd0-step-g0.7-bs64/seed0``), or ``.../<method slug>/bs<batch>``
for a method without an optimizer (``mlp2/none/random_search-p16/bs128/seed0``).
"""

from __future__ import annotations

import itertools

from corruptlab.core import runs as run_paths
from corruptlab.core.checks import check_entry, entries
from corruptlab.core.grid import as_list, expand_grid, optimizer_grid, optimizer_slug, seed_list
from corruptlab.core.params import fmt_number
from corruptlab.data.noise import NOISE
from corruptlab.report.claims import claims_table
from corruptlab.report.tables import summary
from corruptlab.studies import Output, StudyKind, register, schema_beside
from corruptlab.studies.no_gd.claims import (
    _equal_budget_ranking,
    _frozen_stay_frozen,
    _gd_learns,
    _mask_above_90,
    _mask_near_gd,
    _notebook_baseline,
    _ood_reported,
)
from corruptlab.studies.no_gd.figures import (
    accuracy_vs_examples,
    accuracy_vs_seconds,
    edge_popup_k,
    mask_density,
    ood_auroc_by_method,
)
from corruptlab.studies.no_gd.tables import EDGE_POPUP, budget
from corruptlab.studies.ood.kind import OOD
from corruptlab.studies.ood.kind import SCHEMA as OOD_SCHEMA
from corruptlab.studies.ood.tables import ood_metrics
from corruptlab.train.methods import DEFAULT_METHOD, METHODS, NO_OPTIMIZER
from corruptlab.train.objectives import DEFAULT_OBJECTIVE
from corruptlab.train.optim import OPTIMIZERS
from corruptlab.train.schedules import SCHEDULES

SCHEMA = {**schema_beside(__file__), **OOD_SCHEMA}


def _noise_settings(study: dict) -> list[dict]:
    return [
        n
        for spec in study["noise"]
        for n in expand_grid(spec, "kind", NOISE.get(spec["kind"]).params)
    ]


# keys of a method entry that are not the method's parameters: what the entry overrides of the
# study's own keys for its runs
ENTRY_KEYS = ("models", "optimizers", "batch_size", "max_epochs", "patience")


def method_settings(study: dict) -> list[tuple[dict, dict, dict | None]]:
    """(method entry, method setting, optimizer setting or None) of a (validated) study, in the
    listed order: each method entry's list-valued parameters expanded, times its optimizer
    settings if it trains with an optimizer (the entry's ``optimizers``, else the study's)."""
    out = []
    for entry in study["methods"]:
        method = METHODS.get(entry["name"])
        spec = {k: v for k, v in entry.items() if k not in ENTRY_KEYS}
        for values in expand_grid(spec, "name", method.params):
            if method.uses_optimizer:
                specs = entry.get("optimizers", study["optimizers"])
                out += [(entry, values, o) for s in specs for o in optimizer_grid(s)]
            else:
                out.append((entry, values, None))
    return out


def _trains_edge_popup(study: dict) -> bool:
    """Edge-popup accuracy vs k is drawn for a study that trains edge_popup at two k or more
    (one k is a point without a curve: the summary table has it)."""
    default = METHODS.get(EDGE_POPUP).values({"name": EDGE_POPUP})["k"]
    ks = {
        float(k)
        for entry in study["methods"]
        if entry["name"] == EDGE_POPUP
        for k in as_list(entry.get("k", default))
    }
    return len(ks) >= 2


def _masks_frozen_weights(study: dict) -> bool:
    """Mask density is drawn for a study with a method that masks frozen weights."""
    names = {entry["name"] for entry in study["methods"]}
    return any(n in METHODS and METHODS.get(n).frozen_weights for n in names)


class NoGd(StudyKind):
    name = "no_gd"
    doc = (
        "issue 16: training without gradient descent (supermasks, edge-popup, evolution, "
        "search) against gd, with OOD detection"
    )
    schema = SCHEMA
    steps = ("evaluate", "ood")
    tables = {
        "summary": Output(summary, ("runs",)),
        "budget": Output(budget, ("histories", "runs")),
        "ood_metrics": Output(ood_metrics, ("ood_runs",)),
        "claims": Output(claims_table, ("runs", "ood_runs", "histories")),
    }
    figures = {
        "accuracy_vs_examples": Output(accuracy_vs_examples, ("budget",)),
        "accuracy_vs_seconds": Output(accuracy_vs_seconds, ("budget",)),
        "edge_popup_k": Output(edge_popup_k, ("runs",), when=_trains_edge_popup),
        "ood_auroc_by_method": Output(ood_auroc_by_method, ("ood_metrics",)),
        "mask_density": Output(mask_density, ("histories",), when=_masks_frozen_weights),
    }
    claims = (
        _gd_learns,
        _frozen_stay_frozen,
        _mask_above_90,
        _mask_near_gd,
        _equal_budget_ranking,
        _notebook_baseline,
        _ood_reported,
    )
    ood_sets = OOD.ood_sets
    ood_scores = OOD.ood_scores

    def check(self, where: str, study: dict) -> list[str]:
        errors = OOD.check(self, where, study)
        models = [m for _, m in entries(study.get("models"), str)]
        patience = study.get("patience")
        for i, entry in entries(study.get("methods"), dict):
            w = f"{where}.methods[{i}]"
            spec = {k: v for k, v in entry.items() if k not in ENTRY_KEYS}
            errors += check_entry(w, spec, "name", METHODS)
            for j, model in entries(entry.get("models"), str):
                if model not in models:
                    errors.append(
                        f"{w}.models[{j}]: {model!r} is not among the study's models; "
                        f"accepted: {', '.join(models)}"
                    )
            epochs = [e for _, e in entries(as_list(entry.get("max_epochs", [])), int)]
            own = entry.get("patience")
            if isinstance(own, int) and not isinstance(own, bool):
                study_epochs = [e for _, e in entries(as_list(study.get("max_epochs", [])), int)]
                shortest = min(epochs or study_epochs or [own])
                if own > shortest:
                    errors.append(
                        f"{w}.patience: {own} is above the entry's max_epochs {shortest}; "
                        "accepted: integers in [1, max_epochs]"
                    )
            elif isinstance(patience, int) and epochs and 1 <= min(epochs) < patience:
                errors.append(
                    f"{w}.max_epochs: {min(epochs)} is below the study's patience {patience}; "
                    "accepted: integers >= patience, or the entry's own patience"
                )
            name = entry.get("name")
            if "optimizers" not in entry or name not in METHODS:
                continue
            if not METHODS.get(name).uses_optimizer:
                users = [n for n, m in METHODS.items() if m.uses_optimizer]
                errors.append(
                    f"{w}.optimizers: {name!r} trains without an optimizer; accepted: "
                    f"optimizers only in an entry of {', '.join(users)}"
                )
                continue
            for j, o in entries(entry["optimizers"], dict):
                errors += check_entry(
                    f"{w}.optimizers[{j}]",
                    {k: v for k, v in o.items() if k != "schedule"},
                    "name",
                    OPTIMIZERS,
                )
                if isinstance(o.get("schedule"), dict):
                    errors += check_entry(
                        f"{w}.optimizers[{j}].schedule", o["schedule"], "name", SCHEDULES
                    )
        objective = study.get("objective")
        if isinstance(objective, dict) and objective.get("name") != DEFAULT_OBJECTIVE["name"]:
            errors.append(
                f"{where}.objective: a no_gd study trains on {DEFAULT_OBJECTIVE['name']!r}; "
                "accepted: no objective key"
            )
        train = study.get("train") if isinstance(study.get("train"), dict) else {}
        others = [
            e.get("name")
            for _, e in entries(study.get("methods"), dict)
            if e.get("name") != DEFAULT_METHOD
        ]
        if train.get("packing") == "vmap" and others:
            errors.append(
                f"{where}.train.packing: vmap trains gradient descent only, and the study has "
                f"{', '.join(map(str, others))}; accepted: packing sequential"
            )
        return errors

    def expand(self, name: str, study: dict, config: dict) -> list[dict]:
        """models x noise settings x method settings (with their optimizers) x batch sizes x
        max_epochs x seeds, in that order; a method entry's ``models``, ``batch_size``,
        ``max_epochs`` and ``patience`` replace the study's for its runs. Run paths name the epochs
        (``-e<epochs>``) when the study's ``max_epochs`` is a list or the entry sets its own."""
        out = []
        for model, noise, (entry, method, optim) in itertools.product(
            study["models"], _noise_settings(study), method_settings(study)
        ):
            if model not in entry.get("models", study["models"]):
                continue
            noise_slug = NOISE.get(noise["kind"]).slug(noise)
            method_slug = METHODS.get(method["name"]).slug(method)
            epoch_grid = isinstance(study["max_epochs"], list) or "max_epochs" in entry
            for bs, epochs, seed in itertools.product(
                as_list(entry.get("batch_size", study["batch_size"])),
                as_list(entry.get("max_epochs", study["max_epochs"])),
                seed_list(study["seeds"]),
            ):
                optim_slug = f"bs{fmt_number(bs)}" + (f"-e{epochs}" if epoch_grid else "")
                if optim is not None:
                    optim_slug = f"{optimizer_slug(optim)}-{optim_slug}"
                config_id = run_paths.config_id(model, noise_slug, method_slug, optim_slug)
                run = {
                    "study": name,
                    "kind": study["kind"],
                    "dataset": study["dataset"],
                    "split_seed": config["data"]["split_seed"],
                    "model": model,
                    "noise": noise,
                    "noise_slug": noise_slug,
                    "optimizer": dict(NO_OPTIMIZER) if optim is None else optim,
                    "optim_slug": optim_slug,
                    "train_method": method,
                    "train_method_id": method_slug,
                    "batch_size": bs,
                    "max_epochs": epochs,
                    "patience": entry.get("patience", study["patience"]),
                    "seed": seed,
                    "device": config["device"],
                    "run_id": run_paths.run_id(config_id, seed),
                }
                if study.get("in_classes"):
                    run["in_classes"] = sorted(study["in_classes"])
                out.append(run)
        return out


register(NoGd())
