"""The memorization study kind: its class (tables, figures, claims), config checks and each
run's extras."""

from __future__ import annotations

from typing import Any

from corruptlab.core.checks import entries
from corruptlab.core.grid import as_list
from corruptlab.report.claims import claims_table
from corruptlab.studies import Output, StudyKind, register, schema_beside
from corruptlab.studies.memorization.claims import (
    _csr_growth,
    _randx_binomial,
    _randy_not_binomial,
    _real_data_learned,
    _real_not_binomial,
)
from corruptlab.studies.memorization.figures import (
    csr_over_epochs,
    examples_figure,
    p_correct_sorted,
)
from corruptlab.studies.memorization.tables import csr, p_correct

SCHEMA = schema_beside(__file__)


class Memorization(StudyKind):
    name = "memorization"
    doc = (
        "Arpit et al. 2017: per-example difficulty over seeds (real / randX / randY), "
        "critical sample ratio"
    )
    schema = SCHEMA
    uses_patience = False  # its runs train every epoch and keep their last weights
    tables = {
        "p_correct": Output(p_correct, ("predictions",)),
        "csr": Output(csr, ("histories",)),
        "claims": Output(claims_table, ("runs", "p_correct", "histories")),
    }
    figures = {
        "p_correct_sorted": Output(p_correct_sorted, ("p_correct",)),
        "csr_over_epochs": Output(csr_over_epochs, ("csr",)),
        "examples_grid": Output(examples_figure, ("p_correct",), files=("dataset", "labels")),
    }
    claims = (
        _real_data_learned,
        _randx_binomial,
        _real_not_binomial,
        _randy_not_binomial,
        _csr_growth,
    )

    def check(self, where: str, study: dict) -> list[str]:
        mem = study.get("memorization")
        epochs = [e for _, e in entries(as_list(study.get("max_epochs")), int)]
        if not isinstance(mem, dict) or not epochs:
            return []
        late = [e for _, e in entries(mem.get("csr_epochs"), int) if e > max(epochs)]
        if late:
            return [
                f"{where}.memorization.csr_epochs: {late} beyond max_epochs {max(epochs)}; "
                "accepted: epochs in 0..max_epochs"
            ]
        return []

    def run_extras(self, study: dict, run: dict) -> dict:
        """Every epoch trained (patience = the epochs), the last weights kept, the variant's
        noise from the shared data seed, and the critical sample ratio measured at its epochs
        (``csr``)."""
        mem, epochs = study["memorization"], run["max_epochs"]
        csr_epochs = sorted(e for e in mem["csr_epochs"] if e <= epochs)
        extras: dict[str, Any] = {
            "patience": epochs,
            "data_seed": mem["data_seed"],
            "restore_best": False,
        }
        if csr_epochs:
            extras["csr"] = {
                "epochs": csr_epochs,
                "n": mem["csr_examples"],
                "radius": mem["csr_radius"],
                "alpha": mem["csr_alpha"],
                "beta": mem["csr_beta"],
                "steps": mem["csr_steps"],
            }
        return extras

    def eval_conditions(self, study: dict) -> list[dict]:
        mem = study["memorization"]
        if mem["examples"] != "train":
            return []
        # the run's own training examples as trained (randX inputs, randY labels)
        return [{"name": "train", "severity": 0, "family": "train", "n": mem["n_examples"]}]


register(Memorization())
