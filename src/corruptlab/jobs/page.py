"""The study page rule's job: read a study's tables and figures and write its page
(``corruptlab.report.page``), ``results/<study>/<study>.html``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from corruptlab import studies
from corruptlab.core.io import atomic_path

# the per-run tables, linked by path from the page (not shown: one row per run and condition)
PER_RUN_FILES = {
    "runs": "one row per (run, test condition): every config field, outcome, metric, provenance",
    "ood_runs": "one row per (run, OOD set, score): the OOD metrics and ROC curve",
    "histories": "one row per (run, epoch): the training history",
    "predictions": "one row per (run, test condition, example): the predictions",
}


def make_page(
    name: str,
    study: dict,
    tables: Sequence[str],
    figures: Sequence[str],
    out_path: str,
    kinds: Sequence[str] = (),
) -> None:
    """Write study ``name``'s page (its config ``study``) to ``out_path`` from its tables
    (parquet files named by table) and figures (PNG files named by figure), in the order its
    kind declares them."""
    import pandas as pd
    import yaml

    from corruptlab.report.page import Figure, Table, study_page

    kind = studies.load_kind(study["kind"], kinds)
    tables = {Path(p).stem: str(p) for p in tables}
    figures = {Path(p).stem: str(p) for p in figures}
    page_dir = Path(out_path).parent

    def rel(path: str) -> str:
        return Path(os.path.relpath(path, page_dir)).as_posix()

    def table(t: str) -> Table:
        path = Path(tables[t])
        return Table(t, pd.read_parquet(path), kind.output(t).caption, rel(path), path.read_bytes())

    shown = [t for t in kind.tables if t in tables]
    claims = table("claims") if "claims" in shown else None
    figs = [
        Figure(f, Path(figures[f]).read_bytes(), kind.output(f).caption, rel(figures[f]))
        for f in kind.figures
        if f in figures
    ]
    other = [
        (f"tables/{t}.parquet", what)
        for t, what in PER_RUN_FILES.items()
        if t in studies.PER_RUN_TABLES and t in {*kind.table_names, *_needs(kind)}
    ]
    text = study_page(
        name,
        kind.name,
        claims.frame if claims is not None else None,
        figs,
        [table(t) for t in shown if t != "claims"],
        claims_link=claims,
        config_text=yaml.safe_dump(study, sort_keys=False),
        other_files=other,
    )
    with atomic_path(out_path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _needs(kind: studies.StudyKind) -> set[str]:
    """Every table the kind's tables and figures are computed from."""
    return {t for output in {**kind.tables, **kind.figures}.values() for t in output.needs}
