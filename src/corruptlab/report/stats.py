"""Confidence intervals over seeds (Student t), used by every summary and claim."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

LEVEL = 0.95


def _t(df: float, level: float = LEVEL) -> float:
    """The two-sided ``level`` quantile of Student's t with ``df`` degrees of freedom (what
    ``scipy.stats.t.ppf`` computes, through the same special function; importing scipy.special
    alone costs a table job 0.5 s instead of scipy.stats' 1.5 s)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, 0.5 + level / 2))


def mean_ci(values: Sequence[float], level: float = LEVEL) -> dict[str, float]:
    """n, mean, sample std and the two-sided t confidence interval of the mean (NaN if n < 2)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return {
            "n": 0,
            "mean": math.nan,
            "std": math.nan,
            "ci95_low": math.nan,
            "ci95_high": math.nan,
        }
    mean = float(x.mean())
    if n < 2:
        return {"n": 1, "mean": mean, "std": math.nan, "ci95_low": math.nan, "ci95_high": math.nan}
    std = float(x.std(ddof=1))
    half = _t(n - 1, level) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half}


def diff_ci(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> dict[str, float]:
    """mean(a) - mean(b) with a Welch t confidence interval (NaN bounds if either n < 2)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    diff = float(a.mean() - b.mean()) if len(a) and len(b) else math.nan
    out = {"n": min(len(a), len(b)), "mean": diff, "ci95_low": math.nan, "ci95_high": math.nan}
    if len(a) < 2 or len(b) < 2:
        return out
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return {**out, "ci95_low": diff, "ci95_high": diff}
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = _t(df, level) * se
    return {**out, "ci95_low": diff - half, "ci95_high": diff + half}


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation: Pearson's correlation of the average ranks (ties share
    their mean rank), as ``scipy.stats.spearmanr``; NaN if either side is constant."""
    import pandas as pd

    ra = pd.Series(np.asarray(a, dtype=float)).rank().to_numpy()
    rb = pd.Series(np.asarray(b, dtype=float)).rank().to_numpy()
    if len(ra) != len(rb):
        raise ValueError(f"spearman of {len(ra)} and {len(rb)} values")
    if len(ra) < 2 or np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])
