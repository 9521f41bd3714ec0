"""The ``batchnorm`` kind's class: its tables, figures and claims, its config checks and its
runs (inits x the grid, each measured at initialisation)."""

from __future__ import annotations

import math

from corruptlab.core import runs as run_paths
from corruptlab.core.checks import entries
from corruptlab.core.grid import grid_runs, optimizer_grid, training_settings
from corruptlab.report.claims import claims_table
from corruptlab.report.tables import summary
from corruptlab.studies import Output, StudyKind, register, schema_beside
from corruptlab.studies.batchnorm.claims import (
    _best_accuracy,
    _bn_learns,
    _depth_growth,
    _diverges_at_high_lr,
    _heavier_tails,
    _max_lr_ratio,
    _not_claimed_small_lr,
)
from corruptlab.studies.batchnorm.figures import (
    accuracy_vs_lr,
    activations_vs_depth,
    grad_norm_hist,
    gradients_vs_depth,
    relative_loss_vs_step,
)
from corruptlab.studies.batchnorm.tables import (
    init_probe,
    init_probe_summary,
    lr_sweep,
    max_lr,
    pairs,
    twin_of,
)
from corruptlab.train.inits import INITS
from corruptlab.train.models import MODELS

SCHEMA = schema_beside(__file__)


def _has_probe(study: dict) -> bool:
    return bool(pairs(study["models"]))


class Batchnorm(StudyKind):
    name = "batchnorm"
    doc = (
        "Bjorck et al. 2018: what batch norm buys: largest lr, divergence, gradients and "
        "activations at init, with and without BN"
    )
    schema = SCHEMA
    uses_patience = False  # its runs train every epoch and keep their last weights
    tables = {
        "summary": Output(summary, ("runs",)),
        "lr_sweep": Output(lr_sweep, ("runs",)),
        "max_lr": Output(max_lr, ("lr_sweep",)),
        "init_probe": Output(init_probe, ("histories", "runs")),
        "init_probe_summary": Output(init_probe_summary, ("init_probe",)),
        "claims": Output(claims_table, ("runs", "init_probe")),
    }
    figures = {
        "accuracy_vs_lr": Output(accuracy_vs_lr, ("lr_sweep",)),
        "grad_norm_hist": Output(grad_norm_hist, ("init_probe",), when=_has_probe),
        "gradients_vs_depth": Output(gradients_vs_depth, ("init_probe_summary",), when=_has_probe),
        "activations_vs_depth": Output(
            activations_vs_depth, ("init_probe_summary",), when=_has_probe
        ),
        "relative_loss_vs_step": Output(
            relative_loss_vs_step, ("init_probe_summary",), when=_has_probe
        ),
    }
    claims = (
        _bn_learns,
        _max_lr_ratio,
        _diverges_at_high_lr,
        _best_accuracy,
        _depth_growth,
        _heavier_tails,
        _not_claimed_small_lr,
    )

    def check(self, where: str, study: dict) -> list[str]:
        errors = []
        for i, name in entries(study.get("init"), str):
            if name not in INITS:
                errors.append(
                    f"{where}.init[{i}]: unknown initialisation {name!r}; accepted: "
                    f"{', '.join(INITS.names())}"
                )
        lrs = set()
        for _, spec in entries(study.get("optimizers"), dict):
            try:
                lrs |= {float(o["lr"]) for o in optimizer_grid(spec) if "lr" in o}
            except Exception:  # noqa: BLE001 (the optimizer's own check reports it)
                continue
        moderate = study.get("moderate_lr", SCHEMA["moderate_lr"]["default"])
        if (
            lrs
            and isinstance(moderate, (int, float))
            and not any(math.isclose(moderate, lr) for lr in lrs)
        ):
            errors.append(
                f"{where}.moderate_lr: {moderate:g} is not one of the study's learning rates; "
                f"accepted: {', '.join(f'{v:g}' for v in sorted(lrs))}"
            )
        train = study.get("train") if isinstance(study.get("train"), dict) else {}
        if train.get("packing") == "vmap":
            errors.append(
                f"{where}.train.packing: a batchnorm study measures each run at initialisation "
                "on its own model, which vmap's stacked seeds do not give; accepted: sequential"
            )
        settings = training_settings(study, any_lr=True)
        if len(settings) > 1:
            errors.append(
                f"{where}: trains each model in {len(settings)} settings besides its learning "
                f"rates ({', '.join(settings[:4])}{', ...' if len(settings) > 4 else ''}), but "
                "its tables, claims and figures compare runs per model, init and lr and would "
                "average over them; accepted: one noise setting and one optimizer setting apart "
                "from lr (one momentum, weight_decay, batch_size, max_epochs) per batchnorm "
                "study (put other settings in studies of their own)"
            )
        models = [m for _, m in entries(study.get("models"), str) if m in MODELS]
        if models and not pairs(models):
            twins = [f"{m} with {MODELS.get(m).without_bn}" for m in MODELS if twin_of(m)]
            errors.append(
                f"{where}.models: no batch-norm model together with its twin without batch norm; "
                f"accepted: a pair such as {', '.join(twins)}"
            )
        return errors

    def run_extras(self, study: dict, run: dict) -> dict:
        """Every epoch trained (patience = the epochs), the last weights kept, and the
        measurements at initialisation (``probe``)."""
        return {
            "patience": run["max_epochs"],
            "restore_best": False,
            "probe": dict(study["probe"]),
        }

    def expand(self, name: str, study: dict, config: dict) -> list[dict]:
        """inits x the grid (models x noise x optimizers x batch sizes x epochs x seeds); the
        init is a path segment after the noise."""
        out = []
        for init in study["init"]:
            for run in grid_runs(name, study, config):
                config_id = run_paths.config_id(
                    run["model"], run["noise_slug"], init, run["optim_slug"]
                )
                run = {**run, "init": init, "run_id": run_paths.run_id(config_id, run["seed"])}
                out.append({**run, **self.run_extras(study, run)})
        return out


register(Batchnorm())
