"""Claims of the papers, checked on a study's own numbers: each study kind lists its claims
(``StudyKind.claims``, functions of the study's tables returning rows), and the table
``claims`` gathers them. A row has the value, its 95% CI over seeds, the criterion and a
result: ``pass``, ``fail`` or ``not applicable`` (with the reason)."""

from __future__ import annotations

import math

import pandas as pd

from corruptlab.report.tables import PROVENANCE_COLUMNS


def row(
    claim: str, subject: str, stats: dict, criterion: str, passed: bool | None, detail: str = ""
) -> dict:
    """One claims-table row; ``passed=None`` means the claim is not applicable here."""
    if passed is None:
        result = "not applicable"
    elif isinstance(stats.get("mean"), float) and math.isnan(stats["mean"]):
        result = "not applicable"
        detail = detail or "no value"
    else:
        result = "pass" if passed else "fail"
    return {
        "claim": claim,
        "subject": subject,
        "value": stats.get("mean", math.nan),
        "ci95_low": stats.get("ci95_low", math.nan),
        "ci95_high": stats.get("ci95_high", math.nan),
        "n": stats.get("n", 0),
        "criterion": criterion,
        "result": result,
        "detail": detail,
    }


def claims_table(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """The paper's claims checked on this study's numbers (the table ``claims``)."""
    return check_claims(study["kind"], tables, study)


def check_claims(kind: str, tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """Every claim of study kind ``kind``, checked on ``tables``; one row per claim and subject,
    with the study's name and provenance."""
    from corruptlab.studies import STUDIES

    rows = [r for claim in STUDIES.get(kind).claims for r in claim(tables, study)]
    out = pd.DataFrame(rows, columns=list(row("", "", {}, "", None)))
    runs = tables.get("runs")
    for c in PROVENANCE_COLUMNS:
        if runs is not None and c in runs:
            out[c] = ";".join(sorted(map(str, runs[c].dropna().unique())))
    out.insert(0, "study", runs["study"].iloc[0] if runs is not None and len(runs) else "")
    return out
