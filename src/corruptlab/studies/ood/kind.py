"""The ood kind: its tables, figures and claims, the checks of its ``ood:`` keys, and the OOD
sets and scores each run is scored with."""

from __future__ import annotations

from corruptlab.core.checks import choice_errors, entries
from corruptlab.data.corruptions import CORRUPTIONS
from corruptlab.data.datasets import DATASETS
from corruptlab.eval.ood import OOD_SETS, SCORES
from corruptlab.report.claims import claims_table
from corruptlab.report.tables import summary
from corruptlab.studies import Output, StudyKind, register, schema_beside
from corruptlab.studies.ood.claims import (
    _classifier_learns,
    _msp_aupr_fpr95,
    _msp_auroc_uniform,
    _msp_beats_chance,
)
from corruptlab.studies.ood.figures import ood_auroc, roc_curves
from corruptlab.studies.ood.tables import ood_metrics

SCHEMA = schema_beside(__file__)


class OOD(StudyKind):
    name = "ood"
    doc = "Hendrycks & Gimpel 2017: max-softmax (and entropy, energy, max-logit) OOD detection"
    schema = SCHEMA
    steps = ("evaluate", "ood")
    tables = {
        "summary": Output(summary, ("runs",)),
        "ood_metrics": Output(ood_metrics, ("ood_runs",)),
        "claims": Output(claims_table, ("runs", "ood_runs")),
    }
    figures = {
        "roc_curves": Output(roc_curves, ("ood_runs",)),
        "ood_auroc": Output(ood_auroc, ("ood_metrics",)),
    }
    claims = (_classifier_learns, _msp_auroc_uniform, _msp_beats_chance, _msp_aupr_fpr95)

    def check(self, where: str, study: dict) -> list[str]:
        errors = []
        ood = study.get("ood") if isinstance(study.get("ood"), dict) else {}
        for key, registry in (
            ("synthetic", OOD_SETS),
            ("corruptions", CORRUPTIONS),
            ("datasets", DATASETS),
            ("scores", SCORES),
        ):
            for i, name in entries(ood.get(key), str):
                errors += choice_errors(f"{where}.ood.{key}[{i}]", name, registry)
                if key == "datasets" and name == study.get("dataset"):
                    others = ", ".join(n for n in DATASETS if n != name)
                    errors.append(
                        f"{where}.ood.{key}[{i}]: {name!r} is the study's own dataset; "
                        f"accepted: another dataset ({others})"
                    )
        sets = [ood.get(k) for k in ("synthetic", "corruptions", "datasets")]
        if not any(isinstance(v, list) and v for v in sets) and not study.get("in_classes"):
            errors.append(
                f"{where}.ood: a{'n' * (self.name[0] in 'aeiou')} {self.name} study needs at "
                "least one OOD set; accepted: names in "
                "ood.synthetic, ood.corruptions or ood.datasets, or in_classes (held-out classes)"
            )
        return errors

    def ood_sets(self, study: dict) -> list[dict]:
        """The (validated) study's OOD sets as corruptlab.eval.ood.load_ood_set specs (without
        file paths, which the workflow adds)."""
        ood = study["ood"]
        sets = [{"family": "synthetic", "name": n} for n in ood["synthetic"]]
        sets += [
            {"family": "corruption", "name": n, "severity": ood["severity"]}
            for n in ood["corruptions"]
        ]
        sets += [{"family": "dataset", "name": n} for n in ood["datasets"]]
        if study.get("in_classes"):
            sets.append({"family": "held_out", "name": "held_out_classes"})
        return sets

    def ood_scores(self, study: dict) -> list[str]:
        return list(study["ood"]["scores"])


register(OOD())
