"""The label_noise kind: its class (tables, figures, claims) and its registration."""

from __future__ import annotations

from corruptlab.report.claims import claims_table
from corruptlab.report.tables import summary
from corruptlab.studies import Output, StudyKind, register
from corruptlab.studies.label_noise.claims import (
    _accuracy_falls,
    _conv4_above_90,
    _learns_without_noise,
    _ranking,
)
from corruptlab.studies.label_noise.figures import (
    accuracy_vs_alpha,
    accuracy_vs_p,
    has_alpha_noise,
    has_p_noise,
    selected_lr_vs_alpha,
    selects_lr,
)
from corruptlab.studies.label_noise.tables import selection


class LabelNoise(StudyKind):
    name = "label_noise"
    doc = "Rolnick et al. 2017: test accuracy versus noisy labels per clean label (Figure 1)"
    tables = {
        "summary": Output(summary, ("runs",)),
        "selection": Output(selection, ("summary",)),
        "claims": Output(claims_table, ("runs", "selection")),
    }
    figures = {
        "accuracy_vs_alpha": Output(accuracy_vs_alpha, ("selection",), when=has_alpha_noise),
        "accuracy_vs_p": Output(accuracy_vs_p, ("selection",), when=has_p_noise),
        "selected_lr_vs_alpha": Output(
            selected_lr_vs_alpha, ("selection", "summary"), when=selects_lr
        ),
    }
    claims = (_learns_without_noise, _accuracy_falls, _ranking, _conv4_above_90)


register(LabelNoise())
