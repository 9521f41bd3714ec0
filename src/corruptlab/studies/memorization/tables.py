"""The memorization kind's tables: per-example P(correct) over seeds, and the critical sample ratio.

Many runs of the same small job (one per seed: its own initialisation and data order) classify
the same examples. Per example, the share of seeds that classify it correctly, P(correct), is a
count out of ``n_seeds``.

- ``per_example_p_correct``: the long table of (group, seed, example, correct) -> P(correct) per
  (group, example), checked for missing and duplicated seeds;
- ``binomial_pmf``: the Binomial(n_seeds, p) pmf (shared by the goodness-of-fit test in
  claims.py and the reference curve in figures.py);
- ``p_correct`` and ``csr``: the study's derived tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from corruptlab.report.tables import ci_rows

TABLE_COLUMNS = ("example", "n_seeds", "n_correct", "p_correct")


# ------------------------------------------------------------------- per-example aggregation


def _as_by(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def per_example_p_correct(
    df: pd.DataFrame, by: str | Sequence[str] = ("variant", "epochs")
) -> pd.DataFrame:
    """P(correct) per (group, example) over the seeds of its group.

    ``df`` is long: columns ``by`` + ``seed``, ``example``, ``correct`` (0/1 or bool), one row per
    (group, seed, example). Every example of a group must be present once for every seed seen in
    that group (groups may have different seeds); a missing or duplicated (seed, example) raises
    ``ValueError`` naming the first offenders.

    Returns a tidy frame, sorted by ``by`` and ``example``, with columns ``by`` + ``example``,
    ``n_seeds`` (int), ``n_correct`` (int) and ``p_correct`` (= n_correct / n_seeds, float).
    """
    keys = _as_by(by)
    need = [*keys, "seed", "example", "correct"]
    missing_cols = [c for c in need if c not in df.columns]
    if missing_cols:
        raise ValueError(
            f"per_example_p_correct: missing column(s) {missing_cols}; "
            f"need {need}, got {list(df.columns)}"
        )
    data = df[need].copy()
    null_cols = [c for c in need if data[c].isna().any()]
    if null_cols:
        raise ValueError(f"per_example_p_correct: null values in column(s) {null_cols}")
    correct = data["correct"]
    if correct.dtype != bool:
        values = pd.to_numeric(correct, errors="coerce")
        bad = ~values.isin([0, 1])
        if bad.any():
            shown = sorted({repr(v) for v in correct[bad].head(5)})
            raise ValueError(
                "per_example_p_correct: column 'correct' must be 0/1 or bool, got "
                + ", ".join(shown)
            )
        correct = values
    data["correct"] = correct.astype("int64")

    dup = data.duplicated([*keys, "seed", "example"], keep=False)
    if dup.any():
        rows = data.loc[dup, [*keys, "seed", "example"]].drop_duplicates().head(5)
        raise ValueError(
            f"per_example_p_correct: {int(dup.sum())} rows duplicate a (group, seed, example); "
            f"first: {rows.to_dict('records')}"
        )

    seeds_of_group = data.groupby(keys, sort=False)["seed"].unique() if keys else None
    counts = data.groupby([*keys, "example"], sort=True).agg(
        n_seeds=("seed", "size"), n_correct=("correct", "sum")
    )
    counts = counts.reset_index()
    if keys:
        expected = data.groupby(keys, sort=False)["seed"].nunique().rename("_expected")
        counts = counts.merge(expected, left_on=keys, right_index=True, how="left")
    else:
        counts["_expected"] = data["seed"].nunique()
    short = counts[counts["n_seeds"] != counts["_expected"]]
    if len(short):
        problems = []
        for row in short.head(5).itertuples(index=False):
            group = tuple(getattr(row, k) for k in keys)
            all_seeds = (
                seeds_of_group.loc[group if len(keys) > 1 else group[0]]
                if keys
                else data["seed"].unique()
            )
            mask = data["example"] == row.example
            for k, v in zip(keys, group, strict=True):
                mask &= data[k] == v
            missing = sorted(
                set(pd.Series(all_seeds).tolist()) - set(data.loc[mask, "seed"].tolist())
            )
            where = dict(zip(keys, group, strict=True))
            problems.append(f"{where} example {row.example}: missing seed(s) {missing}")
        raise ValueError(
            f"per_example_p_correct: {len(short)} (group, example) pairs lack some seed of their "
            "group; first: " + "; ".join(problems)
        )
    counts = counts.drop(columns="_expected")
    counts["n_seeds"] = counts["n_seeds"].astype("int64")
    counts["n_correct"] = counts["n_correct"].astype("int64")
    counts["p_correct"] = counts["n_correct"] / counts["n_seeds"]
    return counts.sort_values([*keys, "example"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------- the binomial


def _check_binomial(n_seeds: int, p: float) -> None:
    if int(n_seeds) != n_seeds or n_seeds < 1:
        raise ValueError(f"n_seeds must be a positive integer, got {n_seeds!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}")


def binomial_pmf(n_seeds: int, p: float) -> np.ndarray:
    """P(K = k) for k = 0..n_seeds of K ~ Binomial(n_seeds, p), float64 of length n_seeds + 1
    (computed in log space with ``math.lgamma``; exact point masses at p = 0 and p = 1)."""
    _check_binomial(n_seeds, p)
    n = int(n_seeds)
    pmf = np.zeros(n + 1)
    if p == 0.0:
        pmf[0] = 1.0
        return pmf
    if p == 1.0:
        pmf[n] = 1.0
        return pmf
    log_p, log_q = math.log(p), math.log1p(-p)
    log_n_fact = math.lgamma(n + 1)
    for k in range(n + 1):
        log_comb = log_n_fact - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        pmf[k] = math.exp(log_comb + k * log_p + (n - k) * log_q)
    return pmf


# --- tables -------------------------------------------------------------------------------------


MEMO_KEYS = ["model", "variant", "max_epochs"]


def p_correct(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """P(correct) of each example over the seeds, per (model, data variant, epochs): the
    training examples as trained (``memorization.examples: train``) or the clean test set."""
    from corruptlab.data.datasets import example_subset

    mem = study["memorization"]
    p = tables["predictions"]
    condition = "train" if mem["examples"] == "train" else "clean"
    p = p[(p["condition"] == condition) & (p["method"] == "source")]
    if condition == "clean":  # the evaluation holds every test example: keep the study's subset
        n_test = int(p["index"].max()) + 1
        p = p[p["index"].isin(example_subset(n_test, mem["n_examples"], mem["data_seed"]))]
    frame = p.rename(columns={"index": "example"})[[*MEMO_KEYS, "seed", "example", "correct"]]
    table = per_example_p_correct(frame, by=MEMO_KEYS)
    labels = p.drop_duplicates([*MEMO_KEYS, "index"]).rename(columns={"index": "example"})
    # randY's labels are the same in every seed (one data seed): the label trained on
    table = table.merge(labels[[*MEMO_KEYS, "example", "label"]], on=[*MEMO_KEYS, "example"])
    return table.sort_values([*MEMO_KEYS, "example"], ignore_index=True)


def csr(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """The critical sample ratio per (model, data variant, epochs, epoch measured at): mean,
    95% CI and n over seeds."""
    h = tables["histories"]
    if "csr" not in h:
        return pd.DataFrame(columns=[*MEMO_KEYS, "epoch", "mean", "ci95_low", "ci95_high", "n"])
    h = h[h["csr"].notna()]
    return pd.DataFrame(ci_rows(h, [*MEMO_KEYS, "epoch"], "csr", {}))
