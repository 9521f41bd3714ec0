"""The corruption_tta kind: its class (tables, figures, claims), its config check and its
registration."""

from __future__ import annotations

from corruptlab.core.grid import training_settings
from corruptlab.report.claims import claims_table
from corruptlab.report.tables import summary
from corruptlab.studies import Output, StudyKind, register, schema_beside
from corruptlab.studies.corruption_tta.claims import (
    _clean_accuracy_kept,
    _entropy_ranks_error,
    _tta_beats_source,
)
from corruptlab.studies.corruption_tta.figures import (
    corruption_gallery,
    error_by_corruption,
    error_by_entropy_decile,
    has_corruptions,
    has_tent,
    loss_entropy_by_severity,
    tent_grid,
)
from corruptlab.studies.corruption_tta.tables import corruption_errors, entropy_deciles

SCHEMA = schema_beside(__file__)


class CorruptionTTA(StudyKind):
    name = "corruption_tta"
    doc = "Wang et al. 2021 (TENT): corruptions at five severities, source / norm / tent"
    schema = SCHEMA
    tables = {
        "summary": Output(summary, ("runs",)),
        "corruption_errors": Output(corruption_errors, ("runs",)),
        "entropy_deciles": Output(entropy_deciles, ("predictions",)),
        "claims": Output(claims_table, ("runs", "predictions")),
    }
    figures = {
        "corruption_gallery": Output(corruption_gallery, files=("dataset",)),
        "error_by_entropy_decile": Output(
            error_by_entropy_decile, ("entropy_deciles",), when=has_corruptions
        ),
        "loss_entropy_by_severity": Output(
            loss_entropy_by_severity, ("runs",), when=has_corruptions
        ),
        "error_by_corruption": Output(
            error_by_corruption, ("corruption_errors",), when=has_corruptions
        ),
        "tent_grid": Output(tent_grid, ("corruption_errors",), when=has_tent),
    }
    claims = (_clean_accuracy_kept, _tta_beats_source, _entropy_ranks_error)

    def check(self, where: str, study: dict) -> list[str]:
        errors = []
        baseline, models = study.get("baseline_model"), study.get("models")
        if isinstance(baseline, str) and isinstance(models, list) and baseline not in models:
            errors.append(
                f"{where}.baseline_model: {baseline!r} is not one of the study's models; "
                f"accepted: {', '.join(map(str, models))}"
            )
        settings = training_settings(study)
        if len(settings) > 1:
            errors.append(
                f"{where}: trains each model in {len(settings)} settings "
                f"({', '.join(settings[:4])}{', ...' if len(settings) > 4 else ''}), but its "
                "tables, claims and figures compare adaptation methods per model and would "
                "average over them; accepted: one noise setting and one optimizer setting "
                "(one lr, batch_size, max_epochs, objective) per corruption_tta study (put "
                "other settings in studies of their own)"
            )
        return errors


register(CorruptionTTA())
