"""Claims of the papers, checked on a study's own numbers: each study kind lists its claims
(``StudyKind.claims``, functions of the study's tables returning rows), and the table
``claims`` gathers them, one row per claim and subject.

Every row has a **verdict** that respects the uncertainty of its value:

- ``supported``: the whole 95% CI over seeds is on the claimed side of the threshold;
- ``contradicted``: the whole CI is on the other side;
- ``inconclusive``: the CI straddles the threshold, or there is no CI (fewer than two seeds);
- ``not applicable``: the claim does not apply to this study, or could not be judged on it (the
  ``reason`` says why);
- ``reported``: not a claim but a number reported with its CI (beside a paper's, or with no
  direction claimed in advance): nothing to support or contradict.

A claim checked by a test statistic instead (``by_test``: memorization's Binomial goodness of
fit) names the test and its level in ``test``; its verdict follows the test's p-value. The
``reason`` column says in words why a row got its verdict.

Rows that reproduce a published number carry it (``Paper``): ``paper_value`` in the units of
``value``, the paper's setting, the source, and how this study's setting differs from it, so
a reader sees the gap without opening the paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from corruptlab.report.stats import LEVEL, RANGES, mean_ci
from corruptlab.report.tables import PROVENANCE_COLUMNS

SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_APPLICABLE, REPORTED = (
    "supported",
    "contradicted",
    "inconclusive",
    "not applicable",
    "reported",
)
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_APPLICABLE, REPORTED)

# relation -> (does x satisfy it against t, its negation's symbol)
RELATIONS = {
    ">": (lambda x, t: x > t, "<="),
    ">=": (lambda x, t: x >= t, "<"),
    "<": (lambda x, t: x < t, ">="),
    "<=": (lambda x, t: x <= t, ">"),
}

COLUMNS = [
    "verdict",
    "claim",
    "subject",
    "value",
    "ci95_low",
    "ci95_high",
    "n",
    "paper_value",
    "criterion",
    "reason",
    "test",
    "detail",
    "paper_setting",
    "paper_source",
    "paper_differs",
]


@dataclass(frozen=True)
class Paper:
    """A published number a claim row reproduces: ``value`` in the row's units, the paper's
    ``setting``, the ``source`` (paper, table or figure) and how our setting ``differs``."""

    value: float
    setting: str
    source: str
    differs: str = ""


def our_setting(study: dict, *parts: str) -> str:
    """How a study's setting reads beside a paper's: its dataset, ``parts`` (e.g. the model)
    and its epoch budget, each where known."""
    epochs = study.get("max_epochs")
    if epochs is not None:
        epochs = "/".join(map(str, epochs if isinstance(epochs, list) else [epochs]))
    words = [
        study.get("dataset", ""),
        *parts,
        f"at most {epochs} epochs" if epochs is not None else "",
    ]
    return ", ".join(w for w in words if w)


def _row(
    verdict: str,
    claim: str,
    subject: str,
    stats: dict,
    criterion: str,
    test: str,
    reason: str,
    detail: str,
    paper: Paper | None,
) -> dict:
    if verdict not in VERDICTS:
        raise ValueError(f"verdict {verdict!r}; accepted: {', '.join(VERDICTS)}")
    row = {
        "verdict": verdict,
        "claim": claim,
        "subject": subject,
        "value": float(stats.get("mean", math.nan)),
        "ci95_low": float(stats.get("ci95_low", math.nan)),
        "ci95_high": float(stats.get("ci95_high", math.nan)),
        "n": int(stats.get("n", 0)),
        "criterion": criterion,
        "test": test,
        "reason": reason,
        "detail": detail,
        "paper_value": math.nan if paper is None else float(paper.value),
        "paper_setting": "" if paper is None else paper.setting,
        "paper_source": "" if paper is None else paper.source,
        "paper_differs": "" if paper is None else paper.differs,
    }
    return {c: row[c] for c in COLUMNS}


def ci_verdict(stats: dict, relation: str, threshold: float) -> tuple[str, str]:
    """(verdict, reason) of the claim "the mean is ``relation`` ``threshold``" from the 95% CI
    in ``stats`` (keys mean, ci95_low, ci95_high, n)."""
    if relation not in RELATIONS:
        raise ValueError(f"relation {relation!r}; accepted: {', '.join(RELATIONS)}")
    holds, negation = RELATIONS[relation]
    mean = stats.get("mean", math.nan)
    low, high = stats.get("ci95_low", math.nan), stats.get("ci95_high", math.nan)
    if mean is None or math.isnan(mean):
        return NOT_APPLICABLE, "no value"
    n = int(stats.get("n", 0))
    if n < 2 or math.isnan(low) or math.isnan(high):
        return INCONCLUSIVE, f"fewer than two seeds (n = {n}): no confidence interval"
    ci = f"95% CI [{low:.4g}, {high:.4g}]"
    if holds(low, threshold) and holds(high, threshold):
        return SUPPORTED, f"the whole {ci} is {relation} {threshold:g}"
    if not holds(low, threshold) and not holds(high, threshold):
        return CONTRADICTED, f"the whole {ci} is {negation} {threshold:g}"
    return INCONCLUSIVE, f"the {ci} straddles {threshold:g}"


def compare(
    claim: str,
    subject: str,
    stats: dict,
    quantity: str,
    relation: str,
    threshold: float,
    detail: str = "",
    paper: Paper | None = None,
) -> dict:
    """A claims-table row for "``quantity`` ``relation`` ``threshold``", judged on the 95% CI
    of ``stats`` (corruptlab.report.stats.mean_ci or diff_ci)."""
    verdict, reason = ci_verdict(stats, relation, threshold)
    criterion = f"{quantity} {relation} {threshold:g}"
    test = f"{LEVEL:.0%} CI over seeds (t, clipped to range)"
    return _row(verdict, claim, subject, stats, criterion, test, reason, detail, paper)


def not_applicable(
    claim: str,
    subject: str,
    criterion: str,
    reason: str,
    stats: dict | None = None,
    detail: str = "",
    paper: Paper | None = None,
) -> dict:
    """A row for a claim that does not apply here, with the ``reason`` (and the value, if one
    was measured anyway)."""
    return _row(NOT_APPLICABLE, claim, subject, stats or {}, criterion, "", reason, detail, paper)


def reported(
    claim: str,
    subject: str,
    stats: dict,
    quantity: str,
    reason: str = "reported with its 95% CI; no direction is claimed",
    detail: str = "",
    paper: Paper | None = None,
) -> dict:
    """A row that reports ``quantity`` (its mean and 95% CI in ``stats``) without judging it:
    a number beside a paper's, or one for which no direction was claimed in advance. Its
    verdict is ``reported``, so that ``not applicable`` keeps meaning a claim not judged."""
    criterion = f"{quantity}: reported"
    test = f"{LEVEL:.0%} CI over seeds (t, clipped to range)" if stats.get("n", 0) else ""
    return _row(REPORTED, claim, subject, stats, criterion, test, reason, detail, paper)


def by_test(
    claim: str,
    subject: str,
    p_value: float,
    n: int,
    test: str,
    level: float,
    supported_if_rejected: bool,
    detail: str = "",
    paper: Paper | None = None,
) -> dict:
    """A row judged by a hypothesis test at ``level``: the value is the p-value. When the claim
    is the null hypothesis (``supported_if_rejected=False``, e.g. "consistent with a
    Binomial"), rejecting it contradicts the claim and not rejecting supports it. When the
    claim is that the null is false, rejecting supports it, and not rejecting is inconclusive
    (the test may lack the power to tell)."""
    stats = {"mean": p_value, "n": n}
    word = "rejects" if supported_if_rejected else "does not reject"
    criterion = f"{test} {word} at level {level:g}"
    if p_value is None or math.isnan(p_value):
        return _row(
            NOT_APPLICABLE, claim, subject, stats, criterion, test, "no p-value", detail, paper
        )
    rejected = p_value < level
    if supported_if_rejected:
        verdict = SUPPORTED if rejected else INCONCLUSIVE
    else:
        verdict = CONTRADICTED if rejected else SUPPORTED
    reason = f"p = {p_value:.3g} {'<' if rejected else '>='} {level:g}: the test " + (
        "rejects" if rejected else "does not reject"
    )
    return _row(
        verdict, claim, subject, stats, criterion, f"{test}, level {level:g}", reason, detail, paper
    )


def exact(
    claim: str,
    subject: str,
    value: float,
    criterion: str,
    holds: bool,
    detail: str = "",
    paper: Paper | None = None,
) -> dict:
    """A row for a claim checked exactly, on a value without sampling error (e.g. two stored
    weight tensors compared bit for bit): supported if it ``holds``, contradicted if not."""
    verdict = SUPPORTED if holds else CONTRADICTED
    reason = f"{criterion} {'holds' if holds else 'does not hold'} (exact check)"
    stats = {"mean": value, "n": 1}
    return _row(verdict, claim, subject, stats, criterion, "exact", reason, detail, paper)


LEARNS_ABOVE = 0.5  # sanity: clean test accuracy a trained model must beat (chance is 0.1)


def learns(claim: str, accuracy: pd.DataFrame, subject_keys: list[str]) -> list[dict]:
    """The sanity check an expert looks at first: a model trained on clean data learns (its
    clean test accuracy's 95% CI over seeds lies above ``LEARNS_ABOVE``), so that claims
    comparing its numbers compare a working model. ``accuracy`` has a row per run with
    ``accuracy`` and the ``subject_keys``; one row per subject."""
    quantity = "clean test accuracy"
    if accuracy.empty:
        return [not_applicable(claim, "-", f"{quantity} > {LEARNS_ABOVE:g}", "no clean runs")]
    rows = []
    for key, g in accuracy.groupby(subject_keys, sort=True, dropna=False):
        subject = " ".join(map(str, key if isinstance(key, tuple) else (key,)))
        s = mean_ci(g["accuracy"].to_numpy(float), bounds=RANGES["accuracy"])
        rows.append(compare(claim, subject, s, quantity, ">", LEARNS_ABOVE))
    return rows


def claims_table(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """The paper's claims checked on this study's numbers (the table ``claims``)."""
    return check_claims(study["kind"], tables, study)


def check_claims(kind: str, tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """Every claim of study kind ``kind``, checked on ``tables``; one row per claim and subject,
    with the study's name and provenance."""
    from corruptlab.studies import STUDIES

    rows = [r for claim in STUDIES.get(kind).claims for r in claim(tables, study)]
    out = pd.DataFrame(rows, columns=COLUMNS)
    runs = tables.get("runs")
    for c in PROVENANCE_COLUMNS:
        if runs is not None and c in runs:
            out[c] = ";".join(sorted(map(str, runs[c].dropna().unique())))
    out.insert(0, "study", runs["study"].iloc[0] if runs is not None and len(runs) else "")
    return out


def verdict_counts(claims: pd.DataFrame) -> dict[str, int]:
    """How many rows of a claims table got each verdict (every verdict, zeros included)."""
    counts = claims["verdict"].value_counts() if len(claims) else pd.Series(dtype=int)
    return {v: int(counts.get(v, 0)) for v in VERDICTS}


def verdict_summary(tables: dict[str, str]) -> str:
    """Per study, the counts of each verdict in its claims table and where the table is: the
    lines the workflow prints when a run ends (``tables``: study -> claims.parquet path;
    studies whose table does not exist yet are left out)."""
    from pathlib import Path

    lines = []
    for study, path in tables.items():
        if not Path(path).is_file():
            continue
        counts = verdict_counts(pd.read_parquet(path, columns=["verdict"]))
        text = ", ".join(
            f"{n} {v}" for v, n in counts.items() if n or v not in (NOT_APPLICABLE, REPORTED)
        )
        lines.append(f"  {study}: {text}\n    {path}")
    if not lines:
        return ""
    return "Claims checked on this run's numbers (verdicts from 95% CIs over seeds):\n" + "\n".join(
        lines
    )
