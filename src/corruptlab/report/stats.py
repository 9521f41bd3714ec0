"""Confidence intervals over seeds, used by every summary, figure band and claim.

The interval of a mean over seeds is Student's t interval, intersected with the range the
metric can take (``RANGES``): an accuracy's interval never leaves [0, 1], a rank correlation's
never leaves [-1, 1]. The true mean lies in the range, so the intersection covers it exactly as
often as the t interval does (same 95% coverage under t's assumptions); it is only shorter.
Edge cases: all seeds equal gives the zero-width interval at their value; one seed (or none)
gives NaN bounds; with n = 2 the t quantile is 12.7 and the interval of a bounded metric is
often its whole range — which is what two seeds can tell.

A difference of two metrics' means (``diff_ci``: Welch's t) is bounded by the difference of
their ranges ([-1, 1] for two accuracies).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

LEVEL = 0.95

UNBOUNDED = (-math.inf, math.inf)
# The range of every metric the tables summarise, by column name: (low, high). A metric not
# listed is unbounded. One entry per metric; the docs (config/README.md, "Confidence
# intervals") list the same.
RANGES: dict[str, tuple[float, float]] = {
    "accuracy": (0.0, 1.0),
    "error": (0.0, 1.0),
    "ece": (0.0, 1.0),
    "nll": (0.0, math.inf),
    "entropy": (0.0, math.inf),
    "auroc": (0.0, 1.0),
    "fpr95": (0.0, 1.0),
    "aupr_in": (0.0, 1.0),
    "aupr_out": (0.0, 1.0),
    "in_accuracy": (0.0, 1.0),
    "best_val_accuracy": (0.0, 1.0),
    "csr": (0.0, 1.0),
    "p_correct": (0.0, 1.0),
    "spearman": (-1.0, 1.0),
    "mce": (0.0, math.inf),
    "epochs_trained": (0.0, math.inf),
    "best_epoch": (0.0, math.inf),
    "train_seconds": (0.0, math.inf),
}


def bounds_of(metric: str) -> tuple[float, float]:
    """The range of ``metric`` (``RANGES``), or (-inf, inf) for a metric not listed."""
    return RANGES.get(metric, UNBOUNDED)


def difference_bounds(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    """The range of x - y for x in range ``a`` and y in range ``b``."""
    return (a[0] - b[1], a[1] - b[0])


def difference_range(metric: str) -> tuple[float, float]:
    """The range of a difference of two values of ``metric`` ([-1, 1] for two accuracies)."""
    return difference_bounds(bounds_of(metric), bounds_of(metric))


def _check_bounds(bounds: tuple[float, float]) -> tuple[float, float]:
    low, high = (float(b) for b in bounds)
    if not low < high:
        raise ValueError(f"bounds must be (low, high) with low < high, got {bounds!r}")
    return low, high


def _clip(interval: dict[str, float], bounds: tuple[float, float]) -> dict[str, float]:
    low, high = bounds
    out = dict(interval)
    for key in ("ci95_low", "ci95_high"):
        if not math.isnan(out[key]):
            out[key] = min(max(out[key], low), high)
    return out


def _t(df: float, level: float = LEVEL) -> float:
    """The two-sided ``level`` quantile of Student's t with ``df`` degrees of freedom (what
    ``scipy.stats.t.ppf`` computes, through the same special function; importing scipy.special
    alone costs a table job 0.5 s instead of scipy.stats' 1.5 s)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, 0.5 + level / 2))


def mean_ci(
    values: Sequence[float], level: float = LEVEL, bounds: tuple[float, float] = UNBOUNDED
) -> dict[str, float]:
    """n, mean, sample std and the two-sided t confidence interval of the mean, clipped to
    ``bounds`` (the metric's range; NaN bounds if n < 2). Values outside ``bounds`` are an
    error: they mean the wrong range was given."""
    low, high = _check_bounds(bounds)
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n and (x.min() < low or x.max() > high):
        raise ValueError(f"values in [{x.min():g}, {x.max():g}] outside the range {bounds!r}")
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
    out = {"n": n, "mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half}
    return _clip(out, (low, high))


def diff_ci(
    a: Sequence[float],
    b: Sequence[float],
    level: float = LEVEL,
    bounds: tuple[float, float] = UNBOUNDED,
) -> dict[str, float]:
    """mean(a) - mean(b) with a Welch t confidence interval clipped to ``bounds`` (the range
    of the difference, e.g. ``difference_bounds(RANGES['accuracy'], RANGES['accuracy'])``;
    NaN bounds if either n < 2)."""
    low, high = _check_bounds(bounds)
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
    return _clip({**out, "ci95_low": diff - half, "ci95_high": diff + half}, (low, high))


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
