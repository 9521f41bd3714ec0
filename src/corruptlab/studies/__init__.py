"""Study kinds (a registry). A kind names the tables and figures its aggregation produces and
which tables each is computed from; the functions themselves are entries of the registries in
corruptlab.report.tables and corruptlab.report.figures, so this module stays import-light for
the Snakefile."""

from __future__ import annotations

from dataclasses import dataclass, field

from corruptlab.core.registry import Registry


@dataclass(frozen=True)
class StudyKind:
    name: str
    doc: str
    # results/<study>/tables/<name>.parquet -> the tables it is computed from ("runs" is the
    # tidy table of every run and condition, built from the run directories)
    table_needs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # results/<study>/figures/<name>.{png,pdf} -> the tables it is drawn from
    figure_needs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # its runs have soft targets (a teacher's logits per training example), which objectives
    # such as distillation train on; no kind provides them yet
    soft_targets: bool = False

    @property
    def tables(self) -> tuple[str, ...]:
        return ("runs", *self.table_needs)

    @property
    def figures(self) -> tuple[str, ...]:
        return tuple(self.figure_needs)

    def needs(self, target: str) -> tuple[str, ...]:
        needs = {**self.table_needs, **self.figure_needs}
        if target not in needs:
            raise ValueError(
                f"study kind {self.name!r} has no table or figure {target!r}; "
                f"it has: {', '.join([*self.tables, *self.figures])}"
            )
        return needs[target]


STUDIES: Registry[StudyKind] = Registry("study kind")

STUDIES.add(
    "label_noise",
    StudyKind(
        name="label_noise",
        doc="Rolnick et al. 2017: test accuracy versus noisy labels per clean label (Figure 1)",
        table_needs={
            "summary": ("runs",),
            "selection": ("summary",),
            "claims": ("runs", "selection"),
        },
        figure_needs={
            "accuracy_vs_alpha": ("selection",),
            "selected_lr_vs_alpha": ("selection",),
        },
    ),
)

STUDIES.add(
    "corruption_tta",
    StudyKind(
        name="corruption_tta",
        doc="Wang et al. 2021 (TENT): corruptions at five severities, source / norm / tent",
        table_needs={
            "summary": ("runs",),
            "corruption_errors": ("runs",),
            "entropy_deciles": ("predictions",),
            "claims": ("runs", "predictions"),
        },
        figure_needs={
            "corruption_gallery": (),  # drawn from the dataset by the gallery rule
            "error_by_entropy_decile": ("entropy_deciles",),
            "loss_entropy_by_severity": ("runs",),
            "error_by_corruption": ("corruption_errors",),
            "tent_grid": ("corruption_errors",),
        },
    ),
)

STUDIES.add(
    "ood",
    StudyKind(
        name="ood",
        doc="Hendrycks & Gimpel 2017: max-softmax (and entropy, energy, max-logit) OOD detection",
        table_needs={
            "summary": ("runs",),
            "ood_metrics": ("ood_runs",),
            "claims": ("runs", "ood_runs"),
        },
        figure_needs={
            "roc_curves": ("ood_runs",),
            "ood_auroc": ("ood_metrics",),
        },
    ),
)

STUDIES.add(
    "memorization",
    StudyKind(
        name="memorization",
        doc="Arpit et al. 2017: per-example difficulty over seeds (real / randX / randY), "
        "critical sample ratio",
        table_needs={
            "p_correct": ("predictions",),
            "csr": ("histories",),
            "claims": ("runs", "p_correct", "histories"),
        },
        figure_needs={
            "p_correct_sorted": ("p_correct",),
            "csr_over_epochs": ("csr",),
            "examples_grid": (),  # drawn with the dataset's images by the examples_grid rule
        },
    ),
)
